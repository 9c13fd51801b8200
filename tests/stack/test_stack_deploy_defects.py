"""What a real ``pulumi up`` would hit that the offline checks did not see (issue 17, item 6 and the
suspected items), asserted on what the program registered after a mocked run."""

import base64
import email
import tomllib

import jsonschema
import pytest
import yaml

from tests.components.test_node_user_data import CRD as NODEADM_CRD
from tests.components.test_node_user_data import strict
from tests.harness import (
    LAUNCH_TEMPLATE,
    node_group_registrations,
    releases_of,
    run_config,
    run_stack,
    stack_config,
)

MODES = [pytest.param(False, id="update"), pytest.param(True, id="preview")]
EVICTION = "will fail with PodEvictionFailure"


def _values(run, chart: str) -> dict:
    (release,) = releases_of(run, chart)
    return release.plain_inputs.get("values") or {}


# --- item 6: chart versions and image versions ---------------------------------------------------


def test_the_efa_release_pins_the_plugin_image_its_chart_ships_not_the_chart_version():
    """eks-charts stable/aws-efa-k8s-device-plugin at chart v0.5.20 (commit de5fdc1): appVersion and
    image.tag v0.5.13. The chart version is not the plugin version."""
    from components.addons import EFA_CHART_VERSION, EFA_IMAGE_VERSION

    run = run_stack("multinode", False)
    (release,) = releases_of(run, "aws-efa-k8s-device-plugin")
    assert release.plain_inputs["version"] == EFA_CHART_VERSION == "v0.5.20"
    assert _values(run, "aws-efa-k8s-device-plugin")["image"]["tag"] == EFA_IMAGE_VERSION == "v0.5.13"


def test_every_chart_that_lets_values_set_its_image_runs_the_named_image_version():
    from components.addons import LWS_CHART, LWS_IMAGE_VERSION
    from components.gpu_enablement import DEVICE_PLUGIN_IMAGE_VERSION, NFD_IMAGE_VERSION

    run = run_stack("multinode", False)
    device_plugin = _values(run, "nvidia-device-plugin")
    assert device_plugin["image"]["tag"] == DEVICE_PLUGIN_IMAGE_VERSION
    assert device_plugin["nfd"]["image"]["tag"] == NFD_IMAGE_VERSION
    assert _values(run, LWS_CHART)["image"]["manager"]["tag"] == LWS_IMAGE_VERSION


# --- suspected: EFA memory registration on AL2023 --------------------------------------------------


def _node_config(user_data: str) -> dict:
    """The one NodeConfig of a launch template's user data, checked against nodeadm's API (strict)."""
    message = email.message_from_string(base64.b64decode(user_data).decode())
    (part,) = [p for p in message.walk() if p.get_content_type() == "application/node.eks.aws"]
    config = yaml.safe_load(part.get_payload())  # nodeadm reads YAML (and JSON, a subset)
    crd = yaml.safe_load(NODEADM_CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    jsonschema.validate(config, strict(version["schema"]["openAPIV3Schema"]))
    return config


@pytest.mark.parametrize("preview", MODES)
def test_al2023_efa_nodes_let_containers_lock_the_memory_efa_registers(preview):
    """Containers drop every capability, so libfabric's registrations count against RLIMIT_MEMLOCK,
    which the AL2023 AMI's base runtime spec leaves at containerd's own limit."""
    run = run_stack("multinode", preview)
    component = node_group_registrations(run)["h100-efa"].parent
    (template,) = [r for r in run.of_type(LAUNCH_TEMPLATE) if r.parent == component]
    config = _node_config(template.plain_inputs["userData"])
    assert (config["apiVersion"], config["kind"]) == ("node.eks.aws/v1alpha1", "NodeConfig")
    limits = {r["type"]: r for r in config["spec"]["containerd"]["baseRuntimeSpec"]["process"]["rlimits"]}
    assert limits["RLIMIT_MEMLOCK"]["soft"] == limits["RLIMIT_MEMLOCK"]["hard"] >= 2**40
    assert limits["RLIMIT_NOFILE"] == {"type": "RLIMIT_NOFILE", "soft": 65536, "hard": 1048576}  # AMI default kept
    assert config["spec"]["instance"]["localStorage"] == {"strategy": "RAID0"}  # merged into the same NodeConfig


@pytest.mark.parametrize("preview", MODES)
def test_groups_without_efa_get_only_the_nvme_raid0(preview):
    run = run_stack("dev", preview)
    component = node_group_registrations(run)["h100"].parent
    (template,) = [r for r in run.of_type(LAUNCH_TEMPLATE) if r.parent == component]
    config = _node_config(template.plain_inputs["userData"])
    assert config["spec"] == {"instance": {"localStorage": {"strategy": "RAID0"}}}


def test_bottlerocket_groups_bind_containerd_and_the_kubelet_to_the_ephemeral_disks():
    config = stack_config("dev")
    config["gpu-inference:nodeGroups"][0]["amiType"] = "BOTTLEROCKET_x86_64_NVIDIA"
    run = run_config(config, preview=True)
    component = node_group_registrations(run)["h100"].parent
    (template,) = [r for r in run.of_type(LAUNCH_TEMPLATE) if r.parent == component]
    settings = tomllib.loads(base64.b64decode(template.plain_inputs["userData"]).decode())
    (command,) = settings["settings"]["bootstrap-commands"].values()
    assert command["commands"][0] == ["apiclient", "ephemeral-storage", "init"]
    assert {"/var/lib/containerd", "/var/lib/kubelet"} <= set(command["commands"][1])


# --- suspected: managed node group updates ---------------------------------------------------------


@pytest.mark.parametrize("preview", MODES)
def test_a_group_whose_drain_outlasts_eks_eviction_timeout_is_warned_about(preview):
    """prod's 70B (3 replicas over the reserved group's nodes), downloaded from Hugging Face, takes
    longer than the 15 minutes EKS waits for an eviction the PodDisruptionBudget holds; streamed
    from S3 (as prod serves it) it starts in time."""
    run = run_config(prod_downloading_70b(), preview=preview)
    warnings = [m for level, m in run.logs if level == "warning" and EVICTION in m]
    assert len(warnings) == 1 and "h100-reserved" in warnings[0] and "llama-3-1-70b" in warnings[0]
    assert node_group_registrations(run)["h100-reserved"].plain_inputs["forceUpdateVersion"] is False
    assert not [m for _, m in run_stack("prod", preview).logs if EVICTION in m]


def prod_downloading_70b() -> dict:
    config = stack_config("prod")
    del config["gpu-inference:models"][1]["source"]  # the default: Hugging Face
    return config


def test_force_update_version_is_the_users_choice_and_silences_the_warning():
    config = prod_downloading_70b()
    config["gpu-inference:nodeGroups"][0]["forceUpdateVersion"] = True
    run = run_config(config, preview=True)
    assert node_group_registrations(run)["h100-reserved"].plain_inputs["forceUpdateVersion"] is True
    assert not [m for _, m in run.logs if EVICTION in m]


def test_single_node_groups_are_not_warned_about():
    assert not [m for _, m in run_stack("dev", True).logs if EVICTION in m]


@pytest.mark.parametrize("preview", MODES)
def test_reserved_groups_replace_nodes_before_launching_new_ones(preview):
    """A reservation or Capacity Block has no spare instances for EKS's default surge."""
    groups = node_group_registrations(run_stack("prod", preview))
    for name in ("h100-reserved", "h200-block"):
        assert groups[name].plain_inputs["updateConfig"]["updateStrategy"] == "MINIMAL", name
    on_demand = node_group_registrations(run_stack("dev", preview))["h100"].plain_inputs["updateConfig"]
    assert "updateStrategy" not in on_demand


# --- suspected: prod's model volume ----------------------------------------------------------------


@pytest.mark.parametrize("preview", MODES)
def test_a_claim_in_the_namespace_the_stack_creates_is_warned_about_with_what_works(preview):
    config = stack_config("prod")  # prod streams its 70B from S3 now; as it was, from a claim
    config["gpu-inference:models"][1]["source"] = {
        "type": "volume",
        "claimName": "model-weights",
        "path": "meta-llama/Llama-3.1-70B-Instruct",
    }
    run = run_config(config, preview=preview)
    (warning,) = [m for level, m in run.logs if level == "warning" and "claimName" in m]
    assert "models[1].source.claimName" in warning and "'model-weights'" in warning
    assert "ReadOnlyMany or ReadWriteMany" in warning  # 3 replicas across nodes
    assert not [m for _, m in run_stack("dev", preview).logs if "claimName" in m]
