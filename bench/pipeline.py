"""Pipeline latency: end of the PUT -> signed webhook received, both ways an upload starts.

    python -m bench.pipeline            # ~2 min: local stack, then the AWS latency model
    python -m bench.pipeline --runs 30

- "complete": the client calls POST /images/{id}/complete right after its PUT (what every
  client of ours does): the API checks the object and queues the resize at once.
- "S3 event": no complete call; S3's ObjectCreated notification starts the resize.

First on the local stack as it is (its event pumps are far faster than AWS's hops), next
to the engine's own time for the same image in this run -- the part no plumbing removes --
and what bounds the ratio here: the local stack's own cost per image (the same uploads with
a 1 MP JPEG, whose engine time is small) and the CPU each process spends per upload. Then the same uploads through the local
stack with AWS's asynchronous hops added as delays drawn from published distributions
(thumbgen/local/latency.py, sources cited there), which estimates what the design can promise on
AWS: p50 and p99 per path.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench import images
from bench.load import cpu_seconds, load_mix, stack_processes
from thumbgen.client import ThumbgenClient
from thumbgen.local.latency import HOPS
from thumbgen.local.stack import LocalStack, free_port
from thumbgen.receiver import WebhookReceiver

TARGET_RATIO = 1.5  # with complete: median within 1.5x the engine's own time


def twelve_megapixel_jpeg() -> bytes:
    """The engine bench's 12 MP class: 4000x3000 photo-like JPEG, q92 (~4 MB)."""
    return images.ensure((images.CLASS_BY_NAME["jpeg-12mp"],))["jpeg-12mp"].read_bytes()


def small_jpeg() -> bytes:
    """bench.load's 1 MP photo (1200x900): what the pipeline costs when the engine costs little."""
    return load_mix(("jpeg-1mp",))[0].data


def engine_ms(data: bytes, runs: int = 7) -> float:
    from chalicelib.imaging import engine

    engine.render_thumbnails(data)  # warm: imports, codec tables
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        engine.render_thumbnails(data)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


PATHS = (("complete", True), ("S3 event", False))


class StackProcess:
    """The local stack in a process of its own, as `make run` is for a user: the
    benchmark's client and receiver do not share its GIL (in one process they added ~10 ms)."""

    def __init__(self, latency_model: bool):
        args = [sys.executable, "-m", "bench.pipeline", "--serve-stack"] + (["--latency-model"] if latency_model else [])
        self._log = tempfile.TemporaryFile("w+")  # the stack's JSON log lines, shown if it fails
        self._process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                         text=True)
        line = self._process.stdout.readline() if self._process.stdout else ""
        if not line:
            self._process.wait()
            self._log.seek(0)
            raise SystemExit("the local stack did not start:\n" + self._log.read()[-3000:])
        started = json.loads(line)
        self.api_url, self.token = started["api_url"], started["token"]
        self.processes: dict[str, list[int]] = started["processes"]

    def close(self) -> None:
        if self._process.stdin:
            self._process.stdin.close()  # the child stops its stack when its stdin ends
        self._process.wait(60)
        self._log.close()


def serve_stack(latency_model: bool) -> None:
    stack = LocalStack(aws_port=free_port(), api_port=free_port(), latency_model=latency_model).start()
    try:
        processes = stack_processes(stack, main_role="API and pumps")
        print(json.dumps({"api_url": stack.api_url, "token": stack.demo_token(), "processes": processes}), flush=True)
        sys.stdin.read()
    finally:
        stack.stop()


def measure(inputs: dict[str, bytes], runs: int, latency_model: bool) -> dict:
    """PUT end -> webhook, in ms, per input and path; the paths alternate so noise hits
    both. Also the CPU time of each process per upload of the first input."""
    stack = StackProcess(latency_model)
    latency: dict[str, dict[str, list[float]]] = {name: {path: [] for path, _ in PATHS} for name in inputs}
    cpu: dict[str, dict[str, float]] = {path: {} for path, _ in PATHS}
    processes = {**stack.processes, "the benchmark's client and receiver": [os.getpid()]}
    first = next(iter(inputs))
    try:
        client = ThumbgenClient(stack.api_url, token=stack.token)
        with WebhookReceiver() as receiver:
            for name, data in inputs.items():
                for run in range(runs + 1):  # run 0 warms the workers' lazy clients up
                    for path, complete in PATHS:
                        hook = f"/{name}/{path.replace(' ', '-')}/{run}"
                        before = {role: sum(map(cpu_seconds, pids)) for role, pids in processes.items()}
                        upload = client.upload(data, content_type="image/jpeg", filename="photo.jpg",
                                               webhook_url=receiver.url(hook), complete=complete)
                        assert upload.put_status == 200, upload.put_status
                        got = receiver.wait_for(hook, timeout=60)
                        if not got:
                            raise SystemExit(f"no webhook for {hook}")
                        if run:
                            latency[name][path].append((got[0].at - upload.put_finished_at) * 1000)
                        if run and name == first:
                            time.sleep(0.3)  # the stream's and the duplicate's work lands in this upload
                            for role, pids in processes.items():
                                spent = (sum(map(cpu_seconds, pids)) - before[role]) * 1000 / runs
                                cpu[path][role] = cpu[path].get(role, 0.0) + spent
    finally:
        stack.close()
    return {"latency": latency, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="uploads per path and setting (default 15)")
    parser.add_argument("--serve-stack", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--latency-model", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.getLogger("thumbgen").setLevel(logging.WARNING)
    if args.serve_stack:
        serve_stack(args.latency_model)
        return
    data, small = twelve_megapixel_jpeg(), small_jpeg()
    engine, engine_small = engine_ms(data), engine_ms(small)
    local = measure({"12mp": data, "1mp": small}, args.runs, latency_model=False)
    modelled = measure({"12mp": data}, args.runs, latency_model=True)["latency"]["12mp"]

    print(f"\nPipeline latency, 12 MP JPEG ({len(data) / 1e6:.1f} MB), {args.runs} uploads per path")
    print(f"  engine alone (same image, same run): median {engine:.0f} ms")
    print("  local stack, end of PUT -> webhook received:")
    for path, values in local["latency"]["12mp"].items():
        med = statistics.median(values)
        print(f"    {path:9s} median {med:5.0f} ms  p90 {percentile(values, 0.9):5.0f} ms  "
              f"= {med / engine:.2f}x the engine")
    ratio = statistics.median(local["latency"]["12mp"]["complete"]) / engine
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(f"    target, with complete: median <= {TARGET_RATIO}x the engine: {verdict} ({ratio:.2f}x)")
    print(f"  the local stack's own cost per image: the same with a 1 MP JPEG (engine {engine_small:.0f} ms):")
    for path, values in local["latency"]["1mp"].items():
        med = statistics.median(values)
        print(f"    {path:9s} median {med:5.0f} ms: {med - engine_small:4.0f} ms of AWS calls and hops "
              f"= {(med - engine_small) / engine:.2f}x the 12 MP engine time")
    hops = (statistics.median(local["latency"]["1mp"]["complete"]) - engine_small) / engine
    if hops > TARGET_RATIO - 1:
        print(f"    with complete, the calls and hops alone take {hops:.2f}x the engine's time: more than the "
              f"{TARGET_RATIO - 1:.1f}x the target leaves them, on this machine")
    print("  CPU per 12 MP upload, by process (complete / S3 event):")
    for role in local["cpu"]["complete"]:
        print(f"    {role:40s} {local['cpu']['complete'][role]:5.0f} / {local['cpu']['S3 event'][role]:5.0f} ms")
    totals = [sum(local["cpu"][path].values()) for path, _ in PATHS]
    print(f"    {'total':40s} {totals[0]:5.0f} / {totals[1]:5.0f} ms on {os.cpu_count()} cores")
    print("  modelled on AWS (local stack + published hop delays):")
    for path, values in modelled.items():
        print(f"    {path:9s} p50 {percentile(values, 0.5):5.0f} ms  p99 {percentile(values, 0.99):5.0f} ms "
              f"(max of {len(values)} runs)")
    print("  hops modelled (p50/p99 ms):")
    for hop in HOPS:
        print(f"    {hop.name:26s} {hop.p50_ms:4.0f} / {hop.p99_ms:4.0f}   {hop.source}")


if __name__ == "__main__":
    main()
