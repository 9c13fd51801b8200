"""The outputs contract: the dev stack's outputs, read back by the typed helper and by the
example consumer program through a StackReference."""

import json

import pytest
from pydantic import ValidationError

from stack.mockrun import ROOT, Secret, run_program
from stack.outputs import parse_outputs
from tests.harness import run_stack

CONSUMER = ROOT / "examples" / "consumer" / "__main__.py"


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
def test_outputs_parse_into_the_typed_models(preview):
    run = run_stack("dev", preview)
    outputs = parse_outputs(run.outputs)
    assert outputs.contract_version == 1
    endpoint = outputs.models["llama-3-1-70b"]
    assert endpoint.url == "http://llama-3-1-70b.inference.svc.cluster.local:8000/v1"
    assert endpoint.served_model_name == "llama-3-1-70b"
    assert (
        endpoint.gpu == "H100-80GB" and endpoint.gpus == endpoint.tensor_parallel_size * endpoint.pipeline_parallel_size
    )
    assert outputs.node_groups["h100"].instance_type == "p5.48xlarge"
    json.dumps(run.outputs["plan"])  # the plan is plain data


def test_contract_rejects_outputs_missing_a_field():
    run = run_stack("dev", False)
    broken = json.loads(json.dumps({k: v for k, v in run.outputs.items() if k != "kubeconfig"}))
    del broken["models"]["llama-3-1-8b"]["url"]
    with pytest.raises(ValidationError):
        parse_outputs(broken)


def consumer(outputs, preview=False, model="llama-3-1-70b"):
    published = dict(outputs)
    return run_program(
        {
            "gpu-inference-consumer:inferenceStack": "acme/gpu-inference/dev",
            "gpu-inference-consumer:model": model,
            "gpu-inference-consumer:namespace": "apps",
        },
        stack="dev",
        preview=preview,
        project="gpu-inference-consumer",
        program=CONSUMER,
        stack_references={"acme/gpu-inference/dev": published},
        capture_errors=True,
    )


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
def test_example_consumer_reads_the_endpoint(preview):
    produced = run_stack("dev", False).outputs
    run = consumer(produced, preview)
    assert run.error is None, run.error
    (config_map,) = run.of_type("kubernetes:core/v1:ConfigMap")
    data = config_map.plain_inputs["data"]
    assert data == {
        "OPENAI_BASE_URL": "http://llama-3-1-70b.inference.svc.cluster.local:8000/v1",
        "OPENAI_MODEL": "llama-3-1-70b",
    }
    assert run.outputs["tensorParallelSize"] == produced["models"]["llama-3-1-70b"]["tensorParallelSize"]
    (provider,) = run.of_type("pulumi:providers:kubernetes")
    assert isinstance(provider.inputs["kubeconfig"], Secret)


def test_example_consumer_names_the_served_models_when_asked_for_another():
    run = consumer(run_stack("dev", False).outputs, model="gpt-5")
    assert "'gpt-5' is not served; served models are llama-3-1-70b, llama-3-1-8b" in str(run.error)
