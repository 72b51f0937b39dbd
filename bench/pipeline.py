"""Pipeline latency on the local stack: end of the PUT -> signed webhook received.

Uploads a 12 MP JPEG several times through the real HTTP path (POST, PUT, then POST
/images/{id}/complete as every client does) and prints the median and p90 latency, next
to the engine's own time for the same image measured in this run (the part of the latency
no plumbing can remove), and their ratio.
"""
from __future__ import annotations

import logging
import statistics
import time

from bench import images
from chalicelib import imaging
from thumbgen.client import ThumbgenClient
from thumbgen.receiver import WebhookReceiver
from thumbgen.stack import LocalStack, free_port

RUNS = 15
TARGET_MS = 300


def twelve_megapixel_jpeg() -> bytes:
    """The engine bench's 12 MP class: 4000x3000 photo-like JPEG, q92 (~4 MB)."""
    return images.ensure((images.CLASS_BY_NAME["jpeg-12mp"],))["jpeg-12mp"].read_bytes()


def main() -> None:
    logging.getLogger("thumbgen").setLevel(logging.WARNING)
    data = twelve_megapixel_jpeg()
    engine = []
    for _ in range(5):
        t0 = time.perf_counter()
        imaging.render_thumbnails(data)
        engine.append((time.perf_counter() - t0) * 1000)
    stack = LocalStack(aws_port=free_port(), api_port=free_port()).start()
    try:
        client = ThumbgenClient(stack.api_url, token=stack.demo_token())
        with WebhookReceiver() as receiver:
            latencies = []
            for run in range(RUNS + 1):  # the first run warms the lazy clients up
                path = f"/bench/{run}"
                upload = client.upload(data, content_type="image/jpeg", filename="12mp.jpg",
                                       webhook_url=receiver.url(path))
                assert upload.put_status == 200, upload.put_status
                got = receiver.wait_for(path, timeout=30)
                if not got:
                    raise SystemExit(f"no webhook for run {run}")
                if run:
                    latencies.append((got[0].at - upload.put_finished_at) * 1000)
    finally:
        stack.stop()
    med = statistics.median(latencies)
    p90 = sorted(latencies)[int(0.9 * (len(latencies) - 1))]
    eng = statistics.median(engine)
    print(f"\nPipeline latency, 12 MP JPEG ({len(data) / 1e6:.1f} MB), {RUNS} uploads, local stack")
    print(f"  end of PUT -> webhook received: median {med:.0f} ms, p90 {p90:.0f} ms, "
          f"min {min(latencies):.0f} ms, max {max(latencies):.0f} ms (target: median <= {TARGET_MS} ms)")
    print(f"  engine alone (same image, same run): median {eng:.0f} ms")
    print(f"  ratio pipeline / engine: {med / eng:.2f}x; plumbing overhead: {med - eng:.0f} ms")


if __name__ == "__main__":
    main()
