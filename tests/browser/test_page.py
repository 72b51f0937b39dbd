"""The upload page (GET /) in headless Chromium on the running stack, driven as a person
would drive it: by its labels ("Username", "Password", "Sign in", "Image") and buttons."""
from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from tests.browser import chromium, cors
from tests.browser.actions import PROCESSING, choose, sign_in, upload_card
from tests.imagegen import make_jpeg, make_png
from thumbgen.client import ApiError, ThumbgenClient

# Every test is reported as skipped without Chromium (counted in the run's summary).
pytestmark = pytest.mark.skipif(not chromium.available(), reason=chromium.INSTALL_HINT)

SIZES = [(400, 300), (160, 120), (120, 120)]
MAX_UPLOAD_BYTES = 11 * 1024 * 1024
AWS_PAGE_ORIGIN = "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"  # the page on AWS


def recent_item(page, filename: str):
    return page.get_by_role("list", name="Recent images").get_by_role("listitem").filter(has_text=filename)


def recent_list_loaded(response) -> bool:
    return "/images?limit=" in response.url and response.status == 200


def expect_loaded(img, width: int, height: int) -> None:
    """The browser fetched and decoded it (a CSP or CORS refusal leaves naturalWidth 0)."""
    expect(img).to_have_js_property("naturalWidth", width)
    expect(img).to_have_js_property("naturalHeight", height)


def test_a_jpeg_and_a_png_uploaded_together_show_their_six_thumbnails(page, stack):
    sign_in(page, stack.demo_user, stack.demo_password)
    jpeg, png = make_jpeg(1600, 1200, seed=1), make_png(900, 900, mode="RGBA")
    choose(page, ("cat.jpg", "image/jpeg", jpeg), ("logo.png", "image/png", png))
    for name, data in (("cat.jpg", jpeg), ("logo.png", png)):
        card = upload_card(page, name)
        expect(card.get_by_role("status")).to_have_text("Thumbnails ready.", timeout=PROCESSING)
        progress = card.get_by_role("progressbar")
        expect(progress).to_have_js_property("value", len(data))  # every byte sent
        expect(progress).to_have_js_property("max", len(data))
        thumbnails = card.get_by_role("img")
        expect(thumbnails).to_have_count(3)
        for img, (width, height) in zip(thumbnails.all(), SIZES):
            expect(img).to_have_accessible_name(f"{name}, {width}×{height} thumbnail")
            expect_loaded(img, width, height)
    expect(page.get_by_role("list", name="Uploads").get_by_role("img")).to_have_count(6)


def test_files_that_are_not_images_fail_in_words(page, stack, tmp_path):
    sign_in(page, stack.demo_user, stack.demo_password)
    (tmp_path / "notes.txt").write_text("just text\n")  # the browser calls it text/plain
    (tmp_path / "fake.jpg").write_text("not a JPEG, only text\n" * 40)
    with open(tmp_path / "huge.jpg", "wb") as huge:  # one byte over the limit (sparse, instant)
        huge.truncate(MAX_UPLOAD_BYTES + 1)
    page.get_by_label("Image", exact=True).set_input_files(
        [tmp_path / name for name in ("notes.txt", "fake.jpg", "huge.jpg")])
    # Refused by the API before any upload (415, 413), and by the resize after it.
    expect(upload_card(page, "notes.txt").get_by_role("status")).to_have_text(
        re.compile(r"^Failed: unsupported_media_type: \w.+"))
    expect(upload_card(page, "huge.jpg").get_by_role("status")).to_have_text(
        re.compile(r"^Failed: file_too_large: \w.+"))
    expect(upload_card(page, "fake.jpg").get_by_role("status")).to_have_text(
        re.compile(r"^Failed: unsupported_format: \w.+"), timeout=PROCESSING)
    expect(upload_card(page, "fake.jpg").get_by_role("img")).to_have_count(0)


def test_recent_images_show_thumbnails_and_delete_removes_one(page, stack):
    sign_in(page, stack.demo_user, stack.demo_password)
    choose(page, ("delete-me.jpg", "image/jpeg", make_jpeg(800, 600, seed=2)))
    expect(upload_card(page, "delete-me.jpg").get_by_role("status")).to_have_text(
        "Thumbnails ready.", timeout=PROCESSING)
    item = recent_item(page, "delete-me.jpg")
    expect(item).to_have_count(1)
    expect_loaded(item.get_by_role("img"), 160, 120)
    image_id = item.get_attribute("data-id")
    demo = ThumbgenClient(stack.api_url, token=stack.token(stack.demo_user))
    assert demo.get(image_id)["id"] == image_id

    item.get_by_role("button", name="Delete delete-me.jpg").click()
    expect(item).to_have_count(0)
    expect(upload_card(page, "delete-me.jpg")).to_have_count(0)
    expect(page.get_by_role("status").filter(has_text="Deleted delete-me.jpg.")).to_be_visible()
    with pytest.raises(ApiError) as gone:
        demo.get(image_id)
    assert gone.value.status == 404


def test_recent_images_come_newest_first_and_more_follows_the_cursor(page, stack, person):
    user, password = person("browser-pager")
    client = ThumbgenClient(stack.api_url, token=stack.token(user))
    names = [f"waiting-{i:02}.jpg" for i in range(10)]
    for name in names:  # registered, never uploaded: listed as pending
        client.create(filename=name, content_type="image/jpeg", file_size=1000)
    sign_in(page, user, password)
    recent = page.get_by_role("list", name="Recent images").get_by_role("listitem")
    expect(recent).to_have_count(8)
    page.get_by_role("button", name="More", exact=True).click()
    expect(recent).to_have_count(10)
    expect(page.get_by_role("button", name="More", exact=True)).to_be_hidden()
    shown = [re.search(r"waiting-\d\d\.jpg", text)[0] for text in recent.all_inner_texts()]
    assert shown == names[::-1]


def test_a_wrong_password_is_refused_in_words(page, stack):
    page.get_by_label("Username", exact=True).fill(stack.demo_user)
    page.get_by_label("Password", exact=True).fill("not-the-password-1A")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("Incorrect username or password.")
    expect(page.get_by_label("Image", exact=True)).to_be_hidden()


def test_sign_in_and_out_with_the_keyboard_only(page, stack):
    page.keyboard.press("Tab")
    username = page.get_by_label("Username", exact=True)
    expect(username).to_be_focused()
    assert username.evaluate("e => getComputedStyle(e).outlineStyle") != "none"  # focus is visible
    page.keyboard.type(stack.demo_user)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password", exact=True)).to_be_focused()
    page.keyboard.type(stack.demo_password)
    page.keyboard.press("Enter")
    expect(page.get_by_label("Image", exact=True)).to_be_focused()
    stored = page.evaluate("() => JSON.parse(sessionStorage.getItem('thumbgen.session'))")
    assert stored["access"].count(".") == 2 and stored["refresh"]
    assert page.context.cookies() == []  # tokens are never in a cookie

    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Sign out")).to_be_focused()
    page.keyboard.press("Enter")
    expect(username).to_be_focused()
    expect(page.get_by_label("Image", exact=True)).to_be_hidden()
    assert page.evaluate("() => sessionStorage.getItem('thumbgen.session')") is None


@pytest.mark.parametrize("spoil", [
    "s.expiresAt = 0",  # expired by the clock: refreshed before the request
    "s.access = 'not.a.token'",  # refused by the API (401): refreshed, then retried once
])
def test_the_access_token_is_refreshed_with_the_refresh_token(page, stack, spoil):
    with page.expect_response(recent_list_loaded):  # the first page's list, before spoiling
        sign_in(page, stack.demo_user, stack.demo_password)
    page.evaluate(f"""() => {{
        const s = JSON.parse(sessionStorage.getItem('thumbgen.session'));
        {spoil};
        sessionStorage.setItem('thumbgen.session', JSON.stringify(s));
    }}""")
    flows = []
    page.on("request", lambda r: flows.append(json.loads(r.post_data)["AuthFlow"])
            if r.headers.get("x-amz-target", "").endswith(".InitiateAuth") else None)
    # The tab keeps its session: the reloaded page starts from the stored tokens.
    with page.expect_response(recent_list_loaded):
        page.reload()
    assert flows == ["REFRESH_TOKEN_AUTH"]
    stored = page.evaluate("() => JSON.parse(sessionStorage.getItem('thumbgen.session'))")
    assert stored["access"].count(".") == 2 and stored["expiresAt"] > 0
    expect(page.get_by_label("Image", exact=True)).to_be_visible()


def test_a_phone_sized_screen_needs_no_sideways_scrolling(page, stack):
    page.set_viewport_size({"width": 360, "height": 740})
    sign_in(page, stack.demo_user, stack.demo_password)
    choose(page, ("phone.jpg", "image/jpeg", make_jpeg(1200, 900, seed=3)))
    expect(upload_card(page, "phone.jpg").get_by_role("status")).to_have_text(
        "Thumbnails ready.", timeout=PROCESSING)
    expect(recent_item(page, "phone.jpg")).to_have_count(1)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360


def test_the_upload_put_and_thumbnail_gets_pass_the_bucket_cors_rule(page, stack):
    rule = cors.bucket_rule()
    presigned = []  # requests to the bucket, as Playwright reports them
    page.on("request", lambda r: presigned.append(r) if "X-Amz-Signature=" in r.url else None)
    preflights = []  # CORS preflights, which only the DevTools protocol reports
    cdp = page.context.new_cdp_session(page)
    cdp.on("Network.requestWillBeSent", lambda e: preflights.append(e["request"])
           if e["request"]["method"] == "OPTIONS" else None)
    cdp.send("Network.enable")
    sign_in(page, stack.demo_user, stack.demo_password)
    choose(page, ("cors.jpg", "image/jpeg", make_jpeg(640, 480, seed=4)))
    card = upload_card(page, "cors.jpg")
    expect(card.get_by_role("status")).to_have_text("Thumbnails ready.", timeout=PROCESSING)
    expect(card.get_by_role("img")).to_have_count(3)
    for img, (width, height) in zip(card.get_by_role("img").all(), SIZES):
        expect_loaded(img, width, height)

    [put] = [r for r in presigned if r.method == "PUT"]
    sent = cors.script_set(put)
    assert sent == {"content-type", "if-none-match"}, sent  # what the API signed, less Content-Length
    assert put.headers["if-none-match"] == "*"
    [preflight] = [p for p in preflights if p["url"] == put.url]
    asked = [h.strip() for h in preflight["headers"]["Access-Control-Request-Headers"].split(",")]
    assert preflight["headers"]["Access-Control-Request-Method"] == "PUT"
    assert set(asked) == sent
    for origin in (preflight["headers"]["Origin"], AWS_PAGE_ORIGIN):  # here and on AWS
        assert cors.admits(rule, origin, "PUT", asked), (origin, asked, rule)

    # Thumbnails are plain <img> loads: no-cors GETs, with no preflight and no CORS check
    # (GET is in the rule anyway, for pages that fetch them from scripts).
    gets = [r for r in presigned if r.method == "GET"]
    assert gets and all(r.resource_type == "image" for r in gets)
    # (Sec-Fetch-Mode is in the headers of those that went to the network, not of those
    # a re-render cancelled or the memory cache answered.)
    modes = [r.all_headers().get("sec-fetch-mode") for r in gets]
    assert modes.count("no-cors") >= 3 and "cors" not in modes, modes
    assert not [p for p in preflights if p["headers"].get("Access-Control-Request-Method") == "GET"]
    assert page.locator("img[crossorigin]").count() == 0
    assert cors.admits(rule, AWS_PAGE_ORIGIN, "GET", [])
