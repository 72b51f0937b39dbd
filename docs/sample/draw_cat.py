"""Draw docs/sample/cat.jpg, the README's sample upload: a cat sitting on a rug, in flat
shapes (1200 x 900, a JPEG of a few tens of KB).

    .venv/bin/python docs/sample/draw_cat.py
"""
from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

OUT = Path(__file__).with_name("cat.jpg")
W, H = 1200, 900
FUR, DARK, LIGHT = (226, 139, 62), (176, 94, 35), (248, 226, 196)
INK = (40, 30, 25)


def ellipse(draw: ImageDraw.ImageDraw, cx: float, cy: float, rx: float, ry: float, fill, **kw) -> None:
    draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=fill, **kw)


def draw_cat() -> Image.Image:
    image = Image.new("RGB", (W, H))
    draw = ImageDraw.Draw(image)
    for y in range(H):  # a wall fading from sky blue, then the floor
        t = y / H
        draw.line((0, y, W, y), fill=(int(150 + 70 * t), int(195 + 35 * t), int(230 + 10 * t)))
    draw.rectangle((0, 690, W, H), fill=(140, 110, 85))
    ellipse(draw, 600, 800, 380, 70, (185, 60, 70))  # the rug
    ellipse(draw, 600, 800, 330, 50, (215, 90, 95))

    # the tail, curled round the front
    for i in range(60):
        a = math.pi * (0.1 + i / 60 * 1.1)
        ellipse(draw, 600 + 260 * math.cos(a), 740 + 70 * math.sin(a) - 40 * (i / 60), 32, 32, DARK)
    ellipse(draw, 600, 560, 230, 210, FUR)            # body
    ellipse(draw, 600, 600, 120, 150, LIGHT)          # chest
    for x in (520, 680):                              # front paws
        ellipse(draw, x, 760, 60, 32, FUR)
        ellipse(draw, x, 770, 44, 20, LIGHT)
    for dx in (-150, 150):                            # stripes on the flanks
        for k in range(3):
            y = 470 + k * 70
            draw.arc((600 + dx - 70, y - 30, 600 + dx + 70, y + 30), 200, 340, fill=DARK, width=14)

    cx, cy = 600, 300                                  # head
    for side in (-1, 1):                               # ears
        draw.polygon([(cx + side * 60, cy - 120), (cx + side * 170, cy - 230), (cx + side * 175, cy - 60)], fill=FUR)
        draw.polygon([(cx + side * 85, cy - 115), (cx + side * 160, cy - 195), (cx + side * 160, cy - 85)],
                     fill=(240, 170, 170))
    ellipse(draw, cx, cy, 200, 165, FUR)
    for k in range(3):                                 # forehead stripes
        draw.line((cx - 40 + k * 40, cy - 160, cx - 30 + k * 30, cy - 95), fill=DARK, width=14)
    ellipse(draw, cx, cy + 70, 110, 70, LIGHT)         # muzzle
    for side in (-1, 1):                               # eyes
        ex = cx + side * 80
        ellipse(draw, ex, cy - 10, 42, 36, (240, 240, 190))
        ellipse(draw, ex, cy - 10, 38, 32, (120, 170, 60))
        ellipse(draw, ex, cy - 10, 9, 28, INK)
        ellipse(draw, ex + 10, cy - 22, 7, 7, (255, 255, 255))
    draw.polygon([(cx - 22, cy + 35), (cx + 22, cy + 35), (cx, cy + 58)], fill=(220, 110, 130))  # nose
    draw.line((cx, cy + 58, cx, cy + 80), fill=INK, width=5)                                    # mouth
    draw.arc((cx - 40, cy + 60, cx, cy + 100), 0, 150, fill=INK, width=5)
    draw.arc((cx, cy + 60, cx + 40, cy + 100), 30, 180, fill=INK, width=5)
    for side in (-1, 1):                               # whiskers
        for k in (-1, 0, 1):
            draw.line((cx + side * 70, cy + 70 + k * 14, cx + side * 260, cy + 50 + k * 40), fill=INK, width=3)
    return image.filter(ImageFilter.SMOOTH)


if __name__ == "__main__":
    draw_cat().save(OUT, "JPEG", quality=85, optimize=True)
    print(f"{OUT}: {OUT.stat().st_size:,} bytes")
