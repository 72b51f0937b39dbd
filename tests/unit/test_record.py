"""The record schema: items read back as they were written, and what is not an image."""
from __future__ import annotations

from datetime import datetime, timezone

from chalicelib import record, webhook_state
from chalicelib.record import ImageRecord, ImageStatus, Item, Outcome, Thumbnail, image_of


def test_a_record_survives_the_round_trip_through_its_item():
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    pending = ImageRecord.new_pending("i", owner="o", quota_entry="9:i", filename="a.jpg", content_type="image/jpeg",
                                      file_size=10, webhook_url="https://h", now=now, expires_at=now, ttl_epoch=5)
    assert ImageRecord.from_item(pending.to_item()) == pending
    item = pending.to_item()
    assert item[Item.STATUS] == "pending_upload" and item[Item.UPLOAD_KEY] == "uploads/i"
    assert item[Item.EXPIRES_AT_EPOCH] == 5 and Item.ERROR not in item  # nothing stored as null
    done = ImageRecord.from_item({**item, **Outcome(
        ImageStatus.COMPLETED, size=9, type="image/jpeg", width=4, height=3,
        thumbnails=(Thumbnail(400, 300, "thumbnails/i/400x300.jpg", "image/jpeg", 7),)).fields(),
        Item.WEBHOOK: webhook_state.initial("i", "https://h", "completed").to_item()})
    assert done.is_final and done.thumbnails[0].key == "thumbnails/i/400x300.jpg"
    assert ImageRecord.from_item(done.to_item()) == done


def test_quota_items_share_the_table_but_are_not_images():
    assert image_of({"id": record.quota_key("o"), "pendingIds": {"1:a"}}) is None
    assert image_of(None) is None and image_of({}) is None


def test_a_failure_outcome_says_why():
    assert Outcome.failure("corrupt_image", "bad", size=3).fields() == {
        "status": "failed", "error": {"code": "corrupt_image", "message": "bad"}, "size": 3}
