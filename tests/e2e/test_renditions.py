"""Renditions end to end over real HTTP: asked for in POST /images, made at upload, announced
by the signed webhook, downloaded and decoded; refusals; `thumbgen upload --rendition`."""
from __future__ import annotations

import base64
import io
import uuid

import pytest
import requests
from PIL import Image, ImageStat
from standardwebhooks import Webhook

from tests.budget import over_avif_budget, over_output_budget
from tests.e2e.test_cli_upload import thumbgen_upload
from tests.imagegen import make_jpeg, quadrants
from thumbgen.client import ApiError

# Mixed fits and formats, a focal point and an attention crop; the upload is 1600x1200.
SIX = [
    {"width": 400, "height": 300},
    {"width": 800, "height": 600, "fit": "contain", "format": "webp", "background": "#ffffff"},
    {"width": 640, "height": 640, "fit": "inside", "format": "png"},
    {"width": 300, "height": 300, "gravity": "attention", "format": "avif"},
    {"width": 200, "height": 400, "focus": {"x": 0.9, "y": 0.5}, "format": "jpeg", "quality": 60},
    {"width": 160, "height": 120, "format": "webp", "quality": 90},
]
EXPECTED = [  # name, (width, height), fit, gravity, format
    ("400x300.jpg", (400, 300), "cover", "center", "jpeg"),
    ("800x600-contain-bgffffff.webp", (800, 600), "contain", "center", "webp"),
    ("640x640-inside.png", (640, 480), "inside", "center", "png"),
    ("300x300-attention.avif", (300, 300), "cover", "attention", "avif"),
    ("200x400-focus-0.9-0.5-q60.jpg", (200, 400), "cover", "center", "jpeg"),
    ("160x120-q90.webp", (160, 120), "cover", "center", "webp"),
]
DECODED_AS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "avif": "AVIF"}


def download(url: str) -> bytes:
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    return response.content


def test_six_renditions_end_to_end(stack, receiver):
    path = f"/hook/{uuid.uuid4().hex}"
    data = make_jpeg(1600, 1200, seed=11)
    upload = stack.client.upload(data, content_type="image/jpeg", filename="six.jpg",
                                 webhook_url=receiver.url(path), renditions=SIX)
    [got] = receiver.wait_for(path, timeout=30)
    event = Webhook(stack.secret("e2e-alice")).verify(got.body, got.headers)  # the owner's own secret
    assert event["type"] == "thumbnails.generated" and event["data"]["id"] == upload.id
    view = stack.client.get(upload.id)
    for shown in (event["data"], view):  # the webhook and GET agree, in the order asked
        assert [(t["name"], (t["size"]["width"], t["size"]["height"]), t["fit"], t["gravity"], t["format"])
                for t in shown["thumbnails"]] == EXPECTED
        assert shown["placeholder"] == view["placeholder"]
    for thumb in view["thumbnails"]:
        body = download(thumb["url"])
        assert len(body) == thumb["bytes"]
        with Image.open(io.BytesIO(body)) as image:
            assert (image.format, image.size) == (DECODED_AS[thumb["format"]],
                                                  (thumb["size"]["width"], thumb["size"]["height"]))
        assert thumb["url"].split("?")[0].endswith(f"/thumbnails/{upload.id}/{thumb['name']}")
    hashed = base64.b64decode(view["placeholder"], validate=True)
    assert 20 <= len(hashed) <= 30 and not hashed[2] & 0x80  # an opaque JPEG: no alpha in the hash
    listed = next(image for image in stack.client.list() if image["id"] == upload.id)
    assert [t["name"] for t in listed["thumbnails"]] == [name for name, *_ in EXPECTED]
    assert listed["placeholder"] == view["placeholder"]


def test_the_focus_keeps_its_side_of_the_picture(stack, receiver):
    """Four coloured quadrants, 1200x600, cropped to 100x200 (a 300x600 strip of the source):
    the focus decides which strip."""
    out = io.BytesIO()
    quadrants(1200, 600).save(out, "JPEG", quality=95)
    renditions = [{"width": 100, "height": 200, "focus": {"x": 1, "y": 0}},
                  {"width": 100, "height": 200, "focus": {"x": 0, "y": 1}}]
    upload = stack.client.upload(out.getvalue(), content_type="image/jpeg", renditions=renditions)
    image = stack.client.wait(upload.id, timeout=30)
    right, left = (Image.open(io.BytesIO(download(t["url"]))).convert("RGB") for t in image["thumbnails"])
    # the top half of a 100x200 crop at the right edge is the top-right quadrant (green), ...
    assert ImageStat.Stat(right.crop((0, 0, 100, 100))).mean[1] > 150
    # ... and the bottom half of the one at the left edge is the bottom-left quadrant (blue)
    assert ImageStat.Stat(left.crop((0, 100, 100, 200))).mean[2] > 150


@pytest.mark.parametrize("renditions, field", [
    ([{"width": 400, "height": 300, "fit": "stretch"}], "renditions[0].fit"),
    ([{"width": 400, "height": 300}, {"width": 400, "height": 300, "format": "jpeg"}], "renditions[1]"),
    (over_output_budget(), "renditions"),
    (over_avif_budget(), "renditions"),
])
def test_refusals_over_http(stack, renditions, field):
    with pytest.raises(ApiError) as refused:
        stack.client.create(filename="a.jpg", content_type="image/jpeg", file_size=1000, renditions=renditions)
    assert (refused.value.status, refused.value.code) == (400, "invalid_request")
    assert refused.value.message.startswith(f"{field} ")


def test_thumbgen_upload_with_renditions_saves_each_under_its_name(stack, tmp_path):
    (tmp_path / "cat.jpg").write_bytes(make_jpeg(1200, 900))
    result = thumbgen_upload(stack, tmp_path / "cat.jpg", "--out", tmp_path / "thumbs",
                             "--rendition", "800x600,fit=contain,format=webp", "--rendition", "300x300,gravity=attention",
                             token=stack.token("e2e-cli-renditions"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    saved = {}
    for file in sorted((tmp_path / "thumbs" / "cat").iterdir()):
        with Image.open(file) as image:
            saved[file.name] = (image.format, image.size)
    assert saved == {"800x600-contain.webp": ("WEBP", (800, 600)), "300x300-attention.jpg": ("JPEG", (300, 300))}
