"""The image engine: bytes in, the renditions a client asked for out. Pure: no I/O, no AWS.

Contract (docs/api.md "Renditions" and "Statuses"; decisions and measurements: docs/engine.md):
- the format is sniffed from the bytes; only PNG and JPEG are opened, and only by the
  parser of the sniffed format (Pillow's JPEG plugin, libvips' PNG loader);
- the pixel count declared by the header is checked BEFORE any pixel is decoded;
- every decode failure, truncation included, is `corrupt_image`; nothing else escapes;
- the upload is decoded once, reduced as far as the largest rendition allows (JPEG: Pillow
  at reduced DCT scale, "draft"; PNG: libvips' loader, which streams, premultiplies alpha
  and box-shrinks without a full-size copy and rejects short or truncated pixel data);
- EXIF orientation first; then per rendition: `cover` (fill the box; crop centred, on a
  focal point, or where libvips' smartcrop finds the most attention / entropy),
  `contain` (the whole image, padded to the box) or `inside` (the whole image, never
  enlarged); outputs of one crop region are resampled once and shared;
- JPEG, PNG, WebP or AVIF out (`source`: the upload's own type); alpha kept where the
  format has it, flattened onto the background for JPEG; an embedded ICC profile is
  converted to sRGB; no EXIF/GPS/XMP/comment/ICC in any output;
- a ThumbHash placeholder of the whole image, from a 24-pixel preview.

Thread-safe: no module state is mutated, every call works on its own objects. Two
process-wide library settings are made once, at import: libvips' operation cache is off,
and Pillow's encoder buffer (ImageFile.MAXBLOCK) holds the largest possible JPEG output.
"""
from __future__ import annotations

import io
import math
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyvips
from PIL import Image, ImageChops, ImageCms, ImageFile

from chalicelib.imaging import smartcrop, thumbhash
from chalicelib.imaging.renditions import (
    CONTENT_TYPES,
    DEFAULT_RENDITIONS,
    EXTENSIONS,
    HAS_ALPHA,
    MAX_SIDE,
    Rendition,
    names,
    quality_of,
    resolve_format,
)

# libvips' operation cache would keep decoded uploads alive between invocations.
pyvips.cache_set_max(0)

THUMBNAIL_SIZES: tuple[tuple[int, int], ...] = tuple((r.width, r.height) for r in DEFAULT_RENDITIONS)

# Pixel limit (width x height as the header declares it). Peak memory grows with it, not
# with the file size: at 50 MP the worst admissible inputs (interlaced 16-bit RGBA PNG,
# progressive CMYK JPEG) need ~425 MB, which the 1769 MB resize Lambda holds with room to
# spare -- see docs/engine.md "Pixel limit" and `python -m bench.engine --sizing`.
MAX_PIXELS: int = 50_000_000

# JPEG draft (DCT-domain) decoding may shrink the image, but never below this multiple of
# the largest output's scale, so the final Lanczos pass still has detail to work with.
DRAFT_MARGIN = 2.0
# The working image (libvips shrink of a PNG, Image.reduce after a JPEG draft) is box-
# reduced by an integer factor, but not below this multiple of the largest output's scale.
REDUCE_MARGIN = 2.0
# A JPEG whose smallest usable DCT scale would still decode more than STREAM_WASTE x the
# working pixels, and more than STREAM_MIN_PIXELS, is decoded by libvips, streaming into
# a Lanczos reduction, instead of whole by Pillow: large outputs (1-2K boxes) from large
# photos, where Pillow's full decode was the engine's peak memory (docs/engine.md).
STREAM_WASTE = 2.0
STREAM_MIN_PIXELS = 8_000_000
# libvips' reduction there is itself a Lanczos filter, so its output needs less margin
# over the largest output than a DCT-scaled or box-reduced one: at 1.25 every output is
# >= 50 dB from a full-resolution Lanczos (2.0: >= 53 dB; 1.0: 36 dB) for 26 % less time.
STREAM_MARGIN = 1.25
# Per output, Pillow box-reduces the source region by int(ratio / LANCZOS_GAP) before the
# Lanczos pass (resize's reducing_gap). Measured on the bench set: 1.6 keeps every
# thumbnail >= 43 dB PSNR vs a full-size Lanczos and halves the time where ratio >= 3.2.
LANCZOS_GAP = 1.6

# Thumbnails are small, so every chroma sample shows: 4:4:4 (subsampling 0) keeps colour
# edges crisp for ~1.5x the bytes of 4:2:0 (+5 dB PSNR on our test set).
JPEG_SUBSAMPLING = 0
JPEG_QUALITY = 85  # renditions.DEFAULT_QUALITY["jpeg"], named here for the benchmark
# zlib level for PNG thumbnails (Pillow filters adaptively at every level). Measured on a
# 400x300 thumbnail: level 2 is ~3x faster than 6 (17 vs 42-64 ms) for files 2% larger.
PNG_COMPRESS_LEVEL = 2
# libwebp's method (0 fastest .. 6 smallest) and libavif's speed (0 slowest .. 10 fastest)
# with aom, and AVIF's chroma subsampling: chosen by measurement (docs/engine.md "Encoders").
WEBP_METHOD = 4
AVIF_SPEED = 6
AVIF_SUBSAMPLING = "4:2:0"
# Threads per AVIF encode. The resize Lambda has one vCPU (1769 MB); more threads only
# add switching there.
AVIF_THREADS = 1

# The whole image, scaled to fit these squares, is what the smart crop judges and what the
# placeholder is computed from (docs/engine.md "Smart crop", "Placeholder": at 24 pixels
# the ThumbHash costs ~0.2 ms and decodes within ~2/255 of one computed from 100 pixels).
ANALYSIS_SIDE = 256
PLACEHOLDER_SIDE = 24

WHITE = (255, 255, 255)


def jpeg_size_bound(width: int, height: int) -> int:
    """The largest a JPEG of `width` x `height` can be, at any quality and subsampling:
    libjpeg-turbo's tj3JPEGBufSize for 4:4:4 colour, the worst case (2 bytes per sample
    over whole 8x8 blocks, plus 2 KB for the markers)."""
    return (-(-width // 8) * 8) * (-(-height // 8) * 8) * 3 * 2 + 2048


# JPEG outputs use optimized Huffman tables (~3% smaller on the bench set). With
# optimize=True libjpeg writes the whole entropy-coded scan inside jpeg_finish_compress,
# which cannot suspend on a full output buffer ("Suspension not allowed here"), so Pillow
# must hand it one buffer that holds the entire file. JpegImagePlugin._save sizes that at
# 1 byte per pixel below quality 95, floored at ImageFile.MAXBLOCK (64 KiB): too small for
# a thumbnail of grain, gravel or noise, which takes up to ~1.8 bytes per pixel at Q85 and
# failed with "broken data stream when writing image file". MAXBLOCK is the module setting
# Pillow sizes that buffer from; raised once, here, to the bound for the largest box
# (2048 x 2048: 25 MB), every JPEG fits. Only the pages libjpeg writes become resident
# (docs/engine.md "JPEG encoder buffer"). MAXBLOCK is also Pillow's read block when
# decoding; the engine sets each JPEG's read block back to Pillow's own (JPEG_READ_BLOCK).
JPEG_ENCODER_BUFFER = jpeg_size_bound(MAX_SIDE, MAX_SIDE)  # 25,167,872 bytes
JPEG_READ_BLOCK = 65536  # Pillow's default ImageFile.MAXBLOCK
ImageFile.MAXBLOCK = max(ImageFile.MAXBLOCK, JPEG_ENCODER_BUFFER)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
_PIL_FORMAT = {"image/png": "PNG", "image/jpeg": "JPEG"}
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
_STRAIGHT = {"RGBa": "RGBA", "La": "LA"}
_TRANSPOSE = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}


class ImageRejected(Exception):
    """The upload cannot be thumbnailed; `code` is the failure code the API reports."""

    CODES = frozenset({"unsupported_format", "corrupt_image", "image_too_large"})

    def __init__(self, code: str, message: str):
        if code not in self.CODES:
            raise ValueError(f"unknown rejection code {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Rendered:
    """One encoded output: the request entry, its stable name and what was made."""

    rendition: Rendition
    name: str  # renditions.names(...)[i]: unique within the image
    width: int  # the actual output size
    height: int
    format: str  # jpeg | png | webp | avif
    content_type: str
    extension: str
    data: bytes


@dataclass(frozen=True)
class RenderResult:
    content_type: str  # the upload's sniffed type
    width: int  # the oriented (displayed) source size
    height: int
    renditions: tuple[Rendered, ...]  # in the order requested
    placeholder: str  # ThumbHash, standard base64


def sniff_content_type(head: bytes) -> str | None:
    """The real type from the magic bytes alone; None for anything but PNG or JPEG."""
    if head.startswith(PNG_MAGIC):
        return "image/png"
    if head.startswith(JPEG_MAGIC):
        return "image/jpeg"
    return None


def declared_size(data: bytes, content_type: str) -> tuple[int, int] | None:
    """Width and height the header declares, read without Pillow and without decoding.

    Takes the largest frame header seen before the pixel data (IDAT / SOS), so Pillow, which
    keeps the last one, can never open something larger than what was checked.
    """
    if content_type == "image/png":
        return _png_declared_size(data)
    return _jpeg_declared_size(data)


def _png_declared_size(data: bytes) -> tuple[int, int] | None:
    best, pos = None, len(PNG_MAGIC)
    while pos + 8 <= len(data):
        length, ctype = struct.unpack_from(">I4s", data, pos)
        if ctype in (b"IDAT", b"fdAT", b"IEND"):
            break
        if ctype == b"IHDR" and length >= 8 and pos + 16 <= len(data):
            best = _larger(best, struct.unpack_from(">II", data, pos + 8))
        pos += 12 + length
    return best


def _png_interlaced(data: bytes) -> bool:
    """The IHDR's interlace method byte (Adam7 = 1), when the first chunk is IHDR."""
    return len(data) > 28 and data[12:16] == b"IHDR" and data[28] == 1


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_declared_size(data: bytes) -> tuple[int, int] | None:
    best, pos, end = None, 2, len(data)
    while pos + 1 < end:
        if data[pos] != 0xFF:  # junk between segments: Pillow skips it byte by byte too
            pos += 1
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:  # start of scan: pixel data follows
            break
        if marker in (0x01, 0x00) or 0xD0 <= marker <= 0xD8:  # no length field
            pos += 2
            continue
        if pos + 4 > end:
            break
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if marker in _SOF and pos + 9 <= end:
            height, width = struct.unpack_from(">HH", data, pos + 5)
            best = _larger(best, (width, height))
        pos += 2 + max(length, 2)
    return best


def _larger(a: tuple[int, int] | None, b: tuple[int, int]) -> tuple[int, int]:
    return b if a is None or b[0] * b[1] > a[0] * a[1] else a


def cover_box(src: tuple[int, int], box: tuple[int, int]) -> tuple[float, float, float, float]:
    """The centred region of `src` that, scaled to exactly `box`, covers it (c_fill)."""
    (sw, sh), (bw, bh) = src, box
    scale = max(bw / sw, bh / sh)
    cw, ch = min(sw, bw / scale), min(sh, bh / scale)
    x0, y0 = max(0.0, (sw - cw) / 2), max(0.0, (sh - ch) / 2)
    return (x0, y0, min(float(sw), x0 + cw), min(float(sh), y0 + ch))


def render(data: bytes, renditions: Sequence[Rendition] = DEFAULT_RENDITIONS, *,
           max_pixels: int = MAX_PIXELS) -> RenderResult:
    """Decode once, make every rendition (in the order asked) and the placeholder.

    Raises ImageRejected only (for the upload's bytes); `renditions` are trusted values
    (validated by the API, renditions.py). Each output is encoded as soon as it is drawn,
    so at most the outputs that still share a resample are held as images.
    """
    requested = tuple(renditions)
    content_type, size, placeholder, drawn = _render(data, requested, max_pixels)
    formats = [resolve_format(r, content_type) for r in requested]
    encoded: dict[int, tuple[int, int, bytes]] = {}
    for i, img in drawn:
        encoded[i] = (img.width, img.height, _encode(img, formats[i], quality_of(requested[i], formats[i])))
    return RenderResult(content_type, size[0], size[1], tuple(
        Rendered(rendition=r, name=name, width=encoded[i][0], height=encoded[i][1], format=formats[i],
                 content_type=CONTENT_TYPES[formats[i]], extension=EXTENSIONS[formats[i]], data=encoded[i][2])
        for i, (r, name) in enumerate(zip(requested, names(requested, content_type)))
    ), placeholder)


def render_thumbnails(data: bytes, *, max_pixels: int = MAX_PIXELS) -> RenderResult:
    """The stage's default request: the three original sizes, cover, centre, source format."""
    return render(data, DEFAULT_RENDITIONS, max_pixels=max_pixels)


def render_images(data: bytes, renditions: Sequence[Rendition] = DEFAULT_RENDITIONS, *,
                  max_pixels: int = MAX_PIXELS) -> tuple[str, tuple[int, int], list[Image.Image]]:
    """The renditions as Pillow images, just before encoding: content type, oriented size."""
    requested = tuple(renditions)
    content_type, size, _, drawn = _render(data, requested, max_pixels)
    images = dict(drawn)
    return content_type, size, [images[i] for i in range(len(requested))]


def _render(data: bytes, requested: tuple[Rendition, ...], max_pixels: int
            ) -> tuple[str, tuple[int, int], str, Iterator[tuple[int, Image.Image]]]:
    """Sniff, check, decode and hash; then the outputs, lazily, as (index, image)."""
    if not requested:
        raise ValueError("at least one rendition is needed")
    content_type = sniff_content_type(data[:16])
    if content_type is None:
        raise ImageRejected("unsupported_format", "only PNG and JPEG images are accepted")
    limit = max_pixels if Image.MAX_IMAGE_PIXELS is None else min(max_pixels, Image.MAX_IMAGE_PIXELS)
    header = declared_size(data, content_type)
    if header is None:
        raise ImageRejected("corrupt_image", f"no {_PIL_FORMAT[content_type]} image header found")
    _check_pixels(header, limit)
    needs = tuple((r.width, r.height, r.fit) for r in requested)
    try:
        if content_type == "image/png":
            src = _decode_png(data, needs, limit)
        else:
            src = _decode_jpeg(data, needs, limit)
    except ImageRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageRejected("image_too_large", str(exc)) from exc
    except MemoryError:
        raise
    except Exception as exc:  # any decoder failure: truncated, bad CRC, bad Huffman, ...
        raise ImageRejected("corrupt_image", f"cannot decode image: {_first_line(exc)}") from exc
    analysis = None
    if any(r.fit == "cover" and r.gravity in smartcrop.INTERESTING for r in requested):
        analysis = _preview(src.work, src, ANALYSIS_SIDE)
    if analysis is not None:
        hashed = _preview(analysis, None, PLACEHOLDER_SIDE)
    else:
        hashed = _preview(src.work, src, PLACEHOLDER_SIDE)
    placeholder = thumbhash.encode_base64(hashed.convert("RGBA" if "A" in hashed.mode else "RGB"))
    plans = [_plan(r, src, analysis, resolve_format(r, content_type)) for r in requested]
    return content_type, src.oriented_size, placeholder, _draw(src, plans)


@dataclass(frozen=True)
class _Source:
    """A decoded, possibly reduced image in stored (un-oriented) orientation.

    Pixel i of `work` covers full-resolution pixels [i*scale, (i+1)*scale): DCT scaling,
    Image.reduce and libvips' reduce (a float scale) all keep that mapping, so crop
    geometry stays exact.
    """

    work: Image.Image  # mode L, RGB, CMYK, La or RGBa
    scale: float  # full-resolution pixels per working pixel
    size: tuple[int, int]  # full resolution, stored orientation
    orientation: int
    icc: bytes | None
    adobe: bool

    @property
    def swapped(self) -> bool:
        return self.orientation in (5, 6, 7, 8)

    @property
    def oriented_size(self) -> tuple[int, int]:
        return (self.size[1], self.size[0]) if self.swapped else self.size


# What each rendition needs of the working image: (box width, box height, fit), displayed.
_Needs = tuple[tuple[int, int, str], ...]


def _check_pixels(size: tuple[int, int], limit: int) -> None:
    if size[0] * size[1] > limit:
        raise ImageRejected(
            "image_too_large",
            f"{size[0]}x{size[1]} is {size[0] * size[1]:,} pixels; the limit is {limit:,}",
        )


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _decode_jpeg(data: bytes, needs: _Needs, limit: int) -> _Source:
    """Pillow, JPEG parser only, decoding at the smallest DCT scale (1/1..1/8) that keeps
    DRAFT_MARGIN x the largest output scale; no full-size image is built unless needed.
    When no DCT scale comes near what is needed (large outputs: the decode would hold
    more than STREAM_WASTE x the working pixels, and more than STREAM_MIN_PIXELS), libvips
    decodes instead, streaming rows into a Lanczos reduction (_decode_jpeg_streamed)."""
    # No `with`: the working image may be `im` itself, and a BytesIO needs no closing.
    im = Image.open(io.BytesIO(data), formats=["JPEG"])
    im.decodermaxblock = JPEG_READ_BLOCK  # not the (large) encoder buffer, see MAXBLOCK above
    _check_pixels(im.size, limit)
    full = im.size
    if full[0] < 1 or full[1] < 1:
        raise ValueError("image has no pixels")
    icc, adobe = im.info.get("icc_profile"), "adobe" in im.info
    orientation = _orientation(im)
    scale = 1
    need = _needed_size(full, full, orientation, needs, DRAFT_MARGIN)
    drafted = im.draft(None, need)
    if drafted is not None:
        scale = round(full[0] / drafted[1][2])
    decoded = im.size[0] * im.size[1]
    if decoded > STREAM_MIN_PIXELS and decoded > STREAM_WASTE * need[0] * need[1]:
        target = _needed_size(full, full, orientation, needs, STREAM_MARGIN)
        return _decode_jpeg_streamed(data, full, scale, target, orientation, icc, adobe)
    im.load()
    work: Image.Image = im if im.mode in ("L", "RGB", "CMYK") else im.convert("RGB")
    factor = _reduce_factor(work.size, full, orientation, needs)
    if factor > 1:
        work = work.reduce(factor)
    return _Source(work, scale * factor, full, orientation, icc, adobe)


_JPEG_BANDS = {1: "L", 3: "RGB", 4: "CMYK"}


def _decode_jpeg_streamed(data: bytes, full: tuple[int, int], shrink: int, need: tuple[int, int],
                          orientation: int, icc: bytes | None, adobe: bool) -> _Source:
    """libvips' JPEG loader at the same DCT scale, its rows streamed through a Lanczos
    reduction to `need` (STREAM_MARGIN x the largest output): the decoded image never
    exists whole (Pillow would hold it: 72 MB for 24 MP), like libvips' own thumbnail. Its
    samples are Pillow's (CMYK included, Adobe-inverted or not), so everything after is
    the same."""
    image = pyvips.Image.jpegload_buffer(data, shrink=shrink, access="sequential", fail_on="error")
    if image.bands not in _JPEG_BANDS or image.format != "uchar":
        raise ValueError(f"unexpected JPEG decode: {image.bands} bands of {image.format}")
    # One factor for both axes keeps pixel i covering [i f, (i+1) f) of the loaded image.
    factor = max(1.0, min(image.width / need[0], image.height / need[1]))
    if factor > 1:
        image = image.reduce(factor, factor)
    mode = _JPEG_BANDS[image.bands]
    work = Image.frombuffer(mode, (image.width, image.height), image.write_to_memory(), "raw", mode, 0, 1)
    return _Source(work, shrink * factor, full, orientation, icc, adobe)


_PIL_MODE_FOR_BANDS = {1: "L", 2: "La", 3: "RGB", 4: "RGBa"}


def _decode_png(data: bytes, needs: _Needs, limit: int) -> _Source:
    """libvips, PNG loader only, streaming: 16 -> 8 bit, premultiply alpha, box-shrink, and
    only then materialise the (small) working image for Pillow. fail_on="error" makes
    truncated or short pixel data an error instead of silently padded rows."""
    # An interlaced PNG is held whole by any loader; random access then skips the
    # sequential machinery (measured ~10% faster, same memory).
    access = "random" if _png_interlaced(data) else "sequential"
    image = pyvips.Image.pngload_buffer(data, access=access, fail_on="error")
    full = (image.width, image.height)
    _check_pixels(full, limit)
    orientation = image.get("orientation") if image.get_typeof("orientation") else 1
    orientation = orientation if orientation in range(1, 9) else 1
    icc = image.get("icc-profile-data") if image.get_typeof("icc-profile-data") else None
    if image.format != "uchar":
        image = image.cast("uchar", shift=True)
    if image.bands not in _PIL_MODE_FOR_BANDS:
        raise ValueError(f"unexpected band count {image.bands}")
    if image.hasalpha():
        image = (image.premultiply(max_alpha=255) + 0.5).cast("uchar")
    factor = _reduce_factor(full, full, orientation, needs)
    if factor > 1:
        image = image.shrink(factor, factor)
    mode = _PIL_MODE_FOR_BANDS[image.bands]
    pixels = image.write_to_memory()
    work = Image.frombuffer(mode, (image.width, image.height), pixels, "raw", mode, 0, 1)
    return _Source(work, factor, full, orientation, icc, adobe=False)


def _orientation(im: Image.Image) -> int:
    """EXIF orientation 1-8; a missing or unreadable EXIF means 1, as browsers do."""
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:
        return 1
    return value if value in range(1, 9) else 1


def _needed_size(size: tuple[int, int], full: tuple[int, int], orientation: int, needs: _Needs,
                 margin: float) -> tuple[int, int]:
    """Smallest (stored-orientation) size of an image `size` -- `full`, or a reduced copy --
    still `margin` x the scale of every output: a cover box's larger ratio, a contain box's
    smaller one, an inside box's smaller one but never beyond the full resolution."""
    w, h = size
    scale = 0.0
    for bw, bh, fit in needs:
        if orientation in (5, 6, 7, 8):
            bw, bh = bh, bw
        if fit == "cover":
            scale = max(scale, bw / w, bh / h)
        elif fit == "contain":
            scale = max(scale, min(bw / w, bh / h))
        else:
            scale = max(scale, min(bw / w, bh / h, full[0] / w))
    scale = min(1.0, scale * margin)
    return max(1, math.ceil(w * scale)), max(1, math.ceil(h * scale))


def _reduce_factor(size: tuple[int, int], full: tuple[int, int], orientation: int, needs: _Needs) -> int:
    """Integer box-reduction that still leaves REDUCE_MARGIN x the largest output scale."""
    need = _needed_size(size, full, orientation, needs, REDUCE_MARGIN)
    return max(1, min(size[0] // need[0], size[1] // need[1]))


# ---------------------------------------------------------------- geometry


@dataclass(frozen=True)
class _Plan:
    """How one rendition is drawn: which region of the source (stored orientation, full-
    resolution pixels) is resampled to which size (stored orientation), then padded to
    `canvas` (contain, displayed) and prepared for `format`."""

    region: tuple[float, float, float, float]
    size: tuple[int, int]
    canvas: tuple[int, int] | None
    format: str
    background: tuple[int, int, int] | None


def _plan(r: Rendition, src: _Source, analysis: Image.Image | None, fmt: str) -> _Plan:
    box = (r.width, r.height)
    background = _rgb(r.background) if r.background else None
    if r.fit == "cover":
        stored_box = (box[1], box[0]) if src.swapped else box
        if r.gravity == "center" and r.focus is None:
            region = cover_box(src.size, stored_box)  # symmetric: the same in any orientation
        else:
            shown = src.oriented_size
            if r.focus is not None:
                rect = focus_box(shown, box, r.focus)
            else:
                assert analysis is not None
                x0, y0, x1, y1 = cover_box(shown, box)
                cx, cy = smartcrop.crop_origin(analysis, shown, (x1 - x0, y1 - y0), r.gravity)
                rect = (cx, cy, cx + x1 - x0, cy + y1 - y0)
            region = to_stored(rect, shown, src.orientation)
        return _Plan(region, stored_box, None, fmt, background)
    fitted = fit_size(src.oriented_size, box, enlarge=r.fit == "contain")
    size = (fitted[1], fitted[0]) if src.swapped else fitted
    region = (0.0, 0.0, float(src.size[0]), float(src.size[1]))
    return _Plan(region, size, box if r.fit == "contain" else None, fmt, background)


def focus_box(src: tuple[int, int], box: tuple[int, int], focus: tuple[float, float]
              ) -> tuple[float, float, float, float]:
    """The cover region of `src` for `box` with the focal point (0-1 of each side) as near
    its centre as the image allows."""
    x0, y0, x1, y1 = cover_box(src, box)
    cw, ch = x1 - x0, y1 - y0
    left = min(max(0.0, focus[0] * src[0] - cw / 2), src[0] - cw)
    top = min(max(0.0, focus[1] * src[1] - ch / 2), src[1] - ch)
    return (left, top, left + cw, top + ch)


def fit_size(src: tuple[int, int], box: tuple[int, int], *, enlarge: bool) -> tuple[int, int]:
    """The largest size of `src`'s aspect inside `box` (contain), or, without `enlarge`, no
    larger than `src` either (inside); never below 1 pixel."""
    scale = min(box[0] / src[0], box[1] / src[1])
    if not enlarge:
        scale = min(scale, 1.0)
    return (min(box[0], max(1, round(src[0] * scale))), min(box[1], max(1, round(src[1] * scale))))


def to_stored(rect: tuple[float, float, float, float], shown: tuple[int, int], orientation: int
              ) -> tuple[float, float, float, float]:
    """A rectangle of the displayed image, in the stored image's pixels (EXIF orientation
    undone): the inverse of the transposes `_finish` applies."""
    w, h = shown
    x0, y0, x1, y1 = rect
    if orientation in (2, 3):
        x0, x1 = w - x1, w - x0
    if orientation in (3, 4):
        y0, y1 = h - y1, h - y0
    if orientation == 5:  # transpose
        return (y0, x0, y1, x1)
    if orientation == 6:  # shown = stored rotated 90 degrees clockwise
        return (y0, w - x1, y1, w - x0)
    if orientation == 7:  # transverse
        return (h - y1, w - x1, h - y0, w - x0)
    if orientation == 8:  # shown = stored rotated 90 degrees counter-clockwise
        return (h - y1, x0, h - y0, x1)
    return (x0, y0, x1, y1)


def _rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))


# ---------------------------------------------------------------- drawing


@dataclass
class _Made:
    """A resampled region, kept while a later output may be made from it."""

    region: tuple[float, float, float, float]
    size: tuple[int, int]
    image: Image.Image
    finished: Image.Image | None = None


def _draw(src: _Source, plans: list[_Plan]) -> Iterator[tuple[int, Image.Image]]:
    """Resample each distinct (region, size) once, largest first; a smaller output of the
    same region is resampled from the larger one (cheaper, 50-55 dB from the direct way);
    then orient, colour-convert, pad and flatten per rendition. Yields (index, image) in
    drawing order and lets go of each resample once no later output can use it."""
    order = sorted(range(len(plans)), key=lambda i: -plans[i].size[0] * plans[i].size[1])
    made: list[_Made] = []
    for n, i in enumerate(order):
        region, size = plans[i].region, plans[i].size
        same = [m for m in made if _same_region(m.region, region) and m.size[0] >= size[0] and m.size[1] >= size[1]]
        entry = next((m for m in same if m.size == size), None)
        if entry is None:
            if same:
                img = same[0].image.resize(size, Image.Resampling.LANCZOS)
            else:
                w, h = src.work.size  # libvips' shrink rounds the size: clamp to the pixels there are
                k = src.scale
                x0, y0, x1, y1 = region
                box = (min(x0 / k, w), min(y0 / k, h), min(x1 / k, w), min(y1 / k, h))
                img = src.work.resize(size, Image.Resampling.LANCZOS, box=box, reducing_gap=LANCZOS_GAP)
            entry = _Made(region, size, img)
            made.append(entry)
        if entry.finished is None:
            entry.finished = _finish(entry.image, src)
        yield i, _prepare(entry.finished, plans[i])
        later = [plans[j].region for j in order[n + 1:]]
        made = [m for m in made if any(_same_region(m.region, r) for r in later)]


def _same_region(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(abs(p - q) <= 1e-6 * max(1.0, abs(p)) for p, q in zip(a, b))


def _finish(img: Image.Image, src: _Source) -> Image.Image:
    """Orient, un-premultiply, convert to sRGB (via the embedded profile if any), and drop
    all metadata -- on the small image, where it is cheap."""
    for op in _TRANSPOSE.get(src.orientation, ()):
        img = img.transpose(op)
    if img.mode in _STRAIGHT:
        img = img.convert(_STRAIGHT[img.mode])
    if img.mode == "CMYK" and not src.adobe:
        img = ImageChops.invert(img)  # Pillow assumes Adobe's inverted CMYK; undo for plain
    img = _to_srgb(img, src.icc)
    if img.mode == "CMYK":
        img = img.convert("RGB")
    img.info = {}
    return img


def _prepare(img: Image.Image, plan: _Plan) -> Image.Image:
    """Pad a `contain` output to its box, and flatten alpha for JPEG: transparent padding
    where the format has alpha and no background was asked, else the background (white)."""
    colour = plan.background
    if plan.canvas is not None and img.size != plan.canvas:
        if plan.format in HAS_ALPHA and colour is None:
            mode = "LA" if img.mode in ("L", "LA") else "RGBA"
            fill: tuple[int, ...] = (0,) * len(mode)
        else:
            colour = colour or WHITE
            mode = _mode_for(img.mode, colour, keep_alpha=img.mode in ("LA", "RGBA"))
            fill = (colour[0],) if mode.startswith("L") else colour
            fill += (255,) if mode.endswith("A") else ()
        canvas = Image.new(mode, plan.canvas, fill)
        canvas.paste(img.convert(mode), ((plan.canvas[0] - img.width) // 2, (plan.canvas[1] - img.height) // 2))
        img = canvas
    if plan.format == "jpeg" and img.mode in ("LA", "RGBA"):
        colour = colour or WHITE
        mode = _mode_for(img.mode, colour, keep_alpha=False)
        flat = Image.new(mode, img.size, colour[0] if mode == "L" else colour)
        flat.paste(img.convert(mode), (0, 0), img.getchannel("A"))
        img = flat
    return img


def _mode_for(mode: str, colour: tuple[int, int, int], *, keep_alpha: bool) -> str:
    """The mode that holds `mode`'s pixels and `colour`: grey stays grey on a grey colour."""
    grey = mode in ("L", "LA") and colour[0] == colour[1] == colour[2]
    return ("L" if grey else "RGB") + ("A" if keep_alpha else "")


def _preview(img: Image.Image, src: _Source | None, side: int) -> Image.Image:
    """`img` scaled to fit side x side (never enlarged); finished for display when it is
    still the working image (`src` given). A box reduction by the whole ratio, then
    bilinear: for judging and hashing, not for showing (half the time of reducing_gap=2)."""
    k = min(1.0, side / max(img.size))
    size = (max(1, round(img.width * k)), max(1, round(img.height * k)))
    small = img.resize(size, Image.Resampling.BILINEAR, reducing_gap=1.0) if size != img.size else img.copy()
    return _finish(small, src) if src is not None else small


def _to_srgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    """Apply the embedded profile; an unreadable or mismatched one is ignored (browsers do)."""
    if not icc or img.mode not in ("RGB", "RGBA", "CMYK"):
        return img
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = profile.profile.xcolor_space.strip()
        if space != ("CMYK" if img.mode == "CMYK" else "RGB"):
            return img
        out_mode = "RGBA" if img.mode == "RGBA" else "RGB"
        transform = ImageCms.buildTransform(profile, _SRGB, img.mode, out_mode)
        return ImageCms.applyTransform(img, transform)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return img


def _encode(img: Image.Image, fmt: str, quality: int | None) -> bytes:
    """Encode with only the parameters we mean: nothing from the source's metadata."""
    buf = io.BytesIO()
    if fmt == "jpeg":
        img.save(buf, "JPEG", quality=quality, subsampling=JPEG_SUBSAMPLING, optimize=True)
    elif fmt == "png":
        img.save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    elif fmt == "webp":
        img.save(buf, "WEBP", quality=quality, method=WEBP_METHOD)
    elif fmt == "avif":
        extra = {} if img.mode == "L" else {"subsampling": AVIF_SUBSAMPLING}  # L: 4:0:0, grey
        img.save(buf, "AVIF", quality=quality, speed=AVIF_SPEED, max_threads=AVIF_THREADS, **extra)
    else:
        raise ValueError(f"unknown output format {fmt!r}")
    return buf.getvalue()
