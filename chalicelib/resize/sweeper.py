"""The sweeper: images left `processing` longer than the bound are failed and counted.

The queue's retries and dead-letter consumer already end every image; this is the check
that they did. Each run reads every stuck image (page by page), then fails each one that
is still stuck when looked at again (failed / internal_error, webhook included)
and reports the count as a CloudWatch metric in Embedded Metric Format: one log line,
no PutMetricData permission, and the StuckImages alarm watches it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

from chalicelib.images import record
from chalicelib.images.store import RecordStore
from chalicelib.platform import logs
from chalicelib.resize.resizer import Resizer

log = logs.get("sweeper")
METRIC_NAMESPACE = "thumbgen"


def metric_line(stage: str, stuck: int, at_ms: int) -> dict[str, Any]:
    """The Embedded Metric Format fields of one StuckImages data point."""
    return {
        "_aws": {"Timestamp": at_ms, "CloudWatchMetrics": [{
            "Namespace": METRIC_NAMESPACE, "Dimensions": [["Stage"]],
            "Metrics": [{"Name": "StuckImages", "Unit": "Count"}],
        }]},
        "Stage": stage,
        "StuckImages": stuck,
    }


@dataclass
class Sweeper:
    records: RecordStore
    resizer: Resizer
    stuck_after_seconds: int
    stage: str
    now: Callable[[], Any] = record.utc_now

    def sweep(self) -> list[str]:
        """Fail every image processing since before the bound; their ids."""
        before = record.iso(self.now() - timedelta(seconds=self.stuck_after_seconds))
        stuck = self.records.processing_since_before(before)
        message = f"the image was still processing after {self.stuck_after_seconds} s; upload it again"
        failed = [i for i in stuck if self.resizer.give_up(i, message, claimed_before=before) == "failed"]
        logs.event(log, "sweep.finished", found=len(stuck), failed=len(failed),
                   **metric_line(self.stage, len(stuck), int(time.time() * 1000)))
        return failed
