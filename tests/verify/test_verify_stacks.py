"""verify.stacks checks every rendered kind of a stack: the KEDA ScaledObjects of an autoscaled stack
against the vendored KEDA CRD, the autoscaler's Helm releases against their charts' values.yaml."""

import copy

from verify import errors
from verify.stacks import stack_versions, verify_registrations


def _prod(runs):
    return [copy.deepcopy(r) for r in runs["prod"].registrations]


def test_prod_renders_scaled_objects_and_autoscaler_releases_that_pass(results):
    checked = {c.name: c for c in results["prod"].objects}
    scaled = [name for name in checked if name.startswith("ScaledObject inference/")]
    assert len(scaled) == 3 and all(checked[name].violations == [] for name in scaled)
    charts = [name for name in checked if "chart keda 2.20.2" in name or "chart cluster-autoscaler" in name]
    assert len(charts) == 2 and all(checked[name].violations == [] for name in charts)


def test_a_misspelt_scaled_object_field_fails_verify(runs):
    registrations = _prod(runs)
    scaled = next(r for r in registrations if r.type == "kubernetes:keda.sh/v1alpha1:ScaledObject")
    scaled.inputs["spec"]["minReplicas"] = scaled.inputs["spec"].pop("minReplicaCount")
    result = verify_registrations("prod", registrations, stack_versions("prod"))
    found = [v for c in result.objects for v in errors(c.violations) if c.kind == "kubernetes"]
    assert any("minReplicas" in str(v) for v in found), "\n".join(str(v) for v in found)


def test_an_unknown_autoscaler_chart_value_fails_verify(runs):
    registrations = _prod(runs)
    release = next(
        r
        for r in registrations
        if r.type == "kubernetes:helm.sh/v3:Release" and r.inputs.get("chart") == "cluster-autoscaler"
    )
    release.inputs["values"]["expanderPriority"] = release.inputs["values"].pop("expanderPriorities")
    result = verify_registrations("prod", registrations, stack_versions("prod"))
    found = [str(v) for c in result.objects for v in errors(c.violations)]
    assert any("expanderPriority" in v for v in found), "\n".join(found)
