"""Renditions through the handlers (Chalice test Client, moto): asked for in POST /images,
kept on the record, made by the resize, shown by GET and the list; items written by the
previous release (no renditions, the old thumbnail shape) still resize and read."""
from __future__ import annotations

import base64
import io
import json

import boto3
import pytest
from PIL import Image

from tests.budget import over_avif_budget, over_output_budget
from tests.conftest import put_upload, sub_of, upload_event
from tests.imagegen import make_jpeg, make_png

SIX = [
    {"width": 400, "height": 300},
    {"width": 300, "height": 300, "fit": "contain", "format": "webp", "background": "#102030"},
    {"width": 500, "height": 500, "fit": "inside", "format": "png"},
    {"width": 200, "height": 200, "gravity": "attention", "format": "avif", "quality": 40},
    {"width": 240, "height": 120, "focus": {"x": 0.25, "y": 0.75}, "format": "jpeg", "quality": 70},
    {"width": 100, "height": 100, "gravity": "entropy", "format": "webp"},
]


def post(client, **body):
    body = {"filename": "cat.jpg", "contentType": "image/jpeg", "fileSize": 1000, **body}
    return client.http.post("/images", headers={"Content-Type": "application/json"}, body=json.dumps(body))


def table():
    return boto3.resource("dynamodb").Table


def stored(aws, image_id):
    return table()(aws.table).get_item(Key={"id": image_id})["Item"]


def resize(client, aws, image_id, data):
    put_upload(aws, image_id, data)
    client.lambda_.invoke("resize_upload", upload_event(aws.bucket, f"uploads/{image_id}"))
    return json.loads(client.http.get(f"/images/{image_id}").body)


def test_the_renditions_asked_for_are_kept_on_the_record(client, aws):
    response = post(client, renditions=SIX)
    assert response.status_code == 201, response.body
    item = stored(aws, json.loads(response.body)["id"])
    assert [{k: v for k, v in r.items() if k != "focus"} for r in item["renditions"]] == \
        [{k: v for k, v in r.items() if k != "focus"} for r in SIX]
    assert {k: float(v) for k, v in item["renditions"][4]["focus"].items()} == {"x": 0.25, "y": 0.75}


def test_without_renditions_the_stages_default_is_kept(make_client, aws):
    client = make_client()
    for body in ({}, {"renditions": None}):
        item = stored(aws, json.loads(post(client, **body).body)["id"])
        assert item["renditions"] == [{"width": 400, "height": 300}, {"width": 160, "height": 120},
                                      {"width": 120, "height": 120}]
    chosen = [{"width": 320, "height": 320, "format": "webp"}]
    staged = make_client(DEFAULT_RENDITIONS=json.dumps(chosen))
    assert stored(aws, json.loads(post(staged).body)["id"])["renditions"] == chosen


@pytest.mark.parametrize("renditions, field", [
    ("400x300", "renditions"),
    ([], "renditions"),
    ([{"width": 400, "height": 300}] * 9, "renditions"),
    ([{"width": 400, "height": 300}, {"width": 10, "height": 10, "fit": "stretch"}], "renditions[1].fit"),
    ([{"width": 400, "height": 300, "colour": "red"}], "renditions[0].colour"),
    ([{"width": True, "height": 300}], "renditions[0].width"),
    ([{"width": 2049, "height": 300}], "renditions[0].width"),
    ([{"width": 40, "height": 30, "gravity": "attention", "focus": {"x": 0.5, "y": 0.5}}], "renditions[0].focus"),
    ([{"width": 40, "height": 30, "format": "png", "quality": 50}], "renditions[0].quality"),
    ([{"width": 40, "height": 30}, {"width": 40, "height": 30, "format": "jpeg"}], "renditions[1]"),
    (over_output_budget(), "renditions"),
    (over_avif_budget(), "renditions"),
])
def test_refusals_are_400_and_name_the_field(client, aws, renditions, field):
    response = post(client, renditions=renditions)
    assert response.status_code == 400
    error = json.loads(response.body)["error"]
    assert error["code"] == "invalid_request" and error["message"].startswith(f"{field} "), error
    assert table()(aws.table).scan()["Items"] == []  # nothing recorded, no quota taken


def test_six_renditions_are_made_in_order_with_their_names_sizes_and_formats(client, aws):
    image_id = json.loads(post(client, renditions=SIX).body)["id"]
    view = resize(client, aws, image_id, make_jpeg(1600, 1200, seed=5))
    assert view["status"] == "completed", view
    thumbs = view["thumbnails"]
    assert [t["name"] for t in thumbs] == [
        "400x300.jpg", "300x300-contain-bg102030.webp", "500x500-inside.png", "200x200-attention-q40.avif",
        "240x120-focus-0.25-0.75-q70.jpg", "100x100-entropy.webp"]
    assert [(t["size"]["width"], t["size"]["height"]) for t in thumbs] == [
        (400, 300), (300, 300), (500, 375), (200, 200), (240, 120), (100, 100)]  # inside: 1600x1200 into 500x500
    assert [(t["fit"], t["gravity"], t["format"]) for t in thumbs] == [
        ("cover", "center", "jpeg"), ("contain", "center", "webp"), ("inside", "center", "png"),
        ("cover", "attention", "avif"), ("cover", "center", "jpeg"), ("cover", "entropy", "webp")]
    s3 = boto3.client("s3")
    for thumb in thumbs:
        obj = s3.get_object(Bucket=aws.bucket, Key=f"thumbnails/{image_id}/{thumb['name']}")
        data = obj["Body"].read()
        assert thumb["bytes"] == len(data) and obj["ContentType"] == f"image/{thumb['format']}"
        with Image.open(io.BytesIO(data)) as decoded:
            assert (decoded.format.lower(), decoded.size) == (
                thumb["format"], (thumb["size"]["width"], thumb["size"]["height"]))
        assert f"/thumbnails/{image_id}/{thumb['name']}" in thumb["url"]
    assert 20 <= len(base64.b64decode(view["placeholder"], validate=True)) <= 30
    [listed] = json.loads(client.http.get("/images").body)["images"]
    assert [t["name"] for t in listed["thumbnails"]] == [t["name"] for t in thumbs]
    assert listed["placeholder"] == view["placeholder"]


def test_source_follows_the_bytes_and_names_stay_unique(client, aws):
    """Declared PNG (so source and jpeg are two entries), uploaded JPEG: both become .jpg."""
    renditions = [{"width": 64, "height": 64}, {"width": 64, "height": 64, "format": "jpeg"}]
    image_id = json.loads(post(client, contentType="image/png", renditions=renditions).body)["id"]
    view = resize(client, aws, image_id, make_jpeg(320, 240))
    assert [t["name"] for t in view["thumbnails"]] == ["64x64.jpg", "64x64-2.jpg"]


def test_a_transparent_png_keeps_alpha_and_has_a_placeholder(client, aws):
    image_id = json.loads(post(client, contentType="image/png", renditions=[
        {"width": 120, "height": 90, "format": "webp"}, {"width": 120, "height": 90}]).body)["id"]
    view = resize(client, aws, image_id, make_png(800, 600, mode="RGBA"))
    assert [t["format"] for t in view["thumbnails"]] == ["webp", "png"]
    assert view["placeholder"] and view["metadata"]["type"] == "image/png"


def test_failed_and_pending_images_have_no_placeholder(client, aws):
    pending = json.loads(post(client).body)
    assert json.loads(client.http.get(f"/images/{pending['id']}").body)["placeholder"] is None
    view = resize(client, aws, pending["id"], b"not an image at all")
    assert view["status"] == "failed" and view["placeholder"] is None and view["thumbnails"] == []


# --- items of the previous release ------------------------------------------------------


def test_a_pending_item_of_the_previous_release_gets_the_stages_default(client, aws):
    image_id = json.loads(post(client).body)["id"]
    table()(aws.table).update_item(Key={"id": image_id}, UpdateExpression="REMOVE renditions")  # as it wrote them
    view = resize(client, aws, image_id, make_jpeg(800, 600))
    assert view["status"] == "completed"
    assert [t["name"] for t in view["thumbnails"]] == ["400x300.jpg", "160x120.jpg", "120x120.jpg"]
    assert view["placeholder"]


def old_completed_item(owner: str, image_id: str = "22222222-2222-4222-8222-222222222222") -> dict:
    """A completed item exactly as the previous release wrote it."""
    return {
        "id": image_id, "owner": owner, "status": "completed", "filename": "old.png",
        "declaredType": "image/png", "declaredSize": 999, "size": 999, "type": "image/png", "width": 1200,
        "height": 900, "uploadKey": f"uploads/{image_id}", "createdAt": "2026-01-01T00:00:00.000Z",
        "updatedAt": "2026-01-01T00:00:00.250Z", "completedAt": "2026-01-01T00:00:00.250Z", "processingTries": 1,
        "thumbnails": [{"width": w, "height": h, "key": f"thumbnails/{image_id}/{w}x{h}.png",
                        "contentType": "image/png", "size": 1000 + w} for w, h in ((400, 300), (160, 120), (120, 120))],
    }


def test_a_completed_item_of_the_previous_release_shows_in_the_new_shape(client, aws, tokens):
    old = old_completed_item(sub_of(tokens("alice")))
    table()(aws.table).put_item(Item=old)
    view = json.loads(client.http.get(f"/images/{old['id']}").body)
    assert [{k: v for k, v in t.items() if k != "url"} for t in view["thumbnails"]] == [
        {"name": f"{w}x{h}.png", "size": {"width": w, "height": h}, "fit": "cover", "gravity": "center",
         "format": "png", "bytes": 1000 + w} for w, h in ((400, 300), (160, 120), (120, 120))]
    assert view["placeholder"] is None and view["metadata"]["width"] == 1200
    [listed] = json.loads(client.http.get("/images").body)["images"]
    assert listed["thumbnails"] == [{**t, "url": listed["thumbnails"][i]["url"]} for i, t in enumerate(view["thumbnails"])]
    assert client.http.delete(f"/images/{old['id']}").status_code == 204  # its objects are found by their keys


def test_the_webhook_of_a_record_of_either_release_has_the_new_shape(local_client, aws, receiver):
    from standardwebhooks import Webhook

    from tests.conftest import secret_of
    from tests.handlers.test_webhook_handlers import IMAGE_ID, deliver_queued, store_new_image, stream_event

    old = stream_event(receiver.url("/old"))
    for thumb in old["Records"][0]["dynamodb"]["NewImage"]["thumbnails"]["L"]:
        thumb["M"]["size"] = {"N": "2000"}  # the previous release recorded each one's bytes as size
    new = stream_event(receiver.url("/new"))
    image, other = new["Records"][0]["dynamodb"]["NewImage"], IMAGE_ID.replace("1111-4", "3333-4")
    image["id"] = new["Records"][0]["dynamodb"]["Keys"]["id"] = {"S": other}
    image["webhook"]["M"]["id"] = {"S": f"msg_{other}_completed"}
    image["thumbnails"] = {"L": [{"M": {
        "name": {"S": "800x600-contain.webp"}, "width": {"N": "800"}, "height": {"N": "600"}, "fit": {"S": "contain"},
        "gravity": {"S": "center"}, "format": {"S": "webp"}, "bytes": {"N": "5000"},
        "key": {"S": f"thumbnails/{other}/800x600-contain.webp"}, "contentType": {"S": "image/webp"}}}]}
    image["placeholder"] = {"S": "1QcSHQRnh493V4dIh4eXh1h4kJUI"}
    for event in (old, new):
        store_new_image(aws, event)
        local_client.lambda_.invoke("on_image_change", event)
    deliver_queued(local_client, aws)
    [got_old] = receiver.received("/old")
    [got_new] = receiver.received("/new")
    old_data = Webhook(secret_of(aws, "someone")).verify(got_old.body, got_old.headers)["data"]
    new_data = Webhook(secret_of(aws, "someone")).verify(got_new.body, got_new.headers)["data"]
    assert [{k: v for k, v in t.items() if k != "url"} for t in old_data["thumbnails"]] == [
        {"name": f"{w}x{h}.jpg", "size": {"width": w, "height": h}, "fit": "cover", "gravity": "center",
         "format": "jpeg", "bytes": 2000} for w, h in ((400, 300), (160, 120), (120, 120))]
    assert old_data["placeholder"] is None
    assert [{k: v for k, v in t.items() if k != "url"} for t in new_data["thumbnails"]] == [
        {"name": "800x600-contain.webp", "size": {"width": 800, "height": 600}, "fit": "contain",
         "gravity": "center", "format": "webp", "bytes": 5000}]
    assert new_data["placeholder"] == "1QcSHQRnh493V4dIh4eXh1h4kJUI"
