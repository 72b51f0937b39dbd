"""chalicelib/imaging/thumbhash.py against the reference algorithm (tests/thumbhash_reference.py):
the same bytes, and a decoded placeholder that keeps the image's colour, aspect and alpha."""
from __future__ import annotations

import base64
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageStat

from chalicelib.imaging import thumbhash
from tests import imagegen
from tests.thumbhash_reference import (
    rgba_to_thumb_hash,
    thumb_hash_to_approximate_aspect_ratio,
    thumb_hash_to_average_rgba,
    thumb_hash_to_rgba,
)


def _random_rgba(w: int, h: int, seed: int, *, opaque: bool) -> Image.Image:
    rng = random.Random(seed)
    img = Image.frombytes("RGBA", (w, h), bytes(rng.randrange(256) for _ in range(w * h * 4)))
    if opaque:
        img.putalpha(255)
    return img


@settings(max_examples=40, deadline=None)
@given(w=st.integers(1, 40), h=st.integers(1, 40), seed=st.integers(0, 2**16), opaque=st.booleans())
def test_same_bytes_as_the_reference_encoder_on_noise(w, h, seed, opaque):
    img = _random_rgba(w, h, seed, opaque=opaque)
    ours = thumbhash.encode(img.convert("RGB") if opaque else img)
    assert ours == rgba_to_thumb_hash(w, h, img.tobytes())


@pytest.mark.parametrize("size", [(100, 67), (16, 11), (11, 16), (30, 30), (100, 1), (1, 100)])
def test_same_bytes_as_the_reference_encoder_on_pictures(size):
    for img in (imagegen.scene(*size).convert("RGBA"), imagegen.with_alpha(imagegen.scene(*size))):
        assert thumbhash.encode(img) == rgba_to_thumb_hash(*size, img.tobytes())


def test_round_trip_keeps_average_colour_aspect_and_alpha():
    # A warm 3:2 picture, then the same with transparent corners.
    src = imagegen.scene(60, 40, seed=3)
    opaque = thumbhash.encode(src)
    r, g, b, a = thumb_hash_to_average_rgba(opaque)
    mean = [v / 255 for v in ImageStat.Stat(src).mean]
    assert all(abs(x - y) < 0.05 for x, y in zip((r, g, b), mean)), ((r, g, b), mean)
    assert a == 1.0 and not opaque[2] & 0x80
    assert thumb_hash_to_approximate_aspect_ratio(opaque) == pytest.approx(1.5, rel=0.15)

    faded = imagegen.with_alpha(src)
    hashed = thumbhash.encode(faded)
    assert hashed[2] & 0x80  # the alpha flag
    w, h, rgba = thumb_hash_to_rgba(hashed)
    corner, centre = rgba[3], rgba[((h // 2) * w + w // 2) * 4 + 3]
    assert corner < 64 and centre > 192, (corner, centre)


def test_solid_colours_decode_to_themselves():
    for colour in [(255, 0, 0), (0, 128, 255), (20, 20, 20), (250, 250, 250)]:
        hashed = thumbhash.encode(Image.new("RGB", (16, 9), colour))
        w, h, rgba = thumb_hash_to_rgba(hashed)
        assert (w, h) == (32, 18) or abs(w / h - 16 / 9) < 0.3
        assert all(abs(rgba[i] - colour[i]) <= 8 for i in range(3)), (rgba[:4], colour)


def test_fully_transparent_image():
    hashed = thumbhash.encode(Image.new("RGBA", (8, 8), (255, 0, 0, 0)))
    assert thumb_hash_to_average_rgba(hashed)[3] == 0.0


def test_base64_is_standard_and_short():
    text = thumbhash.encode_base64(imagegen.scene(16, 11))
    assert base64.b64decode(text, validate=True) == thumbhash.encode(imagegen.scene(16, 11))
    assert 25 <= len(text) <= 36


@pytest.mark.parametrize("img", [Image.new("RGB", (101, 10)), Image.new("RGB", (10, 101)), Image.new("L", (10, 10))])
def test_refuses_what_the_reference_refuses(img):
    with pytest.raises(ValueError):
        thumbhash.encode(img)
