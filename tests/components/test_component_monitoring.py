"""Monitoring: scraping the servers, thresholds from the plan, DCGM on GPU nodes, the config's errors,
and the component under the Pulumi mocks."""

import json
import math
import textwrap

import pytest
from pydantic import ValidationError

from components.engines import engine_for
from components.gpu_node_group import node_labels
from components.labels import GPU_TAINT_EFFECT_EKS, GPU_TAINT_KEY, GPU_TAINT_VALUE
from components.monitoring import (
    DCGM_CHART,
    DCGM_CHART_VERSION,
    DCGM_COUNTERS,
    DCGM_IMAGE_TAG,
    GRAFANA_DASHBOARD_LABEL,
    KUBE_PROMETHEUS_STACK_CHART,
    KUBE_PROMETHEUS_STACK_VERSION,
    alert_thresholds,
    dashboard_config_map,
    dashboards,
    dcgm_counter_names,
    dcgm_values,
    kube_prometheus_stack_values,
    monitored_models,
    monitoring_namespace,
    pod_monitor,
    prometheus_rule,
    prometheus_selector_labels,
    scrape_ingress_rule,
    serving_dashboard,
)
from components.server_pod import (
    deployment_spec,
    leader_worker_set_spec,
    network_policy_spec,
    selector_labels,
    service_selector,
    startup_seconds,
)
from stack.config import parse_config
from stack.mockrun import run_program
from stack.monitoring_config import MonitoringConfig
from stack.placement import place
from tests.harness import (
    NETPOL,
    SECRETS,
    affinity_matches,
    model_plans,
    pod_container,
    run_bad_config,
    run_config,
    run_stack,
    stack_config,
    tolerates,
    workloads,
)

INSTALL = {"prometheus": {"mode": "install"}}
EXISTING = {"prometheus": {"mode": "existing", "namespace": "observability", "selectorLabels": {"prometheus": "k8s"}}}
AMP = {
    "prometheus": {
        "mode": "amazonManaged",
        "workspaceId": "ws-12345678-1234-1234-1234-123456789012",
        "region": "eu-west-1",
        "roleArn": "arn:aws:iam::123456789012:role/amp-remote-write",
    }
}
MODES = {"install": INSTALL, "existing": EXISTING, "amazonManaged": AMP}
GPU_TAINT = {"key": GPU_TAINT_KEY, "value": GPU_TAINT_VALUE, "effect": GPU_TAINT_EFFECT_EKS}


def monitoring(raw=INSTALL, **alerts):
    return MonitoringConfig.model_validate({**raw, "alerts": alerts} if alerts else raw)


def stack_placement(stack):
    raw = {k.split(":", 1)[1]: v for k, v in stack_config(stack).items() if k.startswith("gpu-inference:")}
    return place(parse_config({k: raw[k] for k in ("cluster", "nodeGroups", "models")}))


def placement(models, max_nodes=4):
    return place(
        parse_config(
            {
                "cluster": {"create": {"name": "c", "vpcId": "vpc-1", "subnetIds": ["subnet-1"]}},
                "nodeGroups": [{"name": "h100", "instanceType": "p5.48xlarge", "maxNodes": max_nodes}],
                "models": models,
            }
        )
    )


def rules_by_alert(rule, model):
    group = next(g for g in rule["spec"]["groups"] if g["name"] == f"vllm-{model}")
    return {r["alert"]: r for r in group["rules"]}


def threshold(expr):
    """The number an alert compares against (its expression ends ``> N`` or ``< N``)."""
    return float(expr.rsplit(" ", 1)[-1])


# --- scrape and NetworkPolicy ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("stack", ["dev", "prod", "multinode"])
def test_scrape_port_and_namespace_are_what_the_network_policy_admits(stack, mode):
    config = monitoring(MODES[mode])
    plan = stack_placement(stack)
    namespace = plan.config.cluster.namespace
    rule = scrape_ingress_rule(config)
    (peer,) = rule["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": monitoring_namespace(config)}
    assert monitoring_namespace(config) == MODES[mode]["prometheus"].get("namespace", "monitoring")
    for model in monitored_models(plan):
        monitor = pod_monitor(model, namespace, prometheus_selector_labels(config))
        assert monitor["metadata"]["namespace"] == namespace, "the PodMonitor sits beside its pods"
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        instance = plan.node_group(model.node_group).instance
        if model.multi_node:
            spec = leader_worker_set_spec(engine_for(model), model, instance, gfd=True, image="i", secrets={})
            templates = spec["leaderWorkerTemplate"]
            scraped, not_scraped = templates["leaderTemplate"], templates["workerTemplate"]
            assert not _selects(monitor["spec"]["selector"], not_scraped), "workers serve no HTTP"
        else:
            scraped = deployment_spec(engine_for(model), model, instance, gfd=True, image="i", secrets={})["template"]
        assert _selects(monitor["spec"]["selector"], scraped)
        (container,) = scraped["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports[endpoint["port"]] == rule["ports"][0]["port"], "scraped port = admitted port"
        pods = selector_labels(engine_for(model), model.name)
        policy = network_policy_spec(model.name, [], pods, intra_group=model.multi_node)
        assert _selects(policy["podSelector"], scraped), "the NetworkPolicy the rule joins covers the scraped pods"


def _selects(selector, template):
    labels = template["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def test_monitors_and_rules_carry_the_labels_the_prometheus_selects():
    plan = stack_placement("prod")
    for raw, expected in ((INSTALL, {"release": "kube-prometheus-stack"}), (EXISTING, {"prometheus": "k8s"})):
        config = monitoring(raw)
        assert prometheus_selector_labels(config) == expected
        monitor = pod_monitor(plan.models[0], "inference", prometheus_selector_labels(config))
        rule = prometheus_rule(plan, config, server_namespace="inference", rule_namespace="x")
        for labels in (monitor["metadata"]["labels"], rule["metadata"]["labels"]):
            assert expected.items() <= labels.items()
        assert expected.items() <= dcgm_values(["h100"], expected)["serviceMonitor"]["additionalLabels"].items()


# --- thresholds from the plan ---------------------------------------------------------------------


def test_queue_threshold_follows_the_plans_max_concurrency():
    """A shorter context fits more requests in the same KV cache: a higher queue threshold."""
    models = [
        {"name": "long", "model": "llama-3.1-8b", "maxModelLen": 32768, "tensorParallelSize": 1},
        {"name": "short", "model": "llama-3.1-8b", "maxModelLen": 4096, "tensorParallelSize": 1},
    ]
    plan = placement(models)
    config = monitoring()
    long_model, short_model = plan.models
    assert short_model.plan.estimate.max_concurrency > long_model.plan.estimate.max_concurrency
    rule = prometheus_rule(plan, config, server_namespace="inference", rule_namespace="monitoring")
    queued = {m.name: threshold(rules_by_alert(rule, m.name)["VllmRequestsQueued"]["expr"]) for m in plan.models}
    assert queued["short"] > queued["long"]
    for model in plan.models:
        assert queued[model.name] == math.ceil(model.plan.estimate.max_concurrency)
        doubled = alert_thresholds(model, monitoring(queuePerMaxConcurrency=2.0)).waiting_requests
        assert doubled == math.ceil(2 * model.plan.estimate.max_concurrency)


def test_not_ready_window_grows_with_the_weights_the_plan_loads():
    plan = stack_placement("prod")
    rule = prometheus_rule(plan, monitoring(), server_namespace="inference", rule_namespace="monitoring")
    window = {}
    for model in plan.models:
        not_ready = rules_by_alert(rule, model.name)["VllmReplicasNotReady"]
        window[model.name] = int(not_ready["for"].removesuffix("m")) * 60
        assert window[model.name] >= startup_seconds(engine_for(model), model), (
            "never fires while a replica is still loading"
        )
        assert threshold(not_ready["expr"]) == model.config.replicas
    assert window["qwen2-5-72b"] > window["llama-3-1-8b"]  # both downloaded from Hugging Face (prod streams its 70B)


def test_ttft_slo_and_hardware_limits_come_from_the_config():
    plan = stack_placement("prod")
    config = monitoring(
        ttftP95SloSeconds=1.5, ttftP95SloSecondsByModel={"llama-3-1-70b": 4.5}, gpuMemoryTemperatureCelsius=80
    )
    rule = prometheus_rule(plan, config, server_namespace="inference", rule_namespace="monitoring")
    ttft = {
        m.name: threshold(rules_by_alert(rule, m.name)["VllmTimeToFirstTokenSloBreached"]["expr"]) for m in plan.models
    }
    # llama-3-1-8b's traffic target says p95 TTFT 0.5 s: its own target outranks the stack's SLO.
    traffic = next(m for m in plan.models if m.name == "llama-3-1-8b").config.traffic
    assert ttft == {"llama-3-1-8b": traffic.p95_ttft_s, "llama-3-1-70b": 4.5, "qwen2-5-72b": 1.5}
    by_model = monitoring(ttftP95SloSecondsByModel={"llama-3-1-8b": 3.0})
    own = prometheus_rule(plan, by_model, server_namespace="inference", rule_namespace="monitoring")
    assert threshold(rules_by_alert(own, "llama-3-1-8b")["VllmTimeToFirstTokenSloBreached"]["expr"]) == 3.0
    gpu = {r["alert"]: r for r in next(g for g in rule["spec"]["groups"] if g["name"] == "gpu")["rules"]}
    assert threshold(gpu["GpuMemoryTemperatureHigh"]["expr"]) == 80
    assert set(gpu) == {"GpuXidError", "GpuEccDoubleBitErrors", "GpuMemoryTemperatureHigh"}


def test_every_alert_has_a_severity_a_summary_and_a_one_line_runbook():
    plan = stack_placement("multinode")
    rule = prometheus_rule(plan, monitoring(), server_namespace="inference", rule_namespace="monitoring")
    alerts = [r for g in rule["spec"]["groups"] for r in g["rules"]]
    assert len(alerts) == 6 * len(monitored_models(plan)) + 3
    for alert in alerts:
        assert alert["labels"]["severity"] in ("critical", "warning")
        runbook = alert["annotations"]["runbook"]
        assert runbook and "\n" not in runbook and alert["annotations"]["summary"]


def test_models_without_replicas_or_on_nim_get_no_rules():
    plan = placement(
        [
            {"name": "on", "model": "llama-3.1-8b", "maxModelLen": 8192},
            {"name": "off", "model": "llama-3.1-8b", "maxModelLen": 8192, "replicas": 0},
            {
                "name": "nim",
                "model": "llama-3.1-8b",
                "maxModelLen": 8192,
                "engine": "nim",
                "nim": {"image": "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.4"},
            },
        ]
    )
    assert [m.name for m in monitored_models(plan)] == ["on"]
    rule = prometheus_rule(plan, monitoring(), server_namespace="i", rule_namespace="m")
    assert [g["name"] for g in rule["spec"]["groups"]] == ["vllm-on", "gpu"]
    without_dcgm = MonitoringConfig.model_validate({**INSTALL, "dcgmExporter": False})
    rule = prometheus_rule(plan, without_dcgm, server_namespace="i", rule_namespace="m")
    assert [g["name"] for g in rule["spec"]["groups"]] == ["vllm-on"]
    assert list(dashboards(plan, without_dcgm, "i")) == ["gpu-inference-on"]


# --- dashboards -------------------------------------------------------------------------------------


def test_serving_dashboards_draw_the_plans_kv_tokens_and_max_concurrency():
    plan = stack_placement("prod")
    config = monitoring()
    boards = dashboards(plan, config, "inference")
    assert len(boards) == len(monitored_models(plan)) + 1  # + the GPU dashboard
    uids = [board["uid"] for board in boards.values()]
    assert len(set(uids)) == len(uids) and all(len(uid) <= 40 for uid in uids)
    for model in plan.models:
        exprs = [t["expr"] for p in serving_dashboard(model, "inference", config)["panels"] for t in p["targets"]]
        estimate = model.plan.estimate
        assert f"vector({estimate.kv_cache_tokens})" in exprs
        assert f"vector({estimate.max_concurrency:.2f})" in exprs
    for name, board in boards.items():
        config_map = dashboard_config_map(name, board, "monitoring")
        assert config_map["metadata"]["labels"][GRAFANA_DASHBOARD_LABEL] == "1"
        assert json.loads(config_map["data"][f"{name}.json"]) == board


# --- charts -------------------------------------------------------------------------------------------


def test_dcgm_exporter_runs_on_gpu_nodes_only_tolerating_their_taint():
    plan = stack_placement("prod")
    groups = [g.name for g in plan.node_groups]
    values = dcgm_values(groups, {"release": "kube-prometheus-stack"})
    pod = {"affinity": values["affinity"]}
    for group in plan.node_groups:
        assert affinity_matches(pod, node_labels(group))
    assert not affinity_matches(pod, {"kubernetes.io/os": "linux"}), "not on system nodes"
    assert tolerates(values["tolerations"], GPU_TAINT)
    assert values["image"]["tag"] == DCGM_IMAGE_TAG and DCGM_CHART_VERSION in DCGM_IMAGE_TAG
    assert DCGM_IMAGE_TAG != DCGM_CHART_VERSION, "image and chart are pinned separately"


def test_dcgm_counters_are_the_pinned_defaults_plus_ecc():
    defaults = {
        line.split(",")[0].strip()
        for line in DCGM_COUNTERS.read_text().splitlines()
        if line.strip() and not line.startswith("#") and line.split(",")[1].strip() != "label"
    }
    names = dcgm_counter_names()
    assert defaults <= names
    assert names - defaults == {"DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"}
    assert "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL" in dcgm_values(["g"], {})["customMetrics"]


def test_amazon_managed_prometheus_remote_writes_with_sigv4_through_the_service_accounts_role():
    values = kube_prometheus_stack_values(monitoring(AMP))
    (remote,) = values["prometheus"]["prometheusSpec"]["remoteWrite"]
    assert remote["url"] == (
        "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-12345678-1234-1234-1234-123456789012"
        "/api/v1/remote_write"
    )
    assert remote["sigv4"] == {"region": "eu-west-1"}
    annotations = values["prometheus"]["serviceAccount"]["annotations"]
    assert annotations["eks.amazonaws.com/role-arn"] == AMP["prometheus"]["roleArn"]
    assert "remoteWrite" not in kube_prometheus_stack_values(monitoring())["prometheus"]["prometheusSpec"]


# --- config -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"prometheus": {"mode": "existing"}}, ["selectorLabels", "podMonitorSelector"]),
        (
            {"prometheus": {"mode": "install", "selectorLabels": {"a": "b"}}},
            ["selectorLabels", "only for mode existing"],
        ),
        ({"prometheus": {"mode": "amazonManaged", "region": "us-east-1"}}, ["workspaceId", "roleArn"]),
        ({"prometheus": {**AMP["prometheus"], "workspaceId": "ws-nope"}}, ["workspaceId", "ws-nope"]),
        ({"prometheus": {**AMP["prometheus"], "region": "Frankfurt"}}, ["region", "Frankfurt"]),
        ({"prometheus": {"mode": "install", "region": "us-east-1"}}, ["region", "only for mode amazonManaged"]),
        ({"prometheus": {"mode": "grafana"}}, ["mode", "install", "existing", "amazonManaged"]),
        ({"prometheus": {"mode": "install", "namespace": "Monitoring"}}, ["namespace", "'Monitoring'"]),
        ({"prometheus": {"mode": "existing", "selectorLabels": {"release": "bad value!"}}}, ["release", "label value"]),
        ({"prometheus": {"mode": "install"}, "alerts": {"ttftP95SloSeconds": 0}}, ["ttftP95SloSeconds", "greater"]),
        ({"prometheus": {"mode": "install"}, "alerts": {"kvCacheUsageHigh": 90}}, ["kvCacheUsageHigh", "less"]),
        ({"prometheus": {"mode": "install"}, "alerts": {"ttftSlo": 1}}, ["ttftSlo", "Extra inputs"]),
        ({"prometheus": {"mode": "install"}, "scrapeInterval": "5s"}, ["scrapeInterval", "Extra inputs"]),
    ],
)
def test_bad_monitoring_config_names_the_field_and_what_works(raw, words):
    with pytest.raises(ValidationError) as error:
        MonitoringConfig.model_validate(raw)
    text = str(error.value)
    for word in words:
        assert word in text, f"{word!r} not in {text}"


def test_per_model_slo_naming_no_model_is_a_problem():
    config = monitoring(ttftP95SloSecondsByModel={"llama-3-1-7b": 3})
    (problem,) = config.problems(["llama-3-1-8b", "llama-3-1-70b"])
    assert "ttftP95SloSecondsByModel.llama-3-1-7b" in problem and "llama-3-1-70b" in problem
    assert monitoring(ttftP95SloSecondsByModel={"llama-3-1-8b": 3}).problems(["llama-3-1-8b"]) == []


# --- the component, under the Pulumi mocks --------------------------------------------------------

PROGRAM = textwrap.dedent(
    """
    import pulumi
    import pulumi_kubernetes as k8s

    from components.monitoring import Monitoring, MonitoringArgs
    from stack.config import parse_config
    from stack.monitoring_config import MonitoringConfig
    from stack.placement import place

    config = pulumi.Config("gpu-inference")
    placement = place(parse_config({key: config.get_object(key) for key in ("cluster", "nodeGroups", "models")}))
    provider = k8s.Provider("k8s", kubeconfig="{}")
    Monitoring(
        "monitoring",
        MonitoringArgs(
            config=MonitoringConfig.model_validate(config.get_object("monitoring")),
            placement=placement,
            server_namespace=placement.config.cluster.namespace,
            provider=provider,
        ),
    )
    """
)
RELEASE = "kubernetes:helm.sh/v3:Release"
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"


def run_monitoring(tmp_path, raw, preview, stack="prod"):
    program = tmp_path / "program.py"
    program.write_text(PROGRAM)
    config = {k: v for k, v in stack_config(stack).items() if k.startswith("gpu-inference:")}
    config = {k: v for k, v in config.items() if k.split(":")[1] in ("cluster", "nodeGroups", "models")}
    return run_program({**config, "gpu-inference:monitoring": raw}, preview=preview, secrets=SECRETS, program=program)


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
def test_installed_prometheus_comes_first_and_everything_else_after_it(tmp_path, preview):
    run = run_monitoring(tmp_path, INSTALL, preview)
    releases = {r.plain_inputs["chart"]: r for r in run.of_type(RELEASE)}
    assert set(releases) == {KUBE_PROMETHEUS_STACK_CHART, DCGM_CHART}
    chart = releases[KUBE_PROMETHEUS_STACK_CHART]
    assert chart.plain_inputs["version"] == KUBE_PROMETHEUS_STACK_VERSION
    assert releases[DCGM_CHART].plain_inputs["version"] == DCGM_CHART_VERSION
    assert chart.plain_inputs["namespace"] == "monitoring"
    dependents = [
        *run.of_type(POD_MONITOR),
        *run.of_type(PROMETHEUS_RULE),
        *run.of_type(CONFIG_MAP),
        releases[DCGM_CHART],
    ]
    for registration in dependents:
        assert chart.urn in registration.dependencies, f"{registration.name} needs the chart's CRDs first"
    monitors = {r.plain_inputs["metadata"]["name"]: r.plain_inputs for r in run.of_type(POD_MONITOR)}
    assert set(monitors) == {m.name for m in monitored_models(stack_placement("prod"))}
    (rule,) = run.of_type(PROMETHEUS_RULE)
    assert rule.plain_inputs["metadata"]["namespace"] == "monitoring"


def test_existing_prometheus_gets_no_chart_and_its_own_labels(tmp_path):
    run = run_monitoring(tmp_path, EXISTING, preview=True, stack="multinode")
    assert [r.plain_inputs["chart"] for r in run.of_type(RELEASE)] == [DCGM_CHART]
    for registration in [*run.of_type(POD_MONITOR), *run.of_type(PROMETHEUS_RULE)]:
        assert registration.plain_inputs["metadata"]["labels"]["prometheus"] == "k8s"
    for registration in run.of_type(CONFIG_MAP):
        assert registration.plain_inputs["metadata"]["namespace"] == "observability"
    (monitor, *_) = run.of_type(POD_MONITOR)
    model = next(m for m in stack_placement("multinode").models if m.name == monitor.plain_inputs["metadata"]["name"])
    assert monitor.plain_inputs["spec"]["selector"]["matchLabels"] == service_selector(engine_for(model), model)


# --- the wired stacks (__main__.py, Pulumi.<stack>.yaml), after a mocked run ----------------------

NAMESPACE_READ = "kubernetes:core/v1:Namespace"
CRD_READ = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
STACKS = ["dev", "prod", "multinode"]
BOTH = pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])


def stack_monitoring(stack):
    return MonitoringConfig.model_validate(stack_config(stack)["gpu-inference:monitoring"])


def children(run, component="monitoring"):
    (parent,) = [r for r in run.of_type("gpu-inference:components:Monitoring") if r.name == component]
    return [r for r in run.registrations if r.parent == parent.urn]


@BOTH
@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_scrapes_what_its_network_policy_admits(stack, preview):
    run = run_stack(stack, preview)
    prometheus = monitoring_namespace(stack_monitoring(stack))
    monitors = {r.plain_inputs["metadata"]["name"]: r.plain_inputs for r in run.of_type(POD_MONITOR)}
    served = {m["name"] for m in run.outputs["plan"]["models"] if m["engine"] == "vllm" and m["replicas"] > 0}
    assert set(monitors) == served, "every vLLM model with replicas is scraped"
    policies = {r.plain_inputs["metadata"]["name"]: r.plain_inputs for r in run.of_type(NETPOL)}
    for name, monitor in monitors.items():
        workload = workloads(run)[name]
        scraped = workload.templates["server" if workload.kind == "Deployment" else "leader"]
        assert _selects(monitor["spec"]["selector"], scraped)
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        ports = {p["name"]: p["containerPort"] for p in pod_container(scraped)["ports"]}
        policy = policies[name]
        namespace = workload.registration.plain_inputs["metadata"]["namespace"]
        assert monitor["metadata"]["namespace"] == policy["metadata"]["namespace"] == namespace
        assert _selects(policy["spec"]["podSelector"], scraped), "the policy covers the scraped pods"
        admitting = [
            rule
            for rule in policy["spec"]["ingress"]
            if any(
                (peer.get("namespaceSelector") or {}).get("matchLabels") == {"kubernetes.io/metadata.name": prometheus}
                for peer in rule.get("from", [])
            )
        ]
        assert admitting, f"{name}: nothing admits Prometheus's namespace {prometheus}"
        assert any(
            p["port"] == ports[endpoint["port"]] and p["protocol"] == "TCP" for r in admitting for p in r["ports"]
        ), f"{name}: the scraped port {endpoint['port']} is not admitted from {prometheus}"


def crd_names_by_kind():
    """The pinned prometheus-operator's CRD names, from the vendored CRDs."""
    import yaml

    from verify.monitoring import CRDS

    crds = [yaml.safe_load(p.read_text()) for p in sorted(CRDS.glob("*.yaml"))]
    return {crd["spec"]["names"]["kind"]: crd["metadata"]["name"] for crd in crds}


@BOTH
@pytest.mark.parametrize("stack", STACKS)
def test_monitoring_objects_wait_for_the_crds_they_need(stack, preview):
    """Install: everything after the chart (Helm applies its CRDs first). Existing: everything after
    reads of the operator's CRDs and the Prometheus's namespace, which fail at preview if absent."""
    run = run_stack(stack, preview)
    config = stack_monitoring(stack)
    objects = children(run)
    declared = [r for r in objects if not r.read]
    charts = [r for r in declared if r.type == RELEASE and r.plain_inputs["chart"] == KUBE_PROMETHEUS_STACK_CHART]
    dependents = [r for r in declared if r not in charts]
    assert {POD_MONITOR, PROMETHEUS_RULE, CONFIG_MAP, RELEASE} <= {r.type for r in dependents}
    if config.prometheus.installs_chart:
        (chart,) = charts
        assert not [r for r in objects if r.read]
        prerequisites = [chart.urn]
    else:
        assert not charts, "an existing Prometheus: no second kube-prometheus-stack"
        reads = {r.read_id: r for r in objects if r.read}
        crds = crd_names_by_kind()
        needed = {crds[r.plain_inputs["kind"]] for r in dependents if r.type in (POD_MONITOR, PROMETHEUS_RULE)}
        needed.add(crds["ServiceMonitor"])  # the DCGM exporter chart's
        assert {i for i, r in reads.items() if r.type == CRD_READ} == needed
        ((namespace, _),) = [(i, r) for i, r in reads.items() if r.type == NAMESPACE_READ]
        assert namespace == config.prometheus.namespace
        prerequisites = [r.urn for r in reads.values()]
    for registration in dependents:
        missing = [urn.rsplit("::", 1)[-1] for urn in prerequisites if urn not in registration.dependencies]
        assert not missing, f"{registration.type} {registration.name} does not wait for {missing}"


@BOTH
@pytest.mark.parametrize(
    "absent",
    [
        "podmonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
        "servicemonitors.monitoring.coreos.com",
        "monitoring",
    ],
)
def test_a_cluster_without_prometheus_operator_stops_before_any_monitoring_object(absent, preview):
    """The prod stack uses the platform's Prometheus: a cluster lacking its CRDs or namespace fails
    on the read (which the engine runs at preview), and nothing of the monitoring is declared."""
    run = run_program(
        stack_config("prod"),
        stack="prod",
        preview=preview,
        secrets=SECRETS,
        capture_errors=True,
        absent=frozenset({absent}),
    )
    assert run.error is not None and f"resource '{absent}' does not exist" in str(run.error)
    assert [r.type for r in children(run) if not r.read] == []


@BOTH
@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_stack_with_monitoring_but_no_models_still_renders(stack, preview):
    config = stack_config(stack)
    config["gpu-inference:models"] = []
    config["gpu-inference:monitoring"].get("alerts", {}).pop("ttftP95SloSecondsByModel", None)  # names models
    run = run_config(config, preview=preview)
    assert run.error is None
    assert run.of_type(POD_MONITOR) == []
    (rule,) = run.of_type(PROMETHEUS_RULE)
    assert [g["name"] for g in rule.plain_inputs["spec"]["groups"]] == ["gpu"], "GPU alerts only"
    boards = [r.plain_inputs["metadata"]["name"] for r in run.of_type(CONFIG_MAP) if r in children(run)]
    assert boards == ["gpu-inference-gpus"]
    assert [r.plain_inputs["chart"] for r in run.of_type(RELEASE) if r.plain_inputs["chart"] == DCGM_CHART]
    reads = {r.read_id for r in children(run) if r.read}
    assert "podmonitors.monitoring.coreos.com" not in reads, "no PodMonitor, so no need for its CRD"


@BOTH
def test_wired_alert_thresholds_come_from_the_stacks_plan_and_config(preview):
    run = run_stack("prod", preview)
    raw = stack_config("prod")["gpu-inference:monitoring"]["alerts"]
    config = stack_monitoring("prod")
    (rule,) = run.of_type(PROMETHEUS_RULE)
    boards = {r.plain_inputs["metadata"]["name"]: r.plain_inputs for r in run.of_type(CONFIG_MAP)}
    for name, model in model_plans(run).items():
        plan = model["plan"]
        alerts = rules_by_alert(rule.plain_inputs, name)
        queue = math.ceil(plan["max_concurrency"] * config.alerts.queue_per_max_concurrency)
        assert threshold(alerts["VllmRequestsQueued"]["expr"]) == max(1, queue)
        assert threshold(alerts["VllmReplicasNotReady"]["expr"]) == model["replicas"]
        # A model's own SLO under alerts, else its traffic target's p95, else the stack's SLO.
        target = model.get("traffic", {}).get("target", {})
        slo = raw.get("ttftP95SloSecondsByModel", {}).get(name, target.get("p95TtftS") or raw["ttftP95SloSeconds"])
        assert threshold(alerts["VllmTimeToFirstTokenSloBreached"]["expr"]) == slo
        if target.get("p95TpotS"):
            assert threshold(alerts["VllmTimePerOutputTokenSloBreached"]["expr"]) == target["p95TpotS"]
            assert f"vector({target['p95TpotS']:g})" in next(iter(boards[f"gpu-inference-{name}"]["data"].values()))
        else:
            assert "VllmTimePerOutputTokenSloBreached" not in alerts
        board = next(iter(boards[f"gpu-inference-{name}"]["data"].values()))
        assert f"vector({int(plan['kv_cache_tokens'])})" in board, "the plan's KV tokens as a reference line"
    assert len(set(raw["ttftP95SloSecondsByModel"].values()) | {raw["ttftP95SloSeconds"]}) > 1
    assert any("traffic" in m for m in model_plans(run).values()), "prod shows a traffic target's alerts"


def test_an_existing_prometheus_on_a_cluster_the_stack_creates_is_refused():
    config = stack_config("dev")
    config["gpu-inference:monitoring"] = EXISTING
    run = run_bad_config(config, preview=True)
    message = str(run.error)
    for words in ("monitoring.prometheus.mode", "cluster.create", "mode install"):
        assert words in message, message
    assert run.registrations == []
