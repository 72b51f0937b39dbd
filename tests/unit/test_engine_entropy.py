"""High-entropy uploads -- noise, confetti, gravel, high-ISO grain -- whose thumbnails are
themselves high-detail: the worst case for the thumbnail encoders (a 400 x 300 4:4:4 JPEG
of noise takes ~1.5-1.8 bytes per pixel). Every valid PNG or JPEG within the limits
(11 MiB, MAX_PIXELS) must render three thumbnails of the exact sizes that decode back in
the input's format. Fixed examples for the large sizes, hypothesis for the rest."""
from __future__ import annotations

import io
import math
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from chalicelib.imaging.engine import MAX_PIXELS, THUMBNAIL_SIZES, jpeg_size_bound, render_thumbnails
from chalicelib.platform.config import MAX_UPLOAD_BYTES_DEFAULT
from tests.imagegen import GRAIN_KINDS, cached_jpeg, cached_png, grain, make_jpeg, make_png

FORMAT = {"image/jpeg": "JPEG", "image/png": "PNG"}
ORIENTATIONS = (None, 1, 2, 3, 4, 5, 6, 7, 8)


def check(data: bytes, fmt: str) -> None:
    """A valid upload: three thumbnails of exactly THUMBNAIL_SIZES, in the input's format,
    that Pillow decodes back; no warning on the way."""
    assert len(data) <= MAX_UPLOAD_BYTES_DEFAULT, f"not a valid upload: {len(data):,} bytes"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = render_thumbnails(data)
    assert FORMAT[result.content_type] == fmt
    assert [(r.width, r.height) for r in result.renditions] == list(THUMBNAIL_SIZES)
    for rendition in result.renditions:
        assert rendition.content_type == result.content_type
        with Image.open(io.BytesIO(rendition.data), formats=[fmt]) as im:
            assert (im.format, im.size) == (fmt, (rendition.width, rendition.height))
            im.load()


def fine(width: int, height: int) -> int:
    """Detail of about one thumbnail pixel: survives the downscale into the 400 x 300."""
    return max(1, min(width // 400, height // 300))


jpeg, png = cached_jpeg, cached_png


# ---------------------------------------------------------------- fixed examples


@pytest.mark.parametrize("kind", GRAIN_KINDS)
@pytest.mark.parametrize("size", [(3000, 2000), (4000, 3000)])
def test_fine_grain_camera_jpegs_complete(size, kind):
    """The uploads seen failing: 6-12 MP JPEGs of grain at the thumbnail's scale."""
    check(jpeg(*size, content=kind, feature=fine(*size), quality=90), "JPEG")


@pytest.mark.parametrize("kind", ["noise", "confetti"])
@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_box_sized_noise_renders(mode, kind):
    """A 400 x 300 source: the largest thumbnail is the noise itself, at 4:4:4."""
    check(jpeg(400, 300, content=kind, mode=mode, quality=95, subsampling=0), "JPEG")


LARGE = [
    pytest.param(lambda: jpeg(4000, 3000, content="noise", feature=10, quality=92, progressive=True,
                              orientation=6), "JPEG", id="jpeg-12mp-progressive-rotated"),
    pytest.param(lambda: jpeg(4000, 3000, content="confetti", feature=10, mode="CMYK"), "JPEG",
                 id="jpeg-12mp-cmyk"),
    pytest.param(lambda: jpeg(8660, 5772, content="noise", feature=21, quality=85), "JPEG",
                 id="jpeg-50mp"),
    pytest.param(lambda: png(4000, 3000, content="gravel", feature=10, mode="RGB;16", low_byte="copy"), "PNG",
                 id="png-12mp-16bit"),
    pytest.param(lambda: png(8660, 5772, content="noise", feature=21, orientation=8), "PNG",
                 id="png-50mp-rotated"),
    # Per-pixel noise up to the 11 MiB file limit: libvips decodes ~10 MB of
    # incompressible IDAT, one chunk when written by hand (interlaced), many by Pillow.
    pytest.param(lambda: png(1900, 1900, content="noise"), "PNG", id="png-noise-at-file-limit"),
    pytest.param(lambda: png(1800, 1800, content="noise", interlaced=True), "PNG",
                 id="png-noise-interlaced-one-idat"),
]


@pytest.mark.parametrize("build, fmt", LARGE)
def test_large_high_entropy_uploads_complete(build, fmt):
    data = build()
    with Image.open(io.BytesIO(data)) as im:
        assert im.width * im.height <= MAX_PIXELS
    check(data, fmt)


# ---------------------------------------------------------------- property tests

# Size classes: smaller than the box (scaled up), ~1 MP, ~3-4 MP. The 12 MP and 50 MP
# classes are the fixed examples above: a few seconds each to build.
SIZE_CLASSES = {
    "small": ((16, 399), (16, 299)),
    "1mp": ((900, 1300), (750, 1000)),
    "3-4mp": ((2000, 2300), (1500, 1750)),
}
ENTROPY = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def geometry(draw: st.DrawFn, size_class: str) -> tuple[int, int, str, int]:
    """Width, height, grain kind and detail size (per pixel up to ~2 thumbnail pixels)."""
    (w0, w1), (h0, h1) = SIZE_CLASSES[size_class]
    width, height = draw(st.integers(w0, w1)), draw(st.integers(h0, h1))
    if draw(st.booleans()):
        width, height = height, width  # portrait
    feature = draw(st.integers(1, max(1, 2 * fine(width, height))))
    return width, height, draw(st.sampled_from(GRAIN_KINDS)), feature


@pytest.mark.parametrize("size_class", SIZE_CLASSES)
@ENTROPY
@given(
    data=st.data(),
    mode=st.sampled_from(["RGB", "L", "CMYK"]),
    progressive=st.booleans(),
    orientation=st.sampled_from(ORIENTATIONS),
    quality=st.sampled_from([75, 90, 95]),
    subsampling=st.sampled_from([None, 0]),
    seed=st.integers(0, 2**16),
)
def test_high_entropy_jpeg(size_class, data, mode, progressive, orientation, quality, subsampling, seed):
    width, height, kind, feature = data.draw(geometry(size_class))
    if mode == "CMYK" and width * height > 3_000_000:
        quality = min(quality, 90)  # 4 MP of CMYK noise at Q95 is ~12 MB: over the limit
    upload = make_jpeg(width, height, content=kind, feature=feature, mode=mode, progressive=progressive,
                       orientation=orientation, quality=quality, subsampling=subsampling, seed=seed)
    check(upload, "JPEG")


PNG_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "I;16", "LA;16", "RGB;16", "RGBA;16")
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "LA": 2, "P": 1, "PA": 1, "RGB": 3, "RGBA": 4,
                    "I;16": 2, "LA;16": 4, "RGB;16": 6, "RGBA;16": 8}


@pytest.mark.parametrize("size_class", SIZE_CLASSES)
@ENTROPY
@given(data=st.data(), mode=st.sampled_from(PNG_MODES), interlaced=st.booleans(),
       orientation=st.sampled_from(ORIENTATIONS), seed=st.integers(0, 2**16))
def test_high_entropy_png(size_class, data, mode, interlaced, orientation, seed):
    width, height, kind, feature = data.draw(geometry(size_class))
    interlaced = interlaced and mode not in ("1", "P", "PA")
    # Noise hardly compresses: coarser detail (and 16-bit low bytes that copy the high
    # ones) keep the largest classes under the 11 MiB upload limit.
    raw = width * height * _BYTES_PER_PIXEL[mode]
    feature = max(feature, math.ceil(raw / 8_000_000))
    low_byte = "noise" if raw <= 4_000_000 else "copy"
    upload = make_png(width, height, content=kind, feature=feature, mode=mode, interlaced=interlaced,
                      orientation=orientation, low_byte=low_byte, seed=seed)
    check(upload, "PNG")


@pytest.mark.parametrize("quality", [85, 100])
@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("kind", ["noise", "confetti"])
def test_jpeg_size_bound_holds_for_the_worst_content(kind, mode, quality):
    """The engine sizes Pillow's JPEG encoder buffer by jpeg_size_bound: per-pixel noise
    and binary confetti, even at Q100 4:4:4, stay within it. Written with the standard
    Huffman tables (streamed, so any size fits the buffer); the engine's optimized
    tables only make the file smaller."""
    img = grain(400, 300, kind).convert(mode)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, subsampling=0)
    assert len(buf.getvalue()) <= jpeg_size_bound(400, 300)
