"""Load and faults: many uploads at once through the local stack, with workers killed.

    python -m bench.load                          # 200 uploads, 16 at a time, 4 faults
    python -m bench.load --uploads 500 --concurrency 32 --faults 10 --seed 7

Drives N uploads (a mix of sizes, both formats, fine-grain photos included) through the
real HTTP path (POST, presigned PUT, complete) by C clients, each waiting for its image's
webhook before its next upload; kills or hangs the resize worker of F of them at a chosen
point, and waits for every webhook. It prints throughput,
PUT -> webhook latency (p50, p90, p99), the engine's own throughput on the same mix in
the same run (same number of worker processes), and their ratio. It fails (exit 1) if any
upload is lost, any image ends anything but completed, or any webhook-id arrives twice.
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field

from bench.images import DATA_DIR
from tests import imagegen
from thumbgen.client import ThumbgenClient
from thumbgen.local import faults
from thumbgen.receiver import WebhookReceiver

MIX_VERSION = 1


@dataclass(frozen=True)
class Input:
    name: str
    content_type: str
    data: bytes


def _jpeg(img, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


RECIPES = {
    # name: (content type, builder) -- photos of 1 to 12 MP, fine grain, both formats
    "jpeg-1mp": ("image/jpeg", lambda: _jpeg(imagegen.scene(1200, 900))),
    "jpeg-3mp": ("image/jpeg", lambda: _jpeg(imagegen.scene(2048, 1536))),
    "jpeg-6mp": ("image/jpeg", lambda: _jpeg(imagegen.scene(3000, 2000))),
    "jpeg-12mp": ("image/jpeg", lambda: _jpeg(imagegen.scene(4000, 3000))),
    "jpeg-noise-6mp": ("image/jpeg", lambda: _jpeg(imagegen.grain(3000, 2000, "noise", feature=7), 85)),
    "jpeg-confetti-12mp": ("image/jpeg", lambda: _jpeg(imagegen.grain(4000, 3000, "confetti", feature=10), 85)),
    "jpeg-gravel-6mp": ("image/jpeg", lambda: _jpeg(imagegen.grain(3000, 2000, "gravel", feature=7))),
    "jpeg-iso-12mp": ("image/jpeg", lambda: _jpeg(imagegen.grain(4000, 3000, "iso", feature=10))),
    "png-1mp": ("image/png", lambda: _png(imagegen.scene(1200, 900, grain=0))),
    "png-rgba-4mp": ("image/png", lambda: _png(imagegen.with_alpha(imagegen.scene(2400, 1600, grain=0)))),
    "png-gravel-2mp": ("image/png", lambda: _png(imagegen.grain(1600, 1200, "gravel", feature=4))),
    "png-noise-1mp": ("image/png", lambda: _png(imagegen.grain(1000, 1000, "noise", feature=3))),
}
SMALL = ("jpeg-1mp", "jpeg-3mp", "jpeg-noise-6mp", "png-1mp", "png-gravel-2mp", "png-noise-1mp")


def load_mix(names: tuple[str, ...] = tuple(RECIPES)) -> list[Input]:
    """The inputs, generated once into bench/.data/load/ (deterministic)."""
    directory = DATA_DIR / "load"
    directory.mkdir(parents=True, exist_ok=True)
    mix = []
    for name in names:
        content_type, build = RECIPES[name]
        path = directory / f"{name}.v{MIX_VERSION}.{'png' if content_type == 'image/png' else 'jpg'}"
        if not path.exists():
            path.write_bytes(build())
        mix.append(Input(name, content_type, path.read_bytes()))
    return mix


@dataclass
class LoadResult:
    uploads: int
    elapsed: float
    latencies_ms: list[float]
    problems: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.uploads / self.elapsed


def run_load(api_url: str, token: str, inputs: list[Input], *, uploads: int, concurrency: int,
             faults_dir: str | None, fault_count: int, seed: int = 0, timeout: float = 180) -> LoadResult:
    """Upload `uploads` images from `inputs` (round robin), `concurrency` at a time: each
    of C clients uploads an image, waits for its webhook, then uploads the next (so the
    latency is the pipeline's, not a backlog the clients piled up); faults on some."""
    rng = random.Random(seed)
    faulty = set(rng.sample(range(uploads), fault_count)) if fault_count else set()
    client = ThumbgenClient(api_url, token=token)
    result = LoadResult(uploads, 0.0, [])
    finished_at: dict[str, float] = {}
    ids: dict[int, str] = {}
    lock = threading.Lock()
    with WebhookReceiver() as receiver:
        def one(n: int) -> None:
            item = inputs[n % len(inputs)]
            created = client.create(filename=f"{item.name}-{n}", content_type=item.content_type,
                                    file_size=len(item.data), webhook_url=receiver.url(f"/load/{n}"))
            image_id = created["id"]
            if n in faulty and faults_dir:
                point, action = rng.choice(faults.POINTS), rng.choice(("kill", "kill", "hang"))
                faults.arm(faults_dir, image_id, point, action)
                with lock:
                    result.faults.append(f"{item.name}: {point}:{action}")
            upload = client.put_and_complete(created, item.data)
            with lock:
                ids[n] = image_id
                finished_at[image_id] = upload.put_finished_at
                if upload.put_status != 200:
                    result.problems.append(f"upload {n} ({item.name}): PUT answered {upload.put_status}")
                    return
            receiver.wait_for(f"/load/{n}", timeout=timeout)  # this client's next upload waits

        started = time.time()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            for future in [pool.submit(one, n) for n in range(uploads)]:
                future.result()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len({r.path for r in receiver.received()}) < uploads:
            time.sleep(0.1)
        received = receiver.received()
        result.elapsed = max((r.at for r in received), default=time.time()) - started
        by_id = Counter(r.headers.get("webhook-id") for r in received)
        for webhook_id, count in by_id.items():
            if count > 1:
                result.problems.append(f"webhook-id {webhook_id} arrived {count} times")
        first = {}
        for r in received:
            first.setdefault(r.path, r)
        for n in range(uploads):
            image_id = ids.get(n)
            got = first.get(f"/load/{n}")
            if image_id is None:
                result.problems.append(f"upload {n} never got an id")
                continue
            if got is None:
                status = client.get(image_id).get("status")
                result.problems.append(f"upload {n} ({image_id}): no webhook; status {status}")
                continue
            result.latencies_ms.append((got.at - finished_at[image_id]) * 1000)
            data = json.loads(got.body)["data"]  # what the webhook says (no extra load on the stack)
            if data["id"] != image_id or data["status"] != "completed" or len(data["thumbnails"]) != 3:
                result.problems.append(f"upload {n} ({image_id}) ended {data['status']}: {data.get('error')}")
    return result


def _render(data: bytes) -> int:
    from chalicelib.imaging import engine

    return len(engine.render_thumbnails(data).renditions)


def engine_throughput(inputs: list[Input], uploads: int, workers: int) -> float:
    """Images per second of the engine alone on the same sequence, `workers` processes."""
    sequence = [inputs[n % len(inputs)].data for n in range(uploads)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_render, sequence[:workers]))  # warm each process: imports, codecs
        started = time.perf_counter()
        assert all(count == 3 for count in pool.map(_render, sequence))
        return uploads / (time.perf_counter() - started)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stack_processes(stack, main_role: str = "API, pumps and the benchmark's clients") -> dict[str, list[int]]:
    """The local stack's processes, by role, to see where its CPU goes."""
    return {
        "embedded AWS (S3, SQS, Cognito)": [stack._moto[0].pid],
        "embedded AWS (DynamoDB + stream)": [stack._moto[1].pid],
        main_role: [os.getpid()],
        "resize workers": [w.process.pid for w in stack._resize._all],
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--faults", type=int, default=4, help="uploads whose resize worker is killed or hung")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.getLogger("thumbgen").setLevel(logging.WARNING)
    from thumbgen.local.stack import LocalStack, free_port

    inputs = load_mix()
    with tempfile.TemporaryDirectory() as faults_dir:
        os.environ["THUMBGEN_FAULTS_DIR"] = faults_dir
        os.environ.setdefault("LOG_LEVEL", "WARNING")
        stack = LocalStack(aws_port=free_port(), api_port=free_port()).start()
        try:
            before = {p: cpu_seconds(p) for pids in stack_processes(stack).values() for p in pids}
            result = run_load(stack.api_url, stack.demo_token(), inputs, uploads=args.uploads,
                              concurrency=args.concurrency, faults_dir=faults_dir,
                              fault_count=args.faults, seed=args.seed)
            # Workers killed by faults are gone with their CPU time: an undercount, then.
            cpu_ms = {role: sum(cpu_seconds(p) - before.get(p, 0.0) for p in pids) * 1000 / args.uploads
                      for role, pids in stack_processes(stack).items()}
            workers = stack.resize_workers
        finally:
            stack.stop()
    engine = engine_throughput(inputs, args.uploads, workers)
    lat = result.latencies_ms
    print(f"\nLoad: {args.uploads} uploads, {args.concurrency} at a time, {len(inputs)} kinds of input "
          f"(1-12 MP JPEG and PNG, fine grain included), {len(result.faults)} faults, "
          f"{workers} resize workers")
    for fault in result.faults:
        print(f"  fault: {fault}")
    print(f"  stack:  {result.throughput:5.1f} images/s over {result.elapsed:.1f} s")
    if lat:
        print(f"  PUT end -> webhook: p50 {percentile(lat, 0.5):.0f} ms, p90 {percentile(lat, 0.9):.0f} ms, "
              f"p99 {percentile(lat, 0.99):.0f} ms, max {max(lat):.0f} ms")
    print(f"  engine alone, same mix, {workers} processes: {engine:5.1f} images/s")
    print(f"  stack / engine: {result.throughput / engine:.2f}")
    total = sum(cpu_ms.values())
    print("  CPU per image, by process (where the time goes):")
    for role, ms in cpu_ms.items():
        print(f"    {role:36s} {ms:6.1f} ms")
    ceiling = (os.cpu_count() or 1) * 1000 / total
    print(f"    {'total':36s} {total:6.1f} ms: {os.cpu_count()} cores allow {ceiling:.1f} images/s; "
          f"the stack reached {result.throughput / ceiling:.0%} of that")
    if result.problems:
        print(f"FAILED: {len(result.problems)} problems", file=sys.stderr)
        for problem in result.problems[:20]:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print("  every upload completed, each webhook-id arrived once")
    return 0


if __name__ == "__main__":
    sys.exit(main())
