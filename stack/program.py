"""Reading the stack config and planning it, before any resource is declared.

``load()`` returns everything ``__main__.py`` needs, or raises ``ConfigError`` with every problem
(field path, value, what would be valid). ``__main__.py`` turns that into ``pulumi.RunError``,
which Pulumi prints without a traceback, with nothing registered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from stack.config import ConfigError, HuggingFaceSource, parse_config
from stack.config_keys import foreign_namespace_problems, no_models_warning, plaintext_secret_problems
from stack.derived_names import placement_name_problems
from stack.node_disk import disk_problems
from stack.placeholders import refuse_placeholders
from stack.placement import Placement, place
from stack.project import PROJECT

OBJECT_KEYS = ("cluster", "nodeGroups", "models", "monitoring", "autoscaling", "prices")
SECRET_KEYS = ("kubeconfig", "hfToken", "ngcApiKey")


@dataclass(frozen=True)
class Loaded:
    placement: Placement
    kubeconfig: pulumi.Output[str] | None
    hf_token: pulumi.Output[str] | None
    ngc_api_key: pulumi.Output[str] | None = None


def _project_keys() -> set[str]:
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    prefix = f"{PROJECT}:"
    return {key[len(prefix) :] for key in keys if key.startswith(prefix)}


def _all_keys() -> set[str]:
    return set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())


def _is_secret(key: str) -> bool:
    """Under the CLI the secret keys arrive in PULUMI_CONFIG_SECRET_KEYS; under the mocks through set_all_config."""
    return runtime_config.is_config_secret(key) or key in runtime_config.get_config_secret_keys_env()


def read_raw_config() -> dict[str, Any]:
    """The config objects as the CLI passes them; unknown top-level keys are errors too."""
    problems = []
    unknown = sorted(_project_keys() - set(OBJECT_KEYS) - set(SECRET_KEYS))
    for key in unknown:
        valid = ", ".join(f"{PROJECT}:{k}" for k in OBJECT_KEYS + SECRET_KEYS)
        shown = key if key.isprintable() else repr(key)[1:-1]
        problems.append(f"{PROJECT}:{shown}: unknown key; valid keys are {valid}")
    problems += foreign_namespace_problems(_all_keys())
    problems += plaintext_secret_problems(sorted(_project_keys() & set(SECRET_KEYS)), _is_secret)
    config = pulumi.Config(PROJECT)
    raw: dict[str, Any] = {}
    for key in OBJECT_KEYS:
        try:
            raw[key] = config.get_object(key)
        except (ValueError, json.JSONDecodeError) as error:
            problems.append(f"{key}: not a valid object ({' '.join(str(error).split())})")
        except Exception as error:  # ConfigTypeError
            problems.append(f"{key}: {' '.join(repr(str(error))[1:-1].split())}")
    if problems:
        raise ConfigError(problems)
    return raw


def load() -> Loaded:
    raw = read_raw_config()
    refuse_placeholders(raw)
    stack_config = parse_config(raw)
    config = pulumi.Config(PROJECT)
    kubeconfig = config.get_secret("kubeconfig")
    existing = stack_config.cluster.existing
    if existing is not None and existing.source == "kubeconfig" and kubeconfig is None:
        raise ConfigError(
            [
                f"{PROJECT}:kubeconfig: required with cluster.existing.source kubeconfig "
                "(pulumi config set --secret kubeconfig < kubeconfig.yaml)"
            ]
        )
    ngc_api_key = config.get_secret("ngcApiKey")
    nim_models = [f"models[{i}]" for i, m in enumerate(stack_config.models) if "ngcApiKey" in m.engine.needs_secrets]
    if nim_models and ngc_api_key is None:
        raise ConfigError(
            [
                f"{PROJECT}:ngcApiKey: required by engine nim ({', '.join(nim_models)}): NIM pulls its image from "
                "nvcr.io and its model from NGC with it (pulumi config set --secret ngcApiKey nvapi-...)"
            ]
        )
    if warning := no_models_warning(stack_config.models):
        pulumi.log.warn(warning)
    placement = place(stack_config)
    if name_problems := placement_name_problems(placement) + disk_problems(placement):
        raise ConfigError(name_problems)
    for warning in cluster_warnings(placement) + volume_warnings(placement):
        pulumi.log.warn(warning)
    for group in stack_config.node_groups:
        if group.efa and group.subnet_ids is None:
            pulumi.log.warn(
                f"nodeGroups {group.name!r}: efa is on and the group launches in the cluster's subnets; a cluster "
                "placement group lives in one Availability Zone, so give the group one subnet (subnetIds) or "
                "instances outside that zone will fail to launch"
            )
    for model in placement.models:
        if model.sizing is not None and model.sizing.assumed:
            pulumi.log.warn(
                f"models[{model.index}] ({model.name}): planned on an assumed accounting: {model.sizing.label}"
            )
    hf_token = config.get_secret("hfToken")
    vllm_downloads = [
        m for m in placement.models if m.engine == "vllm" and isinstance(m.config.source, HuggingFaceSource)
    ]
    if hf_token is None and vllm_downloads:
        pulumi.log.warn(
            f"{PROJECT}:hfToken is not set: models downloaded from Hugging Face get no token, "
            "so gated repositories (Llama, Gemma, ...) will fail to download"
        )
    return Loaded(placement, kubeconfig, hf_token, ngc_api_key)


def volume_warnings(placement: Placement) -> list[str]:
    """A model served from a claim needs the claim in the servers' namespace before its pods start;
    the stack creates that namespace, so nothing can have put the claim there on a first deploy."""
    namespace = placement.config.cluster.namespace
    warnings = []
    for model in placement.models:
        source = model.config.source
        if getattr(source, "type", None) != "volume" or model.config.replicas == 0:
            continue
        path = f"models[{model.index}].source.claimName"
        text = (
            f"{path}: {source.claim_name!r} must exist in namespace {namespace!r} before {model.name}'s pods start, "
            f"but this stack creates {namespace!r}: on a first pulumi up the claim cannot exist yet and the pods "
            "stay Pending until the await times out; create the claim (and its PersistentVolume) right after the "
            "namespace appears, or serve the model with source type huggingFace"
        )
        if model.pods > 1:
            text += (
                f"; its {model.pods} pods may land on different nodes, so the claim must be ReadOnlyMany or "
                "ReadWriteMany (an EBS volume is ReadWriteOnce: use FSx for Lustre, EFS or Mountpoint for Amazon "
                "S3 through their CSI drivers)"
            )
        warnings.append(text)
    return warnings


def cluster_warnings(placement: Placement) -> list[str]:
    """What an adopted cluster must provide that the stack cannot check at preview."""
    existing = placement.config.cluster.existing
    if existing is None or not placement.models:
        return []
    warnings = []
    streamed = [m.name for m in placement.models if getattr(m.config.source, "type", None) == "s3"]
    if streamed:
        warnings.append(
            f"models {', '.join(streamed)} stream from S3 with EKS Pod Identity credentials: the adopted cluster "
            "must run the eks-pod-identity-agent add-on (the stack installs it only on clusters it creates), or "
            "their pods get no credentials and fail to load"
        )
    if existing.network_policy_enforced is None:
        warnings.append(
            "cluster.existing.networkPolicyEnforced is not declared: every model gets a NetworkPolicy admitting only "
            "its client namespaces, but on EKS nothing enforces NetworkPolicies unless the VPC CNI runs with "
            "enableNetworkPolicy (off by default) or another policy engine is installed; declare true once the "
            "platform enforces them, or false to accept servers open to every pod"
        )
    elif existing.network_policy_enforced is False:
        warnings.append(
            "cluster.existing.networkPolicyEnforced is false: the models' NetworkPolicies are stored but not "
            "enforced, so every pod in the cluster can reach the servers"
        )
    return warnings
