"""Workers killed or hung half-way, on the embedded stack: nothing lost, nothing stuck,
nothing sent twice. The stack's resize runs in worker processes with a 6 s timeout, an
8 s lease and a 10 s visibility timeout on the uploads queue (thumbgen/local/stack.py), so a
killed worker's image is retried after 10 s and finished by the next worker."""
from __future__ import annotations

import time

from bench.load import SMALL, load_mix, run_load
from tests.imagegen import make_jpeg, make_png
from thumbgen.local import faults

BOUND = 45  # seconds: visibility (10) + a hang's timeout (6) + the retry, with room for a busy machine


def upload_with_fault(stack, receiver, point: str, action: str, png: bool = False) -> tuple[str, str]:
    data, content_type = (make_png(800, 600), "image/png") if png else (make_jpeg(1600, 1200), "image/jpeg")
    hook = f"/fault/{point}/{action}/{time.monotonic_ns()}"
    created = stack.client.create(filename="f", content_type=content_type, file_size=len(data),
                                  webhook_url=receiver.url(hook))
    faults.arm(stack.faults_dir, created["id"], point, action)
    upload = stack.client.put_and_complete(created, data)
    assert upload.put_status == 200
    return created["id"], hook


FAULTS = [("after_claim", "kill"), ("after_thumbnails", "hang"), ("before_outcome", "kill"),
          ("after_claim", "raise")]


def test_a_worker_dying_at_any_point_still_ends_in_one_outcome_and_one_webhook(stack, receiver):
    # All at once: each waits out a visibility timeout, and they overlap.
    started = [(point, action, *upload_with_fault(stack, receiver, point, action, png=n % 2 == 1))
               for n, (point, action) in enumerate(FAULTS)]
    for point, action, image_id, hook in started:
        got = receiver.wait_for(hook, timeout=BOUND)
        assert got, f"no webhook within {BOUND} s after a {action} at {point}"
        item = stack.client.get(image_id)
        assert item["status"] == "completed" and len(item["thumbnails"]) == 3, (point, action)
        assert not (stack.faults_dir / image_id).exists()  # the fault fired
    time.sleep(1)
    for point, action, _, hook in started:
        assert len(receiver.received(hook)) == 1, (point, action)  # each webhook came once


def test_a_small_load_with_a_fault_loses_nothing(stack):
    """bench.load's run, small: 40 uploads of mixed kinds, 8 at a time, one worker killed."""
    result = run_load(stack.api_url, stack.token("e2e-load"), load_mix(SMALL), uploads=40, concurrency=8,
                      faults_dir=str(stack.faults_dir), fault_count=1, seed=3, timeout=120)
    assert result.problems == []
    assert len(result.latencies_ms) == 40 and len(result.faults) == 1
