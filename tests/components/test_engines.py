"""The engine registry: an engine is one module (its ``Engine``) plus its options model, and the
whole stack serves it. The proof is a toy engine defined and registered here, in the tests only."""

from __future__ import annotations

from typing import ClassVar, Literal

import pytest

from components import server_pod
from components.engines import ENGINES, engine_for, register, unregister
from components.engines.base import Engine
from stack.config import ENGINE_OPTIONS, EngineOptions, register_engine_options, unregister_engine_options
from tests.harness import arg_value, check_invariants, run_bad_config, run_config, stack_config, workloads

# --- the toy engine: everything a new engine writes ----------------------------------------------


class ToyOptions(EngineOptions):
    """engine: {type: toy, image: ..., greeting: ...}"""

    type: Literal["toy"] = "toy"
    image: str
    greeting: str = "hello"
    display_name: ClassVar[str] = "Toy"
    single_node_only: ClassVar[bool] = True


class Toy(Engine):
    name = "toy"
    component = "ToyModel"
    label = "toy"
    ready_path = "/ready"
    live_path = "/alive"

    def command(self, model, role):
        plan = model.plan
        options = model.config.engine
        return ["toy-serve"], [
            "--tp",
            str(plan.tensor_parallel_size),
            "--context",
            str(plan.settings.max_model_len),
            "--greeting",
            options.greeting,
            "--served-model-name",
            model.served_model_name,
        ]

    def pod_environment(self, model, secrets):
        return (
            [{"name": "NCCL_DEBUG", "value": "WARN"}, {"name": "TOY_MODEL", "value": model.served_model_name}],
            [server_pod.shm_volume(model.plan.gpus_per_pod)],
            [dict(server_pod.SHM_MOUNT)],
        )


@pytest.fixture
def toy():
    register_engine_options(ToyOptions)
    engine = register(Toy())
    yield engine
    unregister("toy")
    unregister_engine_options("toy")


def toy_stack(**engine):
    config = stack_config("dev")
    config["gpu-inference:models"] = [
        {
            "name": "tiny",
            "model": "llama-3.1-8b",
            "maxModelLen": 8192,
            "nodeGroup": "h100",
            "replicas": 2,
            "engine": {"type": "toy", "image": "acme/toy:1.0", "vllmRelease": "0.26.0", **engine},
        }
    ]
    return config


# --- tests --------------------------------------------------------------------------------------


def test_a_registered_engine_renders_a_whole_stack_with_the_shared_server_pod(toy):
    run = run_config(toy_stack(greeting="hi"))
    assert run.error is None
    workload = workloads(run)["tiny"]
    assert workload.kind == "Deployment" and int(workload.spec["replicas"]) == 2
    pod = workload.templates["server"]
    (container,) = pod["spec"]["containers"]
    plan = run.outputs["plan"]["models"][0]["plan"]
    assert container["name"] == "toy" and container["image"] == "acme/toy:1.0"
    assert container["command"] == ["toy-serve"]
    assert arg_value(container["args"], "--tp") == str(plan["tensor_parallel_size"])
    assert arg_value(container["args"], "--greeting") == "hi"
    assert container["startupProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/alive"
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "toy"
    # What the shared pod gives every engine: GPUs, /dev/shm, affinity, Service/PDB/NetworkPolicy...
    assert check_invariants(run) == []
    assert run.of_type("gpu-inference:components:ToyModel")
    (job,) = run.of_type("kubernetes:batch/v1:Job")
    command = job.plain_inputs["spec"]["template"]["spec"]["containers"][0]["command"]
    assert arg_value(command, "--health-path") == "/ready"


def test_a_registered_engine_rejects_unknown_options_and_listing_its_own(toy):
    run = run_bad_config(toy_stack(colour="blue"))
    assert (
        "models[0].engine.colour: unknown key; valid keys here are type, vllmRelease, sizingAccounting, image, greeting"
        in str(run.error)
    )


def test_a_single_node_engine_refuses_pipeline_stages(toy):
    config = toy_stack()
    config["gpu-inference:models"][0]["pipelineParallelSize"] = 2
    run = run_bad_config(config)
    assert "models[0].pipelineParallelSize: 2 would span nodes; this stack serves Toy on one node" in str(run.error)


def test_without_the_engine_module_the_type_is_refused_with_the_known_ones():
    assert "toy" not in ENGINE_OPTIONS and "toy" not in ENGINES
    run = run_bad_config(toy_stack())
    assert "models[0].engine:" in str(run.error) and "'vllm', 'nim'" in str(run.error)


def test_options_without_their_engine_module_fail_naming_the_registered_engines():
    register_engine_options(ToyOptions)
    try:
        run = run_bad_config(toy_stack())
        assert "engine 'toy' has config options but no registered engine (registered: nim, vllm)" in str(run.error)
    finally:
        unregister_engine_options("toy")


def test_built_in_engines_are_registered_and_cover_the_config_union():
    assert set(ENGINES) == set(ENGINE_OPTIONS) == {"vllm", "nim"}
    for engine in ENGINES.values():
        assert engine.ready_path.startswith("/") and engine.live_path.startswith("/")
    assert ENGINES["vllm"].supports_multi_node and not ENGINES["nim"].supports_multi_node
    assert ENGINE_OPTIONS["nim"].single_node_only and not ENGINE_OPTIONS["vllm"].single_node_only


def test_every_engine_plans_on_the_accounting_of_the_release_it_runs(toy):
    """An engine's options say which vLLM release it runs (stack.engine_release); the plan follows it."""
    from sizing.accounting import VLLM_0_26, VLLM_0_32

    assert ENGINE_OPTIONS["vllm"]().sizing("m").accounting == VLLM_0_32  # the default image's tag
    nim = ENGINE_OPTIONS["nim"](image="nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.4")
    assert nim.sizing("m").assumed and nim.sizing("m").accounting == VLLM_0_26
    toy = ENGINE_OPTIONS["toy"](image="acme/toy:1.0", greeting="hi", vllmRelease="0.26.0")
    assert toy.sizing("m").measured
    with pytest.raises(ValueError, match="vLLM 0.99.0 .* has no sizing accounting"):
        ENGINE_OPTIONS["toy"](image="acme/toy:1.0", greeting="hi", vllmRelease="0.99.0").sizing("m")


def test_engine_for_names_the_engine_of_a_placement():
    from stack.config import parse_config
    from stack.placement import place

    raw = {k.split(":", 1)[1]: v for k, v in stack_config("dev").items() if k.startswith("gpu-inference:")}
    raw.pop("hfToken", None)
    model = place(parse_config(raw)).models[0]
    assert engine_for(model) is ENGINES["vllm"]
