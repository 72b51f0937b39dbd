"""The deterministic benchmark image set, generated once into bench/.data/ (gitignored).

Each input class is a recipe over tests/imagegen.py's photo-like scene (gradients, cloud
texture, hard-edged shapes, fine stripes, sensor grain), tuned to realistic file sizes:
a 24 MP camera JPEG of ~10 MB, a 6 MP RGB PNG of ~10 MB, a 16 MP RGBA PNG of ~9 MB.
`python -m bench.images` prints the set.
"""
from __future__ import annotations

import io
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tests import imagegen

DATA_DIR = Path(__file__).resolve().parent / ".data"
RECIPE_VERSION = 1  # bump when a recipe changes: cached files are keyed by it


@dataclass(frozen=True)
class InputClass:
    name: str
    description: str
    extension: str
    build: Callable[[], bytes]

    @property
    def path(self) -> Path:
        return DATA_DIR / f"{self.name}.v{RECIPE_VERSION}.{self.extension}"


def _jpeg(width: int, height: int, *, grain: float = 22, quality: int = 94, mode: str = "RGB",
          progressive: bool = False) -> bytes:
    img = imagegen.scene(width, height, grain=grain).convert(mode)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, progressive=progressive, exif=imagegen.make_exif(orientation=1))
    return buf.getvalue()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _palette_png() -> bytes:
    img = imagegen.with_alpha(imagegen.scene(2400, 1800, grain=0)).quantize(255, dither=Image.Dither.NONE)
    return _png(img)


CLASSES: tuple[InputClass, ...] = (
    InputClass("jpeg-24mp", "6000x4000 JPEG q94, camera-like", "jpg", lambda: _jpeg(6000, 4000)),
    InputClass("jpeg-12mp", "4000x3000 JPEG q92", "jpg", lambda: _jpeg(4000, 3000, quality=92)),
    InputClass("jpeg-progressive", "4000x3000 progressive JPEG q92", "jpg",
               lambda: _jpeg(4000, 3000, quality=92, progressive=True)),
    InputClass("jpeg-gray", "4000x3000 greyscale JPEG q92", "jpg",
               lambda: _jpeg(4000, 3000, quality=92, mode="L")),
    InputClass("jpeg-cmyk", "3000x2000 Adobe CMYK JPEG q92", "jpg",
               lambda: _jpeg(3000, 2000, quality=92, mode="CMYK")),
    InputClass("jpeg-small", "800x600 JPEG q90", "jpg", lambda: _jpeg(800, 600, quality=90, grain=8)),
    InputClass("png-rgb-6mp", "3000x2000 RGB PNG", "png", lambda: _png(imagegen.scene(3000, 2000, grain=10))),
    InputClass("png-rgba-16mp", "4000x4000 RGBA PNG", "png",
               lambda: _png(imagegen.with_alpha(imagegen.scene(4000, 4000, grain=0)))),
    InputClass("png-palette", "2400x1800 palette PNG with transparency", "png", _palette_png),
    InputClass("png-16bit", "1600x1200 RGB 16-bit PNG", "png",
               lambda: imagegen.make_png(1600, 1200, mode="RGB;16")),
    InputClass("png-interlaced", "2800x1800 RGB Adam7 PNG", "png",
               lambda: imagegen.make_png(2800, 1800, interlaced=True)),
)


def _limit_side() -> int:
    """The largest square whose pixel count is within the engine's MAX_PIXELS."""
    from chalicelib.imaging.engine import MAX_PIXELS

    return math.isqrt(MAX_PIXELS)


def _flat_jpeg(mode: str) -> bytes:
    side = _limit_side()
    buf = io.BytesIO()
    imagegen.picture(side, side, "flat").convert(mode).save(buf, "JPEG", quality=90, progressive=True,
                                                           subsampling=0)
    return buf.getvalue()


# Worst admissible inputs for Lambda sizing: MAX_PIXELS pixels, compressible enough to pass
# the 11 MiB upload limit. Progressive JPEGs make libjpeg hold every DCT coefficient
# (2 bytes x components x pixels) whatever the draft scale; interlaced PNGs make the PNG
# loader hold the whole image.
SIZING_CLASSES: tuple[InputClass, ...] = (
    InputClass("limit-png-rgba8", "MAX_PIXELS square RGBA PNG", "png",
               lambda: imagegen.make_png(_limit_side(), _limit_side(), mode="RGBA", content="flat")),
    InputClass("limit-png-rgba16", "MAX_PIXELS square RGBA 16-bit PNG", "png",
               lambda: imagegen.make_png(_limit_side(), _limit_side(), mode="RGBA;16", content="flat",
                                         low_byte="copy")),
    InputClass("limit-png-rgba16-interlaced", "MAX_PIXELS square RGBA 16-bit Adam7 PNG", "png",
               lambda: imagegen.make_png(_limit_side(), _limit_side(), mode="RGBA;16", content="flat",
                                         low_byte="copy", interlaced=True)),
    InputClass("limit-jpeg-progressive-444", "MAX_PIXELS square progressive 4:4:4 JPEG", "jpg",
               lambda: _flat_jpeg("RGB")),
    InputClass("limit-jpeg-progressive-cmyk", "MAX_PIXELS square progressive CMYK JPEG", "jpg",
               lambda: _flat_jpeg("CMYK")),
)


# The worst admissible input for a request at the work budget (`python -m bench.engine
# --budget`): as large in memory as any (16-bit RGBA, Adam7, MAX_PIXELS) and as hard for
# every encoder as it can be under the upload limit -- saturated confetti whose specks
# (8 px) stay 2 px wide in a 2048 x 2048 output.
BUDGET_CLASSES: tuple[InputClass, ...] = (
    InputClass("limit-png-rgba16-interlaced-confetti", "MAX_PIXELS square RGBA 16-bit Adam7 PNG of confetti",
               "png", lambda: imagegen.make_png(_limit_side(), _limit_side(), mode="RGBA;16", content="confetti",
                                                feature=8, low_byte="copy", interlaced=True)),
)


ALL_CLASSES = CLASSES + SIZING_CLASSES + BUDGET_CLASSES
CLASS_BY_NAME = {cls.name: cls for cls in CLASSES}


def ensure(classes: tuple[InputClass, ...] = CLASSES) -> dict[str, Path]:
    """Build whatever is missing from bench/.data and return name -> path."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    for cls in classes:
        if not cls.path.exists():
            print(f"generating {cls.name} (once; cached in {DATA_DIR.name}/) ...", file=sys.stderr, flush=True)
            tmp = cls.path.with_suffix(".tmp")
            tmp.write_bytes(cls.build())
            tmp.replace(cls.path)
    return {cls.name: cls.path for cls in classes}


if __name__ == "__main__":
    for name, path in ensure().items():
        with Image.open(path) as im:
            print(f"{name:18} {path.stat().st_size / 1e6:6.2f} MB  {im.format:4} {im.mode:5} {im.size}")