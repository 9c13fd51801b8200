import json
import textwrap

import parliament
import pytest

from components.model_access import (
    POD_IDENTITY_AGENT_ADDON,
    POD_IDENTITY_PRINCIPAL,
    pod_identity_trust_policy,
    s3_read_policy,
)
from stack.mockrun import run_program
from stack.model_source_s3 import S3Source

KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def source(uri, key=None):
    return S3Source.model_validate({"type": "s3", "uri": uri, **({"kmsKeyArn": key} if key else {})})


def findings(policy):
    return [(f.issue, f.detail) for f in parliament.analyze_policy_string(json.dumps(policy)).findings]


def resources(policy, action):
    out = []
    for statement in policy["Statement"]:
        if statement["Action"] == action:
            value = statement["Resource"]
            out += value if isinstance(value, list) else [value]
    return out


@pytest.mark.parametrize(
    "sources",
    [
        [source("s3://my-models/llama/70b")],
        [source("s3://my-models/llama/70b", KEY)],
        [source("s3://my-models/a", KEY), source("s3://my-models/b"), source("s3://other.models/c")],
    ],
)
def test_the_read_policy_passes_the_iam_linter(sources):
    assert findings(s3_read_policy(sources)) == []


def test_the_linter_catches_what_the_policy_avoids():
    wrong = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b/p/*"}],
    }
    assert [issue for issue, _ in findings(wrong)] == ["RESOURCE_MISMATCH"]


def test_the_policy_reaches_exactly_the_bucket_and_prefix():
    policy = s3_read_policy([source("s3://my-models/llama/70b/", KEY)])
    assert resources(policy, "s3:GetObject") == ["arn:aws:s3:::my-models/llama/70b/*"]
    assert resources(policy, "s3:ListBucket") == ["arn:aws:s3:::my-models"]
    assert resources(policy, "kms:Decrypt") == [KEY]
    (listing,) = [s for s in policy["Statement"] if s["Action"] == "s3:ListBucket"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["llama/70b", "llama/70b/*"]}}
    actions = {s["Action"] for s in policy["Statement"]}
    assert actions == {"s3:GetObject", "s3:ListBucket", "kms:Decrypt"}
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])
    text = json.dumps(policy)
    assert "arn:aws:s3:::*" not in text and '"*"' not in text


def test_a_policy_without_a_key_grants_no_kms():
    policy = s3_read_policy([source("s3://my-models/llama")])
    assert resources(policy, "kms:Decrypt") == []


def test_a_namespace_role_covers_each_prefix_and_no_other():
    policy = s3_read_policy([source("s3://m-1/a"), source("s3://m-1/b"), source("s3://m-2/c")])
    assert sorted(resources(policy, "s3:GetObject")) == [
        "arn:aws:s3:::m-1/a/*",
        "arn:aws:s3:::m-1/b/*",
        "arn:aws:s3:::m-2/c/*",
    ]
    assert sorted(resources(policy, "s3:ListBucket")) == ["arn:aws:s3:::m-1", "arn:aws:s3:::m-2"]


def test_the_trust_policy_admits_pod_identity_only():
    """parliament lints identity policies (it requires Resource); a trust policy has none, so its
    statement is linted with Resource "*", which is what a trust policy means."""
    trust = pod_identity_trust_policy()
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": POD_IDENTITY_PRINCIPAL}
    assert sorted(statement["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    as_identity = {"Version": trust["Version"], "Statement": [{**statement, "Resource": "*"}]}
    assert {issue for issue, _ in findings(as_identity)} <= {"RESOURCE_STAR"}


PROGRAM = textwrap.dedent(
    """
    from components.model_access import ModelAccess, ModelAccessArgs, pod_identity_agent_addon
    from stack.model_source_s3 import S3Source

    addon = pod_identity_agent_addon("pod-identity-agent", "gpu-cluster")
    ModelAccess(
        "llama",
        ModelAccessArgs(
            cluster_name="gpu-cluster",
            namespace="inference",
            service_account_name="llama-70b",
            sources=[S3Source(type="s3", uri="s3://my-models/llama/70b")],
            depends_on=[addon],
        ),
    )
    """
)


def test_the_component_binds_the_role_to_the_service_account(tmp_path):
    program = tmp_path / "program.py"
    program.write_text(PROGRAM)
    run = run_program({}, program=program)
    (component,) = run.of_type("gpu-inference:components:ModelAccess")
    (role,) = run.of_type("aws:iam/role:Role")
    (policy,) = run.of_type("aws:iam/rolePolicy:RolePolicy")
    (account,) = run.of_type("kubernetes:core/v1:ServiceAccount")
    (association,) = [
        r for r in run.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation") if "autoscaler" not in r.name
    ]
    (addon,) = run.of_type("aws:eks/addon:Addon")
    for child in (role, policy, account, association):
        assert child.parent == component.urn
    assert json.loads(role.inputs["assumeRolePolicy"]) == pod_identity_trust_policy()
    assert resources(json.loads(policy.inputs["policy"]), "s3:GetObject") == ["arn:aws:s3:::my-models/llama/70b/*"]
    assert account.inputs["metadata"]["name"] == association.inputs["serviceAccount"] == "llama-70b"
    assert account.inputs["metadata"]["namespace"] == association.inputs["namespace"] == "inference"
    assert association.inputs["clusterName"] == "gpu-cluster"
    assert addon.inputs["addonName"] == POD_IDENTITY_AGENT_ADDON
    assert addon.urn in association.dependencies


# Through the program: prod streams its 70B from S3.

MODES = [pytest.param(False, id="update"), pytest.param(True, id="preview")]
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


@pytest.mark.parametrize("preview", MODES)
def test_prods_read_policy_names_exactly_the_configured_bucket_and_prefix(preview):
    from tests.harness import run_stack, stack_config

    uri = stack_config("prod")["gpu-inference:models"][1]["source"]["uri"]
    bucket, prefix = uri.removeprefix("s3://").split("/", 1)
    run = run_stack("prod", preview)
    (policy,) = [json.loads(r.plain_inputs["policy"]) for r in run.of_type(ROLE_POLICY) if "autoscaler" not in r.name]
    resources = {
        resource
        for statement in policy["Statement"]
        for resource in (statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]])
    }
    assert resources == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/{prefix}/*"}
    actions = {statement["Action"] for statement in policy["Statement"]}
    assert actions == {"s3:ListBucket", "s3:GetObject"}
    (listing,) = [s for s in policy["Statement"] if s["Action"] == "s3:ListBucket"]
    assert set(listing["Condition"]["StringLike"]["s3:prefix"]) == {prefix, f"{prefix}/*"}
    assert findings(policy) == []


def test_models_of_namespace_scope_share_one_role_and_service_account():
    from tests.harness import deployments, run_config, stack_config

    config = stack_config("prod")
    models = config["gpu-inference:models"]
    models[0]["source"] = {"type": "s3", "uri": "s3://example-model-weights/small", "roleScope": "namespace"}
    models[1]["source"]["roleScope"] = "namespace"
    run = run_config(config, preview=True)
    (policy,) = [json.loads(r.plain_inputs["policy"]) for r in run.of_type(ROLE_POLICY) if "autoscaler" not in r.name]
    (objects,) = [s["Resource"] for s in policy["Statement"] if s["Action"] == "s3:GetObject"]
    assert sorted(objects) == [
        "arn:aws:s3:::example-model-weights/meta-llama/Llama-3.1-70B-Instruct/*",
        "arn:aws:s3:::example-model-weights/small/*",
    ]
    (association,) = [
        r for r in run.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation") if "autoscaler" not in r.name
    ]
    served = deployments(run)
    accounts = {served[m["name"]].plain_inputs["spec"]["template"]["spec"]["serviceAccountName"] for m in models[:2]}
    assert accounts == {association.plain_inputs["serviceAccount"]}
    assert "serviceAccountName" not in served["qwen2-5-72b"].plain_inputs["spec"]["template"]["spec"]


def test_on_a_created_cluster_the_association_waits_for_the_one_pod_identity_agent():
    from tests.harness import run_config, stack_config

    config = stack_config("dev")
    config["gpu-inference:models"][1]["source"] = {"type": "s3", "uri": "s3://example-model-weights/llama-70b"}
    run = run_config(config, preview=True)
    (agent,) = [
        r for r in run.of_type("aws:eks/addon:Addon") if r.plain_inputs["addonName"] == "eks-pod-identity-agent"
    ]
    (association,) = [
        r for r in run.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation") if "access" in r.name
    ]
    assert agent.urn in association.dependencies
    account = next(r for r in run.of_type("kubernetes:core/v1:ServiceAccount") if "access" in r.name)
    namespace = next(r for r in run.of_type("kubernetes:core/v1:Namespace"))
    assert namespace.urn in account.dependencies, "the ServiceAccount is created once its namespace exists"
