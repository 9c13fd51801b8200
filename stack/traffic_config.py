"""A model's ``traffic``: the load its replicas must serve, and the p95 latencies they must keep.

::

    traffic:
      requestsPerSecond: 20        # the peak, served within the latencies below
      minRequestsPerSecond: 2      # the trough: the autoscaler's floor serves it (default 0: one replica)
      inputTokens: 1000            # a typical request's prompt
      outputTokens: 200            # and its completion
      p95TtftS: 1.0                # time to first token, seconds
      p95TpotS: 0.05               # time per output token, seconds

With it the planner (``sizing.traffic``) picks the layout and replica count, and the autoscaler's
bounds follow: ``replicas`` is then derived, and ``autoscaling.minReplicas``/``maxReplicas`` may
be left out (given, they are checked against what the target needs).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from sizing.traffic import TrafficTarget


class TrafficConfig(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True, populate_by_name=True)

    requests_per_second: float = Field(gt=0, description="peak requests per second, served within the latencies")
    min_requests_per_second: float = Field(0, ge=0, description="the trough the autoscaler's floor serves")
    input_tokens: int = Field(ge=1, description="prompt tokens of a typical request")
    output_tokens: int = Field(ge=1, description="completion tokens of a typical request")
    p95_ttft_s: float | None = Field(None, gt=0, le=600, description="p95 time to first token, seconds")
    p95_tpot_s: float | None = Field(None, gt=0, le=10, description="p95 time per output token, seconds")

    @model_validator(mode="after")
    def _rates(self) -> TrafficConfig:
        if self.min_requests_per_second > self.requests_per_second:
            raise ValueError(
                f"minRequestsPerSecond {self.min_requests_per_second:g} is above requestsPerSecond "
                f"{self.requests_per_second:g}: the trough cannot exceed the peak"
            )
        return self

    def target(self) -> TrafficTarget:
        return TrafficTarget(
            requests_per_s=self.requests_per_second,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            p95_ttft_s=self.p95_ttft_s,
            p95_tpot_s=self.p95_tpot_s,
            min_requests_per_s=self.min_requests_per_second,
        )
