"""Behaviour of the image engine (chalicelib/imaging/engine.py): formats, limits, geometry,
orientation, modes, colour, metadata and fidelity against a full-resolution reference."""
from __future__ import annotations

import io
import math
import struct
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image, ImageChops, ImageCms, ImageDraw, ImageOps, PngImagePlugin

from chalicelib.imaging.engine import (
    MAX_PIXELS,
    THUMBNAIL_SIZES,
    ImageRejected,
    cover_box,
    render_images,
    render_thumbnails,
    sniff_content_type,
)
from tests.imagegen import (
    QUADRANT_COLOURS,
    cached_jpeg,
    cached_png,
    make_apng,
    make_exif,
    make_gif,
    make_jpeg,
    make_png,
    make_png_bomb_header,
    make_truncated_jpeg,
    make_truncated_png,
    scene,
    strip_jpeg_segment,
)

# ---------------------------------------------------------------- helpers


def rejection(data: bytes, **limits) -> ImageRejected:
    """What the engine refuses `data` with (the test fails if it accepts it)."""
    with pytest.raises(ImageRejected) as caught:
        render_thumbnails(data, **limits)
    return caught.value


def psnr(a: Image.Image, b: Image.Image) -> float:
    """Peak signal-to-noise ratio in dB over all bands (no numpy needed)."""
    assert a.size == b.size and a.mode == b.mode, (a.size, b.size, a.mode, b.mode)
    hist = ImageChops.difference(a, b).histogram()
    sse = sum(count * (i % 256) ** 2 for i, count in enumerate(hist))
    mse = sse / (a.width * a.height * len(a.getbands()))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def reference(data: bytes, size: tuple[int, int], mode: str) -> Image.Image:
    """Full-resolution decode, EXIF transpose, then Pillow's own cover crop (ImageOps.fit)
    with Lanczos: the slow, obviously-right way, independent of the engine's code."""
    with Image.open(io.BytesIO(data)) as im:
        full = ImageOps.exif_transpose(im).convert(mode)
    return ImageOps.fit(full, size, Image.Resampling.LANCZOS, centering=(0.5, 0.5))


def decoded(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def near(pixel: tuple[int, ...], colour: tuple[int, ...], tol: int = 30) -> bool:
    return all(abs(p - c) <= tol for p, c in zip(pixel, colour))


jpeg, png = cached_jpeg, cached_png


# ---------------------------------------------------------------- sniffing and formats


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"\xff\xd8\xff\xdb", "image/jpeg"),
        (b"GIF89a", None),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", None),
        (b"BM", None),
        (b"<svg xmlns='http://www.w3.org/2000/svg'>", None),
        (b"\x89PNG\r\n", None),  # signature cut short
        (b"\xff\xd8", None),
        (b"", None),
        (b"hello, world", None),
    ],
)
def test_sniff_content_type(head, expected):
    assert sniff_content_type(head) == expected


def test_sniff_ignores_what_the_client_claims():
    # A PNG is a PNG even if it was uploaded as "cat.jpg" with image/jpeg: bytes decide.
    result = render_thumbnails(png(64, 48))
    assert result.content_type == "image/png"
    assert all(r.content_type == "image/png" and r.extension == "png" for r in result.renditions)


@pytest.mark.parametrize(
    "data",
    [make_gif(), make_gif(frames=3), b"plain text, not an image", b"", b"\x00" * 100,
     b"BM" + b"\x00" * 60, b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 40],
    ids=["gif", "animated-gif", "text", "empty", "zeros", "bmp", "webp"],
)
def test_other_formats_are_unsupported(data):
    rejected = rejection(data)
    assert rejected.code == "unsupported_format"
    assert rejected.message


# ---------------------------------------------------------------- pixel limit


def test_default_limit_is_documented_value():
    assert MAX_PIXELS == 50_000_000


def test_png_bomb_header_is_refused_before_decoding():
    bomb = make_png_bomb_header(30_000, 30_000)
    assert len(bomb) < 1000
    rejected = rejection(bomb)
    assert rejected.code == "image_too_large"


def test_pixel_limit_is_checked_before_any_decoding():
    # Same header but pixel data that cannot decode: still image_too_large, not corrupt,
    # so the refusal cannot have come from the decoder.
    bomb = bytearray(make_png_bomb_header(20_000, 20_000))
    idat = bomb.index(b"IDAT")
    bomb[idat + 4 : idat + 12] = b"\xde\xad\xbe\xef" * 2
    rejected = rejection(bytes(bomb))
    assert rejected.code == "image_too_large"


def _with_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    out = bytearray(data)
    sof = out.index(b"\xff\xc0")
    struct.pack_into(">HH", out, sof + 5, height, width)
    return bytes(out)


def test_jpeg_header_declaring_too_many_pixels_is_refused():
    rejected = rejection(_with_jpeg_size(jpeg(64, 48), 65_000, 65_000))
    assert rejected.code == "image_too_large"


def test_limit_is_inclusive_and_configurable():
    data = png(40, 30)
    assert len(render_thumbnails(data, max_pixels=1200).renditions) == 3
    rejected = rejection(data, max_pixels=1199)
    assert rejected.code == "image_too_large"
    assert "1,200" in rejected.message


def test_a_second_larger_ihdr_cannot_sneak_past_the_limit():
    data = bytearray(png(40, 30))
    ihdr = data[8:33]  # length, type, 13 bytes, crc
    big = bytearray(ihdr)
    struct.pack_into(">II", big, 8, 50_000, 50_000)
    rejected = rejection(bytes(data[:33] + big + data[33:]))
    assert rejected.code == "image_too_large"


def test_no_decompression_bomb_warning_or_error_escapes():
    # 100 MP lies between Pillow's warning (89 MP) and error (179 MP) thresholds.
    bomb = make_png_bomb_header(10_000, 10_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for limit in (MAX_PIXELS, 10**12):
            rejected = rejection(bomb, max_pixels=limit)
            assert rejected.code == "image_too_large"


# ---------------------------------------------------------------- corrupt input


def _png_with_bad_idat() -> bytes:
    data = bytearray(png(64, 48))
    idat = data.index(b"IDAT")
    data[idat + 4 : idat + 40] = bytes(36)
    return bytes(data)


@pytest.mark.parametrize(
    "data",
    [
        make_truncated_jpeg(),
        make_truncated_png(),
        make_jpeg(64, 48, progressive=True)[:400],
        b"\x89PNG\r\n\x1a\n" + b"garbage" * 10,
        b"\xff\xd8\xff" + b"garbage" * 10,
        b"\x89PNG\r\n\x1a\n",
        b"\xff\xd8\xff",
        _png_with_bad_idat(),
        make_png_bomb_header(64, 48),  # small enough, but its IDAT holds 4 rows of 48
        _with_jpeg_size(make_jpeg(64, 48), 0, 48),
    ],
    ids=["truncated-jpeg", "truncated-png", "truncated-progressive", "png-garbage",
         "jpeg-garbage", "png-magic-only", "jpeg-magic-only", "png-bad-idat",
         "png-short-idat", "jpeg-zero-width"],
)
def test_undecodable_images_are_corrupt(data):
    rejected = rejection(data)
    assert rejected.code == "corrupt_image"
    assert rejected.message


def test_truncation_is_not_papered_over():
    assert not getattr(__import__("PIL.ImageFile").ImageFile, "LOAD_TRUNCATED_IMAGES")
    for cut in (0.5, 0.9, 0.99):
        data = jpeg(320, 240)
        rejected = rejection(data[: int(len(data) * cut)])
        assert rejected.code == "corrupt_image"


@pytest.mark.parametrize("cut", [0.3, 0.8, 0.97])
def test_truncated_interlaced_png_is_corrupt(cut):
    """Interlaced PNGs take the random-access load; truncation must still be an error."""
    data = png(480, 320, interlaced=True)
    rejected = rejection(data[: int(len(data) * cut)])
    assert rejected.code == "corrupt_image"


def test_rejection_codes_are_closed():
    with pytest.raises(ValueError):
        ImageRejected("oops", "not a code")
    err = ImageRejected("corrupt_image", "broken")
    assert (err.code, err.message) == ("corrupt_image", "broken")


# ---------------------------------------------------------------- geometry


@pytest.mark.parametrize(
    ("src", "box", "expected"),
    [
        ((1600, 600), (400, 300), (400.0, 0.0, 1200.0, 600.0)),  # wide: sides cut
        ((600, 1600), (400, 300), (0.0, 575.0, 600.0, 1025.0)),  # tall: top/bottom cut
        ((1000, 1000), (400, 300), (0.0, 125.0, 1000.0, 875.0)),
        ((1000, 1000), (120, 120), (0.0, 0.0, 1000.0, 1000.0)),
        ((800, 600), (160, 120), (0.0, 0.0, 800.0, 600.0)),  # same aspect: no crop
        ((50, 40), (400, 300), (0.0, 1.25, 50.0, 38.75)),  # upscaled, still cover
    ],
)
def test_cover_box(src, box, expected):
    assert cover_box(src, box) == pytest.approx(expected)


def _banded(size: tuple[int, int], keep: tuple[int, int, int, int]) -> Image.Image:
    """Green where the crop keeps, red outside: any visible red means a wrong crop."""
    img = Image.new("RGB", size, (220, 20, 20))
    ImageDraw.Draw(img).rectangle((keep[0], keep[1], keep[2] - 1, keep[3] - 1), fill=(20, 200, 20))
    return img


def _encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("src", [(1600, 600), (600, 1600), (1000, 1000), (4000, 1000)])
def test_each_thumbnail_shows_exactly_the_centre_crop(fmt, src):
    for box in THUMBNAIL_SIZES:
        x0, y0, x1, y1 = (round(v) for v in cover_box(src, box))
        data = _encode(_banded(src, (x0, y0, x1, y1)), fmt)
        thumbs = render_images(data)[2]
        thumb = thumbs[THUMBNAIL_SIZES.index(box)].convert("RGB")
        assert thumb.size == box
        # Allow the outermost pixel ring for the filter's reach; everything inside is green.
        inner = thumb.crop((2, 2, box[0] - 2, box[1] - 2))
        assert inner.getextrema()[0][1] < 80, f"red crept in for {box} from {src}"
        # and the crop is exactly as wide as cover: same picture as Pillow's ImageOps.fit.
        assert psnr(thumb, reference(data, box, "RGB")) >= 38


@pytest.mark.parametrize("size", [(50, 40), (1, 1), (3000, 7), (7, 3000), (400, 300), (120, 120)])
def test_any_size_gives_exact_thumbnail_sizes(size):
    for fmt in ("PNG", "JPEG"):
        result = render_thumbnails(_encode(scene(*size, grain=0), fmt))
        assert (result.width, result.height) == size
        assert [(r.width, r.height) for r in result.renditions] == list(THUMBNAIL_SIZES)
        for r in result.renditions:
            assert decoded(r.data).size == (r.width, r.height)


# ---------------------------------------------------------------- orientation


def _check_quadrants(img: Image.Image) -> None:
    w, h = img.size
    rgb = img.convert("RGB")
    spots = {
        "top_left": (w // 4, h // 4),
        "top_right": (3 * w // 4, h // 4),
        "bottom_left": (w // 4, 3 * h // 4),
        "bottom_right": (3 * w // 4, 3 * h // 4),
    }
    for name, xy in spots.items():
        assert near(rgb.getpixel(xy), QUADRANT_COLOURS[name]), (name, rgb.getpixel(xy))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_first(orientation):
    data = make_jpeg(640, 400, orientation=orientation, content="quadrants", quality=95)
    stored = decoded(data).size
    assert stored == ((400, 640) if orientation >= 5 else (640, 400))
    result = render_thumbnails(data)
    assert (result.width, result.height) == (640, 400)
    for rendition in result.renditions:
        _check_quadrants(decoded(rendition.data))


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_png_exif_orientation_is_applied(orientation):
    data = make_png(320, 200, orientation=orientation, content="quadrants")
    result = render_thumbnails(data)
    assert (result.width, result.height) == (320, 200)
    for rendition in result.renditions:
        _check_quadrants(decoded(rendition.data))


def test_orientation_on_large_draft_decoded_jpeg():
    data = jpeg(3000, 2000, orientation=6, content="quadrants", quality=95)
    result = render_thumbnails(data)
    assert (result.width, result.height) == (3000, 2000)
    for rendition in result.renditions:
        _check_quadrants(decoded(rendition.data))


def test_bad_orientation_value_is_ignored():
    data = make_jpeg(640, 400, orientation=9, content="quadrants", quality=95)
    result = render_thumbnails(data)
    assert (result.width, result.height) == (640, 400)
    _check_quadrants(decoded(result.renditions[0].data))


# ---------------------------------------------------------------- modes and alpha

PNG_MODES = {  # source mode -> output mode
    "1": "L", "L": "L", "LA": "LA", "P": "RGB", "PA": "RGBA", "RGB": "RGB",
    "RGBA": "RGBA", "I;16": "L", "LA;16": ("LA", "RGBA"), "RGB;16": "RGB", "RGBA;16": "RGBA",
}


@pytest.mark.parametrize("mode", list(PNG_MODES))
def test_every_png_mode_renders_faithfully(mode):
    data = png(480, 320, mode=mode)
    result = render_thumbnails(data)
    assert result.content_type == "image/png"
    expected = PNG_MODES[mode]
    src = decoded(data)
    for rendition, box in zip(result.renditions, THUMBNAIL_SIZES):
        out = decoded(rendition.data)
        assert out.format == "PNG" and out.size == box
        assert out.mode in (expected if isinstance(expected, tuple) else (expected,))
        if mode == "1":
            continue  # bilevel: only the mode and geometry make sense to compare
        if mode == "I;16":
            ref_src = Image.frombytes("L", src.size, bytes(src.tobytes("raw", "I;16B")[0::2]))
        elif mode in ("P", "PA"):
            ref_src = src.convert("RGBA" if "transparency" in src.info else "RGB")
        else:
            ref_src = src
        pm = {"RGBA": "RGBa", "LA": "La"}.get(out.mode, out.mode)
        ref = ImageOps.fit(ref_src.convert(out.mode), box, Image.Resampling.LANCZOS).convert(pm)
        assert psnr(out.convert(pm), ref) >= 40, mode


def test_16bit_grey_is_scaled_not_clipped():
    out = decoded(render_thumbnails(png(480, 320, mode="I;16")).renditions[0].data)
    lo, hi = out.getextrema()
    assert lo < 60 and hi > 200  # clipping would turn almost everything white


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
@pytest.mark.parametrize("progressive", [False, True])
def test_every_jpeg_mode_renders(mode, progressive):
    data = jpeg(900, 600, mode=mode, progressive=progressive)
    result = render_thumbnails(data)
    assert result.content_type == "image/jpeg"
    for rendition, box in zip(result.renditions, THUMBNAIL_SIZES):
        out = decoded(rendition.data)
        assert out.format == "JPEG" and out.size == box
        assert out.mode == ("L" if mode == "L" else "RGB")
        assert psnr(out, reference(data, box, out.mode)) >= 30


def test_png_alpha_is_kept():
    data = png(640, 480, mode="RGBA")
    for rendition in render_thumbnails(data).renditions:
        out = decoded(rendition.data)
        assert out.mode == "RGBA"
        alpha = out.getchannel("A")
        w, h = out.size
        assert alpha.getpixel((w // 2, h // 2)) == 255  # opaque centre
        assert alpha.getpixel((0, 0)) == 0  # transparent corner


@pytest.mark.parametrize("size", [(200, 150), (2400, 1800)])
@pytest.mark.parametrize("hidden", [(0, 0, 0, 0), (255, 255, 255, 0)])
def test_transparent_pixels_do_not_bleed_into_edges(size, hidden):
    """Resampling must weigh colour by alpha: red next to transparent stays red."""
    w, h = size
    img = Image.new("RGBA", size, hidden)
    ImageDraw.Draw(img).ellipse((w // 5, h // 5, 4 * w // 5, 4 * h // 5), fill=(255, 0, 0, 255))
    for rendition in render_thumbnails(_encode(img, "PNG")).renditions:
        out = decoded(rendition.data)
        raw = out.tobytes()
        for i in range(0, len(raw), 4):
            r, g, b, a = raw[i : i + 4]
            if a >= 16:
                assert r >= 235 and g <= 20 and b <= 20, (r, g, b, a)


def test_palette_transparency_is_kept():
    out = decoded(render_thumbnails(png(320, 240, mode="PA")).renditions[0].data)
    assert out.mode == "RGBA"
    assert out.getchannel("A").getextrema()[0] < 255


def test_animated_png_uses_first_frame():
    data = make_apng(320, 240)
    out = decoded(render_thumbnails(data).renditions[0].data)
    ref = ImageOps.fit(scene(320, 240), (400, 300), Image.Resampling.LANCZOS)
    assert psnr(out, ref) >= 40


def test_interlaced_png():
    data = png(480, 320, interlaced=True)
    assert decoded(data).info.get("interlace") == 1
    out = decoded(render_thumbnails(data).renditions[0].data)
    assert psnr(out, reference(data, (400, 300), "RGB")) >= 40


# ---------------------------------------------------------------- colour


def test_adobe_cmyk_is_not_inverted():
    data = make_jpeg(640, 400, mode="CMYK", content="quadrants", quality=95)
    assert b"Adobe" in data
    for rendition in render_thumbnails(data).renditions:
        _check_quadrants(decoded(rendition.data))


def test_plain_cmyk_without_adobe_marker_is_not_inverted():
    # Write the inverse so the stored samples are plain (non-inverted) CMYK, then drop APP14.
    cmyk = ImageChops.invert(Image.open(io.BytesIO(make_jpeg(640, 400, content="quadrants"))).convert("CMYK"))
    data = strip_jpeg_segment(_encode(cmyk, "JPEG"), 0xEE)
    assert b"Adobe" not in data and decoded(data).mode == "CMYK"
    for rendition in render_thumbnails(data).renditions:
        _check_quadrants(decoded(rendition.data))


def _swapped_primaries_profile() -> bytes:
    """An sRGB profile with the red and green colorants exchanged: an 'RGB' file tagged
    with it shows red where its samples say green, so applying it is visible."""
    prof = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    (count,) = struct.unpack_from(">I", prof, 128)
    entries = {struct.unpack_from(">4s", prof, 132 + 12 * i)[0]: 132 + 12 * i for i in range(count)}
    r, g = entries[b"rXYZ"], entries[b"gXYZ"]
    prof[r + 4 : r + 12], prof[g + 4 : g + 12] = prof[g + 4 : g + 12], prof[r + 4 : r + 12]
    return bytes(prof)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_embedded_icc_profile_is_converted_to_srgb_and_dropped(fmt):
    img = Image.new("RGB", (200, 150), (200, 0, 0))
    buf = io.BytesIO()
    img.save(buf, fmt, icc_profile=_swapped_primaries_profile())
    for rendition in render_thumbnails(buf.getvalue()).renditions:
        out = decoded(rendition.data)
        assert "icc_profile" not in out.info
        r, g, b = out.getpixel((out.width // 2, out.height // 2))
        assert g > 150 and r < 60, (r, g, b)  # the profile said these samples are green


def test_unreadable_icc_profile_is_ignored():
    buf = io.BytesIO()
    Image.new("RGB", (200, 150), (200, 0, 0)).save(buf, "JPEG", icc_profile=b"not a profile" * 20)
    out = decoded(render_thumbnails(buf.getvalue()).renditions[0].data)
    assert near(out.getpixel((100, 75)), (200, 0, 0), 12) and "icc_profile" not in out.info


# ---------------------------------------------------------------- metadata


def test_no_exif_gps_xmp_or_comment_in_jpeg_output():
    img = Image.open(io.BytesIO(make_jpeg(640, 480, orientation=1, exif_gps=True)))
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=img.info["exif"], comment=b"secret-comment",
             xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>secret-xmp</x:xmpmeta>")
    data = buf.getvalue()
    assert b"ThumbgenCam" in data and b"secret-comment" in data
    for rendition in render_thumbnails(data).renditions:
        out = decoded(rendition.data)
        assert not {"exif", "comment", "xmp", "icc_profile", "photoshop"} & set(out.info)
        assert not out.getexif()
        for marker in (b"Exif", b"ThumbgenCam", b"secret", b"xmpmeta", b"http://ns.adobe.com"):
            assert marker not in rendition.data


def test_no_exif_or_text_chunks_in_png_output():
    img = decoded(png(320, 240, mode="RGBA"))
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret-comment")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>secret-xmp</x:xmpmeta>")
    buf = io.BytesIO()
    img.save(buf, "PNG", pnginfo=info, exif=make_exif(orientation=1, gps=True), dpi=(300, 300))
    for rendition in render_thumbnails(buf.getvalue()).renditions:
        chunks = _png_chunk_types(rendition.data)
        assert chunks <= {b"IHDR", b"IDAT", b"IEND"}, chunks
        assert b"secret" not in rendition.data


def _png_chunk_types(data: bytes) -> set[bytes]:
    pos, types = 8, set()
    while pos < len(data):
        length, ctype = struct.unpack_from(">I4s", data, pos)
        types.add(ctype)
        pos += 12 + length
    return types


# ---------------------------------------------------------------- fidelity


@pytest.mark.parametrize(
    ("size", "orientation"),
    [((4000, 3000), None), ((3000, 2000), None), ((2000, 3000), 6), ((1800, 1800), None), ((640, 480), None)],
)
def test_jpeg_thumbnails_match_full_resolution_lanczos(size, orientation):
    """Draft (DCT-scaled) decoding must not cost visible quality: >= 40 dB PSNR."""
    data = jpeg(*size, orientation=orientation, quality=92)
    content_type, oriented, images = render_images(data)
    assert content_type == "image/jpeg"
    assert oriented == size
    for img, box in zip(images, THUMBNAIL_SIZES):
        assert psnr(img, reference(data, box, "RGB")) >= 40, box


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA"])
def test_png_thumbnails_match_full_resolution_lanczos(mode):
    """Box reduction before Lanczos must not cost visible quality: >= 40 dB PSNR, checked
    on the encoded (lossless) PNG output; alpha images compared premultiplied."""
    data = png(2400, 1700, mode=mode)
    pm = {"RGBA": "RGBa", "LA": "La"}.get(mode, mode)
    for rendition, box in zip(render_thumbnails(data).renditions, THUMBNAIL_SIZES):
        out = decoded(rendition.data).convert(pm)
        assert psnr(out, reference(data, box, mode).convert(pm)) >= 40, box


def test_encoded_jpeg_is_close_to_the_reference():
    data = jpeg(1600, 1200)
    for rendition, box in zip(render_thumbnails(data).renditions, THUMBNAIL_SIZES):
        assert psnr(decoded(rendition.data), reference(data, box, "RGB")) >= 32


def test_output_formats_follow_input():
    for data, ctype, ext, fmt in ((jpeg(320, 240), "image/jpeg", "jpg", "JPEG"),
                                  (png(320, 240), "image/png", "png", "PNG")):
        result = render_thumbnails(data)
        assert result.content_type == ctype
        for r in result.renditions:
            assert (r.content_type, r.extension, decoded(r.data).format) == (ctype, ext, fmt)


# ---------------------------------------------------------------- concurrency


def test_concurrent_calls_give_the_same_bytes_as_sequential_ones():
    inputs = [jpeg(1600, 1200), png(800, 600, mode="RGBA"), jpeg(900, 600, mode="CMYK"),
              png(480, 320, mode="PA"), jpeg(640, 400, orientation=6)] * 3
    expected = [render_thumbnails(d) for d in inputs]
    with ThreadPoolExecutor(max_workers=6) as pool:
        got = list(pool.map(render_thumbnails, inputs))
    assert got == expected


# ---------------------------------------------------------------- offline renderer


def test_render_command_writes_the_service_thumbnails(tmp_path, capsys):
    from thumbgen.render import render_command

    photo, logo, gif = tmp_path / "cat.jpg", tmp_path / "logo.png", tmp_path / "anim.gif"
    photo.write_bytes(jpeg(640, 480))
    logo.write_bytes(png(320, 240, mode="RGBA"))
    gif.write_bytes(make_gif())
    out = tmp_path / "out"
    assert render_command([str(photo), str(logo)], str(out)) == 0
    expected = render_thumbnails(photo.read_bytes())
    for r in expected.renditions:
        assert (out / "cat" / f"{r.width}x{r.height}.jpg").read_bytes() == r.data
    assert sorted(p.name for p in (out / "logo").iterdir()) == ["120x120.png", "160x120.png", "400x300.png"]
    assert len(capsys.readouterr().out.strip().splitlines()) == 2

    assert render_command([str(photo), str(gif), str(tmp_path / "missing.png")], str(out)) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and "ok" in lines[0]
    assert "failed unsupported_format" in lines[1] and "failed unreadable" in lines[2]
    assert not (out / "anim").exists()


def test_render_command_refuses_oversized_files(tmp_path, capsys):
    from thumbgen.render import MAX_UPLOAD_BYTES, render_command

    big = tmp_path / "big.png"
    big.write_bytes(png(64, 48) + bytes(MAX_UPLOAD_BYTES))
    assert render_command([str(big)], str(tmp_path / "out")) == 1
    assert "failed file_too_large" in capsys.readouterr().out
