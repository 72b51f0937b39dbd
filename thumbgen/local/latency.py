"""A model of AWS's asynchronous hops, for the local stack (off unless asked for).

The local stack's event sources are in-process pumps: far faster than AWS's. With the model
on (`THUMBGEN_AWS_LATENCY=1`, or LocalStack(latency_model=True)), each hop waits a delay
drawn from a log-normal distribution fitted to published p50/p99 figures before it invokes
its handler, so the pipeline's end-to-end latency on AWS can be estimated on one machine.

Sources:
- DynamoDB stream -> Lambda, SQS -> Lambda, Lambda async: bitesizedserverless.com,
  "Serverless messaging latency compared" (2022): p50/p99 213/552 ms, 16/105 ms, 73/225 ms.
- S3 event notification -> SQS: AWS documents it as "typically ... in seconds"; serial
  measurements put the median near 230 ms and bursts far beyond. Modelled as 230 ms p50 and
  2 s p99, a guess on the optimistic side for bursts: treat its tail as a lower bound.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Hop:
    name: str
    p50_ms: float
    p99_ms: float
    source: str

    def draw(self, rng: random.Random) -> float:
        """One delay in seconds: log-normal with this hop's median and 99th percentile."""
        mu = math.log(self.p50_ms)
        sigma = math.log(self.p99_ms / self.p50_ms) / 2.3263  # z of the 99th percentile
        return rng.lognormvariate(mu, sigma) / 1000.0


BITESIZED = "bitesizedserverless.com, Serverless messaging latency compared (2022)"
S3_NOTIFICATION = Hop("S3 event -> SQS", 230, 2000, "AWS S3 docs ('typically seconds'); serial tests ~230 ms")
SQS_TO_LAMBDA = Hop("SQS -> Lambda", 16, 105, BITESIZED)
STREAM_TO_LAMBDA = Hop("DynamoDB stream -> Lambda", 213, 552, BITESIZED)
LAMBDA_ASYNC = Hop("Lambda async invoke", 73, 225, BITESIZED)
HOPS = (S3_NOTIFICATION, SQS_TO_LAMBDA, STREAM_TO_LAMBDA, LAMBDA_ASYNC)


class LatencyModel:
    """Delays to add per hop; `off()` adds none (the default for the local stack)."""

    def __init__(self, enabled: bool, seed: int | None = None):
        self.enabled = enabled
        self._rng = random.Random(seed)

    @classmethod
    def off(cls) -> "LatencyModel":
        return cls(False)

    def delay(self, *hops: Hop) -> float:
        """The total delay of these hops in sequence, in seconds (0 when off)."""
        if not self.enabled:
            return 0.0
        return sum(hop.draw(self._rng) for hop in hops)
