"""Every object every stack renders passes every check; the cached schemas agree with
kubernetes-validate's own entry point; the enum inputs are actually reached."""

import copy

import pytest

from tests.verify.conftest import rendered  # noqa: F401
from verify import errors, schemas
from verify.charts import HELM_RELEASE
from verify.stacks import stack_names, stack_versions, verify_registrations


@pytest.mark.parametrize("stack", stack_names())
def test_every_rendered_object_passes(results, stack):
    result = results[stack]
    assert result.error is None
    problems = [str(v) for v in errors(result.violations)]
    assert problems == [], "\n".join(problems)
    kinds = {o.name.split(" ")[0] for o in result.objects if o.kind == "kubernetes"}
    assert {"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "Namespace"} <= kinds | {"Deployment"}
    assert any(o.kind == "aws" for o in result.objects)


def test_every_stack_is_checked(results):
    assert sorted(results) == stack_names() and {"dev", "prod"} <= set(results)
    for result in results.values():
        assert set(schemas.SUPPORTED_VERSIONS) <= set(result.versions)


def test_dev_pins_its_cluster_version(results):
    assert "1.33" in results["dev"].versions


@pytest.mark.parametrize("stack", stack_names())
def test_node_group_enums_are_reached(runs, stack):
    """The walk of the model must really reach amiType, capacityType, instance types and taint effects."""
    from verify import plain
    from verify.aws import NODE_GROUP_TYPES, check_resource_with_coverage

    groups = [r for r in runs[stack].registrations if r.type in NODE_GROUP_TYPES]
    assert groups
    for group in groups:
        _, checked = check_resource_with_coverage(group.type, plain(group.inputs), group.name)
        shapes = {s for _, s in checked}
        assert {"eks:AMITypes", "eks:CapacityTypes", "ec2:InstanceType"} <= shapes, (group.name, checked)
        if group.inputs.get("taints"):
            assert "eks:TaintEffect" in shapes


def test_launch_template_and_placement_enums_are_reached(runs):
    from verify import plain
    from verify.aws import check_resource_with_coverage

    shapes = set()
    for registration in runs["prod"].registrations + runs["multinode"].registrations:
        if registration.type in ("aws:ec2/launchTemplate:LaunchTemplate", "aws:ec2/placementGroup:PlacementGroup"):
            shapes |= {
                s
                for _, s in check_resource_with_coverage(
                    registration.type, plain(registration.inputs), registration.name
                )[1]
            }
    assert {"ec2:MarketType", "ec2:NetworkInterfaceType", "ec2:PlacementStrategy", "ec2:VolumeType"} <= shapes


@pytest.mark.parametrize("stack", stack_names())
def test_cached_schemas_agree_with_kubernetes_validate(runs, stack):
    """SchemaSet (load once) gives kubernetes_validate.validate's verdicts, on good and broken objects."""
    from verify import plain

    manifests = [
        plain(r.inputs)
        for r in runs[stack].registrations
        if r.type.startswith("kubernetes:") and r.custom and r.type != HELM_RELEASE and not r.read
    ]
    bundled = [m for m in manifests if schemas.has_bundled_schema(m["kind"], m["apiVersion"], "1.33")]
    for manifest in bundled:
        assert schemas.validate_with_kubernetes_validate(manifest, "1.33") is None
        assert schemas.check_schema(manifest, ["1.33"]) == []
    for manifest in manifests:
        assert schemas.check_schema(manifest, ["1.33"]) == [] or all(
            v.severity == "warning" for v in schemas.check_schema(manifest, ["1.33"])
        )
    broken = [m for m in bundled if m["kind"] in ("Deployment", "Service")][0]
    broken["spec"]["selectorr"] = {}
    assert schemas.validate_with_kubernetes_validate(broken, "1.33") is not None
    assert schemas.check_schema(broken, ["1.33"])


@pytest.mark.parametrize("stack", stack_names())
def test_the_rendered_monitoring_goes_through_its_crds_promql_parser_metrics_and_chart_values(runs, stack):
    """verify_registrations runs verify.monitoring on what the stack rendered: break each kind of object."""
    registrations = copy.deepcopy(runs[stack].registrations)

    def first(suffix):
        return next(r for r in registrations if r.type.endswith(suffix) and not r.read)

    rule = first(":PrometheusRule")
    rule.inputs["spec"]["groups"][0]["rules"][0]["expr"] = "sum(rate(vllm:num_requests_waiting[5m])"
    rule.inputs["spec"]["groups"][-1]["rules"][0]["expr"] = "DCGM_FI_DEV_NO_SUCH_COUNTER > 0"
    first(":PodMonitor").inputs["spec"]["podMetricsEndpoint"] = []
    dcgm = next(r for r in registrations if r.type == HELM_RELEASE and r.inputs.get("chart") == "dcgm-exporter")
    dcgm.inputs["values"]["customMetric"] = "typo"
    text = " | ".join(
        str(v) for v in errors(verify_registrations(stack, registrations, stack_versions(stack)).violations)
    )
    for words in ("PromQL does not parse", "DCGM_FI_DEV_NO_SUCH_COUNTER", "podMetricsEndpoint", "customMetric"):
        assert words in text, text
