"""Run the real ``__main__.py`` in-process under the Pulumi SDK's mocks, and record what it declared.

No cloud account, no CLI: the program's resources reach ``RecordingMonitor.RegisterResource``,
which records type, name, parent, dependencies and inputs (as the engine would receive them:
unknowns and secrets kept visible), then answers through ``StackMocks``. In preview mode the
mocks answer with the inputs only, so every computed output (ARNs, ids, versions) is unknown
as in a real preview; in update mode they add plausible values for those outputs.

Used by ``stack.synth`` (``make synth``) and by the tests (``tests/harness.py``). Each run
starts from a fresh event loop and fresh runtime settings, so many runs share one process.
During a run ``GPU_INFERENCE_OFFLINE=1`` is set (``stack.placeholders``): the example stacks'
placeholder ids pass here and are refused by a real preview.
"""

from __future__ import annotations

import asyncio
import json
import os
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.sync_await import _sync_await

from stack.placeholders import OFFLINE_ENV
from stack.project import PROJECT

ROOT = Path(__file__).resolve().parent.parent

SECRET_SIG = rpc._special_secret_sig  # noqa: SLF001 - the wire format's secret marker
SIG_KEY = rpc._special_sig_key  # noqa: SLF001


class Unknown:
    """A value the engine would only learn during the update (shown as in a preview)."""

    def __repr__(self) -> str:
        return "<unknown>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unknown)

    def __hash__(self) -> int:
        return 0


UNKNOWN = Unknown()


@dataclass(frozen=True)
class Secret:
    """A secret value as the engine receives it (encrypted in state, masked in previews)."""

    value: Any


def decode(value: Any) -> Any:
    """Wire form (JSON of the protobuf Struct) -> Python, keeping unknowns and secrets visible."""
    if value == rpc.UNKNOWN:
        return UNKNOWN
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return Secret(decode(value.get("value")))
        return {k: decode(v) for k, v in value.items()}
    return value


def reveal(value: Any) -> Any:
    """Strip the Secret wrappers (for assertions on the value itself)."""
    if isinstance(value, Secret):
        return reveal(value.value)
    if isinstance(value, list):
        return [reveal(v) for v in value]
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    return value


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    remote: bool
    provider: str
    dependencies: list[str]
    inputs: dict[str, Any]
    custom_timeouts: dict[str, str] = field(default_factory=dict)
    ignore_changes: list[str] = field(default_factory=list)
    read_id: str | None = None  # set for a ``Resource.get``: the existing object the stack reads

    @property
    def read(self) -> bool:
        """An object the stack reads (and needs to exist), not one it declares."""
        return self.read_id is not None

    @property
    def plain_inputs(self) -> dict[str, Any]:
        return reveal(self.inputs)


@dataclass
class Run:
    stack: str
    preview: bool
    registrations: list[Registration] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    unknown_outputs: set[str] = field(default_factory=set)
    logs: list[tuple[str, str]] = field(default_factory=list)
    error: BaseException | None = None

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_]

    def by_urn(self, urn: str) -> Registration:
        return next(r for r in self.registrations if r.urn == urn)

    def find(self, type_: str, name: str) -> Registration:
        matches = [r for r in self.registrations if r.type == type_ and r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} registrations of {type_} named {name}")
        return matches[0]

    def ancestors(self, registration: Registration) -> list[Registration]:
        chain = []
        urns = {r.urn: r for r in self.registrations}
        current = registration
        while current.parent in urns:
            current = urns[current.parent]
            chain.append(current)
        return chain


DEFAULT_STACK_REFERENCES: dict[str, dict[str, Any]] = {
    # What the example platform and network stacks export (see Pulumi.prod.yaml).
    "acme/platform/prod": {
        "clusterName": "platform-prod",
        "kubeconfig": {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []},
        "privateSubnetIds": ["subnet-0123456789abcdef3", "subnet-0123456789abcdef4"],
    },
}


def unknown_stack_reference(name: str, known: list[str]) -> str:
    """What a real preview reports (the engine cannot read the stack), with the stacks this run knows."""
    import difflib

    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else f"; the stacks this run mocks: {', '.join(sorted(known))}"
    return (
        f"stack reference {name!r} names no stack that can be read (a real preview fails with 'unknown stack'): "
        f"check cluster.existing.stack / cluster.create.networkStack.name, a fully qualified org/project/stack{hint}"
    )


class StackMocks(pulumi.runtime.Mocks):
    """``absent`` names the Kubernetes objects (``name`` or ``namespace/name``) the cluster lacks:
    reading one fails as the engine fails it, at preview; every other read finds the object."""

    def __init__(
        self, preview: bool, stack_references: dict[str, dict[str, Any]], absent: frozenset[str] = frozenset()
    ):
        self.preview = preview
        self.stack_references = stack_references
        self.absent = absent

    def read_kubernetes(self, args: pulumi.runtime.MockResourceArgs):
        """The live object, as pulumi-kubernetes reads it: the id is ``[namespace/]name``."""
        if args.resource_id in self.absent:
            # pulumi-kubernetes answers a 404 with an empty state, which the engine reports so.
            raise Exception(f"resource '{args.resource_id}' does not exist")
        group_version, kind = args.typ.split(":", 1)[1].rsplit(":", 1)
        namespace, _, name = args.resource_id.rpartition("/")
        metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
        return args.resource_id, {"apiVersion": group_version.removeprefix("core/"), "kind": kind, "metadata": metadata}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        if args.resource_id and args.typ.startswith("kubernetes:"):
            return self.read_kubernetes(args)
        if args.typ == "pulumi:pulumi:StackReference":
            name = args.inputs.get("name") or args.name
            if name not in self.stack_references:
                raise pulumi.RunError(unknown_stack_reference(name, list(self.stack_references)))
            outputs = self.stack_references[name]
            # The platform stacks referenced here export their kubeconfig as a secret.
            secret_names = sorted(set(outputs) & {"kubeconfig"})
            return f"{name}", {"name": name, "outputs": outputs, "secretOutputNames": secret_names}
        resource_id = f"{args.name}-id"
        if self.preview:
            return resource_id, state  # computed outputs stay unknown, as in a real preview
        extra: dict[str, Any] = {}
        if args.typ == "eks:index:Cluster":
            kubeconfig = {"apiVersion": "v1", "kind": "Config", "clusters": [{"name": args.inputs.get("name")}]}
            extra = {"kubeconfig": kubeconfig, "kubeconfigJson": json.dumps(kubeconfig, sort_keys=True)}
        elif args.typ == "aws:iam/role:Role":
            extra = {"arn": f"arn:aws:iam::123456789012:role/{args.name}", "name": args.name}
        elif args.typ == "aws:ec2/launchTemplate:LaunchTemplate":
            extra = {"latestVersion": 1, "arn": f"arn:aws:ec2:us-east-1:123456789012:launch-template/{resource_id}"}
        elif args.typ == "aws:ec2/placementGroup:PlacementGroup":
            extra = {"name": args.name}
        elif args.typ == "aws:eks/nodeGroup:NodeGroup":
            extra = {
                "nodeGroupName": args.name,
                "status": "ACTIVE",
                "resources": [{"autoscalingGroups": [{"name": f"eks-{args.name}-mock"}]}],
            }
        elif args.typ == "aws:ec2/securityGroup:SecurityGroup":
            extra = {"arn": f"arn:aws:ec2:us-east-1:123456789012:security-group/{resource_id}"}
        return resource_id, {**state, **extra}

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == "aws:eks/getCluster:getCluster":
            name = args.args.get("name")
            return {
                "name": name,
                "id": name,
                "vpcConfig": {"vpcId": "vpc-0mock0000000000", "clusterSecurityGroupId": "sg-0mockcluster0000"},
            }
        return {}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that records every registration and does not advertise resource references.

    With resource references advertised, passing a resource as another's input intermittently
    fails with "Future attached to a different loop"; without them, resources travel as URNs
    or ids, as they did before the feature existed.
    """

    def __init__(self, mocks: StackMocks, run: Run):
        super().__init__(mocks)
        self.run = run

    def _record(
        self,
        request,
        properties,
        *,
        custom: bool,
        remote: bool,
        custom_timeouts=None,
        ignore_changes=(),
        read_id: str | None = None,
    ) -> None:
        self.run.registrations.append(
            Registration(
                urn=self.make_urn(request.parent, request.type, request.name),
                type=request.type,
                name=request.name,
                parent=request.parent,
                custom=custom,
                remote=remote,
                provider=request.provider,
                dependencies=sorted(set(request.dependencies)),
                inputs=decode(json_format.MessageToDict(properties, preserving_proto_field_name=True)),
                custom_timeouts=custom_timeouts or {},
                ignore_changes=list(ignore_changes),
                read_id=read_id,
            )
        )

    def RegisterResource(self, request):  # noqa: N802 - gRPC method name
        if request.type != "pulumi:pulumi:Stack":
            self._record(
                request,
                request.object,
                custom=bool(request.custom),
                remote=bool(request.remote),
                custom_timeouts={
                    key: getattr(request.customTimeouts, key)
                    for key in ("create", "update", "delete")
                    if getattr(request.customTimeouts, key)
                },
                ignore_changes=request.ignoreChanges,
            )
        return super().RegisterResource(request)

    def ReadResource(self, request):  # noqa: N802
        # StackReferences are read, not registered.
        self._record(request, request.properties, custom=True, remote=False, read_id=request.id)
        return super().ReadResource(request)

    def SupportsFeature(self, request):  # noqa: N802
        if request.id == "resourceReferences":
            return type("SupportsFeatureResponse", (object,), {"hasSupport": False})
        return super().SupportsFeature(request)

    def GetDeploymentInfo(self, request):  # noqa: N802
        info = super().GetDeploymentInfo(request)
        features = [f for f in info.supportedFeatures if f != resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES]
        return resource_pb2.DeploymentInfo(supportedFeatures=features)


class _LogHandler:
    def __init__(self, run: Run):
        self.run = run

    def __call__(self, level: str, message: str) -> None:
        self.run.logs.append((level, message))


def load_stack_config(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """The ``config:`` map of ``Pulumi.<stack>.yaml`` (keys like ``gpu-inference:models``); a file the
    CLI would refuse raises ``stack.stack_file.StackFileError`` with file, line and column."""
    from stack.stack_file import read_stack_file

    return read_stack_file(root / f"Pulumi.{stack}.yaml")


def _config_strings(config: dict[str, Any], project: str = PROJECT) -> dict[str, str]:
    """Config values as the CLI passes them: strings, objects as JSON."""
    out = {}
    for key, value in config.items():
        full = key if ":" in key else f"{project}:{key}"
        out[full] = value if isinstance(value, str) else json.dumps(value)
    return out


def run_program(
    config: dict[str, Any],
    *,
    stack: str = "test",
    preview: bool = False,
    secrets: dict[str, str] | None = None,
    stack_references: dict[str, dict[str, Any]] | None = None,
    program: Path = ROOT / "__main__.py",
    capture_errors: bool = False,
    project: str = PROJECT,
    offline: bool = True,
    absent: frozenset[str] = frozenset(),
) -> Run:
    """Run the program once; raise what it raises (``pulumi.RunError`` for bad config), or with
    ``capture_errors`` return the run with ``error`` set and what was registered before it.

    ``config`` maps keys (``gpu-inference:models`` or just ``models``) to values; ``secrets``
    maps keys to secret string values (``hfToken``, ``kubeconfig``); ``absent`` the Kubernetes
    objects the cluster lacks (reads of them fail, see ``StackMocks``). ``offline=False`` runs the
    program as the CLI would as far as ``stack.placeholders`` can tell (placeholders refused).
    """
    import logging

    run = Run(stack=stack, preview=preview)
    loop = asyncio.new_event_loop()
    # A failed run leaves tasks and futures holding its error; asyncio would print each with a traceback.
    loop.set_exception_handler(lambda _loop, context: run.logs.append(("debug", str(context.get("message")))))
    asyncio.set_event_loop(loop)
    settings.reset_options(project=project, stack=stack, preview=preview)
    all_config = _config_strings(config, project)
    secret_keys = []
    for key, value in (secrets or {}).items():
        full = key if ":" in key else f"{project}:{key}"
        all_config[full] = value
        secret_keys.append(full)
    pulumi.runtime.set_all_config(all_config, secret_keys)

    mocks = StackMocks(preview, {**DEFAULT_STACK_REFERENCES, **(stack_references or {})}, absent)
    monitor = RecordingMonitor(mocks, run)
    logger = logging.getLogger(f"gpu-inference.mockrun.{stack}")
    logger.propagate = False
    logger.handlers = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            run.logs.append((record.levelname.lower(), record.getMessage()))

    logger.addHandler(Capture())
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview, logger=logger, monitor=monitor)
    root_resource = settings.get_root_resource()

    saved_cwd = os.getcwd()
    saved_offline = os.environ.pop(OFFLINE_ENV, None)
    if offline:
        os.environ[OFFLINE_ENV] = "1"
    os.chdir(program.parent)
    try:

        def body() -> None:
            runpy.run_path(str(program), run_name="__main__")

        try:
            _sync_await(pulumi.runtime.stack.run_pulumi_func(body))
        except Exception as error:  # noqa: BLE001 - handed back to the caller
            run.error = error
            if not capture_errors:
                raise
            return run
        for name, value in root_resource.outputs.items():
            output = pulumi.Output.from_input(value)
            known = _sync_await(output.is_known())
            secret = _sync_await(output.is_secret())
            resolved = _sync_await(output.future(with_unknowns=True))
            if not known:
                run.unknown_outputs.add(name)
            if secret:
                run.secret_outputs.add(name)
            run.outputs[name] = resolved
    finally:
        os.chdir(saved_cwd)
        os.environ.pop(OFFLINE_ENV, None)
        if saved_offline is not None:
            os.environ[OFFLINE_ENV] = saved_offline
        settings.reset_options(project=project, stack=stack, preview=preview)
        loop.close()
        asyncio.set_event_loop(None)
    return run
