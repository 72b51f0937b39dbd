"""The renditions a client chooses (chalicelib/engine.render): fit, gravity, focus,
format, quality, background, names and order, the placeholder, and metadata in every format."""
from __future__ import annotations

import base64
import io
import math
import struct
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageDraw, ImageStat, PngImagePlugin

from chalicelib.imaging import engine
from chalicelib.imaging.engine import (
    Rendered,
    cover_box,
    fit_size,
    focus_box,
    jpeg_size_bound,
    render,
    render_images,
    render_thumbnails,
)
from chalicelib.imaging.renditions import DEFAULT_RENDITIONS, MAX_SIDE, Rendition, names
from tests.imagegen import (
    cached_jpeg,
    cached_png,
    grain,
    make_exif,
    make_jpeg,
    strip_jpeg_segment,
    with_alpha,
)
from tests.thumbhash_reference import (
    thumb_hash_to_approximate_aspect_ratio,
    thumb_hash_to_average_rgba,
)

jpeg, png = cached_jpeg, cached_png


def decoded(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def encoded(img: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def mean(img: Image.Image) -> tuple[float, ...]:
    return tuple(ImageStat.Stat(img).mean)


def psnr(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size and a.mode == b.mode
    hist = ImageChops.difference(a, b).histogram()
    mse = sum(count * (i % 256) ** 2 for i, count in enumerate(hist)) / (a.width * a.height * len(a.getbands()))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def near(a: tuple[float, ...], b: tuple[float, ...], tol: float = 24) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b))


# ---------------------------------------------------------------- the result


def test_default_request_is_the_three_original_thumbnails():
    data = jpeg(640, 480)
    assert render(data) == render_thumbnails(data)
    result = render(data)
    assert [(r.width, r.height) for r in result.renditions] == [(400, 300), (160, 120), (120, 120)]
    assert [r.name for r in result.renditions] == ["400x300.jpg", "160x120.jpg", "120x120.jpg"]
    assert all(r.rendition == d for r, d in zip(result.renditions, DEFAULT_RENDITIONS))


def test_outputs_come_in_the_order_asked_with_their_names_and_types():
    asked = [Rendition(50, 50, format="avif"), Rendition(300, 200, fit="inside", format="webp"),
             Rendition(120, 90), Rendition(120, 90, format="jpeg"), Rendition(64, 64, fit="contain", format="png")]
    result = render(jpeg(640, 480), asked)
    assert [r.rendition for r in result.renditions] == asked
    assert [r.name for r in result.renditions] == names(asked, "image/jpeg")
    assert [r.format for r in result.renditions] == ["avif", "webp", "jpeg", "jpeg", "png"]
    for r in result.renditions:
        assert isinstance(r, Rendered)
        out = decoded(r.data)
        assert out.format.lower() == {"jpeg": "jpeg", "png": "png", "webp": "webp", "avif": "avif"}[r.format]
        assert out.size == (r.width, r.height)
        assert r.content_type == f"image/{r.format}" and r.extension in r.name


def test_an_empty_request_is_a_programming_error():
    with pytest.raises(ValueError):
        render(jpeg(64, 48), [])


def test_rejections_are_the_same_for_any_request():
    with pytest.raises(engine.ImageRejected) as caught:
        render(b"GIF89a" + bytes(100), [Rendition(10, 10, format="avif")])
    assert caught.value.code == "unsupported_format"


# ---------------------------------------------------------------- fit


def _sized(width: int, height: int, orientation: int | None = None) -> bytes:
    """A small PNG with an EXIF orientation (no JPEG encode per example: fast)."""
    img = Image.new("RGB", (width, height), (90, 140, 200))
    return encoded(img, "PNG", exif=make_exif(orientation=orientation) if orientation else b"")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(src=st.tuples(st.integers(1, 300), st.integers(1, 300)), box=st.tuples(st.integers(1, 320), st.integers(1, 320)),
       fit=st.sampled_from(["cover", "contain", "inside"]), orientation=st.sampled_from([1, 6]))
def test_output_size_for_every_fit(src, box, fit, orientation):
    result = render(_sized(*src, orientation=orientation), [Rendition(*box, fit=fit)])
    shown = (src[1], src[0]) if orientation == 6 else src
    out = result.renditions[0]
    assert (result.width, result.height) == shown
    assert decoded(out.data).size == (out.width, out.height)
    if fit != "inside":
        assert (out.width, out.height) == box
    else:
        # Never enlarged, inside the box, and the largest such size of the source's aspect.
        scale = min(box[0] / shown[0], box[1] / shown[1], 1.0)
        assert out.width <= min(box[0], shown[0]) and out.height <= min(box[1], shown[1])
        assert abs(out.width - shown[0] * scale) <= 0.5 + 1e-9 or out.width == 1
        assert abs(out.height - shown[1] * scale) <= 0.5 + 1e-9 or out.height == 1


def test_inside_keeps_a_small_source_its_size_and_pixels():
    data = png(90, 60)
    out = render(data, [Rendition(400, 300, fit="inside")]).renditions[0]
    assert (out.width, out.height) == (90, 60)
    assert decoded(out.data).tobytes() == decoded(data).convert("RGB").tobytes()


def test_contain_keeps_the_whole_image_and_pads_it():
    # A red square on a 2:1 image: contain into a square leaves bands above and below.
    img = Image.new("RGB", (400, 200), (0, 0, 255))
    ImageDraw.Draw(img).rectangle((0, 0, 20, 20), fill=(255, 0, 0))  # top-left corner mark
    data = encoded(img, "JPEG", quality=95)
    jpg = decoded(render(data, [Rendition(200, 200, fit="contain")]).renditions[0].data)
    assert jpg.mode == "RGB" and jpg.size == (200, 200)
    assert near(jpg.getpixel((100, 10)), (255, 255, 255), 8)  # padding: white for JPEG
    assert near(jpg.getpixel((100, 100)), (0, 0, 255), 16)
    assert near(jpg.getpixel((3, 53)), (255, 0, 0), 40)  # the corner mark is still there
    for fmt in ("png", "webp", "avif"):
        out = decoded(render(data, [Rendition(200, 200, fit="contain", format=fmt)]).renditions[0].data)
        assert out.mode == "RGBA", fmt
        assert out.getpixel((100, 10))[3] == 0 and out.getpixel((100, 100))[3] == 255, fmt  # transparent padding
    coloured = decoded(render(data, [Rendition(200, 200, fit="contain", format="png",
                                               background="#00ff00")]).renditions[0].data)
    assert coloured.mode == "RGB" and coloured.getpixel((100, 10)) == (0, 255, 0)


def test_contain_of_a_transparent_png_with_a_background_keeps_its_transparency():
    data = png(300, 100, mode="RGBA")  # transparent corners
    out = decoded(render(data, [Rendition(150, 150, fit="contain", background="#ff0000")]).renditions[0].data)
    assert out.mode == "RGBA"
    assert out.getpixel((75, 5)) == (255, 0, 0, 255)  # padding: the background, opaque
    assert out.getpixel((0, 50))[3] == 0  # the image's own transparent corner stays transparent


def test_contain_of_a_greyscale_image_stays_grey_on_a_grey_background():
    data = jpeg(300, 100, mode="L")
    assert decoded(render(data, [Rendition(100, 100, fit="contain")]).renditions[0].data).mode == "L"
    assert decoded(render(data, [Rendition(100, 100, fit="contain", background="#ff0000")])
                   .renditions[0].data).mode == "RGB"
    assert decoded(render(data, [Rendition(100, 100, fit="contain", format="png")]).renditions[0].data).mode == "LA"


@pytest.mark.parametrize(("src", "box", "expected"), [((4000, 3000), (400, 400), (400, 300)),
                                                       ((300, 4000), (400, 400), (30, 400)),
                                                       ((10, 10), (400, 300), (300, 300)),
                                                       ((5000, 1), (100, 100), (100, 1))])
def test_fit_size_contain(src, box, expected):
    assert fit_size(src, box, enlarge=True) == expected


# ---------------------------------------------------------------- focus


@settings(max_examples=200, deadline=None)
@given(src=st.tuples(st.integers(1, 5000), st.integers(1, 5000)), box=st.tuples(st.integers(1, 2048), st.integers(1, 2048)),
       focus=st.tuples(st.floats(0, 1), st.floats(0, 1)))
def test_focus_is_kept_in_the_crop_as_centred_as_the_image_allows(src, box, focus):
    x0, y0, x1, y1 = focus_box(src, box, focus)
    cx0, cy0, cx1, cy1 = cover_box(src, box)
    assert math.isclose(x1 - x0, cx1 - cx0) and math.isclose(y1 - y0, cy1 - cy0)  # the cover crop's size
    assert -1e-6 <= x0 and x1 <= src[0] + 1e-6 and -1e-6 <= y0 and y1 <= src[1] + 1e-6
    px, py = focus[0] * src[0], focus[1] * src[1]
    assert x0 - 1e-6 <= px <= x1 + 1e-6 and y0 - 1e-6 <= py <= y1 + 1e-6
    # Centred on the point unless that would leave the image.
    if (x1 - x0) / 2 <= px <= src[0] - (x1 - x0) / 2:
        assert math.isclose((x0 + x1) / 2, px, abs_tol=1e-6)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_focus_follows_the_displayed_image(orientation):
    # A red dot at (10 %, 80 %) of the displayed picture: a square crop on it keeps it.
    shown = Image.new("RGB", (600, 300), (40, 40, 40))
    ImageDraw.Draw(shown).ellipse((45, 225, 75, 255), fill=(255, 0, 0))
    t = Image.Transpose
    undo = {2: t.FLIP_LEFT_RIGHT, 3: t.ROTATE_180, 4: t.FLIP_TOP_BOTTOM, 5: t.TRANSPOSE, 6: t.ROTATE_90,
            7: t.TRANSVERSE, 8: t.ROTATE_270}  # what the EXIF orientation then turns back
    stored = shown.transpose(undo[orientation]) if orientation in undo else shown
    data = encoded(stored, "PNG", exif=make_exif(orientation=orientation))
    out = decoded(render(data, [Rendition(100, 100, focus=(0.1, 0.8))]).renditions[0].data)
    # The crop is 300x300 of the 600x300 picture, starting at the left edge (clamped):
    # the dot sits at (60, 240) of it, i.e. (20, 80) in the 100x100 output.
    assert near(out.getpixel((20, 80)), (255, 0, 0), 60), out.getpixel((20, 80))
    assert near(out.getpixel((80, 20)), (40, 40, 40), 10)


def test_focus_moves_the_crop():
    img = Image.new("RGB", (800, 200), (0, 0, 255))
    img.paste((255, 255, 0), (0, 0, 200, 200))  # yellow left quarter
    data = encoded(img, "PNG")
    left = decoded(render(data, [Rendition(100, 100, focus=(0.0, 0.5))]).renditions[0].data)
    centre = decoded(render(data, [Rendition(100, 100)]).renditions[0].data)
    assert near(mean(left), (255, 255, 0), 10) and near(mean(centre), (0, 0, 255), 10)


# ---------------------------------------------------------------- smart crop


def _flat_with(feature: Image.Image, at: tuple[int, int], size: tuple[int, int] = (900, 300)) -> bytes:
    img = Image.new("RGB", size, (128, 128, 128))
    img.paste(feature, at)
    return encoded(img, "PNG")


def _skin_blob() -> Image.Image:
    blob = Image.new("RGB", (160, 200), (128, 128, 128))
    ImageDraw.Draw(blob).ellipse((10, 10, 150, 190), fill=(224, 172, 140))  # a face-like skin tone
    return blob


@pytest.mark.parametrize("x", [40, 380, 700])
def test_attention_finds_a_skin_coloured_blob(x):
    data = _flat_with(_skin_blob(), (x, 50))
    out = decoded(render(data, [Rendition(200, 200, gravity="attention")]).renditions[0].data)
    # The crop is 300x300 of 900x300; the whole blob (a 140x180 ellipse, 22 % of the crop)
    # is in it. A crop beside it would hold no skin at all.
    skin = sum(1 for p in out.get_flattened_data() if near(p, (224, 172, 140), 20))
    assert skin > 0.2 * 200 * 200, (x, skin)


@pytest.mark.parametrize("x", [0, 350, 600])
def test_entropy_finds_a_textured_patch(x):
    patch = grain(300, 300, "noise", seed=x)
    data = _flat_with(patch, (x, 0))
    out = decoded(render(data, [Rendition(100, 100, gravity="entropy")]).renditions[0].data)
    grey = sum(1 for p in out.get_flattened_data() if p == (128, 128, 128))
    assert grey < 0.2 * 100 * 100, (x, grey)  # mostly the patch


def test_smart_crop_in_a_rotated_jpeg():
    shown = Image.new("RGB", (900, 300), (128, 128, 128))
    shown.paste(_skin_blob(), (700, 50))
    stored = shown.transpose(Image.Transpose.ROTATE_90)  # EXIF 6 turns it back
    data = encoded(stored, "JPEG", quality=95, exif=make_exif(orientation=6))
    out = decoded(render(data, [Rendition(200, 200, gravity="attention")]).renditions[0].data)
    assert near(mean(out.crop((90, 60, 150, 140))), (224, 172, 140), 12)  # inside the blob


def test_smart_crop_where_nothing_is_cropped():
    data = png(300, 200)
    for gravity in ("attention", "entropy"):
        out = render(data, [Rendition(150, 100, gravity=gravity), Rendition(150, 100)]).renditions
        assert out[0].width == 150 and decoded(out[0].data).tobytes() == decoded(out[1].data).tobytes()


# ---------------------------------------------------------------- formats, alpha, quality


@pytest.mark.parametrize(("source", "fmt", "mode"), [
    ("rgba", "png", "RGBA"), ("rgba", "webp", "RGBA"), ("rgba", "avif", "RGBA"), ("rgba", "jpeg", "RGB"),
    ("rgb", "png", "RGB"), ("rgb", "webp", "RGB"), ("rgb", "avif", "RGB"), ("rgb", "jpeg", "RGB"),
    ("grey", "jpeg", "L"), ("grey", "png", "L"), ("grey", "avif", "L"), ("grey", "webp", "RGB"),
    ("grey-alpha", "png", "LA"), ("grey-alpha", "webp", "RGBA"), ("grey-alpha", "jpeg", "L"),
    ("cmyk", "webp", "RGB"), ("cmyk", "avif", "RGB"), ("palette", "avif", "RGBA"),
])
def test_formats_decode_back_with_the_right_mode(source, fmt, mode):
    data = {"rgba": lambda: png(320, 240, mode="RGBA"), "rgb": lambda: jpeg(320, 240),
            "grey": lambda: jpeg(320, 240, mode="L"), "grey-alpha": lambda: png(320, 240, mode="LA"),
            "cmyk": lambda: jpeg(320, 240, mode="CMYK"), "palette": lambda: png(320, 240, mode="PA")}[source]()
    out = decoded(render(data, [Rendition(160, 120, format=fmt)]).renditions[0].data)
    assert out.mode == mode and out.size == (160, 120)


@pytest.mark.parametrize("fmt", ["png", "webp", "avif"])
def test_alpha_is_kept_where_the_format_has_it(fmt):
    out = decoded(render(png(320, 240, mode="RGBA"), [Rendition(320, 240, format=fmt)]).renditions[0].data)
    alpha = out.getchannel("A")
    assert alpha.getpixel((0, 0)) < 16 and alpha.getpixel((160, 120)) > 240  # corners clear, centre opaque


@pytest.mark.parametrize(("background", "expected"), [(None, (255, 255, 255)), ("#102030", (16, 32, 48))])
def test_jpeg_flattens_alpha_onto_the_background(background, expected):
    data = encoded(Image.new("RGBA", (200, 100), (255, 0, 0, 0)), "PNG")  # fully transparent red
    out = decoded(render(data, [Rendition(100, 50, format="jpeg", background=background)]).renditions[0].data)
    assert near(out.getpixel((50, 25)), expected, 4)


def test_quality_changes_the_bytes():
    data = jpeg(800, 600)
    for fmt in ("jpeg", "webp", "avif"):
        low, high = render(data, [Rendition(400, 300, format=fmt, quality=30),
                                  Rendition(400, 300, format=fmt, quality=90)]).renditions
        assert len(low.data) < 0.7 * len(high.data), fmt


def test_lossy_formats_look_like_the_source():
    data = jpeg(800, 600)
    ref = decoded(render(data, [Rendition(400, 300, format="png")]).renditions[0].data)
    for fmt in ("jpeg", "webp", "avif"):
        out = decoded(render(data, [Rendition(400, 300, format=fmt)]).renditions[0].data).convert("RGB")
        assert psnr(out, ref) >= 30, fmt


def test_outputs_of_one_region_are_resampled_once_and_agree():
    # Same box in four formats: the pixels are those of one resample.
    data = jpeg(1200, 800)
    images = render_images(data, [Rendition(300, 200, format=f) for f in ("png", "jpeg", "webp", "avif")])[2]
    assert len({img.tobytes() for img in images}) == 1


def test_a_smaller_output_of_the_same_region_is_close_to_a_direct_one():
    data = jpeg(2400, 1600)
    both = render_images(data, [Rendition(900, 600, fit="inside"), Rendition(300, 200, fit="inside")])[2]
    alone = render_images(data, [Rendition(300, 200, fit="inside")])[2][0]
    assert both[1].tobytes() != alone.tobytes()  # made from the 900x600 one, not the source
    assert psnr(both[1], alone) >= 40


def test_the_largest_jpeg_box_fits_the_encoder_buffer_at_the_worst_content():
    noise = encoded(grain(MAX_SIDE, MAX_SIDE, "noise"), "PNG", compress_level=1)
    out = render(noise, [Rendition(MAX_SIDE, MAX_SIDE, format="jpeg", quality=100)]).renditions[0]
    assert (out.width, out.height) == (MAX_SIDE, MAX_SIDE)
    assert len(out.data) <= jpeg_size_bound(MAX_SIDE, MAX_SIDE) <= engine.ImageFile.MAXBLOCK
    assert decoded(out.data).size == (MAX_SIDE, MAX_SIDE)


# ---------------------------------------------------------------- metadata, every format


def _jpeg_with_everything() -> bytes:
    img = decoded(make_jpeg(640, 480, orientation=1, exif_gps=True))
    return encoded(img, "JPEG", exif=img.info["exif"], comment=b"secret-comment",
                   icc_profile=engine.ImageCms.ImageCmsProfile(
                       engine.ImageCms.createProfile("sRGB")).tobytes(),
                   xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>secret-xmp</x:xmpmeta>")


def _png_with_everything() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret-comment")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>secret-xmp</x:xmpmeta>")
    return encoded(decoded(png(320, 240, mode="RGBA")), "PNG", pnginfo=info,
                   exif=make_exif(orientation=1, gps=True), dpi=(300, 300),
                   icc_profile=engine.ImageCms.ImageCmsProfile(
                       engine.ImageCms.createProfile("sRGB")).tobytes())


def _webp_chunks(data: bytes) -> list[bytes]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    pos, chunks = 12, []
    while pos + 8 <= len(data):
        fourcc, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        chunks.append(fourcc)
        pos += 8 + size + (size & 1)
    return chunks


def _avif_boxes(data: bytes, start: int = 0, end: int | None = None, depth: int = 0) -> list[bytes]:
    """Box types of an ISOBMFF file, descending into the metadata containers (not mdat)."""
    end = len(data) if end is None else end
    pos, types = start, []
    containers = {b"meta": 4, b"iprp": 0, b"ipco": 0, b"iinf": 6, b"dinf": 0}
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        size = end - pos if size == 0 else size
        types.append(kind)
        if kind == b"infe":
            version = data[pos + 8]
            at = pos + 12 + (4 if version >= 3 else 2) + 2
            types.append(b"item:" + data[at:at + 4])
        if kind == b"colr":
            types.append(b"colr:" + data[pos + 8:pos + 12])
        if kind in containers:
            types += _avif_boxes(data, pos + 8 + containers[kind], pos + size, depth + 1)
        pos += size
    return types


@pytest.mark.parametrize("make", [_jpeg_with_everything, _png_with_everything])
def test_no_metadata_in_any_format(make):
    data = make()
    assert b"secret" in data
    asked = [Rendition(200, 150, format=f) for f in ("jpeg", "png", "webp", "avif")]
    for out in render(data, asked).renditions:
        assert b"secret" not in out.data and b"ThumbgenCam" not in out.data
        img = decoded(out.data)
        assert not {"exif", "comment", "xmp", "icc_profile", "XML:com.adobe.xmp"} & set(img.info), out.format
        assert not img.getexif()
        if out.format == "webp":
            assert set(_webp_chunks(out.data)) <= {b"VP8 ", b"VP8L", b"VP8X", b"ALPH"}
        elif out.format == "avif":
            boxes = _avif_boxes(out.data)
            assert b"item:Exif" not in boxes and b"item:mime" not in boxes
            assert b"colr:prof" not in boxes and b"colr:rICC" not in boxes
            assert b"item:av01" in boxes  # the parser did read the item list


# ---------------------------------------------------------------- placeholder


def test_placeholder_is_a_thumbhash_of_the_whole_image():
    img = Image.new("RGB", (600, 200), (200, 40, 40))
    result = render(encoded(img, "JPEG", quality=95), [Rendition(100, 100)])
    raw = base64.b64decode(result.placeholder)
    assert len(raw) >= 5 and len(result.placeholder) <= 40
    assert near(tuple(255 * v for v in thumb_hash_to_average_rgba(raw)[:3]), (200, 40, 40), 16)
    assert thumb_hash_to_approximate_aspect_ratio(raw) == pytest.approx(3.0, rel=0.3)
    assert not raw[2] & 0x80  # opaque


def test_placeholder_of_a_rotated_transparent_png_keeps_alpha_and_aspect():
    img = with_alpha(Image.new("RGB", (200, 600), (30, 200, 30)))
    result = render(encoded(img, "PNG", exif=make_exif(orientation=6)))
    raw = base64.b64decode(result.placeholder)
    assert raw[2] & 0x80  # has alpha
    assert thumb_hash_to_approximate_aspect_ratio(raw) > 1.5  # shown landscape


def test_placeholder_hardly_depends_on_the_request():
    # The preview comes from whatever working image the request needed: the hash may move
    # by a quantisation step, not more.
    data = jpeg(900, 600)
    hashes = [render(data, asked).placeholder for asked in (
        DEFAULT_RENDITIONS, [Rendition(300, 300, gravity="attention")], [Rendition(10, 10, format="avif")],
        [Rendition(1800, 1200, fit="inside")])]
    averages = [thumb_hash_to_average_rgba(base64.b64decode(h)) for h in hashes]
    for avg in averages[1:]:
        assert all(abs(a - b) <= 2 / 63 for a, b in zip(avg, averages[0])), (hashes, averages)
    assert {thumb_hash_to_approximate_aspect_ratio(base64.b64decode(h)) for h in hashes} == {7 / 5}


# ---------------------------------------------------------------- many at once


renditions_strategy = st.lists(st.builds(
    Rendition, width=st.integers(1, 200), height=st.integers(1, 200), fit=st.sampled_from(["cover", "contain", "inside"]),
    format=st.sampled_from(["source", "jpeg", "png", "webp", "avif"]),
    quality=st.one_of(st.none(), st.integers(1, 100)),
    background=st.one_of(st.none(), st.sampled_from(["#000000", "#ff8800"]))), min_size=1, max_size=8, unique=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(asked=renditions_strategy, source=st.sampled_from(["jpeg", "png-rgba", "png-grey"]))
def test_any_valid_request_renders_every_entry(asked, source):
    data = {"jpeg": lambda: jpeg(240, 180), "png-rgba": lambda: png(240, 180, mode="RGBA"),
            "png-grey": lambda: png(180, 240, mode="L")}[source]()
    result = render(data, asked)
    assert [r.rendition for r in result.renditions] == asked
    for r in result.renditions:
        img = decoded(r.data)
        assert img.size == (r.width, r.height)
        if r.rendition.fit != "inside":
            assert img.size == (r.rendition.width, r.rendition.height)


def test_concurrent_requests_give_the_same_bytes():
    data = png(640, 480, mode="RGBA")
    asked = [Rendition(200, 200, gravity="attention", format="webp"), Rendition(300, 100, fit="contain", format="avif"),
             Rendition(50, 80, focus=(0.2, 0.9))]
    expected = render(data, asked)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: render(data, asked), range(8)))
    assert all(r == expected for r in results)


# ---------------------------------------------------------------- large outputs: streamed JPEG decode


@pytest.fixture
def streamed(monkeypatch):
    """Counts the JPEG decodes that stream through libvips (made to apply to small files)."""
    calls = []
    real = engine._decode_jpeg_streamed
    monkeypatch.setattr(engine, "STREAM_MIN_PIXELS", 0)
    monkeypatch.setattr(engine, "_decode_jpeg_streamed", lambda *a: calls.append(a) or real(*a))
    return calls


def _pillow_path(data: bytes, asked: list[Rendition]) -> list[Image.Image]:
    saved = engine.STREAM_MIN_PIXELS
    engine.STREAM_MIN_PIXELS = 10**12
    try:
        return render_images(data, asked)[2]
    finally:
        engine.STREAM_MIN_PIXELS = saved


@pytest.mark.parametrize(("mode", "orientation", "adobe"), [("RGB", 1, True), ("RGB", 6, True), ("L", 3, True),
                                                           ("CMYK", 1, True), ("CMYK", 8, False)])
def test_large_outputs_stream_the_jpeg_decode_with_the_same_result(streamed, mode, orientation, adobe):
    # No DCT scale fits a 400x400 'inside' of 1200x900 (it needs 2/3): the decode streams.
    data = make_jpeg(1200, 900, mode=mode, orientation=orientation, quality=95)
    if not adobe:
        data = strip_jpeg_segment(data, 0xEE)
    asked = [Rendition(400, 400, fit="inside"), Rendition(300, 200, format="png")]
    images = render_images(data, asked)[2]
    assert len(streamed) == 1
    for ours, pillow in zip(images, _pillow_path(data, asked)):
        assert ours.size == pillow.size and ours.mode == pillow.mode
        assert psnr(ours, pillow) >= 40, (mode, orientation)


def test_requests_a_dct_scale_serves_do_not_stream(streamed):
    # 150x100 of 1200x900 needs 1/4 of the size (2x margin): the 1/4 DCT scale is exact.
    render(jpeg(1200, 900), [Rendition(150, 100), Rendition(100, 100, fit="inside")])
    assert streamed == []


def test_a_truncated_jpeg_is_corrupt_when_streamed_too(streamed):
    data = make_jpeg(1200, 900)
    with pytest.raises(engine.ImageRejected) as caught:
        render(data[: len(data) * 2 // 3], [Rendition(400, 400, fit="inside")])
    assert caught.value.code == "corrupt_image" and len(streamed) == 1
