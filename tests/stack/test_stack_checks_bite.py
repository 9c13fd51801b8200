"""The invariant checks fail when the program breaks what they guard (so they can fail at all).

Each test breaks one thing in the components (monkeypatched for one run) and expects the
matching violation from ``check_invariants``.
"""

import pytest

import components.gpu_enablement as gpu_enablement
import components.gpu_node_group as gpu_node_group
import components.server_pod as server_pod
from tests.harness import check_invariants, run_config, stack_config


def violations(preview=False):
    run = run_config(stack_config("dev"), preview=preview)
    return "\n".join(check_invariants(run))


def test_seed_recipe_operator_gte_is_caught(monkeypatch):
    original = server_pod.node_affinity

    def gte(model, instance, gfd):
        affinity = original(model, instance, gfd)
        terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        terms[0]["matchExpressions"][-1]["operator"] = "Gte"
        return affinity

    monkeypatch.setattr(server_pod, "node_affinity", gte)
    assert "invalid node affinity operator 'Gte'" in violations()


def test_seed_recipe_product_label_is_caught(monkeypatch):
    original = server_pod.node_affinity

    def sxm5(model, instance, gfd):
        affinity = original(model, instance, gfd)
        terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        terms[0]["matchExpressions"][1]["values"] = ["NVIDIA-H100-SXM5-80GB"]
        return affinity

    monkeypatch.setattr(server_pod, "node_affinity", sxm5)
    assert "required affinity does not match the nodes of its group h100" in violations(preview=True)


def test_nfd_equal_present_toleration_is_caught(monkeypatch):
    original = gpu_enablement.chart_values

    def chart_default(node_groups):
        values = original(node_groups)
        values["nfd"]["worker"]["tolerations"] = [
            {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}
        ]
        return values

    monkeypatch.setattr(gpu_enablement, "chart_values", chart_default)
    assert "NFD worker does not tolerate the GPU taint" in violations()


def test_gpu_limit_off_the_plan_is_caught(monkeypatch):
    original = server_pod.pod_resources
    monkeypatch.setattr(
        server_pod, "pod_resources", lambda instance, gpus: original(instance, max(1, gpus - 1) if gpus > 1 else 2)
    )
    assert "GPU requests/limits" in violations()


def test_small_shm_is_caught(monkeypatch):
    monkeypatch.setattr(server_pod, "shm_size_mib", lambda gpus: 64)
    assert "/dev/shm 64.0 MiB is below" in violations()


def test_taint_without_toleration_is_caught(monkeypatch):
    monkeypatch.setattr(
        gpu_node_group, "node_taints", lambda: [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_EXECUTE"}]
    )
    assert "does not tolerate" in violations()


def test_short_startup_budget_is_caught(monkeypatch):
    monkeypatch.setattr(server_pod, "startup_failure_threshold", lambda seconds: 3)
    assert "startup budget 30s < load estimate" in violations()


def test_default_await_timeout_is_caught(monkeypatch):
    monkeypatch.setattr(server_pod, "await_timeout_seconds", lambda seconds, *pull: 600)
    assert "Pulumi await timeout 600s is shorter than the startup budget" in violations()


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
def test_missing_dependency_on_gpu_enablement_is_caught(monkeypatch, preview):
    import components

    original = components.ModelServerArgs

    def without_enablement(**kwargs):
        kwargs["depends_on"] = [d for d in kwargs["depends_on"] if not isinstance(d, gpu_enablement.GpuEnablement)]
        return original(**kwargs)

    monkeypatch.setattr(components, "ModelServerArgs", without_enablement)
    assert "Deployment does not depend on GPU enablement" in violations(preview)


def test_leaked_token_is_caught(monkeypatch):
    original = server_pod.deployment_spec

    def leak(*args, **kwargs):
        spec = original(*args, **kwargs)
        spec["template"]["spec"]["containers"][0]["env"].append(
            {"name": "HF_TOKEN_PLAIN", "value": "hf_TESTTOKEN_do_not_leak_0123456789"}
        )
        return spec

    monkeypatch.setattr(server_pod, "deployment_spec", leak)
    assert "secret hfToken appears unmasked in the inputs of kubernetes:apps/v1:Deployment" in violations()


# --- multi-node, EFA, NIM, KAI ------------------------------------------------------------------

import components.addons as addons  # noqa: E402
import components.engines.nim as nim_model  # noqa: E402


def multinode_violations(preview=False):
    run = run_config(stack_config("multinode"), preview=preview)
    return "\n".join(check_invariants(run))


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
def test_multinode_pods_without_efa_are_caught(monkeypatch, preview):
    monkeypatch.setattr(server_pod, "with_efa", lambda resources, instance: resources)
    found = multinode_violations(preview)
    assert "llama-3-1-405b (leader): EFA requests/limits" in found
    assert "llama-3-1-405b (worker): EFA requests/limits" in found


def test_nccl_without_efa_provider_is_caught(monkeypatch):
    monkeypatch.setattr(server_pod, "efa_env", lambda: [])
    assert "FI_PROVIDER is not 'efa' on a multi-node pod" in multinode_violations()


def test_group_restart_policy_is_caught(monkeypatch):
    monkeypatch.setattr(server_pod, "LWS_RESTART_POLICY", "None")
    assert "restartPolicy 'None': one failed pod must recreate the group" in multinode_violations()


def test_seed_recipe_group_of_one_plus_pp_is_caught(monkeypatch):
    """The public examples' mistake: a group of 1 leader + PP workers for --pipeline-parallel-size PP."""
    original = server_pod.leader_worker_set_spec

    def one_plus_pp(*args, **kwargs):
        spec = original(*args, **kwargs)
        spec["leaderWorkerTemplate"]["size"] += 1
        return spec

    monkeypatch.setattr(server_pod, "leader_worker_set_spec", one_plus_pp)
    assert "group size 3 != PP=2" in multinode_violations()


def test_service_selecting_workers_is_caught(monkeypatch):
    monkeypatch.setattr(
        server_pod, "service_selector", lambda engine, model: server_pod.selector_labels(engine, model.name)
    )
    assert "Service selects workers too" in multinode_violations()


def test_network_policy_blocking_the_group_is_caught(monkeypatch):
    original = server_pod.network_policy_spec
    monkeypatch.setattr(
        server_pod,
        "network_policy_spec",
        lambda name, clients, pod_labels, intra_group=False: original(name, clients, pod_labels),
    )
    assert "NetworkPolicy blocks Ray/NCCL between the pods of a group" in multinode_violations()


def test_unawaited_leader_worker_set_is_caught(monkeypatch):
    monkeypatch.setattr(
        server_pod, "await_annotations", lambda timeout, multi, replicas: {"pulumi.com/timeoutSeconds": str(timeout)}
    )
    assert "pulumi up does not wait for the LeaderWorkerSet's groups" in multinode_violations()


def test_efa_plugin_on_the_wrong_nodes_or_untolerated_is_caught(monkeypatch):
    monkeypatch.setattr(
        addons, "efa_chart_values", lambda groups: {"supportedInstanceLabels": {"keys": [], "values": []}}
    )
    found = multinode_violations()
    assert "EFA device plugin affinity wrong for node group h100-efa" in found
    assert "EFA device plugin does not tolerate the GPU taint" in found


def test_kai_without_scheduler_name_is_caught(monkeypatch):
    original = server_pod.pod_template

    def default_scheduler(*args, **kwargs):
        template = original(*args, **kwargs)
        template["spec"].pop("schedulerName", None)
        return template

    monkeypatch.setattr(server_pod, "pod_template", default_scheduler)
    assert "scheduler kai but schedulerName None" in multinode_violations()


def test_seed_recipe_nim_tp_size_is_caught(monkeypatch):
    original = nim_model.nim_env

    def seed(model, secret):
        return [
            {"name": "NIM_TP_SIZE", "value": e["value"]} if e["name"] == "NIM_TENSOR_PARALLEL_SIZE" else e
            for e in original(model, secret)
        ]

    monkeypatch.setattr(nim_model, "nim_env", seed)
    config = stack_config("dev")
    config["gpu-inference:models"][1].update(
        engine="nim", nim={"image": "nvcr.io/nim/meta/llama-3.1-70b-instruct:1.8.4"}
    )
    found = "\n".join(check_invariants(run_config(config)))
    assert "NIM_TENSOR_PARALLEL_SIZE is None" in found and "NIM_TP_SIZE is not a NIM variable" in found


def test_leaked_ngc_key_is_caught(monkeypatch):
    from tests.harness import NGC_API_KEY

    original = nim_model.nim_env
    monkeypatch.setattr(
        nim_model, "nim_env", lambda model, secret: [*original(model, secret), {"name": "KEY", "value": NGC_API_KEY}]
    )
    config = stack_config("dev")
    config["gpu-inference:models"][1].update(
        engine="nim", nim={"image": "nvcr.io/nim/meta/llama-3.1-70b-instruct:1.8.4"}
    )
    found = "\n".join(check_invariants(run_config(config)))
    assert "secret ngcApiKey appears unmasked in the inputs of kubernetes:apps/v1:Deployment" in found
