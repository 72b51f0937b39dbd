"""What the per-user rate limit costs each API request (chalicelib/api/rate_limit.py).

    python -m bench.ratelimit                 # ~1 min
    python -m bench.ratelimit --requests 1000

1. The limiter's one conditional UpdateItem against the embedded DynamoDB (moto in a
   process of its own, one request at a time, as the local stack runs it), next to the
   GetItem every image route already makes (RecordStore.get), interleaved in the same run;
   also the refused path (a user over their burst).
2. GET /images/{id} through the local API, with the limit on and with it off
   (RATE_LIMIT_PER_SECOND=0): two stacks at once, their requests interleaved.
3. Write units per request, from the counter item's size by DynamoDB's sizing rules, and
   what they cost on demand next to API Gateway's own price per request.

Locally every call is a loopback HTTP round trip to moto (a few ms of Python); in a region
DynamoDB answers a small UpdateItem in single-digit milliseconds. The ratio to the GetItem
is the figure that carries over: the limit costs about one more small DynamoDB call.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

import boto3
import requests

from bench.load import percentile
from chalicelib.api.rate_limit import RateLimit, RateLimiter, Throttled
from chalicelib.images.record import ImageRecord
from chalicelib.images.store import RecordStore
from tests.live_stack import running_stack
from thumbgen.local import resources
from thumbgen.local.stack import free_port, local_client

WRU_PRICE = 0.625  # $ per million on-demand write request units, us-east-1 (docs/deploy.md#cost)
API_GATEWAY_PRICE = 3.50  # $ per million REST API requests, first tier
REPO = Path(__file__).resolve().parent.parent


def item_bytes(item: dict) -> int:
    """DynamoDB's size of an item: each attribute's name plus its value (a string's UTF-8
    bytes; a number's significant digits / 2 + 1)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if isinstance(value, str):
            size += len(value.encode())
        else:
            digits = str(value).lstrip("-").replace(".", "").strip("0") or "0"
            size += math.ceil(len(digits) / 2) + 1
    return size


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def embedded_dynamodb(stack: ExitStack) -> str:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "thumbgen.local.embedded_aws", "127.0.0.1", str(port),
                                "--one-request-at-a-time"], cwd=REPO, stdout=subprocess.DEVNULL)
    stack.callback(process.wait, 10)
    stack.callback(process.terminate)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            requests.get(f"{url}/moto-api/", timeout=1)
            return url
        except requests.RequestException:
            time.sleep(0.05)
    raise SystemExit("the embedded DynamoDB did not start")


def calls(n: int) -> dict[str, list[float]]:
    """The limiter's write (admitted and refused) and the image read, interleaved."""
    with ExitStack() as stack:
        url = embedded_dynamodb(stack)
        dynamodb = local_client("dynamodb", url)
        made = resources.create_resources(local_client("s3", url), dynamodb, local_client("sqs", url),
                                          local_client("cognito-idp", url))
        records = RecordStore(boto3.session.Session().resource(
            "dynamodb", endpoint_url=url, region_name="us-east-1", aws_access_key_id="thumbgen-local",
            aws_secret_access_key="thumbgen-local").Table(made.table))
        now = datetime.now(timezone.utc)
        image = ImageRecord.new_pending("bench-image", owner="bench-user", quota_entry="0:bench-image",
                                        filename="a.jpg", content_type="image/jpeg", file_size=1000,
                                        webhook_url=None, now=now, expires_at=now, ttl_epoch=0)
        records.create(image)
        admitted = RateLimiter(dynamodb, made.rate_limit_table, RateLimit(per_second=1e6, burst=10**9))
        refused = RateLimiter(dynamodb, made.rate_limit_table, RateLimit(per_second=1 / 3600, burst=1))
        refused.admit("bench-greedy")

        def refuse() -> None:
            try:
                refused.admit("bench-greedy")
            except Throttled:
                return
            raise SystemExit("the over-burst user was admitted")

        times: dict[str, list[float]] = {"GetItem (image read, reference)": [], "limiter, admitted": [],
                                         "limiter, refused": []}
        for i in range(n + 20):  # the first 20 warm the connections up
            for name, call in (("GetItem (image read, reference)", lambda: records.get("bench-image")),
                               ("limiter, admitted", lambda: admitted.admit("bench-user")),
                               ("limiter, refused", refuse)):
                spent = timed(call)
                if i >= 20:
                    times[name].append(spent)
        return times


def api_round_trips(n: int) -> dict[str, list[float]]:
    """GET /images/{id} on two local stacks, the limit on and off, requests interleaved."""
    logs = Path(tempfile.mkdtemp(prefix="thumbgen-bench-ratelimit-"))
    with running_stack(logs / "on.log") as on, running_stack(logs / "off.log", RATE_LIMIT_PER_SECOND="0") as off:
        sessions = {}
        for name, running in (("limit on", on), ("limit off", off)):
            client = running.client_for("bench")
            image = client.create(filename="a.jpg", content_type="image/jpeg", file_size=1000)
            sessions[name] = (client.http, f"{running.api_url}/images/{image['id']}")
        times: dict[str, list[float]] = {name: [] for name in sessions}
        for i in range(n + 20):
            for name, (http, url) in sessions.items():
                spent = timed(lambda: http.get(url, timeout=10).raise_for_status())
                if i >= 20:
                    times[name].append(spent)
        return times


def line(name: str, values: list[float], reference: float | None = None) -> str:
    p50 = percentile(values, 0.5)
    ratio = f"  = {p50 / reference:.2f}x the reference" if reference else ""
    return f"    {name:34s} p50 {p50:6.2f} ms  p90 {percentile(values, 0.9):6.2f} ms{ratio}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500, help="calls of each kind (default 500)")
    args = parser.parse_args()
    logging.getLogger("thumbgen").setLevel(logging.WARNING)

    call_times = calls(args.requests)
    reference = percentile(call_times["GetItem (image read, reference)"], 0.5)
    print(f"\nPer-user rate limit, {args.requests} calls of each kind, {os.cpu_count()} cores")
    print("  one DynamoDB call against the embedded DynamoDB (moto, loopback HTTP):")
    for name, values in call_times.items():
        print(line(name, values, None if name.startswith("GetItem") else reference))

    api_times = api_round_trips(args.requests)
    off = percentile(api_times["limit off"], 0.5)
    print("  GET /images/{id} through the local API (token check, GetItem, presigned links):")
    for name, values in api_times.items():
        print(line(name, values, None if name == "limit off" else off))
    print(f"    the limit adds {percentile(api_times['limit on'], 0.5) - off:+.2f} ms at the median")

    item = {"id": f"{'0' * 8}-{'0' * 4}-{'0' * 4}-{'0' * 4}-{'0' * 12}#{int(time.time() // 5)}",
            "requests": 50, "expiresAtEpoch": int(time.time()) + 65}
    size = item_bytes(item)
    units = math.ceil(size / 1024)
    print("  write units per request (DynamoDB bills a write per started KB, a refused conditional write too):")
    print(f"    the counter item: {size} bytes -> {units} write unit per request, admitted or refused; no read")
    print(f"    on demand: ${units * WRU_PRICE:.3f} per million requests "
          f"= {units * WRU_PRICE / API_GATEWAY_PRICE:.0%} of API Gateway's ${API_GATEWAY_PRICE:.2f}; "
          "TTL deletions are free")


if __name__ == "__main__":
    main()
