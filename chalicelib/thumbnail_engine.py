"""The image engine: bytes in, three cover-cropped thumbnails out. Pure: no I/O, no AWS.

Contract (docs/api.md, "Statuses" and "Thumbnails"; decisions and measurements: docs/engine.md):
- the format is sniffed from the bytes; only PNG and JPEG are opened, and only by the
  parser of the sniffed format (Pillow's JPEG plugin, libvips' PNG loader);
- the pixel count declared by the header is checked BEFORE any pixel is decoded;
- every decode failure, truncation included, is `corrupt_image`; nothing else escapes;
- JPEG is decoded by Pillow at reduced DCT scale ("draft"); PNG by libvips' PNG loader,
  which streams, premultiplies alpha and box-shrinks without a full-size copy and rejects
  short or truncated pixel data (Pillow pads a PNG whose zlib stream ends early) -- chosen
  by measurement, see docs/engine.md;
- EXIF orientation first, then scale-to-cover and centre-crop (Cloudinary `c_fill`);
- JPEG in -> JPEG out, PNG in -> PNG out (alpha kept); no EXIF/GPS/XMP/comment/ICC in the
  output; an embedded ICC profile is converted to sRGB (what sharp does by default).

Thread-safe: no module state is mutated, every call works on its own objects. Two
process-wide library settings are made once, at import: libvips' operation cache is off,
and Pillow's encoder buffer (ImageFile.MAXBLOCK) holds the largest possible JPEG thumbnail.
"""
from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass

import pyvips
from PIL import Image, ImageChops, ImageCms, ImageFile

# libvips' operation cache would keep decoded uploads alive between invocations.
pyvips.cache_set_max(0)

THUMBNAIL_SIZES: tuple[tuple[int, int], ...] = ((400, 300), (160, 120), (120, 120))

# Pixel limit (width x height as the header declares it). Peak memory grows with it, not
# with the file size: at 50 MP the worst admissible inputs (interlaced 16-bit RGBA PNG,
# progressive CMYK JPEG) need ~425 MB, which the 1769 MB resize Lambda holds with room to
# spare -- see docs/engine.md "Pixel limit" and `python -m bench.engine --sizing`.
MAX_PIXELS: int = 50_000_000

# JPEG draft (DCT-domain) decoding may shrink the image, but never below this multiple of
# the largest cover box, so the final Lanczos pass still has detail to work with.
DRAFT_MARGIN = 2.0
# The working image (libvips shrink of a PNG, Image.reduce after a JPEG draft) is box-
# reduced by an integer factor, but not below this multiple of the largest cover box.
REDUCE_MARGIN = 2.0
# Per thumbnail, Pillow box-reduces the crop region by int(ratio / LANCZOS_GAP) before the
# Lanczos pass (resize's reducing_gap). Measured on the bench set: 1.6 keeps every
# thumbnail >= 43 dB PSNR vs a full-size Lanczos and halves the time where ratio >= 3.2.
LANCZOS_GAP = 1.6

# Thumbnails are small, so every chroma sample shows: 4:4:4 (subsampling 0) keeps colour
# edges crisp for ~1.5x the bytes of 4:2:0 (+5 dB PSNR on our test set).
JPEG_QUALITY = 85
JPEG_SUBSAMPLING = 0
# zlib level for PNG thumbnails (Pillow filters adaptively at every level). Measured on a
# 400x300 thumbnail: level 2 is ~3x faster than 6 (17 vs 42-64 ms) for files 2% larger.
PNG_COMPRESS_LEVEL = 2


def jpeg_size_bound(width: int, height: int) -> int:
    """The largest a JPEG of `width` x `height` can be, at any quality and subsampling:
    libjpeg-turbo's tj3JPEGBufSize for 4:4:4 colour, the worst case (2 bytes per sample
    over whole 8x8 blocks, plus 2 KB for the markers)."""
    return (-(-width // 8) * 8) * (-(-height // 8) * 8) * 3 * 2 + 2048


# JPEG thumbnails use optimized Huffman tables (~3% smaller on the bench set). With
# optimize=True libjpeg writes the whole entropy-coded scan inside jpeg_finish_compress,
# which cannot suspend on a full output buffer ("Suspension not allowed here"), so Pillow
# must hand it one buffer that holds the entire file. JpegImagePlugin._save sizes that at
# 1 byte per pixel below quality 95, floored at ImageFile.MAXBLOCK (64 KiB): too small for
# a 400x300 4:4:4 thumbnail of grain, gravel or noise, which takes up to ~1.8 bytes per
# pixel at Q85 and failed with "broken data stream when writing image file". MAXBLOCK is
# the module setting Pillow sizes that buffer from; raised once, here, to the bound for
# the largest box, every thumbnail fits. (It is also Pillow's read block when
# decoding a JPEG: measured no change in time, ~1 MB more peak memory.)
JPEG_ENCODER_BUFFER = max(jpeg_size_bound(w, h) for w, h in THUMBNAIL_SIZES)  # 731,648 bytes
ImageFile.MAXBLOCK = max(ImageFile.MAXBLOCK, JPEG_ENCODER_BUFFER)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
_PIL_FORMAT = {"image/png": "PNG", "image/jpeg": "JPEG"}
_EXTENSION = {"image/png": "png", "image/jpeg": "jpg"}
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
class Rendition:
    width: int
    height: int
    content_type: str
    extension: str
    data: bytes


@dataclass(frozen=True)
class RenderResult:
    content_type: str
    width: int
    height: int
    renditions: tuple[Rendition, ...]


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


def render_thumbnails(data: bytes, *, max_pixels: int = MAX_PIXELS) -> RenderResult:
    """Decode once and encode the three thumbnails; raises ImageRejected only."""
    content_type, size, images = render_images(data, max_pixels=max_pixels)
    renditions = tuple(
        Rendition(
            width=img.width,
            height=img.height,
            content_type=content_type,
            extension=_EXTENSION[content_type],
            data=_encode(img, content_type),
        )
        for img in images
    )
    return RenderResult(content_type, size[0], size[1], renditions)


def render_images(
    data: bytes, *, max_pixels: int = MAX_PIXELS, sizes: tuple[tuple[int, int], ...] = THUMBNAIL_SIZES
) -> tuple[str, tuple[int, int], list[Image.Image]]:
    """The thumbnails as Pillow images (before encoding): content type, oriented source size."""
    content_type = sniff_content_type(data[:16])
    if content_type is None:
        raise ImageRejected("unsupported_format", "only PNG and JPEG images are accepted")
    limit = max_pixels if Image.MAX_IMAGE_PIXELS is None else min(max_pixels, Image.MAX_IMAGE_PIXELS)
    header = declared_size(data, content_type)
    if header is None:
        raise ImageRejected("corrupt_image", f"no {_PIL_FORMAT[content_type]} image header found")
    _check_pixels(header, limit)
    try:
        if content_type == "image/png":
            src = _decode_png(data, sizes, limit)
        else:
            src = _decode_jpeg(data, sizes, limit)
    except ImageRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageRejected("image_too_large", str(exc)) from exc
    except MemoryError:
        raise
    except Exception as exc:  # any decoder failure: truncated, bad CRC, bad Huffman, ...
        raise ImageRejected("corrupt_image", f"cannot decode image: {_first_line(exc)}") from exc
    return content_type, src.oriented_size, _derive(src, sizes)


@dataclass(frozen=True)
class _Source:
    """A decoded, possibly reduced image in stored (un-oriented) orientation.

    Pixel i of `work` covers full-resolution pixels [i*scale, (i+1)*scale): DCT scaling and
    Image.reduce both keep that exact mapping, so crop geometry stays exact.
    """

    work: Image.Image  # mode L, RGB, CMYK, La or RGBa
    scale: int
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


def _check_pixels(size: tuple[int, int], limit: int) -> None:
    if size[0] * size[1] > limit:
        raise ImageRejected(
            "image_too_large",
            f"{size[0]}x{size[1]} is {size[0] * size[1]:,} pixels; the limit is {limit:,}",
        )


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _decode_jpeg(data: bytes, sizes: tuple[tuple[int, int], ...], limit: int) -> _Source:
    """Pillow, JPEG parser only, decoding at the smallest DCT scale (1/1..1/8) that keeps
    DRAFT_MARGIN x the largest cover box; no full-size image is ever built."""
    # No `with`: the working image may be `im` itself, and a BytesIO needs no closing.
    im = Image.open(io.BytesIO(data), formats=["JPEG"])
    _check_pixels(im.size, limit)
    full = im.size
    if full[0] < 1 or full[1] < 1:
        raise ValueError("image has no pixels")
    icc, adobe = im.info.get("icc_profile"), "adobe" in im.info
    orientation = _orientation(im)
    scale = 1
    drafted = im.draft(None, _needed_size(full, orientation, sizes, DRAFT_MARGIN))
    if drafted is not None:
        scale = round(full[0] / drafted[1][2])
    im.load()
    work: Image.Image = im if im.mode in ("L", "RGB", "CMYK") else im.convert("RGB")
    factor = _reduce_factor(work.size, orientation, sizes)
    if factor > 1:
        work = work.reduce(factor)
    return _Source(work, scale * factor, full, orientation, icc, adobe)


_PIL_MODE_FOR_BANDS = {1: "L", 2: "La", 3: "RGB", 4: "RGBa"}


def _decode_png(data: bytes, sizes: tuple[tuple[int, int], ...], limit: int) -> _Source:
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
    factor = _reduce_factor(full, orientation, sizes)
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


def _needed_size(
    size: tuple[int, int], orientation: int, sizes: tuple[tuple[int, int], ...], margin: float
) -> tuple[int, int]:
    """Smallest (stored-orientation) size still `margin` x larger than every cover box."""
    w, h = size
    scale = 0.0
    for bw, bh in sizes:
        if orientation in (5, 6, 7, 8):
            bw, bh = bh, bw
        scale = max(scale, bw / w, bh / h)
    scale = min(1.0, scale * margin)
    return max(1, math.ceil(w * scale)), max(1, math.ceil(h * scale))


def _reduce_factor(size: tuple[int, int], orientation: int, sizes: tuple[tuple[int, int], ...]) -> int:
    """Integer box-reduction that still leaves REDUCE_MARGIN x the largest cover box."""
    need = _needed_size(size, orientation, sizes, REDUCE_MARGIN)
    return max(1, min(size[0] // need[0], size[1] // need[1]))


def _derive(src: _Source, sizes: tuple[tuple[int, int], ...]) -> list[Image.Image]:
    """Cover-crop every size; a size with the aspect of a larger one is made from it
    (the crop region is the same), which saves resampling the working image again."""
    made: dict[tuple[int, int], Image.Image] = {}
    for box in sorted(set(sizes), key=lambda b: -b[0] * b[1]):
        bw, bh = (box[1], box[0]) if src.swapped else box
        parent = next((img for (pw, ph), img in made.items() if pw * box[1] == ph * box[0]), None)
        if parent is not None:
            made[box] = parent.resize((bw, bh), Image.Resampling.LANCZOS)
            continue
        x0, y0, x1, y1 = cover_box(src.size, (bw, bh))
        w, h = src.work.size  # libvips' shrink rounds the size: clamp to the pixels there are
        region = (min(x0 / src.scale, w), min(y0 / src.scale, h), min(x1 / src.scale, w), min(y1 / src.scale, h))
        made[box] = src.work.resize((bw, bh), Image.Resampling.LANCZOS, box=region, reducing_gap=LANCZOS_GAP)
    return [_finish(made[box], src) for box in sizes]


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


def _encode(img: Image.Image, content_type: str) -> bytes:
    """Encode with only the parameters we mean: nothing from the source's metadata."""
    buf = io.BytesIO()
    if content_type == "image/jpeg":
        img.save(buf, "JPEG", quality=JPEG_QUALITY, subsampling=JPEG_SUBSAMPLING, optimize=True)
    else:
        img.save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()
