"""Event pumps: play Lambda's event sources and call the app's real handler wrappers.

- SQS uploads queue (S3 notifications, "complete" messages) -> resize, in worker processes
- SQS uploads dead-letter queue -> fail_dead_uploads
- DynamoDB stream        -> stream handler, a batch of records per invocation
- SQS (webhook tasks)    -> delivery handler, one message per invocation, concurrently
- a timer                -> sweep_stuck_images (EventBridge's schedule)

Like Lambda, a message is deleted only when its invocation returns; if it raises, SQS
makes it visible again and its redrive policy ends the retries in a dead-letter queue.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Callable

from chalice.local import LambdaContext

from thumbgen.local.latency import Hop, LatencyModel

log = logging.getLogger("thumbgen.local.pumps")
Handler = Callable[[dict, Any], Any]


def _context(name: str) -> LambdaContext:
    return LambdaContext(function_name=name, memory_size=1024, max_runtime_ms=60_000)


class SqsPump(threading.Thread):
    """Long-polls a queue and invokes a handler per message in a worker pool."""

    def __init__(self, sqs: Any, queue_url: str, queue_arn: str, name: str,
                 to_events: Callable[[dict, str], list[dict]], handler: Handler, workers: int,
                 hops: Callable[[dict], tuple[Hop, ...]] = lambda message: (),
                 latency: LatencyModel | None = None):
        super().__init__(name=f"pump-{name}", daemon=True)
        self._sqs, self._url, self._arn = sqs, queue_url, queue_arn
        self._to_events, self._handler = to_events, handler
        self._hops, self._latency = hops, latency or LatencyModel.off()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._slots = threading.Semaphore(workers)
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def _free_slots(self) -> int:
        """Wait for one free worker, then take every other free one (at most 10 in all).

        Like Lambda's poller, a message is received only when a worker can take it: a
        message received and left waiting would reach its visibility timeout and be
        delivered a second time while the first copy still waits."""
        while not self._slots.acquire(timeout=0.5):
            if self._halt.is_set():
                return 0
        taken = 1
        while taken < 10 and self._slots.acquire(blocking=False):
            taken += 1
        return taken

    def run(self) -> None:
        while not self._halt.is_set():
            slots = self._free_slots()
            if not slots:
                break
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self._url, MaxNumberOfMessages=slots, WaitTimeSeconds=1,
                    AttributeNames=["All"],
                ).get("Messages", [])
            except Exception:  # the embedded server shutting down, or a blip
                messages = []
                if not self._halt.wait(0.2):
                    log.exception("receive failed on %s", self.name)
            for message in messages:
                self._pool.submit(self._invoke, message)
            for _ in range(slots - len(messages)):
                self._slots.release()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _invoke(self, message: dict) -> None:
        try:
            delay = self._latency.delay(*self._hops(message))
            if delay:  # AWS's hops, counted from when the message was sent
                sent = int(message.get("Attributes", {}).get("SentTimestamp", 0)) / 1000 or time.time()
                self._halt.wait(max(0.0, sent + delay - time.time()))
            for event in self._to_events(message, self._arn):
                self._handler(event, _context(self.name))
            self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        except Exception as exc:
            log.warning("%s: invocation failed (%s); the message will be retried", self.name, exc)
        finally:
            self._slots.release()


def sqs_lambda_events(message: dict, arn: str) -> list[dict]:
    """The SQS -> Lambda event shape, one message per invocation (batch_size=1)."""
    return [{"Records": [{
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": arn.split(":")[3] if arn.count(":") >= 3 else "us-east-1",
    }]}]


class StreamPump(threading.Thread):
    """Polls every shard of a DynamoDB stream and invokes the handler per batch, in order.

    A failing batch is retried (as Lambda does) a bounded number of times, then skipped
    with a log line, so one poison record cannot stop the local stack. It polls at a
    relaxed interval when idle, a little faster when busy.
    """

    def __init__(self, streams: Any, stream_arn: str, handler: Handler,
                 interval: float = 0.25, max_retries: int = 5, hop: Hop | None = None,
                 latency: LatencyModel | None = None):
        super().__init__(name="pump-stream", daemon=True)
        self._streams, self._arn, self._handler = streams, stream_arn, handler
        self._interval, self._max_retries = interval, max_retries
        self._busy_interval = min(interval, 0.1)
        self._hop, self._latency = hop, latency or LatencyModel.off()
        self._halt = threading.Event()
        self._iterators: dict[str, str | None] = {}
        self._last_sequence: dict[str, str] = {}

    def stop(self) -> None:
        self._halt.set()

    def _discover(self) -> None:
        shards = self._streams.describe_stream(StreamArn=self._arn)["StreamDescription"]["Shards"]
        for shard in shards:
            if shard["ShardId"] not in self._iterators:
                self._iterators[shard["ShardId"]] = self._iterator(shard["ShardId"])

    def _iterator(self, shard: str) -> str:
        """From the start, or just after the last record delivered from this shard."""
        after = self._last_sequence.get(shard)
        kind = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after} if after else \
            {"ShardIteratorType": "TRIM_HORIZON"}
        return self._streams.get_shard_iterator(StreamArn=self._arn, ShardId=shard, **kind)["ShardIterator"]

    def _lambda_record(self, record: dict) -> dict:
        record = dict(record)
        record["eventSourceARN"] = self._arn
        dyn = dict(record.get("dynamodb", {}))
        created = dyn.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            dyn["ApproximateCreationDateTime"] = created.timestamp()
        record["dynamodb"] = dyn
        return record

    def run(self) -> None:
        last_discovery = 0.0
        while not self._halt.is_set():
            try:
                if time.monotonic() - last_discovery > 5:
                    self._discover()
                    last_discovery = time.monotonic()
                busy = False
                for shard, iterator in list(self._iterators.items()):
                    if iterator is None:
                        continue
                    response = self._streams.get_records(ShardIterator=iterator, Limit=100)
                    records = response.get("Records", [])
                    if records:
                        busy = True
                        self._deliver([self._lambda_record(r) for r in records])
                        self._last_sequence[shard] = records[-1]["dynamodb"]["SequenceNumber"]
                    self._iterators[shard] = response.get("NextShardIterator")
            except Exception:
                if self._halt.is_set():
                    return
                log.exception("stream poll failed; reading the shards again after the last record")
                self._iterators.clear()  # an expired or stale iterator: start over from there
                last_discovery = 0.0
                busy = False
            # Like Lambda's poller: a few polls a second per shard, at most, even when busy
            # (every GetRecords costs the embedded AWS a few ms; batches grow instead).
            self._halt.wait(self._busy_interval if busy else self._interval)

    def _deliver(self, records: list[dict]) -> None:
        if self._hop is not None and self._latency.enabled:
            created = min(float(r["dynamodb"].get("ApproximateCreationDateTime") or time.time()) for r in records)
            self._halt.wait(max(0.0, created + self._latency.delay(self._hop) - time.time()))
        for attempt in range(1, self._max_retries + 1):
            try:
                self._handler({"Records": records}, _context("on_image_change"))
                return
            except Exception:
                log.exception("stream batch failed (attempt %d/%d)", attempt, self._max_retries)
                if self._halt.wait(min(2 ** attempt * 0.1, 2)):
                    return
        log.error("skipping a stream batch of %d records after %d attempts", len(records), self._max_retries)


class Schedule(threading.Thread):
    """Invokes a handler every `every` seconds, as an EventBridge rate schedule does."""

    def __init__(self, handler: Handler, name: str, every: float):
        super().__init__(name=f"schedule-{name}", daemon=True)
        self._handler, self._every = handler, every
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        while not self._halt.wait(self._every):
            try:
                self._handler({"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
                               "source": "aws.events", "account": "123456789012", "region": "us-east-1",
                               "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "resources": [], "detail": {}}, _context(self.name))
            except Exception:
                log.exception("%s failed", self.name)
