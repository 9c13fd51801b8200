"""The running engine's KV cache, as vLLM reports it on ``/metrics``, against the plan's prediction.

vLLM exports its cache settings as the gauge ``vllm:cache_config_info``: one sample whose labels are
every field of its ``CacheConfig`` as ``str(value)`` plus ``engine`` (``CacheConfig.metrics_info``
in vLLM 0.26.0 and 0.32.0 alike). The labels read here exist in both releases: ``num_gpu_blocks``,
``block_size``, ``cache_dtype``, ``gpu_memory_utilization``, and, when set, ``kv_cache_size_tokens``
and ``kv_cache_max_concurrency``. ``num_gpu_blocks`` is per engine (one engine = one TP x PP
group; vLLM sums it over data-parallel engines).

The plan's guarantee is ``min_concurrency`` requests of ``max_model_len`` tokens at once. A request
takes ``ceil(max_model_len / block_size)`` blocks (vLLM's ``get_max_concurrency_for_kv_cache_config``
for full attention), so the guarantee holds when the engine has at least
``ceil(min_concurrency x that)`` blocks.

Standard library only: the smoke Job runs this file from a ConfigMap in a plain python image, and
``python -m smoke.compare`` runs it offline against a saved or live ``/metrics``.
"""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CACHE_CONFIG_GAUGE = "vllm:cache_config_info"
GIB = 2**30
_SAMPLE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+\S+)?\s*$")
_LABEL = re.compile(r'\s*(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*(?:,|$)')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


class LiveCheckError(ValueError):
    """Input that cannot be compared: the message names the input, the value and what would work."""


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse_samples(text: str) -> list[Sample]:
    """Prometheus text exposition (what ``/metrics`` serves): one sample per non-comment line."""
    samples = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise LiveCheckError(f"metrics line {number} is not a Prometheus sample: {line[:200]!r}")
        labels = _parse_labels(match["labels"] or "", number)
        try:
            value = float(match["value"])
        except ValueError:
            raise LiveCheckError(f"metrics line {number}: value {match['value']!r} is not a number") from None
        samples.append(Sample(match["name"], labels, value))
    return samples


def _parse_labels(text: str, number: int) -> dict[str, str]:
    labels: dict[str, str] = {}
    position = 0
    while position < len(text.strip()):
        match = _LABEL.match(text, position)
        if match is None:
            raise LiveCheckError(f"metrics line {number}: cannot read the labels at {text[position : position + 80]!r}")
        labels[match["key"]] = re.sub(r"\\[\\\"n]", lambda m: _UNESCAPE[m.group()], match["value"])
        position = match.end()
    return labels


@dataclass(frozen=True)
class EngineCache:
    """What one engine allocated, from its ``vllm:cache_config_info`` labels."""

    num_gpu_blocks: int
    block_size: int
    cache_dtype: str
    gpu_memory_utilization: float | None = None
    kv_cache_size_tokens: int | None = None
    kv_cache_max_concurrency: float | None = None
    engine: str = "0"
    engines: int = 1

    @property
    def kv_cache_tokens(self) -> int:
        return self.num_gpu_blocks * self.block_size

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kv_cache_tokens": self.kv_cache_tokens}


def _optional(labels: dict[str, str], key: str, kind: type) -> Any:
    value = labels.get(key)
    if value in (None, "", "None"):
        return None
    try:
        return kind(value)
    except ValueError:
        raise LiveCheckError(f"{CACHE_CONFIG_GAUGE} label {key}={value!r} is not a {kind.__name__}") from None


def engine_cache(text: str) -> EngineCache:
    """The KV cache of the first engine found in a ``/metrics`` text."""
    samples = parse_samples(text)
    found = [s for s in samples if s.name == CACHE_CONFIG_GAUGE]
    if not found:
        vllm_names = sorted({s.name for s in samples if s.name.startswith("vllm:")})
        raise LiveCheckError(
            f"no {CACHE_CONFIG_GAUGE} among {len(samples)} samples "
            f"({len(vllm_names)} vllm: metrics{': ' + ', '.join(vllm_names[:5]) if vllm_names else ''}); "
            "vLLM exports it once its engine is initialised, and not when started with --disable-log-stats; "
            "give the metrics of a ready vLLM server"
        )
    found.sort(key=lambda s: s.labels.get("engine", ""))
    labels = found[0].labels
    blocks = _optional(labels, "num_gpu_blocks", int)
    block_size = _optional(labels, "block_size", int)
    if blocks is None or block_size is None or blocks < 0 or block_size <= 0:
        raise LiveCheckError(
            f"{CACHE_CONFIG_GAUGE} has num_gpu_blocks={labels.get('num_gpu_blocks')!r} "
            f"block_size={labels.get('block_size')!r}: the engine has not allocated its KV cache yet; "
            "read the metrics once the server answers /health"
        )
    return EngineCache(
        num_gpu_blocks=blocks,
        block_size=block_size,
        cache_dtype=labels.get("cache_dtype", "auto"),
        gpu_memory_utilization=_optional(labels, "gpu_memory_utilization", float),
        kv_cache_size_tokens=_optional(labels, "kv_cache_size_tokens", int),
        kv_cache_max_concurrency=_optional(labels, "kv_cache_max_concurrency", float),
        engine=labels.get("engine", "0"),
        engines=len(found),
    )


@dataclass(frozen=True)
class Expectation:
    """What the plan predicted for one engine, and the concurrency it promised."""

    model: str
    kv_cache_tokens: int
    min_concurrency: float
    max_model_len: int
    kv_cache_gib_per_gpu: float | None = None
    kv_cache_bytes_per_token_per_gpu: int | None = None
    max_concurrency: float | None = None
    block_size: int | None = None
    kv_cache_dtype: str | None = None
    gpu_memory_utilization: float | None = None

    def __post_init__(self) -> None:
        for name in ("kv_cache_tokens", "max_model_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "kv_cache_tokens" else 1):
                raise LiveCheckError(f"{name}={value!r}: give a whole number of tokens (max_model_len at least 1)")
        if not isinstance(self.min_concurrency, int | float) or self.min_concurrency <= 0:
            raise LiveCheckError(f"min_concurrency={self.min_concurrency!r}: give a positive number of requests")
        if self.block_size is not None and self.block_size <= 0:
            raise LiveCheckError(f"block_size={self.block_size!r}: give a positive number of tokens")

    @classmethod
    def from_plan(cls, plan: dict[str, Any], model: str) -> Expectation:
        """One model of ``build/<stack>/plan.json`` (``models[].plan``), by name, model or served name."""
        models = plan.get("models") if isinstance(plan, dict) else None
        if not isinstance(models, list):
            raise LiveCheckError(
                "the plan has no 'models' list: give build/<stack>/plan.json as `make synth` writes it"
            )
        names = [m.get("name") for m in models if isinstance(m, dict)]
        chosen = [
            m
            for m in models
            if isinstance(m, dict) and model in (m.get("name"), m.get("model"), m.get("servedModelName"))
        ]
        if not chosen:
            raise LiveCheckError(
                f"model {model!r} is not in the plan; it holds: {', '.join(map(str, names)) or 'none'}"
            )
        entry = chosen[0].get("plan") or {}
        settings = entry.get("settings") or {}
        try:
            return cls(
                model=str(chosen[0].get("name", model)),
                kv_cache_tokens=int(entry["kv_cache_tokens"]),
                min_concurrency=float(entry["min_concurrency"]),
                max_model_len=int(settings["max_model_len"]),
                kv_cache_gib_per_gpu=entry.get("kv_cache_gib_per_gpu"),
                kv_cache_bytes_per_token_per_gpu=entry.get("kv_cache_bytes_per_token_per_gpu"),
                max_concurrency=entry.get("max_concurrency"),
                kv_cache_dtype=settings.get("kv_cache_dtype"),
                gpu_memory_utilization=settings.get("gpu_memory_utilization"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise LiveCheckError(
                f"model {model!r} in the plan lacks {error}: give a plan.json written by `make synth`"
            ) from None


@dataclass(frozen=True)
class Comparison:
    """Measured against predicted; ``holds`` is the plan's concurrency guarantee on the live engine."""

    expected: Expectation
    measured: EngineCache
    notes: list[str] = field(default_factory=list)

    @property
    def block_size(self) -> int:
        return self.measured.block_size

    @property
    def blocks_per_request(self) -> int:
        return -(-self.expected.max_model_len // self.block_size)

    @property
    def guaranteed_blocks(self) -> int:
        """Blocks that ``min_concurrency`` requests of ``max_model_len`` tokens take."""
        return math.ceil(self.expected.min_concurrency * self.blocks_per_request - 1e-9)

    @property
    def predicted_blocks(self) -> int:
        return self.expected.kv_cache_tokens // self.block_size

    @property
    def measured_concurrency(self) -> float:
        return self.measured.num_gpu_blocks / self.blocks_per_request

    @property
    def predicted_concurrency(self) -> float:
        if self.expected.max_concurrency is not None:
            return float(self.expected.max_concurrency)
        return self.predicted_blocks / self.blocks_per_request

    @property
    def measured_gib_per_gpu(self) -> float | None:
        """The engine's blocks in GiB on one GPU, at the plan's bytes per token."""
        per_token = self.expected.kv_cache_bytes_per_token_per_gpu
        return None if per_token is None else self.measured.kv_cache_tokens * per_token / GIB

    @property
    def predicted_gib_per_gpu(self) -> float | None:
        if self.expected.kv_cache_gib_per_gpu is not None:
            return float(self.expected.kv_cache_gib_per_gpu)
        per_token = self.expected.kv_cache_bytes_per_token_per_gpu
        return None if per_token is None else self.expected.kv_cache_tokens * per_token / GIB

    @property
    def holds(self) -> bool:
        return self.measured.num_gpu_blocks >= self.guaranteed_blocks

    def verdict(self) -> str:
        e, m = self.expected, self.measured
        if self.holds:
            return (
                f"GUARANTEE HOLDS: {m.num_gpu_blocks:,} blocks >= {self.guaranteed_blocks:,} "
                f"({e.min_concurrency:g} requests x {e.max_model_len:,} tokens)"
            )
        return (
            f"GUARANTEE BROKEN: the engine has {m.num_gpu_blocks:,} KV blocks, {self.guaranteed_blocks:,} needed "
            f"for {e.min_concurrency:g} requests x {e.max_model_len:,} tokens "
            f"(concurrency {self.measured_concurrency:.2f}); "
            "lower minConcurrency or maxModelLen, or give the model more GPUs"
        )

    def lines(self) -> list[str]:
        def row(label: str, measured: float | None, predicted: float | None, fmt: str) -> str:
            if measured is None or predicted is None:
                shown = "n/a" if predicted is None else format(predicted, fmt)
                return f"  {label:<22} {'n/a' if measured is None else format(measured, fmt):>14} {shown:>14}"
            diff = measured - predicted
            ratio = f" ({diff / predicted:+.1%})" if predicted else ""
            return f"  {label:<22} {measured:>14{fmt}} {predicted:>14{fmt}} {diff:>+14{fmt}}{ratio}"

        lines = [
            f"{self.expected.model}: engine {self.measured.engine} KV cache, measured vs predicted "
            f"(block {self.block_size} tokens, {self.measured.cache_dtype} cache)",
            f"  {'':<22} {'measured':>14} {'predicted':>14} {'difference':>14}",
            row("KV GiB per GPU", self.measured_gib_per_gpu, self.predicted_gib_per_gpu, ",.2f"),
            row("KV blocks", self.measured.num_gpu_blocks, self.predicted_blocks, ",d"),
            row("KV tokens", self.measured.kv_cache_tokens, self.expected.kv_cache_tokens, ",d"),
            row(
                f"concurrency @{self.expected.max_model_len}",
                self.measured_concurrency,
                self.predicted_concurrency,
                ",.2f",
            ),
        ]
        lines += [f"  note: {note}" for note in self.notes]
        lines.append(self.verdict())
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.expected.model,
            "holds": self.holds,
            "block_size": self.block_size,
            "blocks_per_request": self.blocks_per_request,
            "guaranteed_blocks": self.guaranteed_blocks,
            "measured": {
                **self.measured.to_dict(),
                "kv_cache_gib_per_gpu": self.measured_gib_per_gpu,
                "max_concurrency": self.measured_concurrency,
            },
            "predicted": {
                **asdict(self.expected),
                "num_gpu_blocks": self.predicted_blocks,
                "kv_cache_gib_per_gpu": self.predicted_gib_per_gpu,
                "max_concurrency": self.predicted_concurrency,
            },
            "difference": {
                "num_gpu_blocks": self.measured.num_gpu_blocks - self.predicted_blocks,
                "kv_cache_tokens": self.measured.kv_cache_tokens - self.expected.kv_cache_tokens,
                "kv_cache_gib_per_gpu": None
                if self.measured_gib_per_gpu is None or self.predicted_gib_per_gpu is None
                else self.measured_gib_per_gpu - self.predicted_gib_per_gpu,
                "max_concurrency": self.measured_concurrency - self.predicted_concurrency,
            },
            "notes": list(self.notes),
            "verdict": self.verdict(),
        }


def compare(expected: Expectation, measured: EngineCache) -> Comparison:
    notes = []
    if expected.block_size is not None and expected.block_size != measured.block_size:
        notes.append(f"block size {measured.block_size} tokens, the plan assumed {expected.block_size}")
    if expected.kv_cache_dtype not in (None, measured.cache_dtype):
        notes.append(
            f"cache dtype {measured.cache_dtype!r}, the plan assumed {expected.kv_cache_dtype!r}: "
            "the measured GiB use the plan's bytes per token and are off by the dtype ratio"
        )
    if (
        expected.gpu_memory_utilization is not None
        and measured.gpu_memory_utilization is not None
        and abs(expected.gpu_memory_utilization - measured.gpu_memory_utilization) > 1e-6
    ):
        notes.append(
            f"gpu_memory_utilization {measured.gpu_memory_utilization:g}, "
            f"the plan assumed {expected.gpu_memory_utilization:g}"
        )
    if measured.engines > 1:
        notes.append(
            f"{measured.engines} engines report {CACHE_CONFIG_GAUGE}; compared engine {measured.engine} "
            "(with data parallelism vLLM sums num_gpu_blocks over engines)"
        )
    return Comparison(expected, measured, notes)


def read_metrics(source: str, timeout_s: float = 30.0) -> str:
    """The text of a ``/metrics`` URL (``http(s)://...``) or of a saved file."""
    if source.startswith(("http://", "https://")):
        request = urllib.request.Request(source, headers={"Accept": "text/plain"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            raise LiveCheckError(f"GET {source}: HTTP {error.code}; give the server's /metrics URL") from None
        except (urllib.error.URLError, OSError) as error:
            raise LiveCheckError(f"GET {source}: {getattr(error, 'reason', error)}") from None
    path = Path(source)
    if not path.is_file():
        raise LiveCheckError(f"metrics {source!r}: no such file; give a saved /metrics text or an http(s) URL")
    return path.read_text(encoding="utf-8", errors="replace")


def read_plan(path: str) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise LiveCheckError(f"plan {path!r}: no such file; run `make synth STACK=<stack>` to write it") from None
    except ValueError as error:
        raise LiveCheckError(f"plan {path!r} is not JSON: {error}") from None
