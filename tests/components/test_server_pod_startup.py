"""The start-time estimate (sizing.startup) behind each server's probe budget and Pulumi's await,
through the real program: it grows with the weights and shrinks with a faster source."""

import pytest

from sizing.startup import START_ESTIMATE_ANNOTATION
from tests.harness import container, deployments, run_config, stack_config

S3 = {"type": "s3", "uri": "s3://example-model-weights/llama-70b"}
VOLUME = {"type": "volume", "claimName": "weights", "path": "llama-70b"}


def budgets(config) -> dict[str, tuple[int, int, str]]:
    """Per model: (startup probe seconds, await timeout seconds, the estimate's text)."""
    out = {}
    for name, deployment in deployments(run_config(config, preview=True)).items():
        probe = container(deployment)["startupProbe"]
        metadata = deployment.plain_inputs["metadata"]
        out[name] = (
            int(probe["failureThreshold"] * probe["periodSeconds"]),
            int(metadata["annotations"]["pulumi.com/timeoutSeconds"]),
            metadata["annotations"][START_ESTIMATE_ANNOTATION],
        )
        assert deployment.custom_timeouts.get("create") == f"{out[name][1]}s"
    return out


def with_70b_source(source):
    config = stack_config("dev")
    if source is not None:
        config["gpu-inference:models"][1]["source"] = source
    return config


def test_the_budget_grows_with_the_weights():
    dev = budgets(stack_config("dev"))  # 8B and 70B, both from Hugging Face
    assert dev["llama-3-1-70b"][0] > dev["llama-3-1-8b"][0]
    assert dev["llama-3-1-70b"][1] > dev["llama-3-1-8b"][1]


@pytest.mark.parametrize(
    "slower, faster", [(None, S3), (VOLUME, S3), (VOLUME, None)], ids=["hf>s3", "volume>s3", "volume>hf"]
)
def test_a_faster_source_shrinks_the_budget_and_the_await(slower, faster):
    slow = budgets(with_70b_source(slower))["llama-3-1-70b"]
    fast = budgets(with_70b_source(faster))["llama-3-1-70b"]
    assert fast[0] < slow[0] and fast[1] < slow[1]
    assert fast[0] < fast[1], "Pulumi waits longer than the probe allows"


def test_the_workload_says_where_its_budget_comes_from():
    text = budgets(with_70b_source(S3))["llama-3-1-70b"][2]
    assert text.startswith("start ~") and "(s3, " in text and "startupProbe budget" in text
