"""The upload page's placeholders and format choice, in headless Chromium on the running stack:
each image's ThumbHash is painted while its thumbnails are still on their way."""
from __future__ import annotations

import base64
import io

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser import chromium
from tests.browser.actions import PROCESSING, choose, sign_in, upload_card
from tests.imagegen import quadrants

# Every test is reported as skipped without Chromium (counted in the run's summary).
pytestmark = pytest.mark.skipif(not chromium.available(), reason=chromium.INSTALL_HINT)

# The mean colour of the middle of each quadrant of a canvas.
QUADRANT_MEANS = """(canvas) => {
    const { width, height } = canvas;
    const pixels = canvas.getContext("2d").getImageData(0, 0, width, height).data;
    const mean = (fx, fy) => {  // the middle half of the quadrant whose corner is (fx, fy) in halves
        const x0 = Math.round((fx + 0.25) * width / 2), x1 = Math.round((fx + 0.75) * width / 2);
        const y0 = Math.round((fy + 0.25) * height / 2), y1 = Math.round((fy + 0.75) * height / 2);
        const sum = [0, 0, 0, 0];
        let n = 0;
        for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++, n++)
            for (let c = 0; c < 4; c++) sum[c] += pixels[(y * width + x) * 4 + c];
        return sum.map((s) => s / n);
    };
    return { width, height, top_left: mean(0, 0), top_right: mean(1, 0), bottom_left: mean(0, 1),
             bottom_right: mean(1, 1) };
}"""


def four_colours(width: int, height: int) -> bytes:
    """Red, green, blue and yellow quadrants: a placeholder must place each where it is."""
    out = io.BytesIO()
    quadrants(width, height).save(out, "JPEG", quality=95)
    return out.getvalue()


def test_the_placeholder_is_painted_before_the_thumbnails_load(page, stack):
    held = []  # the thumbnails' GETs, answered only when the test says so
    page.route("**/thumbnails/**", lambda route: held.append(route))
    sign_in(page, stack.demo_user, stack.demo_password)
    choose(page, ("quadrants.jpg", "image/jpeg", four_colours(1200, 600)))
    card = upload_card(page, "quadrants.jpg")
    expect(card.get_by_role("status")).to_have_text("Thumbnails ready.", timeout=PROCESSING)
    images, placeholders = card.get_by_role("img"), card.locator("canvas.thumbhash")
    expect(images).to_have_count(3)
    expect(placeholders).to_have_count(3)
    assert all(img.evaluate("i => i.naturalWidth") == 0 for img in images.all())  # none has arrived
    for placeholder in placeholders.all():
        expect(placeholder).to_be_visible()
        painted = placeholder.evaluate(QUADRANT_MEANS)
        assert painted["width"] == 32 and painted["height"] < 24, painted  # landscape, as the image
        red, green, blue, yellow = (painted[q] for q in ("top_left", "top_right", "bottom_left", "bottom_right"))
        assert red[0] > max(red[1], red[2]) + 40 and green[1] > max(green[0], green[2]) + 40, painted
        assert blue[2] > max(blue[0], blue[1]) + 40 and min(yellow[:2]) > yellow[2] + 40, painted
        assert {q[3] for q in (red, green, blue, yellow)} == {255}  # an opaque JPEG
        box, shown = placeholder.bounding_box(), placeholder.locator("xpath=..").bounding_box()
        assert (round(box["width"]), round(box["height"])) == (round(shown["width"]), round(shown["height"]))

    for route in held:
        route.continue_()
    held.clear()
    page.unroute("**/thumbnails/**")
    for img in images.all():
        expect(img).not_to_have_js_property("naturalWidth", 0)
    for placeholder in placeholders.all():
        expect(placeholder).to_be_hidden()  # gone once its thumbnail is there (transparency shows no blur)


def test_a_chosen_format_applies_to_the_stages_sizes(page, stack):
    sign_in(page, stack.demo_user, stack.demo_password)
    page.get_by_label("Format", exact=True).select_option(label="WebP")
    choose(page, ("webp.jpg", "image/jpeg", four_colours(800, 600)))
    card = upload_card(page, "webp.jpg")
    expect(card.get_by_role("status")).to_have_text("Thumbnails ready.", timeout=PROCESSING)
    expect(card.locator("figcaption")).to_have_text(["400x300.webp", "160x120.webp", "120x120.webp"])
    for img, (width, height) in zip(card.get_by_role("img").all(), [(400, 300), (160, 120), (120, 120)]):
        expect(img).to_have_js_property("naturalWidth", width)  # Chromium decoded the WebP
        expect(img).to_have_js_property("naturalHeight", height)


def placeholder_of(picture: Image.Image) -> str:
    from chalicelib.imaging import engine

    out = io.BytesIO()
    picture.save(out, "PNG")
    return engine.render(out.getvalue()).placeholder


DECODE = """async (placeholders) => {
    const { decodeThumbHash, thumbHashBytes } = await import("./thumbhash.js");
    return placeholders.map((placeholder) => {
        const { width, height, rgba } = decodeThumbHash(thumbHashBytes(placeholder));
        return { width, height, rgba: Array.from(rgba) };
    });
}"""


def test_the_pages_decoder_draws_what_the_reference_decoder_draws(page):
    """The page's own decoder (thumbhash.js, as served) against the format's reference
    algorithm ported to Python (tests/thumbhash_reference.py), on the engine's placeholders
    of landscape, portrait, square, transparent and flat pictures."""
    from tests.imagegen import picture, with_alpha
    from tests.thumbhash_reference import thumb_hash_to_rgba

    pictures = [picture(1200, 600, seed=1), picture(300, 900, seed=2), quadrants(500, 500),
                with_alpha(picture(800, 600, seed=3)), with_alpha(picture(200, 700, seed=4)),
                Image.new("RGB", (640, 480), (12, 200, 99))]
    placeholders = [placeholder_of(p) for p in pictures]
    for placeholder, drawn in zip(placeholders, page.evaluate(DECODE, placeholders)):
        width, height, expected = thumb_hash_to_rgba(base64.b64decode(placeholder))
        assert (drawn["width"], drawn["height"]) == (width, height), placeholder
        # the same pixels, but for rounding (the page's canvas rounds half to even)
        assert max(abs(a - b) for a, b in zip(drawn["rgba"], expected)) <= 1, placeholder
