"""Never a traceback: malformed stack configs, stack files and CLI arguments end in a clear error or a valid plan.

Hypothesis mutates the example stacks' config (a value replaced by the wrong type, an extreme number,
unicode or nested junk; a key removed; an unknown key added), garbles a stack file's text, and builds
``python -m sizing`` argument lists from valid flags and junk values. Each case must end in a plan,
in ``ConfigError``/``StackFileError``/``pulumi.RunError`` whose every line names a field or the file,
or in exit 1/2 with one line on stderr: never another exception. Examples are capped and derandomized
so ``make test`` stays fast and repeatable; the configs go through the whole program under the mocks.
"""

from __future__ import annotations

import copy
import io
import os
import re
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

import pulumi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sizing.cli import main as sizing_main
from stack.config import ConfigError
from stack.mockrun import ROOT, run_program
from stack.stack_file import StackFileError, parse_stack_text
from tests.harness import SECRETS, stack_config

# NEVER_A_TRACEBACK_EXAMPLES=500 explores further, with fresh random examples each run.
EXAMPLES = int(os.environ.get("NEVER_A_TRACEBACK_EXAMPLES", "0")) or None
SETTINGS = settings(
    max_examples=EXAMPLES or 60,
    deadline=None,
    derandomize=EXAMPLES is None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
STACKS = ("dev", "prod", "multinode")
CONFIGS = {stack: stack_config(stack) for stack in STACKS}
FIELD_LINE = re.compile(
    r"^(gpu-inference:|cluster\b|nodeGroups\b|models\b|config key|stack reference|Pulumi\.\w+\.yaml)"
)
CONTINUATIONS = ("- ", "(", "What would work", "Tried")

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**31, 10**12, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", " ", "Ω≈ç√", "llama-3.1-8b", "H100-80GB", "p5.48xlarge", "${TAG}", "a" * 300]),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(min_value=-3, max_value=3), max_size=2),
)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += paths(item, prefix + (index,))
    return out


def parent_of(config: dict, path: tuple) -> Any:
    node: Any = config
    for part in path[:-1]:
        node = node[part]
    return node


@st.composite
def mutated_configs(draw) -> tuple[str, dict[str, Any]]:
    stack = draw(st.sampled_from(STACKS))
    config = copy.deepcopy(CONFIGS[stack])
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        candidates = paths(config)
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        parent = parent_of(config, path)
        action = draw(st.sampled_from(["replace", "replace", "remove", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(junk)
        elif action == "remove":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(junk)
        else:
            parent.append(draw(junk))
    return stack, config


def assert_clear(error: BaseException) -> None:
    assert isinstance(error, (ConfigError, StackFileError, pulumi.RunError)), repr(error)
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    assert lines, "an empty message"
    if lines[0] == "invalid stack configuration:":
        lines = lines[1:]
        assert lines, "a header with no problem after it"
    for line in lines:
        if line.startswith(CONTINUATIONS):
            continue  # a problem's own detail lines (what was tried, what would work)
        assert FIELD_LINE.match(line), f"a line naming no field: {line!r}"


@SETTINGS
@given(mutated_configs())
def test_a_mutated_stack_config_gets_a_plan_or_a_clear_error(case) -> None:
    stack, config = case
    run = run_program(config, stack=stack, preview=True, secrets=SECRETS, capture_errors=True)
    if run.error is not None:
        assert_clear(run.error)
        return
    assert run.outputs["plan"]["models"] is not None


def garble(text: str, draw) -> str:
    lines = text.splitlines()
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        if not lines:
            break
        i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        kind = draw(st.sampled_from(["indent", "dedent", "duplicate", "delete", "insert", "truncate"]))
        if kind == "indent":
            lines[i] = " " + lines[i]
        elif kind == "dedent":
            lines[i] = lines[i][1:]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "delete":
            del lines[i]
        elif kind == "insert":
            lines.insert(i, draw(st.text(alphabet=" :-[]{}'\"#&*!|>%@`\tab1", max_size=10)))
        else:
            cut = draw(st.integers(min_value=0, max_value=len(lines[i])))
            lines[i] = lines[i][:cut]
    return "\n".join(lines) + "\n"


@SETTINGS
@given(st.sampled_from(STACKS), st.data())
def test_a_garbled_stack_file_gets_config_or_an_error_with_its_position(stack, data) -> None:
    text = garble((ROOT / f"Pulumi.{stack}.yaml").read_text(), data.draw)
    try:
        config = parse_stack_text(text, f"Pulumi.{stack}.yaml")
    except StackFileError as error:
        assert_clear(error)
        return
    assert isinstance(config, dict)
    secrets = {k: v for k, v in SECRETS.items() if f"gpu-inference:{k}" not in config}
    plain = {k: v for k, v in config.items() if not (isinstance(v, dict) and set(v) == {"secure"})}
    run = run_program(plain, stack=stack, preview=True, secrets=secrets, capture_errors=True)
    if run.error is not None:
        assert_clear(run.error)


CLI_VALUES = st.one_of(
    st.sampled_from(["0", "-1", "1", "2", "8", "nan", "inf", "-inf", "1e309", "0.5", "1.5", "32768", "", "x"]),
    st.sampled_from(["llama-3.1-8b", "llama-3.1-70b", "H100-80GB", "A100-40GB,H200-141GB", "nope", "/no/such"]),
    st.integers(min_value=-(2**40), max_value=2**40).map(str),
    st.text(max_size=6),
)
FLAGS = [
    "--model", "--gpu", "--tp", "--pp", "--max-model-len", "--min-concurrency", "--gpu-memory-utilization",
    "--max-num-seqs", "--max-num-batched-tokens", "--dtype", "--quantization", "--kv-cache-dtype",
    "--input-len", "--output-len", "--concurrency", "--accounting", "--enforce-eager", "--json",
    "--requests-per-second", "--min-requests-per-second", "--p95-ttft-s", "--p95-tpot-s",
]  # fmt: skip


@st.composite
def cli_arguments(draw) -> list[str]:
    argv = [draw(st.sampled_from(["plan", "check", "throughput", "traffic", "nope"]))]
    base = {"--model": "llama-3.1-8b", "--gpu": "H100-80GB", "--max-model-len": "8192", "--tp": "1"}
    if argv[0] == "traffic":
        base |= {"--requests-per-second": "10", "--input-len": "1000", "--output-len": "200"}
    for flag, value in base.items():
        if draw(st.booleans()):
            argv += [flag, value]
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        flag = draw(st.sampled_from(FLAGS))
        argv.append(flag)
        if flag not in ("--enforce-eager", "--json"):
            argv.append(draw(CLI_VALUES))
    return argv


@settings(max_examples=EXAMPLES or 120, deadline=None, derandomize=EXAMPLES is None)
@given(cli_arguments())
def test_sizing_cli_arguments_end_in_a_plan_or_one_line_and_an_exit_code(argv) -> None:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = sizing_main(argv)
    assert code in (0, 1, 2), (argv, code)
    if code == 2 and "--json" not in argv:
        assert len(err.getvalue().strip().splitlines()) == 1, (argv, err.getvalue())
        assert err.getvalue().startswith("error: ")
