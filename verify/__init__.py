"""Checks of what the stack would send, by the rules of the tools that will judge it later.

One module per job:
- ``verify.schemas``: every Kubernetes object against the official OpenAPI schemas of each supported
  Kubernetes version (``kubernetes-validate``'s bundled schemas, strict);
- ``verify.crds``: custom resources against their operators' CRDs, vendored and pinned in
  ``verify/vendor/`` (LeaderWorkerSet, KAI's Queue, ...); ``validate_custom_resource(obj)``;
- ``verify.api_rules``: the API server's rules that the schemas type as plain strings (operators,
  effects, quantities, names, label syntax, ports, probes, selectors);
- ``verify.kubernetes``: one object through all of the above (``check_object``/``check_resource``);
- ``verify.charts``: Helm releases: pinned, values keys from the pinned chart's vendored values.yaml;
- ``verify.references``: across objects: selectors that must select rendered pods, named ports;
- ``verify.selectors``: how label selectors, node affinity and tolerations match (shared with tests);
- ``verify.invariants``: GPU pods against the GPU node groups declared beside them;
- ``verify.aws``: AWS resource inputs against botocore's service models, EKS limits, the GPU catalog;
- ``verify.checkov``: security scan of the rendered manifests, failing on any unexplained finding (``make verify``);
- ``verify.stacks``: synthesise each ``Pulumi.<stack>.yaml`` in-process (as ``make synth`` does)
  and run all of the above; ``python -m verify`` is its command line.

Name and quantity syntax is ``stack.kubernetes_names`` (shared with the config and the tests).
Every check returns a list of ``Violation`` (object, field path, message) rather than raising, so
one run reports everything that is wrong. The policy pack in ``policy/`` calls the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass

COMPUTED = "<computed>"  # a value only known after an update (as stack.synth writes it)


@dataclass(frozen=True)
class Violation:
    object: str  # e.g. "Deployment inference/llama-3-1-8b" or "aws:eks/nodeGroup:NodeGroup h100"
    path: str  # field path inside the object, e.g. "spec.template.spec.tolerations[0].effect"
    message: str  # what is wrong and what would be valid
    severity: str = "error"  # "error" fails the run; "warning" is reported only

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        tag = "" if self.severity == "error" else f"[{self.severity}] "
        return f"{tag}{self.object}: {where}{self.message}"


def errors(violations: list[Violation]) -> list[Violation]:
    return [v for v in violations if v.severity == "error"]


def is_unknown(value: object) -> bool:
    """A value that is not known in a preview: stack.mockrun's Unknown, synth's marker, or one of
    pulumi-policy's unknown sentinels (checked by name, so pulumi_policy need not be importable)."""
    if type(value).__name__ == "Unknown":
        return True
    return isinstance(value, str) and (value == COMPUTED or value in _POLICY_UNKNOWNS)


_POLICY_UNKNOWNS = frozenset(
    {
        "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # boolean
        "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
        "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # string
        "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
        "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
        "e48ece36-62e2-4504-bad9-02848725956a",  # archive
        "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
    }
)


def plain(value: object) -> object:
    """Inputs as the engine holds them -> plain data: secrets revealed (the validators must see the
    value's shape), unknowns as ``COMPUTED``, whole floats as ints (protobuf numbers are floats),
    pulumi-policy's unknown-checking proxies unwrapped."""
    if is_unknown(value):
        return COMPUTED
    if type(value).__name__ == "Secret" and hasattr(value, "value"):
        return plain(value.value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    target = _proxy_target(value)
    if isinstance(target, dict):
        return {str(k): plain(v) for k, v in target.items()}
    if isinstance(target, (list, tuple)):
        return [plain(v) for v in target]
    if hasattr(target, "items"):
        return {str(k): plain(target[k]) for k in target}
    if hasattr(target, "__len__") and hasattr(target, "__getitem__"):
        return [plain(target[i]) for i in range(len(target))]
    return target


def _proxy_target(value: object) -> object:
    """pulumi_policy's _DictProxy/_ListProxy hand out their target for the key "__target"."""
    if type(value).__name__ in ("_DictProxy", "_ListProxy", "_DictSecretsProxy", "_ListSecretsProxy"):
        try:
            return value["__target"]  # type: ignore[index]
        except Exception:  # noqa: BLE001
            return value
    return value
