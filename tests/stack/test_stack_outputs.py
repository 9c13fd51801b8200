"""The outputs contract: the dev stack's outputs, read back by the typed helper and by the
example consumer program through a StackReference."""

import json
from dataclasses import replace

import pytest
from pydantic import ValidationError

from stack.mockrun import ROOT, load_stack_config, reveal, run_program
from stack.outputs import parse_outputs
from tests.harness import check_outputs, run_stack

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
    broken = json.loads(json.dumps(run.outputs))
    del broken["models"]["llama-3-1-8b"]["url"]
    with pytest.raises(ValidationError):
        parse_outputs(broken)


CONSUMER_KUBECONFIG = "apiVersion: v1\nkind: Config\nusers: [{name: inference-admin, user: {token: KUBE-SENTINEL-7}}]"


def consumer(outputs, preview=False, model=None):
    """The consumer program as documented: its own Pulumi.dev.yaml, the producer's outputs behind
    the StackReference it names."""
    config = load_stack_config("dev", root=CONSUMER.parent)
    if model is not None:
        config["gpu-inference-consumer:model"] = model
    return run_program(
        config,
        stack="dev",
        preview=preview,
        project="gpu-inference-consumer",
        program=CONSUMER,
        stack_references={config["gpu-inference-consumer:inferenceStack"]: dict(outputs)},
        capture_errors=True,
    )


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
def test_example_consumer_publishes_the_endpoint_and_nothing_else(preview):
    produced = run_stack("dev", False).outputs
    run = consumer(produced, preview)
    assert run.error is None, run.error
    assert [r.type for r in run.registrations if r.type != "pulumi:pulumi:StackReference"] == [
        "kubernetes:core/v1:ConfigMap"
    ]
    (config_map,) = run.of_type("kubernetes:core/v1:ConfigMap")
    assert config_map.plain_inputs["metadata"] == {"name": "llm-endpoint", "namespace": "apps"}
    assert config_map.plain_inputs["data"] == {
        "OPENAI_BASE_URL": "http://llama-3-1-70b.inference.svc.cluster.local:8000/v1",
        "OPENAI_MODEL": "llama-3-1-70b",
    }
    assert config_map.provider == ""  # the team's own cluster access (default provider), not one built here
    assert run.outputs["tensorParallelSize"] == produced["models"]["llama-3-1-70b"]["tensorParallelSize"]


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
def test_example_consumer_never_reads_a_kubeconfig_even_when_one_is_published(preview):
    # A producer that still exported its kubeconfig (as contract version 1 once did), as a secret.
    produced = {**run_stack("dev", False).outputs, "kubeconfig": CONSUMER_KUBECONFIG}
    run = consumer(produced, preview)
    assert run.error is None, run.error
    assert not run.of_type("pulumi:providers:kubernetes")
    for registration in run.registrations:
        assert "KUBE-SENTINEL-7" not in json.dumps(reveal(registration.inputs), default=str), registration.type
    assert "KUBE-SENTINEL-7" not in json.dumps(reveal(run.outputs), default=str)


def test_example_consumer_names_the_served_models_when_asked_for_another():
    run = consumer(run_stack("dev", False).outputs, model="gpt-5")
    assert "'gpt-5' is not served; served models are llama-3-1-70b, llama-3-1-8b" in str(run.error)


def test_the_inference_stack_exports_no_kubeconfig_and_the_invariant_catches_one():
    run = run_stack("dev", False)
    assert "kubeconfig" not in run.outputs and not run.secret_outputs
    leaky = replace(run, outputs={**run.outputs, "kubeconfig": CONSUMER_KUBECONFIG}, secret_outputs={"kubeconfig"})
    assert any("kubeconfig is exported" in problem for problem in check_outputs(leaky))
