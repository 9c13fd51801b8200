"""EC2 instance types with 8 SXM GPUs on NVLink/NVSwitch.

Sources: the EC2 accelerated-computing instance pages (GPUs, vCPUs, memory, EFA, NVMe) and
the us-east-1 on-demand price list after AWS's June 2025 P4/P5 price cut. Prices only order the
planner's choices between equally sized plans; they are indicative, not a bill. p5e and p5en are
sold mostly as Capacity Blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

from sizing.errors import SizingError
from sizing.gpus import GPUS, Gpu
from sizing.prices import ON_DEMAND


@dataclass(frozen=True)
class InstanceType:
    name: str
    gpu_name: str
    gpus_per_node: int
    vcpus: int
    memory_gib: int
    efa_interfaces: int
    instance_store_disks: int  # NVMe instance-store disks ("Instance store volumes" on the EC2 pages)
    instance_store_disk_gb: int

    @property
    def on_demand_usd_per_hour(self) -> float:
        """The price table's figure (``sizing.prices``: region, date and source with it)."""
        return ON_DEMAND[self.name].usd_per_hour

    @property
    def local_nvme_gb(self) -> int:
        return self.instance_store_disks * self.instance_store_disk_gb

    @property
    def gpu(self) -> Gpu:
        return GPUS[self.gpu_name]

    @property
    def usd_per_gpu_hour(self) -> float:
        return self.on_demand_usd_per_hour / self.gpus_per_node


INSTANCES: dict[str, InstanceType] = {
    it.name: it
    for it in (
        InstanceType("p4d.24xlarge", "A100-40GB", 8, 96, 1152, 4, 8, 1000),
        InstanceType("p4de.24xlarge", "A100-80GB", 8, 96, 1152, 4, 8, 1000),
        InstanceType("p5.48xlarge", "H100-80GB", 8, 192, 2048, 32, 8, 3840),
        InstanceType("p5e.48xlarge", "H200-141GB", 8, 192, 2048, 32, 8, 3840),
        InstanceType("p5en.48xlarge", "H200-141GB", 8, 192, 2048, 16, 8, 3840),
    )
}


def resolve_instance_type(name: str) -> InstanceType:
    try:
        return INSTANCES[name.strip().lower()]
    except KeyError:
        raise SizingError(
            f"unknown instance type {name!r}: accepted instance types are {', '.join(INSTANCES)}"
        ) from None


def cheapest_instance_for(gpu_name: str) -> InstanceType:
    """The instance a plan on ``gpu_name`` is priced and placed on when the config names a GPU."""
    candidates = [it for it in INSTANCES.values() if it.gpu_name == gpu_name]
    return min(candidates, key=lambda it: (it.on_demand_usd_per_hour, it.name))
