"""Which vLLM release's memory accounting a prediction follows.

The calibration set was measured on vLLM 0.26.0; the stack deploys a newer image. Upstream
changed the accounting in between, and those changes are kept here as explicit switches rather
than folded into fitted constants:

- the models outside 0.26's V2 default (MoE architectures other than DeepSeek-V2 and Qwen2-MoE,
  hybrids; ``sizing.runner``) moved from the V1 to the V2 model runner ("Use MRV2 for all
  models by default", vllm-project/vllm#53183, 2026-08);
- the V2 runner started reserving its CUDA-graph memory inside the KV budget ("[Model Runner
  V2] Reserve CUDA graph memory", #53306, 2026-08), as V1 always did;
- ``determine_available_memory`` now counts the free-memory drop since start-up plus the
  transient torch peak; for a fresh worker that is the same sum of weights, activation peak
  and non-torch growth, so it needs no switch.

``VLLM_0_26`` reproduces what was measured. ``VLLM_0_32`` is a projection. A stack plans with the
accounting of the release its image runs (``stack.engine_release``); a plan made on 0.26's is
also checked against the 0.32 projection, so an upgrade that would break it is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Accounting:
    vllm_release: str
    moe_on_v1_runner: bool  # models outside the V2 default set fall back to the V1 runner
    v2_cudagraph_in_budget: bool
    basis: str
    measured: bool  # calibrated on real runs of this release; otherwise projected from one that was

    @property
    def label(self) -> str:
        return f"vLLM {self.vllm_release} ({self.basis})"


VLLM_0_26 = Accounting(
    "0.26.0",
    moe_on_v1_runner=True,
    v2_cudagraph_in_budget=False,
    basis="measured on H100 80GB HBM3 and H200",
    measured=True,
)
VLLM_0_32 = Accounting(
    "0.32.0",
    moe_on_v1_runner=False,
    v2_cudagraph_in_budget=True,
    basis="projected from 0.26 with upstream changes #53183 and #53306",
    measured=False,
)
ACCOUNTINGS = {a.vllm_release.rsplit(".", 1)[0]: a for a in (VLLM_0_26, VLLM_0_32)}
