"""The record schema: items read back as they were written, and what is not an image."""
from __future__ import annotations

from datetime import datetime, timezone

import boto3
import pytest

from chalicelib.images import record
from chalicelib.images.record import ImageRecord, ImageStatus, Item, Outcome, Thumbnail, image_of
from chalicelib.images.store import RecordStore
from chalicelib.imaging.renditions import Rendition
from chalicelib.webhooks import state as webhook_state

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
ASKED = (Rendition(800, 600, fit="contain", format="webp", background="#102030"),
         Rendition(400, 400, focus=(0.3, 0.875), quality=70), Rendition(64, 64, gravity="attention", format="avif"))


def pending(renditions=ASKED) -> ImageRecord:
    return ImageRecord.new_pending("i", owner="o", quota_entry="9:i", filename="a.jpg", content_type="image/jpeg",
                                   file_size=10, webhook_url="https://h", now=NOW, expires_at=NOW, ttl_epoch=5,
                                   renditions=renditions)


def test_a_record_survives_the_round_trip_through_its_item():
    waiting = pending()
    assert ImageRecord.from_item(waiting.to_item()) == waiting
    item = waiting.to_item()
    assert item[Item.STATUS] == "pending_upload" and item[Item.UPLOAD_KEY] == "uploads/i"
    assert item[Item.EXPIRES_AT_EPOCH] == 5 and Item.ERROR not in item  # nothing stored as null
    assert item[Item.RENDITIONS][1] == {"width": 400, "height": 400, "focus": {"x": 0.3, "y": 0.875}, "quality": 70}
    thumb = Thumbnail("800x600-contain-bg102030.webp", 800, 600, "contain", "center", "webp", 7,
                      record.thumbnail_key("i", "800x600-contain-bg102030.webp"), "image/webp")
    done = ImageRecord.from_item({**item, **Outcome(
        ImageStatus.COMPLETED, size=9, type="image/jpeg", width=4, height=3, thumbnails=(thumb,),
        placeholder="1QcSHQRnh493V4dIh4eXh1h4kJUI").fields(),
        Item.WEBHOOK: webhook_state.initial("i", "https://h", "completed").to_item()})
    assert done.is_final and done.thumbnails == (thumb,) and done.renditions == ASKED
    assert thumb.key == "thumbnails/i/800x600-contain-bg102030.webp"
    assert done.placeholder == "1QcSHQRnh493V4dIh4eXh1h4kJUI"
    assert ImageRecord.from_item(done.to_item()) == done


# An item as the previous release wrote it: no renditions, no placeholder, thumbnails
# {width, height, key, contentType, size}. Such items live up to a day after a deploy.
OLD_COMPLETED = {
    "id": "i", "owner": "o", "status": "completed", "declaredType": "image/png", "type": "image/png",
    "uploadKey": "uploads/i", "size": 999, "width": 1200, "height": 900,
    "thumbnails": [{"width": w, "height": h, "key": f"thumbnails/i/{w}x{h}.png", "contentType": "image/png",
                    "size": 100 + w} for w, h in ((400, 300), (160, 120), (120, 120))],
}


def test_an_item_of_the_previous_release_still_reads():
    old = ImageRecord.from_item(OLD_COMPLETED)
    assert old.renditions is None and old.placeholder is None  # made for the stage's default
    assert old.thumbnails[0] == Thumbnail("400x300.png", 400, 300, "cover", "center", "png", 500,
                                          "thumbnails/i/400x300.png", "image/png")
    assert [t.name for t in old.thumbnails] == ["400x300.png", "160x120.png", "120x120.png"]
    pending_old = ImageRecord.from_item({k: v for k, v in OLD_COMPLETED.items() if k != "thumbnails"}
                                        | {"status": "pending_upload"})
    assert pending_old.renditions is None and pending_old.thumbnails == ()


@pytest.fixture
def table(aws):
    return boto3.resource("dynamodb").Table(aws.table)


def test_renditions_with_a_focus_are_stored_and_read_back_from_dynamodb(table):
    store = RecordStore(table)
    store.create(pending())
    assert store.get("i").renditions == ASKED
    stored = table.get_item(Key={"id": "i"})["Item"]["renditions"][1]["focus"]
    assert {k: str(v) for k, v in stored.items()} == {"x": "0.3", "y": "0.875"}  # exact decimals, not binary


def test_quota_items_share_the_table_but_are_not_images():
    assert image_of({"id": record.quota_key("o"), "pendingIds": {"1:a"}}) is None
    assert image_of(None) is None and image_of({}) is None


def test_a_failure_outcome_says_why():
    assert Outcome.failure("corrupt_image", "bad", size=3).fields() == {
        "status": "failed", "error": {"code": "corrupt_image", "message": "bad"}, "size": 3}
