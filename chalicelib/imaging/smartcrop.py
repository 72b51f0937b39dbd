"""Where a `cover` crop goes for gravity `attention` or `entropy`: libvips' own smartcrop,
run on the engine's small preview of the whole image.

libvips judges either way on a reduced image anyway -- `attention` shrinks to 32 x 32
before looking for edges, skin tones and saturation; `entropy` trims the less busy edge in
eight steps -- so running it on a preview of a few hundred pixels gives what sharp and
libvips give on the cover-resized image (the same algorithm, same semantics), at a cost
that does not grow with the upload (docs/engine.md "Smart crop").
"""
from __future__ import annotations

import pyvips
from PIL import Image

INTERESTING = ("attention", "entropy")
_INTERPRETATION = {"L": "b-w", "LA": "b-w", "RGB": "srgb", "RGBA": "srgb"}


def crop_origin(preview: Image.Image, source: tuple[int, int], crop: tuple[float, float],
                interesting: str) -> tuple[float, float]:
    """Top-left corner, in `source` pixels, of the `crop`-sized region to keep.

    `preview` shows the whole source (same orientation; straight alpha; mode L, LA, RGB or
    RGBA), scaled down; `crop` is at most `source` in each axis.
    """
    if interesting not in INTERESTING:
        raise ValueError(f"unknown interesting {interesting!r}")
    (sw, sh), (cw, ch), (pw, ph) = source, crop, preview.size
    kx, ky = pw / sw, ph / sh
    pcw, pch = max(1, min(pw, round(cw * kx))), max(1, min(ph, round(ch * ky)))
    bands = len(preview.getbands())
    image = pyvips.Image.new_from_memory(preview.tobytes(), pw, ph, bands, "uchar")
    image = image.copy(interpretation=_INTERPRETATION[preview.mode])
    found, where = image.smartcrop(pcw, pch, interesting=interesting, attention_x=True, attention_y=True)
    if interesting == "attention":
        # libvips centres the crop on the most interesting point, clamped to the image.
        x0 = where["attention_x"] / kx - cw / 2
        y0 = where["attention_y"] / ky - ch / 2
    else:
        # The kept slice, as a share of the slack on each axis (exact at both ends).
        x0 = (-found.xoffset) / (pw - pcw) * (sw - cw) if pw > pcw else 0.0
        y0 = (-found.yoffset) / (ph - pch) * (sh - ch) if ph > pch else 0.0
    return min(max(0.0, x0), sw - cw), min(max(0.0, y0), sh - ch)
