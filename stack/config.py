"""The stack's structured configuration, as pydantic models.

Each top-level key of ``Pulumi.<stack>.yaml`` under the ``gpu-inference:`` namespace is read with
``pulumi.Config().get_object`` and validated here: ``cluster``, ``nodeGroups`` and ``models``.
Keys are camelCase, unknown keys are rejected, and every error names its field path
(``models[1].maxModelLen``) and what would be valid. Checks that need the sizing catalog or the
planner (a model's context limit, whether it fits) live in ``stack.placement``. A model's serving
settings are the rows of ``stack.serving_settings``; its ``engine`` is a union of each engine's
typed options (``EngineOptions``; see the engines section below).

Three values are secrets and live outside the objects, so that ``pulumi config set --secret`` can
encrypt them alone: ``gpu-inference:kubeconfig`` (an existing cluster's kubeconfig),
``gpu-inference:hfToken`` (the Hugging Face token for gated downloads) and
``gpu-inference:ngcApiKey`` (the NGC API key NIM servers pull images and models with).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from sizing.errors import SizingError
from sizing.gpus import GPUS, resolve_gpu
from sizing.instances import INSTANCES, resolve_instance_type
from stack import serving_settings
from stack.autoscaling_config import AutoscalingConfig, CapacityBlockWindow, ClusterAutoscalingConfig, PriceOverrides
from stack.engine_release import DEFAULT_VLLM_IMAGE, SizingAccounting, release_from_image, resolve_accounting
from stack.image_reference import image_reference_problem
from stack.kubernetes_names import dns1123_label
from stack.model_source_s3 import S3Source
from stack.monitoring_config import MonitoringConfig
from stack.project import PROJECT
from stack.stack_reference_name import stack_reference_problem
from stack.traffic_config import TrafficConfig

DEFAULT_NAMESPACE = "inference"
KUBERNETES_MAX_NODES = 5000  # the largest cluster Kubernetes supports ("Considerations for large clusters")

PLACEMENT_GROUP_CREATE = "create"
PLACEMENT_GROUP_NONE = "none"

AmiType = Literal["AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA"]
CapacityType = Literal["ON_DEMAND", "SPOT", "CAPACITY_BLOCK"]


class ConfigError(ValueError):
    """Invalid stack configuration; ``str(error)`` lists every problem, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid stack configuration:\n" + "\n".join(f"  {p}" for p in problems))


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True)


def _dns_label(value: str, max_length: int) -> str:
    if problem := dns1123_label(value, max_length):
        raise ValueError(problem)
    return value


# --- cluster -----------------------------------------------------------------------------------


class SystemNodeGroup(_Model):
    """The small node group that runs non-GPU pods (CoreDNS, the NFD master, controllers)."""

    instance_type: str = "m7i.large"
    min_nodes: int = Field(2, ge=1)
    max_nodes: int = Field(3, ge=1)
    disk_size_gib: int = Field(50, ge=20)

    @model_validator(mode="after")
    def _sizes(self) -> SystemNodeGroup:
        if self.max_nodes < self.min_nodes:
            raise ValueError(f"maxNodes {self.max_nodes} is below minNodes {self.min_nodes}")
        return self


class NetworkStack(_Model):
    """A network stack whose outputs give the VPC and subnets (read through a StackReference)."""

    name: str = Field(description="Fully qualified stack name, e.g. acme/network/dev")
    vpc_id_output: str = "vpcId"
    subnet_ids_output: str = "privateSubnetIds"
    public_subnet_ids_output: str | None = None

    @field_validator("name")
    @classmethod
    def _stack(cls, value: str) -> str:
        if problem := stack_reference_problem(value):
            raise ValueError(problem)
        return value


class CreateCluster(_Model):
    """Create an EKS cluster (pulumi-eks, API authentication mode)."""

    name: str
    version: str | None = None
    vpc_id: str | None = None
    subnet_ids: list[str] | None = None
    public_subnet_ids: list[str] | None = None
    network_stack: NetworkStack | None = None
    endpoint_public_access: bool = True
    system_node_group: SystemNodeGroup = SystemNodeGroup()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _dns_label(value, 100)

    @model_validator(mode="after")
    def _network(self) -> CreateCluster:
        by_id = self.vpc_id is not None or self.subnet_ids is not None
        if by_id and self.network_stack is not None:
            raise ValueError("give either vpcId and subnetIds, or networkStack, not both")
        if self.network_stack is None:
            if self.vpc_id is None or not self.subnet_ids:
                raise ValueError(
                    "give the network: vpcId and subnetIds (private subnets for the nodes), "
                    "or networkStack (a stack whose outputs hold them)"
                )
        return self


class ClusterStackOutputs(_Model):
    """Output names of a platform team's cluster stack."""

    cluster_name: str = "clusterName"
    kubeconfig: str = "kubeconfig"
    node_subnet_ids: str = "privateSubnetIds"


class ExistingCluster(_Model):
    """Adopt a cluster: from the ``gpu-inference:kubeconfig`` secret, or from a cluster stack.

    What the stack cannot see on an adopted cluster is declared here and exported in the
    ``clusterAssumptions`` output: whether NetworkPolicies are enforced (the VPC CNI enforces them
    only with ``enableNetworkPolicy``, off by default), and where ``kube-system/aws-node`` (the VPC
    CNI) gets its AWS credentials: from the node role (``nodeRole``: the GPU node roles then carry
    ``AmazonEKS_CNI_Policy``) or from its own service account through Pod Identity or IRSA, set up
    by the platform (``serviceAccount``: the GPU node roles do not carry it, and nodes stay
    NotReady if the platform did not).
    """

    source: Literal["kubeconfig", "stackReference"]
    cluster_name: str | None = None
    subnet_ids: list[str] | None = None
    stack: str | None = None
    outputs: ClusterStackOutputs = ClusterStackOutputs()
    network_policy_enforced: bool | None = None
    aws_node_credentials: Literal["nodeRole", "serviceAccount"] = "nodeRole"

    @field_validator("stack")
    @classmethod
    def _stack(cls, value: str | None) -> str | None:
        if value is not None and (problem := stack_reference_problem(value)):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _source(self) -> ExistingCluster:
        if self.source == "kubeconfig":
            if self.stack is not None:
                raise ValueError("stack is only for source: stackReference")
            if not self.cluster_name:
                raise ValueError("source: kubeconfig needs clusterName (the EKS cluster the GPU node groups join)")
        else:
            if not self.stack:
                raise ValueError("source: stackReference needs stack (e.g. acme/platform/prod)")
            if self.cluster_name is not None:
                raise ValueError(
                    f"clusterName {self.cluster_name!r} would be ignored: with source: stackReference the cluster's "
                    f"name is the stack's output {self.outputs.cluster_name!r}; remove clusterName (or name another "
                    "output in outputs.clusterName)"
                )
        return self


# --- scheduling --------------------------------------------------------------------------------

KAI_SCHEDULER_NAME = "kai-scheduler"
KAI_PARENT_QUEUE = PROJECT  # created with install: true; the configured queues are its leaves


class ModelScheduling(_Model):
    """Which scheduler places a model's pods: the default kube-scheduler, or KAI Scheduler.

    With ``scheduler: kai`` every pod gets ``schedulerName: kai-scheduler`` and the label
    ``kai.scheduler/queue: <queue>``; KAI's pod-grouper then makes one PodGroup per
    LeaderWorkerSet group, so a multi-node replica is bound entirely or not at all.
    """

    scheduler: Literal["default", "kai"] = "default"
    queue: str | None = None

    @field_validator("queue")
    @classmethod
    def _queue(cls, value: str | None) -> str | None:
        return None if value is None else _dns_label(value, 63)

    @model_validator(mode="after")
    def _kai_queue(self) -> ModelScheduling:
        if self.scheduler == "kai" and not self.queue:
            raise ValueError("scheduler kai needs queue (the KAI queue the pods are charged to, e.g. default-queue)")
        if self.scheduler == "default" and self.queue:
            raise ValueError("queue is only used with scheduler: kai")
        return self

    @property
    def kai(self) -> bool:
        return self.scheduler == "kai"


class ClusterScheduling(ModelScheduling):
    """The cluster-wide default; ``install: true`` also installs KAI Scheduler (pinned chart)
    and creates the queue under a parent queue, for clusters that do not run it already."""

    install: bool = False

    @model_validator(mode="after")
    def _install(self) -> ClusterScheduling:
        if self.install and self.scheduler != "kai":
            raise ValueError("install: true installs KAI Scheduler: set scheduler: kai")
        return self


class ClusterConfig(_Model):
    """Where the servers run: exactly one of ``create`` or ``existing``."""

    create: CreateCluster | None = None
    existing: ExistingCluster | None = None
    namespace: str = DEFAULT_NAMESPACE
    client_namespaces: list[str] = Field(default_factory=list)
    scheduling: ClusterScheduling = ClusterScheduling()

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return _dns_label(value, 63)

    @field_validator("client_namespaces")
    @classmethod
    def _clients(cls, value: list[str]) -> list[str]:
        for item in value:
            _dns_label(item, 63)
        return value

    @model_validator(mode="after")
    def _one_mode(self) -> ClusterConfig:
        if (self.create is None) == (self.existing is None):
            raise ValueError("give exactly one of create (a new EKS cluster) or existing (adopt one)")
        return self


# --- node groups -------------------------------------------------------------------------------


class NodeGroupConfig(_Model):
    """One EKS managed node group of GPU nodes."""

    name: str
    gpu: str | None = None
    instance_type: str | None = None
    capacity_type: CapacityType = "ON_DEMAND"
    capacity_reservation_id: str | None = None
    min_nodes: int = Field(0, ge=0)
    max_nodes: int = Field(ge=1, le=KUBERNETES_MAX_NODES)
    disk_size_gib: int = Field(500, ge=50, le=16384)
    efa: bool = False
    placement_group: str | None = Field(
        None,
        description=(
            "create (a cluster placement group made by the stack), none, or the name of an existing cluster "
            "placement group (the one a capacity reservation was created in); default: create for efa groups "
            "without a reservation, none otherwise"
        ),
    )
    ami_type: AmiType = "AL2023_x86_64_NVIDIA"
    subnet_ids: list[str] | None = None
    force_update_version: bool = Field(
        False,
        description=(
            "let EKS replace nodes whose pods a PodDisruptionBudget keeps from being evicted within 15 minutes, "
            "instead of failing the update with PodEvictionFailure"
        ),
    )
    capacity_block: CapacityBlockWindow | None = Field(None, description="the Capacity Block's window (CAPACITY_BLOCK)")
    reserved_instances: int | None = Field(
        None, ge=1, description="instances in the capacity reservation or Capacity Block (bounds maxReplicas)"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _dns_label(value, 40)

    @field_validator("gpu")
    @classmethod
    def _gpu(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return resolve_gpu(value).name
        except SizingError as error:
            raise ValueError(str(error)) from None

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return resolve_instance_type(value).name
        except SizingError as error:
            raise ValueError(str(error)) from None

    @field_validator("capacity_reservation_id")
    @classmethod
    def _reservation(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^cr-[0-9a-f]{8,17}$", value):
            raise ValueError(f"{value!r} is not a capacity reservation id (cr- followed by 8 to 17 hex digits)")
        return value

    @field_validator("placement_group")
    @classmethod
    def _placement_group(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[\x20-\x7e]{1,255}$", value):
            raise ValueError(
                f"{value!r} is not a placement group: give create, none, or an existing group's name "
                "(1 to 255 ASCII characters)"
            )
        return value

    @model_validator(mode="after")
    def _rules(self) -> NodeGroupConfig:
        if (self.gpu is None) == (self.instance_type is None):
            raise ValueError(f"give exactly one of gpu ({', '.join(GPUS)}) or instanceType ({', '.join(INSTANCES)})")
        if self.max_nodes < self.min_nodes:
            raise ValueError(f"maxNodes {self.max_nodes} is below minNodes {self.min_nodes}")
        if self.capacity_type == "CAPACITY_BLOCK" and self.capacity_reservation_id is None:
            raise ValueError("capacityType CAPACITY_BLOCK needs capacityReservationId (the capacity block's cr- id)")
        if self.capacity_type == "SPOT" and self.capacity_reservation_id is not None:
            raise ValueError("capacityReservationId cannot be used with capacityType SPOT")
        if self.capacity_block is not None and self.capacity_type != "CAPACITY_BLOCK":
            raise ValueError(
                "capacityBlock is a Capacity Block's window: it needs capacityType CAPACITY_BLOCK, "
                f"not {self.capacity_type}"
            )
        if self.reserved_instances is not None and self.capacity_reservation_id is None:
            raise ValueError(
                "reservedInstances is the size of the capacity reservation: it needs capacityReservationId"
            )
        if self.efa and self.instance.efa_interfaces < 1:
            raise ValueError(
                f"efa: true needs an EFA-capable instance type; {self.instance.name} has no EFA interface "
                f"(EFA-capable: {', '.join(n for n, it in INSTANCES.items() if it.efa_interfaces)})"
            )
        if self.placement_group == PLACEMENT_GROUP_CREATE and self.capacity_type == "CAPACITY_BLOCK":
            raise ValueError(
                "placementGroup create cannot be used with capacityType CAPACITY_BLOCK: a Capacity Block's "
                "instances are already co-located and launches into a placement group fail (AWS ParallelCluster "
                "refuses the combination, aws-parallelcluster#6311); leave placementGroup out or set none"
            )
        if self.capacity_type == "CAPACITY_BLOCK" and self.existing_placement_group is not None:
            raise ValueError(
                f"placementGroup {self.placement_group!r} cannot be used with capacityType CAPACITY_BLOCK: a Capacity "
                "Block's instances are already co-located and launches into a placement group fail (AWS "
                "ParallelCluster refuses the combination, aws-parallelcluster#6311); leave placementGroup out or set "
                "none"
            )
        if self.placement_group == PLACEMENT_GROUP_CREATE and self.capacity_reservation_id is not None:
            raise ValueError(
                f"placementGroup create cannot be used with capacityReservationId {self.capacity_reservation_id}: "
                "EC2 cannot move an existing Capacity Reservation into a placement group (EC2 User Guide, "
                "'Capacity Reservations in cluster placement groups', Limitations), so instances targeting it "
                "fail to launch in a new group; set none (a reservation created in a cluster placement group "
                "launches there by itself) or the name of the group the reservation was created in"
            )
        if self.efa and self.subnet_ids is not None and len(self.subnet_ids) != 1:
            raise ValueError(
                f"efa: true launches into a cluster placement group, which lives in one Availability Zone: give one "
                f"subnet in subnetIds, not {len(self.subnet_ids)}"
            )
        return self

    @property
    def instance(self):
        from sizing.instances import cheapest_instance_for

        if self.instance_type is not None:
            return resolve_instance_type(self.instance_type)
        return cheapest_instance_for(self.gpu)

    @property
    def creates_placement_group(self) -> bool:
        """Whether the stack creates a cluster placement group for the group: by default only for EFA
        groups without a reservation or Capacity Block (those decide placement themselves)."""
        if self.placement_group is None:
            return self.efa and self.capacity_reservation_id is None
        return self.placement_group == PLACEMENT_GROUP_CREATE

    @property
    def existing_placement_group(self) -> str | None:
        """The name of an existing placement group the nodes launch into, if one is named."""
        if self.placement_group in (None, PLACEMENT_GROUP_CREATE, PLACEMENT_GROUP_NONE):
            return None
        return self.placement_group


# --- models ------------------------------------------------------------------------------------


class HuggingFaceSource(_Model):
    """Download the weights from the Hugging Face Hub at start (token from ``gpu-inference:hfToken``)."""

    type: Literal["huggingFace"]
    repo: str | None = Field(
        None, description="Repo to download when it differs from the catalog's (e.g. the -Instruct variant)"
    )
    revision: str | None = None

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$", value):
            raise ValueError(f"{value!r} is not a Hugging Face repo id (owner/name)")
        return value


class VolumeSource(_Model):
    """Serve weights from a read-only PersistentVolumeClaim (``HF_HUB_OFFLINE=1``)."""

    type: Literal["volume"]
    claim_name: str
    path: str = Field(description="Directory of the model inside the volume, e.g. llama-3.1-70b-instruct")

    @field_validator("claim_name")
    @classmethod
    def _claim(cls, value: str) -> str:
        return _dns_label(value, 253)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/") or not value.strip():
            raise ValueError(f"{value!r} must be a relative directory inside the volume, without '..'")
        return value.strip("/")


# --- engines ------------------------------------------------------------------------------------
# ``engine`` is a discriminated union on ``type``: each engine's options are one model here, and the
# union is built from ENGINE_OPTIONS, so an engine added elsewhere (``register_engine_options``) is
# validated like the built-in ones. Stack files written before the union (``engine: nim`` with a
# ``nim:`` block, the vLLM ``image:`` at the model's level) are still read: ``parse_config`` folds them
# into the union and reports errors at the paths the file uses.


class EngineOptions(_Model):
    """What every engine's options share; subclasses declare ``type: Literal["<name>"]``."""

    type: str

    display_name: ClassVar[str] = "the engine"
    single_node_only: ClassVar[bool] = False  # the engine's launcher cannot span nodes here
    takes_source: ClassVar[bool] = True  # it loads ``source``; False: the engine fetches its own model
    fetches_model: ClassVar[str] = ""  # with takes_source False: where the engine gets its model
    needs_secrets: ClassVar[tuple[str, ...]] = ()  # stack secrets (gpu-inference:<key>) it cannot run without

    # The vLLM release the engine runs, where its image does not say (stack.engine_release), and a
    # known release's accounting accepted explicitly for one that has none.
    vllm_release: str | None = None
    sizing_accounting: str | None = None

    def allowed_tensor_parallel_sizes(self, path: str) -> list[int] | None:
        """The TP sizes the planner may choose from (None: any); ``path`` is where these options sit."""
        return None

    def sizing(self, path: str) -> SizingAccounting:
        """The memory accounting this engine's plans follow; ValueError naming ``path`` when none fits."""
        if self.vllm_release is None:
            return resolve_accounting(None, "no vllmRelease declared", self.sizing_accounting, path)
        return resolve_accounting(self.vllm_release, "declared", self.sizing_accounting, path)


def _pinned(value: str, example: str) -> str:
    if problem := image_reference_problem(value, example):
        raise ValueError(problem)
    return value


class VllmOptions(EngineOptions):
    """vLLM's OpenAI-compatible server (the default engine)."""

    type: Literal["vllm"] = "vllm"
    display_name: ClassVar[str] = "vLLM"
    image: str | None = Field(None, description="the vLLM image; vllm/vllm-openai at the pinned release when unset")

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        return None if value is None else _pinned(value, DEFAULT_VLLM_IMAGE)

    def sizing(self, path: str) -> SizingAccounting:
        image = self.image or DEFAULT_VLLM_IMAGE
        tagged = release_from_image(image)
        if self.vllm_release is not None and tagged is not None and self.vllm_release != tagged:
            raise ValueError(
                f"{path}.vllmRelease: {self.vllm_release} contradicts the image {image}, tagged {tagged}: "
                "remove vllmRelease, or name the release the image runs"
            )
        if tagged is not None:
            return resolve_accounting(tagged, f"tag of {image}", self.sizing_accounting, path)
        if self.vllm_release is not None:
            return resolve_accounting(self.vllm_release, f"declared for {image}", self.sizing_accounting, path)
        return resolve_accounting(None, f"the image {image}", self.sizing_accounting, path)


NIM_REGISTRY = "nvcr.io/nim/"
NIM_PROFILE_TP = re.compile(r"(?:^|[-_])tp(\d+)(?:$|[-_])")
NIM_PROFILE_PP = re.compile(r"(?:^|[-_])pp(\d+)(?:$|[-_])")


class NimCache(_Model):
    """Where NIM keeps what it downloads from NGC (``NIM_CACHE_PATH=/opt/nim/.cache``): a
    per-pod emptyDir sized from the weights (default), or an existing PersistentVolumeClaim."""

    type: Literal["emptyDir", "pvc"] = "emptyDir"
    claim_name: str | None = None
    size_gib: int | None = Field(None, ge=10)

    @field_validator("claim_name")
    @classmethod
    def _claim(cls, value: str | None) -> str | None:
        return None if value is None else _dns_label(value, 253)

    @model_validator(mode="after")
    def _kind(self) -> NimCache:
        if self.type == "pvc" and not self.claim_name:
            raise ValueError("type pvc needs claimName (an existing ReadWriteOnce/ReadWriteMany claim)")
        if self.type == "emptyDir" and self.claim_name:
            raise ValueError("claimName is only for type: pvc")
        return self


class NimOptions(EngineOptions):
    """NVIDIA NIM for LLMs as the engine of one model."""

    type: Literal["nim"] = "nim"
    image: str = Field(description="nvcr.io/nim/<org>/<model>:<tag>, pinned")
    profile: str | None = Field(None, description="NIM_MODEL_PROFILE: a profile id or its readable name")
    profile_tensor_parallel_sizes: list[int] | None = Field(
        None, description="TP sizes the image's profiles offer for this GPU (list-model-profiles)"
    )
    passthrough_args: bool = Field(
        True, description="pass the sizing's memory settings to NIM's vLLM backend (NIM_PASSTHROUGH_ARGS)"
    )
    cache: NimCache = NimCache()

    display_name: ClassVar[str] = "NIM"
    single_node_only: ClassVar[bool] = True
    takes_source: ClassVar[bool] = False
    fetches_model: ClassVar[str] = "NIM downloads its model from NGC into nim.cache"
    needs_secrets: ClassVar[tuple[str, ...]] = ("ngcApiKey",)

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        if not value.startswith(NIM_REGISTRY) or value.count("/") < 3:
            raise ValueError(f"{value!r} is not a NIM image: give {NIM_REGISTRY}<org>/<model>:<tag>")
        return _pinned(value, "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.4")

    def sizing(self, path: str) -> SizingAccounting:
        """NIM's image tag is NIM's release, not its vLLM backend's: without a declared vllmRelease the
        plan is made on the measured accounting and says it is assumed (and the preview warns)."""
        if self.vllm_release is None:
            return resolve_accounting(
                None,
                f"NIM {self.image} does not name its vLLM backend release (declare it as {path}.vllmRelease)",
                self.sizing_accounting,
                path,
                assumable=True,
            )
        return resolve_accounting(self.vllm_release, f"declared for {self.image}", self.sizing_accounting, path)

    @field_validator("profile_tensor_parallel_sizes")
    @classmethod
    def _tps(cls, value: list[int] | None) -> list[int] | None:
        if value is not None:
            if not value or any(tp not in (1, 2, 4, 8) for tp in value):
                raise ValueError(f"{value} is invalid: list tensor-parallel sizes among 1, 2, 4, 8")
            return sorted(set(value))
        return value

    @property
    def profile_tensor_parallel_size(self) -> int | None:
        match = NIM_PROFILE_TP.search(self.profile or "")
        return int(match.group(1)) if match else None

    @property
    def profile_pipeline_parallel_size(self) -> int | None:
        match = NIM_PROFILE_PP.search(self.profile or "")
        return int(match.group(1)) if match else None

    def offered_tensor_parallel_sizes(self) -> list[int] | None:
        """The TP sizes the declared profile(s) allow, or None when nothing was declared."""
        named = self.profile_tensor_parallel_size
        if named is not None and self.profile_tensor_parallel_sizes is not None:
            return [tp for tp in self.profile_tensor_parallel_sizes if tp == named]
        if named is not None:
            return [named]
        return self.profile_tensor_parallel_sizes

    def allowed_tensor_parallel_sizes(self, path: str) -> list[int] | None:
        offered = self.offered_tensor_parallel_sizes()
        if offered is not None and not offered:
            raise ConfigError(
                [
                    f"{path}.profile: {self.profile!r} names tp{self.profile_tensor_parallel_size}, which is not among "
                    f"{path.rsplit('.', 1)[-1]}.profileTensorParallelSizes {self.profile_tensor_parallel_sizes}"
                ]
            )
        pp = self.profile_pipeline_parallel_size
        if pp is not None and pp > 1:
            raise ConfigError(
                [
                    f"{path}.profile: {self.profile!r} is a pp{pp} profile, which spans nodes; this stack serves NIM "
                    "on one node (its multi-node launcher is not wired here): choose a pp1 profile, or engine: vllm"
                ]
            )
        return offered


ENGINE_OPTIONS: dict[str, type[EngineOptions]] = {"vllm": VllmOptions, "nim": NimOptions}
DEFAULT_ENGINE = "vllm"


def _engine_union() -> Any:
    options = tuple(ENGINE_OPTIONS.values())
    if len(options) == 1:
        return options[0]
    return Annotated[Union[options], Field(discriminator="type")]  # noqa: UP007 - built at run time


class ModelConfig(_Model):
    """One served model: what to serve, with which engine settings, how many replicas, where."""

    name: str
    model: str = Field(description="Catalog name (e.g. llama-3.1-70b) or a Hugging Face repo id")
    architecture: dict[str, Any] | None = Field(
        None, description="config.json fields, required when model is not a catalog name"
    )
    source: HuggingFaceSource | VolumeSource | S3Source = Field(
        default_factory=lambda: HuggingFaceSource(type="huggingFace"), discriminator="type"
    )
    # The serving settings: one field per row of stack.serving_settings.SERVING_SETTINGS.
    for _field, (_annotation, _keywords) in serving_settings.config_fields().items():
        __annotations__[_field] = _annotation
        locals()[_field] = Field(**_keywords)
    del _field, _annotation, _keywords
    min_concurrency: float = Field(1.0, gt=0)
    rollout: Literal["noSurge", "surge"] = Field(
        "noSurge",
        description="noSurge: replace one replica at a time (no spare GPUs; one replica down); surge: start the "
        "new replica before stopping an old one (no capacity lost; the node group keeps room for it)",
    )
    drain_seconds: int | None = Field(
        None,
        ge=0,
        le=86400,
        description="seconds in-flight requests get to finish when a pod stops (default: from maxModelLen)",
    )
    tensor_parallel_size: int | None = Field(None, ge=1, le=8)
    pipeline_parallel_size: int | None = Field(None, ge=1)
    replicas: int = Field(1, ge=0)
    node_group: str | None = None
    served_model_name: str | None = None
    client_namespaces: list[str] | None = None
    engine: _engine_union() = Field(default_factory=lambda: ENGINE_OPTIONS[DEFAULT_ENGINE]())  # type: ignore[valid-type]
    scheduling: ModelScheduling | None = None
    autoscaling: AutoscalingConfig | None = None
    traffic: TrafficConfig | None = None
    # Where the engine's options sit in the stack file: "engine" (the union), or the legacy places.
    _engine_path: str = PrivateAttr(default="engine")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _dns_label(value, 63)  # the objects it becomes: stack.derived_names

    @field_validator("client_namespaces")
    @classmethod
    def _clients(cls, value: list[str] | None) -> list[str] | None:
        for item in value or ():
            _dns_label(item, 63)
        return value

    @model_validator(mode="before")
    @classmethod
    def _replicas_from_autoscaling(cls, data: Any) -> Any:
        """Autoscaled, the workload starts at max(minReplicas, 1) (the plan sizes the nodes for that)
        and the autoscaler owns the count after; a fixed ``replicas`` beside it would be ignored."""
        if not isinstance(data, dict):
            return data
        if isinstance(data.get("traffic"), dict) and "replicas" in data:
            raise ValueError(
                f"replicas {data['replicas']!r} is a fixed count but traffic is given: remove replicas (the planner "
                "derives the replicas that serve traffic.requestsPerSecond), or remove traffic"
            )
        if not isinstance(data.get("autoscaling"), dict):
            return data
        if "replicas" in data:
            raise ValueError(
                f"replicas {data['replicas']!r} is a fixed count but autoscaling is given: remove replicas (the "
                "workload starts at max(minReplicas, 1) and the autoscaler moves it between minReplicas and "
                "maxReplicas), or remove autoscaling"
            )
        low = data["autoscaling"].get("minReplicas")
        if isinstance(low, int) and not isinstance(low, bool) and low >= 0:
            return {**data, "replicas": max(low, 1)}
        return data

    @model_validator(mode="after")
    def _engine(self) -> ModelConfig:
        if not self.engine.takes_source and "source" in self.model_fields_set:
            raise ValueError(f"source is not used with engine {self.engine.type}: {self.engine.fetches_model}")
        return self

    @model_validator(mode="after")
    def _traffic(self) -> ModelConfig:
        auto, traffic = self.autoscaling, self.traffic
        if auto is not None and traffic is None:
            bounds = (("minReplicas", auto.min_replicas), ("maxReplicas", auto.max_replicas))
            missing = [key for key, value in bounds if value is None]
            if missing:
                raise ValueError(
                    f"autoscaling.{missing[0]} is required without traffic: give "
                    f"{' and '.join(f'autoscaling.{key}' for key in missing)}, or give traffic "
                    "(requestsPerSecond, inputTokens, outputTokens, p95TtftS, p95TpotS) to derive them"
                )
        if traffic is None:
            return self
        if traffic.min_requests_per_second and auto is None:
            raise ValueError(
                f"traffic.minRequestsPerSecond {traffic.min_requests_per_second:g} sets the autoscaler's floor, but "
                "the model has no autoscaling: add autoscaling: {} (bounds derived from traffic), or remove it"
            )
        length = traffic.input_tokens + traffic.output_tokens
        if length > self.max_model_len:
            raise ValueError(
                f"traffic.inputTokens {traffic.input_tokens} + outputTokens {traffic.output_tokens} = {length} "
                f"tokens exceed maxModelLen {self.max_model_len}: raise maxModelLen or give the typical request"
            )
        return self

    @property
    def engine_name(self) -> str:
        return self.engine.type

    def engine_field_path(self, field: str) -> str:
        """Where an engine option is written in the stack file, for error messages (``image``,
        ``nim.profile`` or ``engine.image``)."""
        return f"{self._engine_path}.{field}" if self._engine_path else field


def register_engine_options(options: type[EngineOptions]) -> None:
    """Add an engine's options to the ``engine`` union (its ``type`` Literal names it)."""
    name = options.model_fields["type"].default
    if not isinstance(name, str):
        raise TypeError(f"{options.__name__}.type needs a Literal default naming the engine")
    ENGINE_OPTIONS[name] = options
    _rebuild_engine_union()


def unregister_engine_options(name: str) -> None:
    if name in (DEFAULT_ENGINE, "nim"):
        raise ValueError(f"{name} is built in")
    ENGINE_OPTIONS.pop(name, None)
    _rebuild_engine_union()


def _rebuild_engine_union() -> None:
    ModelConfig.model_fields["engine"] = FieldInfo.from_annotated_attribute(
        _engine_union(), Field(default_factory=lambda: ENGINE_OPTIONS[DEFAULT_ENGINE]())
    )
    ModelConfig.model_rebuild(force=True)
    StackConfig.model_rebuild(force=True)


# --- the whole stack ---------------------------------------------------------------------------


class StackConfig(_Model):
    cluster: ClusterConfig
    node_groups: list[NodeGroupConfig] = Field(min_length=1)
    models: list[ModelConfig] = Field(default_factory=list)
    monitoring: MonitoringConfig | None = None
    autoscaling: ClusterAutoscalingConfig = Field(default_factory=ClusterAutoscalingConfig)
    prices: PriceOverrides = Field(default_factory=PriceOverrides)

    def node_group(self, name: str) -> NodeGroupConfig:
        return next(group for group in self.node_groups if group.name == name)


SOURCE_TYPES: dict[str, type[BaseModel]] = {"huggingFace": HuggingFaceSource, "volume": VolumeSource, "s3": S3Source}


def _union_tag(part: Any, after: str) -> bool:
    """Whether a location part is a discriminated union's tag (not a field the user wrote)."""
    if after.endswith("source"):
        return part in SOURCE_TYPES
    if after.endswith("engine"):
        return part in ENGINE_OPTIONS
    return False


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _union_tag(part, out):
            continue
        else:
            text = str(part)
            out += ("." if out else "") + (text if text.isprintable() else repr(text))
    return out


def _valid_keys(model: type[BaseModel]) -> str:
    return ", ".join(info.alias or name for name, info in model.model_fields.items())


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class that owns the field at ``loc`` (for listing valid keys)."""
    current: Any = StackConfig
    previous: Any = None
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if previous == "source" and part in SOURCE_TYPES:
            current = SOURCE_TYPES[part]
            continue
        if previous == "engine" and part in ENGINE_OPTIONS:
            current = ENGINE_OPTIONS[part]
            continue
        previous = part
        field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return None
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        for candidate in candidates:
            inner = getattr(candidate, "__args__", ())
            for c in (candidate, *inner):
                if isinstance(c, type) and issubclass(c, BaseModel):
                    current = c
                    break
            else:
                continue
            break
        else:
            return None
    return current


def format_validation_error(error: ValidationError, renames: dict[str, str] | None = None) -> list[str]:
    problems = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        path = _renamed(_path(loc), renames or {})
        kind = item["type"]
        message = item["msg"]
        if kind == "extra_forbidden":
            owner = _model_at(loc)
            valid = f"; valid keys here are {_valid_keys(owner)}" if owner else ""
            problems.append(f"{path}: unknown key{valid}")
            continue
        if kind == "missing":
            problems.append(f"{path}: required")
            continue
        message = message.removeprefix("Value error, ")
        value = item.get("input")
        if kind not in ("value_error",) and not isinstance(value, (dict, list)):
            message = f"{value!r} is invalid: {message}"
        problems.append(f"{path}: {message}" if path else message)
    return problems


def _renamed(path: str, renames: dict[str, str]) -> str:
    """Paths inside a legacy model's engine options, as its stack file spells them."""
    for old, new in renames.items():
        if path.startswith(old):
            return new + path[len(old) :]
    return path


def _fold_legacy_engine(index: int, raw: dict[str, Any]) -> tuple[dict[str, Any], str | None, list[str]]:
    """A model written before the engine union (``engine: <name>`` or none, the vLLM ``image`` at the
    model's level, a ``nim:`` block) as the union's shape: (model, where its options were, problems)."""
    engine = raw.get("engine", DEFAULT_ENGINE)
    if not isinstance(engine, str):
        return raw, None, []
    path = f"models[{index}]"
    model = {k: v for k, v in raw.items() if k not in ("engine", "nim")}
    if engine == "nim":
        if raw.get("nim") is None:
            return (
                model,
                None,
                [
                    f"{path}: engine nim needs nim (at least nim.image, "
                    "e.g. nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.4)"
                ],
            )
        if "image" in raw:
            return model, None, [f"{path}: image is the vLLM image; with engine nim give nim.image"]
        options = raw["nim"]
        model["engine"] = {**options, "type": "nim"} if isinstance(options, dict) else options
        return model, "nim", []
    if "nim" in raw:
        return model, None, [f"{path}: nim is only used with engine: nim"]
    options: dict[str, Any] = {"type": engine}
    if "image" in model:
        options["image"] = model.pop("image")
    model["engine"] = options
    return model, "", []


def parse_config(raw: dict[str, Any]) -> StackConfig:
    """Validate the raw config objects; raise ConfigError listing every problem with its path."""
    missing = [key for key in ("cluster", "nodeGroups") if raw.get(key) is None]
    if missing:
        raise ConfigError([f"{key}: required (set gpu-inference:{key} in Pulumi.<stack>.yaml)" for key in missing])
    raw = {k: v for k, v in raw.items() if v is not None}
    problems: list[str] = []
    renames: dict[str, str] = {}
    legacy: dict[int, str] = {}
    if isinstance(raw.get("models"), list):
        models = []
        for i, item in enumerate(raw["models"]):
            if not isinstance(item, dict):
                models.append(item)
                continue
            folded, where, wrong = _fold_legacy_engine(i, item)
            problems += wrong
            models.append(folded)
            if where is not None:
                legacy[i] = where
                renames[f"models[{i}].engine."] = f"models[{i}].{where}." if where else f"models[{i}]."
        raw = {**raw, "models": models}
    if problems:
        raise ConfigError(problems)
    try:
        config = StackConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, renames)) from None
    for i, where in legacy.items():
        config.models[i]._engine_path = where
    problems = _cross_checks(config)
    if problems:
        raise ConfigError(problems)
    return config


def _cross_checks(config: StackConfig) -> list[str]:
    problems = []
    if config.monitoring is not None:
        problems += config.monitoring.problems([m.name for m in config.models], config.cluster.create is not None)
    seen: dict[str, int] = {}
    for i, group in enumerate(config.node_groups):
        if group.name in seen:
            problems.append(f"nodeGroups[{i}].name: {group.name!r} is already used by nodeGroups[{seen[group.name]}]")
        seen.setdefault(group.name, i)
    group_names = [g.name for g in config.node_groups]
    seen = {}
    for i, model in enumerate(config.models):
        if model.name in seen:
            problems.append(f"models[{i}].name: {model.name!r} is already used by models[{seen[model.name]}]")
        seen.setdefault(model.name, i)
        if model.node_group is not None and model.node_group not in group_names:
            problems.append(
                f"models[{i}].nodeGroup: {model.node_group!r} is not a node group; "
                f"configured node groups are {', '.join(group_names)}"
            )
    scheduling = config.cluster.scheduling
    if scheduling.install:
        queues = [("cluster.scheduling.queue", scheduling.queue)] + [
            (f"models[{i}].scheduling.queue", m.scheduling.queue) for i, m in enumerate(config.models) if m.scheduling
        ]
        for path, queue in queues:
            if queue == KAI_PARENT_QUEUE:
                problems.append(
                    f"{path}: {queue!r} is the parent queue install: true creates; pods go to leaf queues: "
                    "use another name"
                )
    if config.cluster.existing is not None and config.cluster.existing.source == "kubeconfig":
        if not config.cluster.existing.subnet_ids:
            problems.append(
                "cluster.existing.subnetIds: required with source: kubeconfig "
                "(the subnets the GPU node groups launch in)"
            )
    return problems
