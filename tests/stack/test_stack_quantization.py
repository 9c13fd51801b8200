"""A model's quantization as the stack sees it: the checkpoint's own is used without being asked,
and a config that contradicts the checkpoint is refused at preview naming both, before vLLM would."""

import pytest

from tests.harness import deployments, run_bad_config, run_config, stack_config

MODES = [pytest.param(False, id="update"), pytest.param(True, id="preview")]


def _dev_with(**changes):
    config = stack_config("dev")
    config["gpu-inference:models"] = [{**config["gpu-inference:models"][0], **changes}]
    return config


@pytest.mark.parametrize("preview", MODES)
@pytest.mark.parametrize(
    ("model", "asked", "expected"),
    [
        ("llama-3.1-8b", "awq", ["models[0].quantization:", "'awq'", "unquantized"]),
        ("llama-3.1-70b-fp8", "awq", ["models[0].quantization:", "'awq'", "'compressed-tensors'"]),
    ],
)
def test_a_quantization_the_checkpoint_contradicts_is_refused(preview, model, asked, expected):
    run = run_bad_config(_dev_with(model=model, quantization=asked, name="m"), preview=preview)
    assert run.error is not None and not run.registrations
    message = str(run.error)
    for part in expected:
        assert part in message, message


def test_the_checkpoints_fp8_is_planned_without_being_asked():
    run = run_config(_dev_with(model="llama-3.1-70b-fp8", name="m", maxModelLen=8192))
    assert run.error is None
    (plan,) = [m for m in run.outputs["plan"]["models"] if m["name"] == "m"]
    bf16 = run_config(_dev_with(model="llama-3.1-70b", name="m", maxModelLen=8192)).outputs["plan"]["models"][0]
    assert (
        plan["plan"]["weights_gib_per_gpu"] * plan["plan"]["gpus"]
        < 0.6 * bf16["plan"]["weights_gib_per_gpu"] * bf16["plan"]["gpus"]
    )
    args = deployments(run)["m"].inputs["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--quantization" not in args, "vLLM reads the checkpoint's own scheme; forcing one is not needed"
