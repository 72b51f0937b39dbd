"""Fuzzing the engine with mutated PNG/JPEG bytes: whatever a client uploads, the engine
returns exactly three thumbnails or raises ImageRejected with one of the three codes --
never another exception, never a warning. Bounded: ~300 examples, well under 30 s."""
from __future__ import annotations

import struct
import warnings
import zlib
from datetime import timedelta
from functools import lru_cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.imaging.engine import THUMBNAIL_SIZES, ImageRejected, render_thumbnails
from tests.imagegen import make_jpeg, make_png

# Keeps each example cheap: a mutated header may declare any size up to this; the limit
# logic itself is tested in test_engine.py.
FUZZ_MAX_PIXELS = 1_000_000
CODES = {"unsupported_format", "corrupt_image", "image_too_large"}
FUZZ = settings(
    max_examples=120,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@lru_cache(maxsize=None)
def seeds(kind: str) -> tuple[bytes, ...]:
    if kind == "jpeg":
        return (
            make_jpeg(96, 64),
            make_jpeg(96, 64, progressive=True, orientation=6, exif_gps=True),
            make_jpeg(64, 96, mode="L"),
            make_jpeg(80, 60, mode="CMYK"),
        )
    return (
        make_png(96, 64),
        make_png(96, 64, mode="RGBA"),
        make_png(64, 48, mode="PA"),
        make_png(64, 48, mode="I;16"),
        make_png(64, 48, mode="RGBA;16", interlaced=True),
        make_png(48, 48, mode="1", orientation=3),
    )


@st.composite
def mutated(draw: st.DrawFn, kind: str) -> bytes:
    """A seed image with 1-4 mutations: bit flips, overwrites, insertions, deletions,
    truncation, or a rewritten size field in the header."""
    data = bytearray(draw(st.sampled_from(seeds(kind))))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "overwrite", "insert", "delete", "truncate", "size"]))
        pos = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[pos : pos + len(chunk)] = chunk
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "truncate":
            del data[max(3, pos) :]
        else:
            _rewrite_size(data, draw(st.integers(0, 70_000)), draw(st.integers(0, 70_000)))
        if len(data) < 4:
            break
    return bytes(data)


def _rewrite_size(data: bytearray, width: int, height: int) -> None:
    """Set the declared size: the PNG IHDR (CRC fixed, so the lie is well-formed) or the
    first JPEG SOF marker."""
    if data[:4] == b"\x89PNG" and data[12:16] == b"IHDR" and len(data) >= 33:
        struct.pack_into(">II", data, 16, width, height)
        struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
        return
    sof = data.find(b"\xff\xc0")
    if sof < 0:
        sof = data.find(b"\xff\xc2")
    if sof >= 0 and sof + 9 <= len(data):
        struct.pack_into(">HH", data, sof + 5, min(height, 65535), min(width, 65535))


def check(data: bytes) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. a DecompressionBombWarning must not escape
        try:
            result = render_thumbnails(data, max_pixels=FUZZ_MAX_PIXELS)
        except ImageRejected as exc:
            assert exc.code in CODES, exc.code
            assert exc.message
            return
    assert [(r.width, r.height) for r in result.renditions] == list(THUMBNAIL_SIZES)
    assert result.content_type in ("image/png", "image/jpeg")
    assert all(r.content_type == result.content_type and r.data for r in result.renditions)
    assert result.width * result.height <= FUZZ_MAX_PIXELS


@FUZZ
@given(mutated("png"))
def test_mutated_png(data):
    check(data)


@FUZZ
@given(mutated("jpeg"))
def test_mutated_jpeg(data):
    check(data)


@settings(FUZZ, max_examples=60)
@given(st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b""]), st.binary(max_size=512))
def test_magic_followed_by_anything(magic, tail):
    check(magic + tail)
