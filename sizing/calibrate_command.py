"""``python -m sizing calibrate``: a vLLM start-up log and/or a live-check report -> a calibration record.

    python -m sizing calibrate --model llama-3.1-8b --gpu H100-80GB --log engine.log \\
        [--live-check live-check.json] [--case NAME] [--append tests/sizing/calibration/my-vllm.json]

Prints the record as JSON; with ``--append`` adds it to (or replaces the record of the same case
in) a calibration file, which the tests then check the accounting against.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sizing.calibrate import calibration_record, read_live_check, read_log
from sizing.errors import SizingError
from sizing.gpus import GPUS, resolve_gpu
from sizing.models import CONFIG_DIR, load_model


def register(commands: argparse._SubParsersAction) -> None:
    calibrate = commands.add_parser(
        "calibrate", help="turn a vLLM start-up log or live check into a calibration record"
    )
    calibrate.add_argument("--model", required=True, help="catalog name, config.json, or a directory with one")
    calibrate.add_argument("--gpu", required=True, help=f"the GPU it ran on, one of {', '.join(GPUS)}")
    calibrate.add_argument("--log", help="the engine's start-up log (INFO lines suffice; DEBUG adds the profile)")
    calibrate.add_argument("--live-check", help="the smoke Job's live-check.json (or `python -m smoke.compare --json`)")
    calibrate.add_argument("--case", help="the record's name (default: <model>_tp<N>)")
    calibrate.add_argument("--tp", type=int, default=None, help="tensor-parallel size, when the log does not say")
    calibrate.add_argument("--max-num-seqs", type=int, default=None, help="when the log does not say")
    calibrate.add_argument("--max-num-batched-tokens", type=int, default=None, help="when the log does not say")
    calibrate.add_argument("--append", help="a calibration file (JSON list) to add the record to")


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise SizingError(f"cannot read the {what} {path!r}: {error.strerror or error}") from None


def _model_config(name_or_path: str) -> tuple[str, dict]:
    """The display name and the raw config.json fields (the record's ``architecture``)."""
    load_model(name_or_path)  # refuses what the sizing cannot read
    key = name_or_path.strip().lower()
    catalog = {path.stem.lower(): path for path in CONFIG_DIR.glob("*.json")}
    path = catalog.get(key) or Path(name_or_path).expanduser()
    if path.is_dir():
        path = path / "config.json"
    name = path.stem if key in catalog else path.parent.name or path.stem
    return name, json.loads(path.read_text())


def run(args: argparse.Namespace) -> int:
    if not args.log and not args.live_check:
        raise SizingError("give --log (a vLLM start-up log), --live-check (a live-check report), or both")
    gpu = resolve_gpu(args.gpu)
    name, architecture = _model_config(args.model)
    log = read_log(_read(args.log, "log")) if args.log else None
    live = None
    if args.live_check:
        try:
            live = read_live_check(json.loads(_read(args.live_check, "live-check report")))
        except ValueError as error:
            raise SizingError(f"the live-check report {args.live_check!r} is not JSON: {error}") from None
    record = calibration_record(
        case=args.case or f"{name.lower()}_tp{args.tp or (log or {}).get('args', {}).get('tensor_parallel_size', 1)}",
        model=name,
        architecture=architecture,
        gpu=gpu,
        log=log,
        live=live,
        tensor_parallel_size=args.tp,
        log_path=args.log,
    )
    for key in ("max_num_seqs", "max_num_batched_tokens"):
        if getattr(args, key) is not None:
            record["engine"][key] = getattr(args, key)
    if args.append:
        path = Path(args.append)
        records = json.loads(_read(args.append, "calibration file")) if path.exists() else []
        if not isinstance(records, list):
            raise SizingError(f"{args.append} is not a calibration file (a JSON list of records)")
        records = [r for r in records if r.get("case") != record["case"]] + [record]
        path.write_text(json.dumps(records, indent=1) + "\n")
    print(json.dumps(record, indent=1))
    return 0
