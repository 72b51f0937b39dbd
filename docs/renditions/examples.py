"""The pictures of docs/renditions/README.md: one example of each rendition option, made by
the engine itself (`thumbgen render`) from a committed sample picture.

    .venv/bin/python docs/renditions/examples.py     # rewrites docs/renditions/*

The sample (`sample.jpg`) is drawn here, deterministically, so it carries no one's
copyright: a sky, hills, a face-like figure right of centre and a textured bush on the
left -- something for `attention`, `entropy` and `focus` to tell apart from the centre.
"""
from __future__ import annotations

import io
import random
import subprocess
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
SAMPLE = HERE / "sample.jpg"

# (spec in `--rendition` syntax, what it shows)
EXAMPLES: tuple[tuple[str, str], ...] = (
    ("240x160", "`cover`, centre (the default): fills the box, crops the overflow"),
    ("160x160", "a square box: the centre of the picture"),
    ("160x160,gravity=attention", "`gravity: attention`: the most salient region (the figure)"),
    ("160x160,gravity=entropy", "`gravity: entropy`: the busiest region (the bush)"),
    ("160x160,focus=0.8:0.4", "`focus: {x: 0.8, y: 0.4}`: that point kept, as centred as the picture allows"),
    ("200x200,fit=contain", "`fit: contain`, JPEG: the whole picture, padded with white"),
    ("200x200,fit=contain,format=webp", "`fit: contain`, WebP: transparent padding"),
    ("200x200,fit=contain,background=#1e293b", "`background: #1e293b`: the padding's colour"),
    ("200x200,fit=inside", "`fit: inside`: the whole picture, no padding, never enlarged"),
    ("240x160,format=webp", "`format: webp` (quality from the format's default)"),
    ("240x160,format=avif", "`format: avif`"),
    ("240x160,quality=25", "`quality: 25` (JPEG): smaller, blockier"),
)


def sample_picture(width: int = 900, height: int = 600) -> Image.Image:
    """Sky, hills, sun, a textured bush (left) and a face-like figure (right of centre)."""
    rng = random.Random(7)
    img = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(img)
    for y in range(height):  # sky: deep blue to pale near the horizon
        t = y / height
        draw.line((0, y, width, y), fill=(int(70 + 120 * t), int(120 + 100 * t), int(200 + 40 * t)))
    draw.ellipse((120, 60, 200, 140), fill=(255, 236, 170))  # sun
    draw.polygon([(0, 380), (260, 300), (520, 360), (760, 290), (900, 330), (900, 600), (0, 600)], fill=(86, 140, 70))
    draw.polygon([(0, 470), (300, 420), (600, 470), (900, 430), (900, 600), (0, 600)], fill=(64, 112, 52))
    for _ in range(2600):  # a busy bush on the left
        x, y = rng.gauss(150, 60), rng.gauss(430, 45)
        r = rng.uniform(3, 9)
        shade = rng.randrange(40, 150)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(shade // 3, shade, shade // 4))
    # A figure right of centre: body, neck, face with eyes and mouth.
    draw.rounded_rectangle((600, 330, 760, 600), radius=50, fill=(180, 60, 60))
    draw.rectangle((664, 300, 696, 340), fill=(214, 160, 128))
    draw.ellipse((625, 170, 735, 310), fill=(228, 178, 146))
    draw.ellipse((652, 220, 668, 232), fill=(40, 30, 30))
    draw.ellipse((692, 220, 708, 232), fill=(40, 30, 30))
    draw.arc((660, 250, 700, 285), 20, 160, fill=(150, 60, 60), width=4)
    draw.pieslice((615, 150, 745, 250), 180, 360, fill=(70, 45, 30))  # hair
    return img.filter(ImageFilter.GaussianBlur(0.8))


def main() -> int:
    buf = io.BytesIO()
    sample_picture().save(buf, "JPEG", quality=80, optimize=True)
    SAMPLE.write_bytes(buf.getvalue())
    out = HERE / ".render"
    args = [sys.executable, "-m", "thumbgen.cli", "render", str(SAMPLE), "--out", str(out)]
    for spec, _ in EXAMPLES:
        args += ["--rendition", spec]
    subprocess.run(args, check=True, cwd=HERE.parent.parent)
    for old in HERE.glob("sample-*"):
        old.unlink()
    rows = ["| option | request (`--rendition`) | result |", "|---|---|---|",
            f"| the upload, {SAMPLE.stat().st_size // 1024} KB | | ![sample](sample.jpg) |"]
    made = sorted((out / "sample").iterdir())
    by_name = {p.name: p for p in made}
    from chalicelib.imaging.renditions import names  # the engine's own naming rule
    from thumbgen.rendition_arg import parse_rendition

    for (spec, what), name in zip(EXAMPLES, names([parse_rendition(s) for s, _ in EXAMPLES], "image/jpeg")):
        target = HERE / f"sample-{name}"
        by_name[name].replace(target)
        rows.append(f"| {what} | `{spec}` | ![{name}]({target.name}) {target.stat().st_size // 1024 or 1} KB |")
    (out / "sample").rmdir()
    out.rmdir()
    readme = HERE / "README.md"
    text = readme.read_text() if readme.exists() else ""
    head = text.split("<!-- table -->")[0] if "<!-- table -->" in text else ""
    readme.write_text(head + "<!-- table -->\n" + "\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
