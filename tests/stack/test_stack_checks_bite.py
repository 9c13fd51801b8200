"""The invariant checks fail when the program breaks what they guard (so they can fail at all).

Each test breaks one thing in the components (monkeypatched for one run) and expects the
matching violation from ``check_invariants``.
"""

import pytest

import components.gpu_enablement as gpu_enablement
import components.gpu_node_group as gpu_node_group
import components.vllm_model as vllm_model
from tests.harness import check_invariants, run_config, stack_config


def violations(preview=False):
    run = run_config(stack_config("dev"), preview=preview)
    return "\n".join(check_invariants(run))


def test_seed_recipe_operator_gte_is_caught(monkeypatch):
    original = vllm_model.node_affinity

    def gte(model, instance, gfd):
        affinity = original(model, instance, gfd)
        terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        terms[0]["matchExpressions"][-1]["operator"] = "Gte"
        return affinity

    monkeypatch.setattr(vllm_model, "node_affinity", gte)
    assert "invalid node affinity operator 'Gte'" in violations()


def test_seed_recipe_product_label_is_caught(monkeypatch):
    original = vllm_model.node_affinity

    def sxm5(model, instance, gfd):
        affinity = original(model, instance, gfd)
        terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        terms[0]["matchExpressions"][1]["values"] = ["NVIDIA-H100-SXM5-80GB"]
        return affinity

    monkeypatch.setattr(vllm_model, "node_affinity", sxm5)
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
    original = vllm_model.pod_resources
    monkeypatch.setattr(vllm_model, "pod_resources", lambda instance, gpus: original(instance, max(1, gpus - 1) if gpus > 1 else 2))
    assert "GPU requests/limits" in violations()


def test_small_shm_is_caught(monkeypatch):
    monkeypatch.setattr(vllm_model, "shm_size_mib", lambda gpus: 64)
    assert "/dev/shm 64.0 MiB is below" in violations()


def test_taint_without_toleration_is_caught(monkeypatch):
    monkeypatch.setattr(
        gpu_node_group, "node_taints", lambda: [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_EXECUTE"}]
    )
    assert "does not tolerate" in violations()


def test_short_startup_budget_is_caught(monkeypatch):
    monkeypatch.setattr(vllm_model, "startup_failure_threshold", lambda seconds: 3)
    assert "startup budget 30s < load estimate" in violations()


def test_default_await_timeout_is_caught(monkeypatch):
    monkeypatch.setattr(vllm_model, "await_timeout_seconds", lambda seconds: 600)
    assert "Pulumi await timeout 600s is shorter than the startup budget" in violations()


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
def test_missing_dependency_on_gpu_enablement_is_caught(monkeypatch, preview):
    import components

    original = components.VllmModelArgs

    def without_enablement(**kwargs):
        kwargs["depends_on"] = [d for d in kwargs["depends_on"] if not isinstance(d, gpu_enablement.GpuEnablement)]
        return original(**kwargs)

    monkeypatch.setattr(components, "VllmModelArgs", without_enablement)
    assert "Deployment does not depend on GPU enablement" in violations(preview)


def test_leaked_token_is_caught(monkeypatch):
    original = vllm_model.deployment_spec

    def leak(model, instance, **kwargs):
        spec = original(model, instance, **kwargs)
        spec["template"]["spec"]["containers"][0]["env"].append({"name": "HF_TOKEN_PLAIN", "value": "hf_TESTTOKEN_do_not_leak_0123456789"})
        return spec

    monkeypatch.setattr(vllm_model, "deployment_spec", leak)
    assert "secret hfToken appears unmasked in the inputs of kubernetes:apps/v1:Deployment" in violations()
