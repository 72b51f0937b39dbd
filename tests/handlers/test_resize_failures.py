"""Our own failures (S3 or DynamoDB trouble, dead workers) end every image within a bound:
retries are bounded, a live lease makes a duplicate wait instead of vanishing, and what
the queue gives up on, or what stays processing too long, ends failed.

These call chalicelib directly; `running_as` holds those calls to the function's role."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from chalicelib.images import record
from chalicelib.images.record import ImageRecord
from chalicelib.images.store import RecordStore
from chalicelib.platform.config import Settings
from chalicelib.resize.resizer import MAX_PROCESSING_TRIES, Resizer
from chalicelib.webhooks import state as webhook_state
from tests.conftest import stage_environment
from tests.iam.plugin import running_as


class BrokenStorage:
    """An S3 that is down: every read fails the way botocore would."""

    def read_upload(self, key, max_bytes, stop=None):
        raise ConnectionError("S3 is unreachable")


def pending_item(table, image_id):
    now = datetime.now(timezone.utc)
    table.put_item(Item=ImageRecord.new_pending(
        image_id, owner="alice-sub", quota_entry=f"0:{image_id}", filename="a.jpg",
        content_type="image/jpeg", file_size=10, webhook_url=None,
        now=now, expires_at=now + timedelta(minutes=10), ttl_epoch=0).to_item())


def test_infrastructure_errors_are_retried_then_fail_with_internal_error(aws):
    table = boto3.resource("dynamodb").Table(aws.table)
    pending_item(table, "img-1")
    processor = Resizer(RecordStore(table), BrokenStorage(), Settings.from_env({}))
    for attempt in range(MAX_PROCESSING_TRIES - 1):
        with pytest.raises(ConnectionError), running_as("resize_upload", stage_environment(aws)):
            processor.process("uploads/img-1")  # raised: the event source retries
        assert table.get_item(Key={"id": "img-1"})["Item"]["status"] == "pending_upload"
    with running_as("resize_upload", stage_environment(aws)):
        assert processor.process("uploads/img-1") == "failed"
    item = table.get_item(Key={"id": "img-1"})["Item"]
    assert item["status"] == "failed" and item["error"]["code"] == "internal_error"
    with running_as("resize_upload", stage_environment(aws)):
        assert processor.process("uploads/img-1") == "skipped"  # and never again


def test_a_claim_held_by_a_live_worker_is_not_taken_over(aws):
    table = boto3.resource("dynamodb").Table(aws.table)
    pending_item(table, "img-2")
    records = RecordStore(table)
    now = record.iso(datetime.now(timezone.utc))
    long_ago = record.iso(datetime.now(timezone.utc) - timedelta(minutes=10))
    with running_as("resize_upload", stage_environment(aws)):
        assert records.start_processing("img-2", now, long_ago)[0] is not None
        refused, seen = records.start_processing("img-2", now, long_ago)  # still fresh
        assert refused is None and seen.status == "processing"
        later = record.iso(datetime.now(timezone.utc) + timedelta(minutes=10))
        claimed, _ = records.start_processing("img-2", later, later)  # lease ran out
        assert claimed is not None and claimed.processing_tries == 2


def test_an_attempt_whose_sender_died_is_taken_over_once_stale(aws):
    table = boto3.resource("dynamodb").Table(aws.table)
    pending_item(table, "img-3")
    table.update_item(Key={"id": "img-3"}, UpdateExpression="SET webhook = :w",
                      ExpressionAttributeValues={":w": webhook_state.initial("img-3", "https://h", "completed").to_item()})
    records = RecordStore(table)
    wid = record.webhook_id("img-3", "completed")
    t0 = "2026-01-01T00:00:00.000Z"
    with running_as("deliver_webhook", stage_environment(aws)):
        assert records.claim_attempt("img-3", wid, 1, 1, t0, "2025-12-31T23:59:00.000Z") is not None
        # the sender dies here; SQS redelivers the same task
        assert records.claim_attempt("img-3", wid, 1, 1, "2026-01-01T00:00:10.000Z", "2025-12-31T23:59:10.000Z") is None
        later = records.claim_attempt("img-3", wid, 1, 1, "2026-01-01T00:05:00.000Z", "2026-01-01T00:04:00.000Z")
        assert later is not None and later.webhook.attempts == 1
        # once recorded, the attempt is never sent again
        assert records.record_attempt("img-3", wid, 1, 1, {"status": "delivered", "lastStatusCode": 204}, t0)
        assert records.claim_attempt("img-3", wid, 1, 1, "2026-01-02T00:00:00.000Z", "2026-01-01T23:00:00.000Z") is None
        assert records.claim_attempt("img-3", wid, 1, 2, "2026-01-02T00:00:00.000Z", "2026-01-01T23:00:00.000Z") is None


class GoodStorage:
    """S3 with one small JPEG under every key; records what was written and deleted."""

    def __init__(self):
        from tests.imagegen import make_jpeg

        self.data, self.written, self.deleted = make_jpeg(64, 48), [], []

    def read_upload(self, key, max_bytes, stop=None):
        return len(self.data), self.data

    def put_object(self, key, data, content_type):
        self.written.append(key)

    def delete_keys(self, keys, prefix=None):
        self.deleted.append((sorted(keys), prefix))


def test_a_duplicate_delivery_during_a_live_lease_is_handed_back_to_the_queue(aws):
    from chalicelib.resize.resizer import ClaimHeld

    table = boto3.resource("dynamodb").Table(aws.table)
    pending_item(table, "img-4")
    records = RecordStore(table)
    records.start_processing("img-4", record.iso(datetime.now(timezone.utc)), "2000-01-01T00:00:00.000Z")
    processor = Resizer(records, GoodStorage(), Settings.from_env({}))
    with pytest.raises(ClaimHeld) as held, running_as("resize_upload", stage_environment(aws)):
        processor.process("uploads/img-4")  # not "skipped": the worker holding it may be dead
    assert 1 <= held.value.retry_in <= Settings.from_env({}).processing_lease_seconds + 1


def test_an_image_that_kills_its_worker_every_time_ends_failed(aws):
    table = boto3.resource("dynamodb").Table(aws.table)
    pending_item(table, "img-5")
    table.update_item(Key={"id": "img-5"}, UpdateExpression="SET processingTries = :n",
                      ExpressionAttributeValues={":n": MAX_PROCESSING_TRIES})
    storage = GoodStorage()
    processor = Resizer(RecordStore(table), storage, Settings.from_env({}))
    with running_as("resize_upload", stage_environment(aws)):
        assert processor.process("uploads/img-5") == "failed"  # the claim counted the dead tries
    item = table.get_item(Key={"id": "img-5"})["Item"]
    assert item["error"]["code"] == "internal_error" and "activeState" not in item
    assert storage.written == []  # no further try at rendering it


def test_a_resize_finishing_after_a_delete_cleans_up_after_itself(aws):
    table = boto3.resource("dynamodb").Table(aws.table)
    pending_item(table, "img-6")
    storage = GoodStorage()

    def delete_meanwhile(point, image_id):
        if point == "before_outcome":  # the API's DELETE, from outside the resize function
            other = threading.Thread(target=table.delete_item, kwargs={"Key": {"id": image_id}})
            other.start()
            other.join()

    processor = Resizer(RecordStore(table), storage, Settings.from_env({}), checkpoint=delete_meanwhile)
    with running_as("resize_upload", stage_environment(aws)):
        assert processor.process("uploads/img-6") == "deleted"
    assert "Item" not in table.get_item(Key={"id": "img-6"})  # not brought back
    [(keys, prefix)] = storage.deleted
    assert set(storage.written) < set(keys) and "uploads/img-6" in keys and prefix == "thumbnails/img-6/"


def test_a_resize_finishing_while_a_delete_is_under_way_cleans_up_after_itself(aws):
    """The DELETE has marked the record and is deleting the objects: the resize's outcome is
    refused (the image is not brought back as completed) and it removes what it wrote."""
    table = boto3.resource("dynamodb").Table(aws.table)
    records = RecordStore(table)
    pending_item(table, "img-8")
    storage = GoodStorage()

    def delete_begins(point, image_id):
        if point == "before_outcome":
            assert records.mark_deleting(image_id, "alice-sub", "2026-01-01T00:00:00.000Z") is not None

    processor = Resizer(records, storage, Settings.from_env({}), checkpoint=delete_begins)
    with running_as("resize_upload", stage_environment(aws)):
        assert processor.process("uploads/img-8") == "deleted"
    item = table.get_item(Key={"id": "img-8"})["Item"]
    assert item["status"] == "processing" and "thumbnails" not in item
    [(keys, prefix)] = storage.deleted
    assert set(storage.written) < set(keys) and prefix == "thumbnails/img-8/"


def test_an_image_being_deleted_is_never_claimed_and_its_bytes_are_removed(aws):
    table = boto3.resource("dynamodb").Table(aws.table)
    records = RecordStore(table)
    pending_item(table, "img-9")
    assert records.mark_deleting("img-9", "bob-sub", "2026-01-01T00:00:00.000Z") is None  # not bob's
    assert records.mark_deleting("img-9", "alice-sub", "2026-01-01T00:00:00.000Z").deleting_at
    assert records.mark_deleting("img-9", "alice-sub", "2026-01-01T00:05:00.000Z").deleting_at \
        == "2026-01-01T00:00:00.000Z"  # a retried DELETE keeps the first mark
    storage = GoodStorage()
    processor = Resizer(records, storage, Settings.from_env({}))
    with running_as("resize_upload", stage_environment(aws)):
        assert processor.process("uploads/img-9") == "orphan"
    assert storage.written == [] and storage.deleted == [(["uploads/img-9"], "thumbnails/img-9/")]
    assert table.get_item(Key={"id": "img-9"})["Item"]["status"] == "pending_upload"
    with running_as("fail_dead_uploads", stage_environment(aws)):
        assert processor.give_up("img-9", "gave up") == "nothing_to_do"


@pytest.mark.parametrize("status", ["pending_upload", "processing"])
def test_giving_up_fails_an_unfinished_image_with_its_webhook(aws, status):
    table = boto3.resource("dynamodb").Table(aws.table)
    pending_item(table, "img-7")
    table.update_item(Key={"id": "img-7"}, UpdateExpression="SET #s = :s, webhookUrl = :u",
                      ExpressionAttributeNames={"#s": "status"},
                      ExpressionAttributeValues={":s": status, ":u": "https://hooks.example/x"})
    processor = Resizer(RecordStore(table), GoodStorage(), Settings.from_env({}))
    with running_as("fail_dead_uploads", stage_environment(aws)):
        assert processor.give_up("img-7", "gave up") == "failed"
    item = table.get_item(Key={"id": "img-7"})["Item"]
    assert item["status"] == "failed" and item["error"] == {"code": "internal_error", "message": "gave up"}
    assert item["webhook"]["id"] == "msg_img-7_failed" and item["webhook"]["status"] == "pending"
    with running_as("fail_dead_uploads", stage_environment(aws)):
        assert processor.give_up("img-7", "again") == "nothing_to_do"


def test_the_sweeper_fails_only_images_processing_past_the_bound(aws):
    from chalicelib.resize.sweeper import Sweeper

    table = boto3.resource("dynamodb").Table(aws.table)
    records = RecordStore(table)
    for image_id, started in (("img-old", "2026-01-01T00:00:00.000Z"), ("img-new", "2026-01-01T00:09:00.000Z")):
        pending_item(table, image_id)
        records.start_processing(image_id, started, "2000-01-01T00:00:00.000Z")
    pending_item(table, "img-pending")
    now = datetime(2026, 1, 1, 0, 10, tzinfo=timezone.utc)
    processor = Resizer(records, GoodStorage(), Settings.from_env({}), now=lambda: now)
    with running_as("sweep_stuck_images", stage_environment(aws)):
        assert Sweeper(records, processor, 300, "test", now=lambda: now).sweep() == ["img-old"]
    statuses = {i: table.get_item(Key={"id": i})["Item"]["status"] for i in ("img-old", "img-new", "img-pending")}
    assert statuses == {"img-old": "failed", "img-new": "processing", "img-pending": "pending_upload"}


def test_the_sweeper_fails_every_stuck_image_not_only_the_first_page(aws):
    from chalicelib.resize.sweeper import Sweeper

    table = boto3.resource("dynamodb").Table(aws.table)
    records = RecordStore(table)
    stuck = {f"img-{n:03d}" for n in range(230)}  # more than two pages of the index
    with table.batch_writer() as batch:
        for n, image_id in enumerate(sorted(stuck)):
            batch.put_item(Item={"id": image_id, "owner": "alice-sub", "status": "processing",
                                 "activeState": "processing", "updatedAt": f"2026-01-01T00:00:{n % 60:02d}.000Z",
                                 "processingStartedAt": f"2026-01-01T00:00:{n % 60:02d}.000Z"})
    now = datetime(2026, 1, 1, 0, 10, tzinfo=timezone.utc)
    processor = Resizer(records, GoodStorage(), Settings.from_env({}), now=lambda: now)
    with running_as("sweep_stuck_images", stage_environment(aws)):
        assert set(Sweeper(records, processor, 300, "test", now=lambda: now).sweep()) == stuck
    assert {table.get_item(Key={"id": i})["Item"]["status"] for i in stuck} == {"failed"}


class ReclaimedAfterQuery(RecordStore):
    """The sweeper's query sees an image stuck; then, before it is given up, a worker whose
    lease check found the old claim over takes the image (start_processing)."""

    def __init__(self, table, claimed_at):
        super().__init__(table)
        self.claimed_at = claimed_at

    def processing_since_before(self, before_iso, page_size=100):
        found = super().processing_since_before(before_iso, page_size)
        for image_id in found:
            taken, _ = self.start_processing(image_id, self.claimed_at, before_iso)
            assert taken is not None
        return found


def test_the_sweeper_leaves_an_image_a_worker_has_just_claimed_again(aws):
    from chalicelib.resize.sweeper import Sweeper

    table = boto3.resource("dynamodb").Table(aws.table)
    pending_item(table, "img-back")
    RecordStore(table).start_processing("img-back", "2026-01-01T00:00:00.000Z", "2000-01-01T00:00:00.000Z")
    now = datetime(2026, 1, 1, 0, 10, tzinfo=timezone.utc)
    records = ReclaimedAfterQuery(table, record.iso(now))
    processor = Resizer(records, GoodStorage(), Settings.from_env({}), now=lambda: now)
    with running_as("sweep_stuck_images", stage_environment(aws)):
        assert Sweeper(records, processor, 300, "test", now=lambda: now).sweep() == []
    item = table.get_item(Key={"id": "img-back"})["Item"]
    assert item["status"] == "processing" and item["processingStartedAt"] == record.iso(now)


def test_giving_up_is_refused_when_the_claim_changed_after_the_read(aws):
    """The write itself checks the claim the read saw, whatever updatedAt says."""
    table = boto3.resource("dynamodb").Table(aws.table)
    records = RecordStore(table)
    pending_item(table, "img-race")
    records.start_processing("img-race", "2026-01-01T00:00:00.000Z", "2000-01-01T00:00:00.000Z")
    seen = records.get("img-race")
    table.update_item(Key={"id": "img-race"}, UpdateExpression="SET processingStartedAt = :again",
                      ExpressionAttributeValues={":again": "2026-01-01T00:09:00.000Z"})
    failure = record.Outcome.failure("internal_error", "stuck")
    with running_as("sweep_stuck_images", stage_environment(aws)):
        done, now_seen = records.finish_unfinished(seen, failure, "2026-01-01T00:10:00.000Z", None)
    assert done is None and now_seen.processing_started_at == "2026-01-01T00:09:00.000Z"
    assert table.get_item(Key={"id": "img-race"})["Item"]["status"] == "processing"


class ClaimWatcher:
    """A RecordStore whose claims wait (up to 2 s) for the download to have started."""

    def __init__(self, records, storage):
        self._records, self._storage, self.read_before_claim = records, storage, None

    def __getattr__(self, name):
        return getattr(self._records, name)

    def start_processing(self, *args):
        self.read_before_claim = self._storage.reading.wait(2)
        return self._records.start_processing(*args)


class SlowStorage(GoodStorage):
    """S3 that delivers an upload only once told to stop, or after 5 s."""

    def __init__(self, block: bool):
        super().__init__()
        self.block, self.reading, self.stopped = block, threading.Event(), None

    def told_to_stop(self, within: float = 5.0) -> bool:
        deadline = time.monotonic() + within
        while self.stopped is None and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.stopped is True

    def read_upload(self, key, max_bytes, stop=None):
        from chalicelib.platform.storage import ReadStopped

        self.reading.set()
        if self.block:
            self.stopped = stop.wait(5)
            raise ReadStopped(key)
        return len(self.data), self.data


def test_the_upload_is_downloaded_while_the_image_is_claimed(aws):
    table = boto3.resource("dynamodb").Table(aws.table)
    pending_item(table, "img-8")
    storage = SlowStorage(block=False)
    records = ClaimWatcher(RecordStore(table), storage)
    processor = Resizer(records, storage, Settings.from_env({}))
    with running_as("resize_upload", stage_environment(aws)):
        assert processor.process("uploads/img-8") == "completed"
    assert records.read_before_claim is True  # S3's event as well as a client's complete


def test_a_duplicate_stops_its_download_when_its_claim_is_refused(aws):
    table = boto3.resource("dynamodb").Table(aws.table)
    pending_item(table, "img-9")
    with running_as("resize_upload", stage_environment(aws)):
        assert Resizer(RecordStore(table), GoodStorage(), Settings.from_env({})).process("uploads/img-9") == "completed"
    storage = SlowStorage(block=True)
    processor = Resizer(ClaimWatcher(RecordStore(table), storage), storage, Settings.from_env({}))
    with running_as("resize_upload", stage_environment(aws)):
        assert processor.process("uploads/img-9") == "skipped"
    assert storage.told_to_stop()  # not left to download the whole object


def test_an_image_past_its_tries_stops_its_download_too(aws):
    table = boto3.resource("dynamodb").Table(aws.table)
    pending_item(table, "img-10")
    table.update_item(Key={"id": "img-10"}, UpdateExpression="SET processingTries = :n",
                      ExpressionAttributeValues={":n": MAX_PROCESSING_TRIES})
    storage = SlowStorage(block=True)
    processor = Resizer(ClaimWatcher(RecordStore(table), storage), storage, Settings.from_env({}))
    with running_as("resize_upload", stage_environment(aws)):
        assert processor.process("uploads/img-10") == "failed"
    assert storage.told_to_stop()
