"""How long a new replica takes from scheduling to ``/health``: image pull, weight load, compile.

Three phases, each from stated, overridable assumptions (``StartupAssumptions``):

- **image pull**: the server image's compressed size over the node's pull rate, which the
  root volume bounds (containerd writes the unpacked layers there: a gp3 volume's baseline
  125 MiB/s) unless containerd's store is on the instance-store NVMe RAID. ~0 when the image was
  pre-pulled (``components.prepull``).
- **weight load**, by source: ``s3`` streams straight to the GPUs with the Run:ai streamer (no
  disk); ``huggingFace`` downloads into the cache, then reads it back from the cache's disk;
  ``volume`` reads a network volume (EBS/FSx PVC).
- **compile and graph capture**: vLLM's engine init (profiling, torch.compile, CUDA graphs). The
  calibration runs (../shared/calibration/logs, vLLM 0.26 on H100) measured "init engine ...
  took" 61-88 s, of which compilation 29-49 s and graph capture 8-13 s, for 7B-70B at TP 1-2;
  120 s adds CUDA/NCCL init and process start (what the server pod's fixed load base was).

The startupProbe's budget covers what happens after the container starts (load and compile),
times a margin; Pulumi's await timeout adds the image pull and 10%, as
``components.server_pod.await_timeout_seconds`` does. Stdlib only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

Source = Literal["s3", "huggingFace", "volume"]
SOURCES: tuple[str, ...] = ("s3", "huggingFace", "volume")
MIB_PER_GIB = 1024
# On each server workload: its estimate's describe(), behind its probe budget and await (``make synth`` prints it).
START_ESTIMATE_ANNOTATION = "gpu-inference.io/start-estimate"


@dataclass(frozen=True)
class StartupAssumptions:
    """Rates and fixed costs behind the estimate. Every field is an assumption, not a measurement,
    except where the docstring of this module names the measurement."""

    image_compressed_gib: float = 10.0  # vllm/vllm-openai, as components.vllm_model assumes today
    image_pull_mib_per_s_root_volume: float = 125.0  # gp3 baseline throughput, the unpack's bottleneck
    image_pull_mib_per_s_local_nvme: float = 400.0  # network and gunzip bound, not disk
    prepulled_image_s: float = 5.0  # the kubelet finds the image present
    s3_streamer_gib_per_s: float = 2.0  # Run:ai streamer S3 -> GPU, per pod; published figures are higher
    huggingface_download_mib_per_s: float = 200.0  # today's 5 s per GiB; the Hub may throttle
    cache_read_mib_per_s_root_volume: float = 125.0  # reading the download back from a gp3 volume
    cache_read_mib_per_s_local_nvme: float = 2048.0  # a RAID0 of 8 instance-store NVMe disks, conservatively
    volume_read_mib_per_s: float = 100.0  # today's 10 s per GiB from a PVC
    compile_s: float = 120.0  # engine init: see the module docstring
    margin: float = 1.5  # startupProbe budget = margin x expected load and compile

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value <= 0 and name != "prepulled_image_s":
                raise ValueError(f"StartupAssumptions.{name} = {value}: must be positive")
        if self.margin < 1:
            raise ValueError(f"StartupAssumptions.margin = {self.margin}: must be at least 1 (it is a safety margin)")


DEFAULT_ASSUMPTIONS = StartupAssumptions()


@dataclass(frozen=True)
class StartupEstimate:
    source: str
    weights_gib: float
    image_pull_s: float
    weights_load_s: float
    compile_s: float
    extra_s: float  # e.g. a multi-node group's Ray cluster forming
    margin: float

    @property
    def expected_s(self) -> float:
        """From the pod's scheduling to ``/health``, as expected (no margin)."""
        return self.image_pull_s + self.weights_load_s + self.compile_s + self.extra_s

    @property
    def startup_probe_budget_s(self) -> int:
        """What the startupProbe allows once the container runs: load, compile and extra, with the margin."""
        return math.ceil((self.weights_load_s + self.compile_s + self.extra_s) * self.margin)

    @property
    def await_timeout_s(self) -> int:
        """How long ``pulumi up`` waits for the workload: the pull, then the probe's budget, +10%."""
        return math.ceil((self.image_pull_s * self.margin + self.startup_probe_budget_s) * 1.1)

    def describe(self) -> str:
        return (
            f"start ~{self.expected_s / 60:.1f} min ({self.source}, {self.weights_gib:.0f} GiB): "
            f"image {self.image_pull_s:.0f} s, weights {self.weights_load_s:.0f} s, "
            f"compile {self.compile_s:.0f} s" + (f", extra {self.extra_s:.0f} s" if self.extra_s else "") + "; "
            f"startupProbe budget {self.startup_probe_budget_s} s, await timeout {self.await_timeout_s} s"
        )


def image_pull_seconds(prepulled: bool, local_nvme: bool, assumptions: StartupAssumptions) -> float:
    if prepulled:
        return assumptions.prepulled_image_s
    rate = assumptions.image_pull_mib_per_s_local_nvme if local_nvme else assumptions.image_pull_mib_per_s_root_volume
    return assumptions.image_compressed_gib * MIB_PER_GIB / rate


def weights_load_seconds(weights_gib: float, source: str, local_nvme: bool, assumptions: StartupAssumptions) -> float:
    mib = weights_gib * MIB_PER_GIB
    if source == "s3":
        return weights_gib / assumptions.s3_streamer_gib_per_s
    if source == "huggingFace":
        read = (
            assumptions.cache_read_mib_per_s_local_nvme if local_nvme else assumptions.cache_read_mib_per_s_root_volume
        )
        return mib / assumptions.huggingface_download_mib_per_s + mib / read
    if source == "volume":
        return mib / assumptions.volume_read_mib_per_s
    raise ValueError(f"source {source!r}: no load-rate assumption for it; use one of {', '.join(SOURCES)}")


def estimate_startup(
    weights_gib: float,
    source: str,
    *,
    prepulled: bool = False,
    local_nvme: bool = False,
    extra_s: float = 0.0,
    assumptions: StartupAssumptions = DEFAULT_ASSUMPTIONS,
) -> StartupEstimate:
    """The start-time estimate of one replica whose pods read ``weights_gib`` from ``source``."""
    if weights_gib <= 0:
        raise ValueError(f"weights_gib = {weights_gib}: must be positive")
    return StartupEstimate(
        source=source,
        weights_gib=weights_gib,
        image_pull_s=image_pull_seconds(prepulled, local_nvme, assumptions),
        weights_load_s=weights_load_seconds(weights_gib, source, local_nvme, assumptions),
        compile_s=assumptions.compile_s,
        extra_s=extra_s,
        margin=assumptions.margin,
    )


def with_overrides(assumptions: StartupAssumptions = DEFAULT_ASSUMPTIONS, **overrides: float) -> StartupAssumptions:
    """Assumptions with some fields replaced (e.g. from a stack's config); unknown names are an error."""
    known = set(vars(assumptions))
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown startup assumption(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return replace(assumptions, **overrides)
