"""Deterministic image builders for tests and benchmarks (in memory, no files).

Content is photo-like rather than noise: smooth gradients, blurred texture, hard-edged
shapes, fine stripes and sensor-like grain, so codecs and resamplers behave as on real
uploads. `grain` is the opposite: high-entropy content (noise, confetti, gravel, high-ISO
grain) whose thumbnails stay high-detail, the worst case for the thumbnail encoders.
Every builder is a pure function of its arguments.

Sizes are always the DISPLAYED size: with an EXIF orientation the stored pixels are laid
out so that, once the orientation is applied, the picture is `width` x `height` and looks
the same as with no orientation at all.
"""
from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import lru_cache

from PIL import Image, ImageChops, ImageDraw, ImageFile, ImageOps

QUADRANT_COLOURS = {  # displayed position -> colour, for orientation checks
    "top_left": (220, 30, 30),
    "top_right": (30, 200, 30),
    "bottom_left": (30, 30, 220),
    "bottom_right": (230, 220, 40),
}

# Stored pixels = INVERSE[orientation](displayed); the decoder applies the forward one.
_INVERSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def _noise(size: tuple[int, int], bands: int, amplitude: float, rng: random.Random) -> Image.Image:
    mode = {1: "L", 3: "RGB"}[bands]
    raw = rng.randbytes(size[0] * size[1] * bands)
    img = Image.frombytes(mode, size, raw)
    return img.point(lambda v: v * amplitude / 255.0) if amplitude < 255 else img


def scene(width: int, height: int, *, seed: int = 0, grain: float = 12.0, texture: float = 0.35) -> Image.Image:
    """A photo-like RGB picture: gradients + blurred texture + shapes + stripes + grain."""
    rng = random.Random(seed)
    size = (width, height)
    ramp = Image.linear_gradient("L")
    base = Image.merge(
        "RGB",
        (
            ramp.rotate(90).resize(size, Image.Resampling.BILINEAR),
            ramp.resize(size, Image.Resampling.BILINEAR),
            Image.radial_gradient("L").resize(size, Image.Resampling.BILINEAR),
        ),
    )
    if texture > 0:  # two octaves of soft luminance texture, like foliage or clouds
        coarse = _noise((max(2, width // 40), max(2, height // 40)), 1, 255, rng)
        fine = _noise((max(2, width // 8), max(2, height // 8)), 1, 255, rng)
        tex = Image.blend(coarse.resize(size, Image.Resampling.BICUBIC), fine.resize(size, Image.Resampling.BICUBIC), 0.3)
        base = Image.blend(base, tex.convert("RGB"), texture)
    draw = ImageDraw.Draw(base)
    for _ in range(24):  # hard edges
        x0, y0 = rng.random() * width, rng.random() * height
        x1, y1 = x0 + rng.random() * width / 3, y0 + rng.random() * height / 3
        colour = tuple(rng.randrange(256) for _ in range(3))
        shape = rng.choice(("ellipse", "rectangle", "line"))
        if shape == "ellipse":
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif shape == "rectangle":
            draw.rectangle((x0, y0, x1, y1), fill=colour, outline=(0, 0, 0), width=max(1, width // 400))
        else:
            draw.line((x0, y0, x1, y1), fill=colour, width=max(1, width // 200))
    step = max(3, width // 300)  # fine stripes: aliasing shows up here first
    sx, sy = int(width * 0.6), int(height * 0.1)
    for x in range(sx, min(width, sx + width // 5), step):
        draw.line((x, sy, x, sy + height // 5), fill=(250, 250, 250), width=max(1, step // 2))
    if grain > 0:  # zero-mean sensor-like grain
        base = ImageChops.add(base, _noise(size, 3, grain, rng))
        base = ImageChops.subtract(base, _noise(size, 3, grain, rng))
    return base


GRAIN_KINDS = ("noise", "confetti", "gravel", "iso")


def _cells(size: tuple[int, int], feature: int, bands: int, rng: random.Random) -> Image.Image:
    """Uniform random samples, each held over a `feature` x `feature` square (hard edges)."""
    small = (max(1, -(-size[0] // feature)), max(1, -(-size[1] // feature)))
    cells = _noise(small, bands, 255, rng)
    return cells if small == size else cells.resize(size, Image.Resampling.NEAREST)


def grain(width: int, height: int, kind: str = "noise", *, seed: int = 0, feature: int = 1) -> Image.Image:
    """High-entropy RGB content; `feature` is the size of its finest detail in pixels.

    - "noise": independent uniform RGB samples (the entropy maximum for natural content);
    - "confetti": saturated specks of 8 colours over ~40 % of a soft gradient
      (salt-and-pepper; binary samples make the largest JPEG coefficients);
    - "gravel": five octaves of hard-edged stones, `feature` to 16 x `feature`, lightly tinted;
    - "iso": strong luminance and chroma noise over a smooth photo-like gradient.

    With `feature` about the source size / 400, the detail survives into the 400 x 300
    thumbnail while the file stays compressible (large sources under the upload limit).
    """
    if kind not in GRAIN_KINDS:
        raise ValueError(f"kind must be one of {GRAIN_KINDS}")
    rng, size = random.Random(seed), (width, height)
    if kind == "noise":
        return _cells(size, feature, 3, rng)
    ramp = Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)
    mirrored = ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    smooth = Image.merge("RGB", (ramp, mirrored, ramp.point(lambda v: 64 + v // 2)))
    if kind == "confetti":
        specks = _cells(size, feature, 3, rng).point(lambda v: 255 if v >= 128 else 0)
        mask = _cells(size, feature, 1, rng).point(lambda v: 255 if v < 102 else 0)
        return Image.composite(specks, smooth, mask)
    if kind == "gravel":
        stones = _cells(size, feature, 1, rng)
        for octave in range(1, 5):
            layer = _cells(size, feature << octave, 1, rng)
            stones = Image.blend(stones, layer, 1 / (octave + 1))  # running mean: equal weights
        stones = ImageOps.autocontrast(stones, cutoff=1)
        tint = (stones, stones.point(lambda v: v * 9 // 10), stones.point(lambda v: v * 3 // 4))
        tinted = Image.merge("RGB", tint)
        return ImageChops.add(tinted, _cells(size, feature, 3, rng).point(lambda v: v // 6))
    luma = _cells(size, feature, 1, rng).point(lambda v: v * 90 // 255).convert("RGB")
    chroma = _cells(size, feature, 3, rng).point(lambda v: v * 60 // 255)
    noisy = ImageChops.add(ImageChops.add(smooth, luma), chroma)
    return ImageChops.subtract(noisy, _cells(size, feature, 3, rng).point(lambda v: v * 75 // 255))


def quadrants(width: int, height: int) -> Image.Image:
    """Four solid colour blocks (see QUADRANT_COLOURS): shows any rotation or flip."""
    img = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(img)
    hw, hh = width // 2, height // 2
    draw.rectangle((0, 0, hw - 1, hh - 1), fill=QUADRANT_COLOURS["top_left"])
    draw.rectangle((hw, 0, width - 1, hh - 1), fill=QUADRANT_COLOURS["top_right"])
    draw.rectangle((0, hh, hw - 1, height - 1), fill=QUADRANT_COLOURS["bottom_left"])
    draw.rectangle((hw, hh, width - 1, height - 1), fill=QUADRANT_COLOURS["bottom_right"])
    return img


def picture(width: int, height: int, content: str = "photo", seed: int = 0, feature: int = 1) -> Image.Image:
    """content: "photo" (scene), "quadrants", "flat" (quadrants with soft gradients:
    compresses to almost nothing, for huge-dimension inputs), or a GRAIN_KINDS name
    (high-entropy `grain` with detail of `feature` pixels)."""
    if content in GRAIN_KINDS:
        return grain(width, height, content, seed=seed, feature=feature)
    if content == "flat":
        ramp = Image.linear_gradient("L").resize((width, height), Image.Resampling.BILINEAR)
        return Image.blend(quadrants(width, height), ramp.convert("RGB"), 0.2)
    return quadrants(width, height) if content == "quadrants" else scene(width, height, seed=seed)


def make_exif(*, orientation: int | None = None, gps: bool = False) -> bytes:
    """EXIF with the given orientation, a camera model and optionally a GPS position."""
    exif = Image.Exif()
    exif[0x010F] = "ThumbgenCam"  # Make
    exif[0x0110] = "Model 1"  # Model
    if orientation is not None:
        exif[0x0112] = orientation
    if gps:
        exif[0x8825] = {1: "N", 2: (52.0, 22.0, 12.5), 3: "E", 4: (4.0, 53.0, 28.0)}
    return exif.tobytes()


def make_jpeg(
    width: int,
    height: int,
    *,
    orientation: int | None = None,
    mode: str = "RGB",
    progressive: bool = False,
    quality: int = 90,
    exif_gps: bool = False,
    content: str = "photo",
    seed: int = 0,
    comment: bytes | None = None,
    icc_profile: bytes | None = None,
    feature: int = 1,
    subsampling: int | None = None,
) -> bytes:
    """A JPEG (mode RGB, L or CMYK -- CMYK written the Adobe way, inverted, as libjpeg does).
    `subsampling` 0/1/2 = 4:4:4/4:2:2/4:2:0 (None: Pillow's default, 4:2:0)."""
    img = picture(width, height, content, seed, feature)
    if orientation in _INVERSE:
        img = img.transpose(_INVERSE[orientation])
    img = img.convert(mode)
    params: dict = {"quality": quality, "progressive": progressive}
    if subsampling is not None:
        params["subsampling"] = subsampling
    if orientation is not None or exif_gps:
        params["exif"] = make_exif(orientation=orientation, gps=exif_gps)
    if comment is not None:
        params["comment"] = comment
    if icc_profile is not None:
        params["icc_profile"] = icc_profile
    buf = io.BytesIO()
    with _whole_jpeg_buffer(img) if progressive else nullcontext():
        img.save(buf, "JPEG", **params)
    return buf.getvalue()


@contextmanager
def _whole_jpeg_buffer(img: Image.Image) -> Iterator[None]:
    """Pillow writes a progressive JPEG in one buffer of ~1 byte per pixel, too small for
    grain (see chalicelib/imaging/engine.py): allow the JPEG worst case, 2 bytes per sample.
    Restored afterwards, so the engine is tested with its own setting only."""
    before = ImageFile.MAXBLOCK
    ImageFile.MAXBLOCK = max(before, 2 * img.width * img.height * len(img.getbands()) + 65536)
    try:
        yield
    finally:
        ImageFile.MAXBLOCK = before


def with_alpha(img: Image.Image) -> Image.Image:
    """RGBA: an opaque centre disc fading out, fully transparent corners."""
    w, h = img.size
    alpha = Image.radial_gradient("L").resize((w, h), Image.Resampling.BILINEAR)
    alpha = alpha.point(lambda v: max(0, min(255, int((200 - v) * 2.5))))
    out = img.convert("RGBA")
    out.putalpha(alpha)
    clear = Image.new("RGBA", (w, h), (0, 0, 0, 0))  # exporters zero fully transparent pixels
    return Image.composite(out, clear, alpha.point(lambda v: 255 if v else 0))


_PNG_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "I;16", "LA;16", "RGB;16", "RGBA;16")


def make_png(
    width: int,
    height: int,
    *,
    mode: str = "RGB",
    interlaced: bool = False,
    content: str = "photo",
    seed: int = 0,
    orientation: int | None = None,
    low_byte: str = "noise",
    feature: int = 1,
) -> bytes:
    """A PNG. Modes: 1, L, LA, P (palette), PA (palette + tRNS), RGB, RGBA, and 16 bits per
    sample I;16 (grey), LA;16, RGB;16, RGBA;16. `interlaced` writes Adam7 (8/16-bit modes).
    16-bit low bytes are "noise" (detail below 8 bits) or a "copy" of the high byte."""
    if mode not in _PNG_MODES:
        raise ValueError(f"mode must be one of {_PNG_MODES}")
    if interlaced and mode in ("1", "P", "PA"):
        raise ValueError("interlaced PNGs are written for 8/16-bit grey and colour modes only")
    img = picture(width, height, content, seed, feature)
    if orientation in _INVERSE:
        img = img.transpose(_INVERSE[orientation])
    exif = make_exif(orientation=orientation) if orientation is not None else None
    if mode in ("RGB;16", "RGBA;16", "LA;16", "I;16") or interlaced:
        return _png_by_hand(img, mode, interlaced, seed, exif, low_byte)
    if mode in ("1", "L", "RGB"):
        out = img.convert(mode)
    elif mode in ("LA", "RGBA"):
        out = with_alpha(img).convert(mode)
    else:
        # Median cut takes seconds on millions of distinct colours: octree for grain.
        method = Image.Quantize.FASTOCTREE if content in GRAIN_KINDS else Image.Quantize.MEDIANCUT
        out = img.quantize(64, method=method, dither=Image.Dither.NONE)
        if mode == "PA":  # palette entry 0 becomes fully transparent, a few more half
            out.info["transparency"] = bytes([0, 128, 128, 128])
    buf = io.BytesIO()
    out.save(buf, "PNG", **({"exif": exif} if exif else {}))
    return buf.getvalue()


def _png_chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))


_COLOUR_TYPE = {"L": 0, "I;16": 0, "RGB": 2, "RGB;16": 2, "LA": 4, "LA;16": 4, "RGBA": 6, "RGBA;16": 6}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _png_by_hand(
    img: Image.Image, mode: str, interlaced: bool, seed: int, exif: bytes | None, low_byte: str = "noise"
) -> bytes:
    """Encode what Pillow cannot write: 16-bit colour and Adam7 interlacing ("Up" filter)."""
    base_mode = mode.split(";")[0].replace("I", "L")
    pixels = with_alpha(img).convert(base_mode) if "A" in base_mode else img.convert(base_mode)
    samples = pixels.tobytes()
    depth = 16 if mode.endswith(";16") else 8
    if depth == 16:  # high byte = picture, low byte = fine detail below 8-bit resolution
        low = random.Random(seed + 1).randbytes(len(samples)) if low_byte == "noise" else samples
        wide = bytearray(2 * len(samples))
        wide[0::2], wide[1::2] = samples, low
        samples = bytes(wide)
    bpp = len(samples) // (img.width * img.height)
    rows = [samples[y * img.width * bpp : (y + 1) * img.width * bpp] for y in range(img.height)]
    passes = _ADAM7 if interlaced else ((0, 0, 1, 1),)
    stream = bytearray()
    for x0, y0, dx, dy in passes:
        pw = len(range(x0, img.width, dx))
        pass_rows = []
        for row in rows[y0::dy]:
            if pw == 0:
                break
            sub = bytearray(pw * bpp)
            for c in range(bpp):
                sub[c::bpp] = row[x0 * bpp + c :: dx * bpp][:pw]
            pass_rows.append(bytes(sub))
        stream += _up_filtered(pass_rows)
    ihdr = struct.pack(">IIBBBBB", img.width, img.height, depth, _COLOUR_TYPE[mode], 0, 0, int(interlaced))
    chunks = [_png_chunk(b"IHDR", ihdr)]
    if exif:
        chunks.append(_png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
    chunks += [_png_chunk(b"IDAT", zlib.compress(bytes(stream), 6)), _png_chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def _up_filtered(rows: list[bytes]) -> bytes:
    """PNG filter type 2 (Up) on every row, done as one byte-image subtraction."""
    if not rows:
        return b""
    w, h = len(rows[0]), len(rows)
    cur = Image.frombytes("L", (w, h), b"".join(rows))
    prev = Image.frombytes("L", (w, h), bytes(w) + b"".join(rows[:-1]))
    filtered = ImageChops.subtract_modulo(cur, prev).tobytes()
    return b"".join(b"\x02" + filtered[y * w : (y + 1) * w] for y in range(h))


def make_apng(width: int, height: int, *, frames: int = 3) -> bytes:
    """An animated PNG whose first frame is the usual scene; later frames differ visibly."""
    first = scene(width, height)
    others = [Image.new("RGB", (width, height), (255 * (i % 2), 0, 255)) for i in range(1, frames)]
    buf = io.BytesIO()
    first.save(buf, "PNG", save_all=True, append_images=others, duration=100, loop=0)
    return buf.getvalue()


def make_gif(width: int = 64, height: int = 48, *, frames: int = 1) -> bytes:
    """A (possibly animated) GIF: a format the service refuses."""
    images = [scene(width, height, seed=i).convert("P") for i in range(frames)]
    buf = io.BytesIO()
    images[0].save(buf, "GIF", save_all=frames > 1, append_images=images[1:])
    return buf.getvalue()


def make_png_bomb_header(width: int, height: int) -> bytes:
    """A small, well-formed PNG whose IHDR declares `width` x `height` (a decompression bomb
    would inflate to that); its IDAT holds a few rows only, so decoding it would fail late."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (1 + 3 * min(width, 4096)) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def make_truncated_jpeg(width: int = 640, height: int = 480) -> bytes:
    """A baseline JPEG cut off in the middle of its entropy-coded data."""
    data = make_jpeg(width, height)
    return data[: len(data) * 2 // 3]


def make_truncated_png(width: int = 640, height: int = 480) -> bytes:
    """A PNG cut off in the middle of its IDAT."""
    data = make_png(width, height)
    return data[: len(data) * 2 // 3]


def strip_jpeg_segment(data: bytes, marker: int) -> bytes:
    """Remove every segment with this marker (e.g. 0xEE, Adobe APP14) before the scan."""
    out, pos = bytearray(data[:2]), 2
    while pos + 4 <= len(data) and data[pos] == 0xFF and data[pos + 1] != 0xDA:
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if data[pos + 1] != marker:
            out += data[pos : pos + 2 + length]
        pos += 2 + length
    return bytes(out + data[pos:])


@lru_cache(maxsize=None)
def cached_jpeg(*args, **kwargs) -> bytes:
    """make_jpeg, built once per argument set in a test run."""
    return make_jpeg(*args, **kwargs)


@lru_cache(maxsize=None)
def cached_png(*args, **kwargs) -> bytes:
    """make_png, built once per argument set in a test run."""
    return make_png(*args, **kwargs)
