import base64
import email
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

from components.labels import AL2023_NVIDIA, BOTTLEROCKET_NVIDIA
from components.node_user_data import (
    LOCAL_STORAGE_DIRS,
    NODEADM_CONTENT_TYPE,
    al2023_user_data,
    bottlerocket_user_data,
    ephemeral_storage_gb,
    has_instance_store,
    instance_store_gb,
    local_storage_user_data,
    user_data_base64,
)
from sizing.instances import INSTANCES

CRD = Path(__file__).resolve().parents[2] / "components" / "vendor" / "nodeadm" / "node.eks.aws_nodeconfigs.yaml"


def strict(schema):
    """The CRD's schema with unknown fields rejected: nodeadm's decoder (UniversalDecoder, not strict)
    would silently drop a misspelled key, so the check is stricter than the node."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def node_config_schema():
    crd = yaml.safe_load(CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    assert crd["spec"]["group"] == "node.eks.aws" and crd["spec"]["names"]["kind"] == "NodeConfig"
    return strict(version["schema"]["openAPIV3Schema"])


def node_configs(user_data):
    message = email.message_from_string(user_data)
    assert message.is_multipart() and message.get_content_type() == "multipart/mixed"
    return [
        yaml.safe_load(part.get_payload()) for part in message.walk() if part.get_content_type() == NODEADM_CONTENT_TYPE
    ]


def test_al2023_user_data_is_mime_multipart_with_a_valid_raid0_node_config(node_config_schema):
    (config,) = node_configs(local_storage_user_data(AL2023_NVIDIA, "p5.48xlarge"))
    jsonschema.validate(config, node_config_schema)
    assert config["apiVersion"] == "node.eks.aws/v1alpha1" and config["kind"] == "NodeConfig"
    assert config["spec"]["instance"]["localStorage"]["strategy"] == "RAID0"


@pytest.mark.parametrize(
    "spec",
    [
        {"instance": {"localStorage": {"strategy": "raid0"}}},
        {"instance": {"localStorge": {"strategy": "RAID0"}}},
        {"instance": {"localStorage": {"strategy": "RAID0", "disabledMounts": ["Kubelet"]}}},
    ],
)
def test_the_schema_check_rejects_misspelled_keys_and_values_outside_the_enums(node_config_schema, spec):
    config = {"apiVersion": "node.eks.aws/v1alpha1", "kind": "NodeConfig", "spec": spec}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(node_configs(al2023_user_data(config))[0], node_config_schema)


def test_bottlerocket_user_data_initialises_and_binds_the_ephemeral_disks():
    settings = tomllib.loads(local_storage_user_data(BOTTLEROCKET_NVIDIA, "p4d.24xlarge"))
    (command,) = settings["settings"]["bootstrap-commands"].values()
    assert command["mode"] == "always" and command["essential"] is True
    init, bind = command["commands"]
    assert init == ["apiclient", "ephemeral-storage", "init"]
    assert bind[:4] == ["apiclient", "ephemeral-storage", "bind", "--dirs"]
    assert set(bind[4:]) == {"/var/lib/containerd", "/var/lib/kubelet", "/var/log/pods"} == set(LOCAL_STORAGE_DIRS)


def test_no_user_data_without_instance_store_and_a_clear_error_for_other_amis():
    assert local_storage_user_data(AL2023_NVIDIA, "g6.xlarge") is None
    with pytest.raises(ValueError, match="AL2023_x86_64_GPU.*AL2023_x86_64_NVIDIA"):
        local_storage_user_data("AL2023_x86_64_GPU", "p5.48xlarge")


def test_every_catalog_instance_has_its_nvme_disks_and_they_add_up_to_the_catalog():
    for name, instance in INSTANCES.items():
        assert instance.instance_store_disks == 8 and instance.instance_store_disk_gb >= 1000  # the EC2 pages
        assert has_instance_store(name) and instance_store_gb(name) == instance.local_nvme_gb


def test_the_launch_template_gets_base64():
    text = bottlerocket_user_data()
    assert base64.b64decode(user_data_base64(text)).decode() == text


def test_emptydirs_get_the_nvme_array_where_there_is_one_and_the_root_volume_elsewhere():
    assert ephemeral_storage_gb("p5.48xlarge", 500) == instance_store_gb("p5.48xlarge") > 500
    assert ephemeral_storage_gb("g6.xlarge", 500) == pytest.approx(536.87, abs=0.01)
