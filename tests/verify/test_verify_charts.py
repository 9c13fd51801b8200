"""verify.charts catches what Helm would silently ignore or change under you: misspelt top-level values
(keys from the chart's vendored values.yaml at the pinned version), broken embedded Kubernetes types,
unpinned charts, and a pin moved without re-vendoring the values."""

from tests.verify.conftest import only
from verify import charts, errors, plain


def test_helm_release_values(runs):
    release = rendered_release = None
    for registration in runs["dev"].registrations:
        if registration.type == charts.HELM_RELEASE and registration.inputs.get("chart") == "nvidia-device-plugin":
            release = plain(registration.inputs)
    assert release is not None and errors(charts.check_helm_release(release)) == []
    release["values"]["tolerationz"] = release["values"].pop("tolerations")
    release["values"]["nfd"]["worker"]["tolerations"][0]["operator"] = "Equals"
    release["values"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ][0]["matchExpressions"][0]["operatr"] = "In"
    del release["version"]
    violations = charts.check_helm_release(release)
    only(violations, "values.tolerationz", "did you mean 'tolerations'?", "Helm would ignore it")
    only(violations, "values.nfd.worker.tolerations[0].operator", "'Equals'")
    only(
        violations,
        "values.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operatr",
        "unknown field",
    )
    only(violations, "version", "pinned")
    assert rendered_release is None


def release(runs, chart):
    for registration in runs["multinode"].registrations:
        if registration.type == charts.HELM_RELEASE:
            props = plain(registration.inputs)
            if charts.chart_name(props["chart"]) == chart:
                return props
    raise KeyError(chart)


def test_value_keys_come_from_the_pinned_charts_values_yaml(runs):
    efa = release(runs, "aws-efa-k8s-device-plugin")
    assert errors(charts.check_helm_release(efa)) == []
    # The EFA chart has no top-level affinity (its templates build one from supportedInstanceLabels).
    efa["values"]["affinity"] = {}
    only(charts.check_helm_release(efa), "values.affinity", "Helm would ignore it", "supportedInstanceLabels")


def test_every_pinned_chart_has_its_values_vendored(runs):
    for chart in ("nvidia-device-plugin", "aws-efa-k8s-device-plugin", "kai-scheduler", "lws"):
        props = release(runs, chart)
        assert charts.chart_value_keys(props["chart"], props["version"]), chart
        assert not any("no vendored" in v.message for v in charts.check_helm_release(props)), chart


def test_a_pin_moved_without_re_vendoring_is_an_error(runs):
    lws = release(runs, "lws")
    lws["version"] = "0.9.0"
    only(charts.check_helm_release(lws), "version", "0.9.0", "no vendored values.yaml", "0.8.0")


def test_a_chart_with_nothing_vendored_is_a_warning(runs):
    other = dict(release(runs, "lws"), chart="oci://example.com/charts/other", values={"anything": 1})
    violations = charts.check_helm_release(other)
    assert errors(violations) == [] and any("no vendored values.yaml" in v.message for v in violations)
