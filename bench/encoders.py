"""Encoder settings by measurement: bytes, encode time and visual quality (SSIM) of WebP and
AVIF against the engine's JPEG, on the same thumbnails.

    python -m bench.encoders            # ~25 min (each encode on one thread)
    python -m bench.encoders --quick    # fewer images and settings

Visual quality is SSIM (Wang et al. 2004: Gaussian window sigma 1.5, K1 0.01, K2 0.03) on
Y, Cb and Cr (BT.601, full range), weighted 6:1:1 -- the usual codec-comparison weighting,
so chroma subsampling costs what it costs -- computed with libvips against the unencoded
thumbnail. The reference is the engine's JPEG (quality 85, 4:4:4, optimized Huffman):
for each other format and setting, the quality that first reaches the JPEG's SSIM on the
corpus (mean over images) is found by bisection, and its bytes and time are shown against
the JPEG's. Encode time is one thread (the resize Lambda has one vCPU).

The corpus is the benchmark's photo-like scenes (tests/imagegen.py: gradients, cloud
texture, hard edges, fine stripes, sensor grain) at three grain levels and two seeds,
made into thumbnails by the engine itself at 400 x 300 and 1024 x 768.
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import time

import pyvips
from PIL import Image

from chalicelib.imaging import engine
from chalicelib.imaging.renditions import Rendition
from tests import imagegen

JPEG_REFERENCE_QUALITY = 85


def ssim_ycc(a: Image.Image, b: Image.Image) -> float:
    """SSIM of two RGB images on Y, Cb, Cr weighted 6:1:1."""
    va, vb = (_ycc(img) for img in (a, b))
    scores = [_ssim(va[i], vb[i]) for i in range(3)]
    return (6 * scores[0] + scores[1] + scores[2]) / 8


def _ycc(img: Image.Image) -> list[pyvips.Image]:
    rgb = pyvips.Image.new_from_memory(img.convert("RGB").tobytes(), img.width, img.height, 3, "uchar").cast("float")
    r, g, b = rgb[0], rgb[1], rgb[2]
    y = r * 0.299 + g * 0.587 + b * 0.114
    cb = (b - y) * 0.564 + 128
    cr = (r - y) * 0.713 + 128
    return [y, cb, cr]


_GAUSS = pyvips.Image.gaussmat(1.5, 0.01, precision="float")
_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def _ssim(x: pyvips.Image, y: pyvips.Image) -> float:
    def blur(im: pyvips.Image) -> pyvips.Image:
        return im.conv(_GAUSS, precision="float")

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    num = (mx * my * 2 + _C1) * (sxy * 2 + _C2)
    den = (mx * mx + my * my + _C1) * (sxx + syy + _C2)
    return (num / den).avg()


def corpus(quick: bool) -> list[Image.Image]:
    """Unencoded thumbnails, exactly as the engine makes them before encoding."""
    sources = []
    for seed in (0, 1) if not quick else (0,):
        for grain in (0, 8, 22) if not quick else (8,):
            buf = io.BytesIO()
            imagegen.scene(3000, 2000, seed=seed, grain=grain).save(buf, "PNG", compress_level=1)
            sources.append(buf.getvalue())
    boxes = [Rendition(400, 300), Rendition(1024, 768)]
    images = []
    for data in sources:
        images.extend(engine.render_images(data, boxes)[2])
    return images


def encode(img: Image.Image, fmt: str, quality: int, **settings) -> tuple[bytes, float]:
    buf = io.BytesIO()
    t0 = time.perf_counter()
    if fmt == "jpeg":
        img.save(buf, "JPEG", quality=quality, subsampling=settings.get("subsampling", 0), optimize=True)
    elif fmt == "webp":
        img.save(buf, "WEBP", quality=quality, method=settings["method"])
    else:
        img.save(buf, "AVIF", quality=quality, speed=settings["speed"], subsampling=settings["subsampling"],
                 max_threads=1)
    return buf.getvalue(), time.perf_counter() - t0


def measure(images: list[Image.Image], fmt: str, quality: int, **settings) -> dict:
    scores, sizes, times = [], [], []
    for img in images:
        data, seconds = encode(img, fmt, quality, **settings)
        back = Image.open(io.BytesIO(data)).convert("RGB")
        scores.append(ssim_ycc(img.convert("RGB"), back))
        sizes.append(len(data))
        times.append(seconds)
    return {"ssim": statistics.fmean(scores), "bytes": sum(sizes), "ms": 1000 * sum(times)}


def matching_quality(images: list[Image.Image], target: float, fmt: str, **settings) -> tuple[int, dict]:
    """The lowest quality whose mean SSIM reaches `target` (bisection over 1..100)."""
    lo, hi = 1, 100
    found = measure(images, fmt, hi, **settings)
    while lo < hi:
        mid = (lo + hi) // 2
        result = measure(images, fmt, mid, **settings)
        if result["ssim"] >= target:
            hi, found = mid, result
        else:
            lo = mid + 1
    if hi == 100:
        found = measure(images, fmt, 100, **settings)
    return hi, found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.encoders", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one scene, two settings per format")
    parser.add_argument("--webp-methods", type=int, nargs="*", default=[0, 2, 4, 5, 6])
    parser.add_argument("--avif-speeds", type=int, nargs="*", default=[4, 5, 6, 7, 8, 9, 10])
    parser.add_argument("--avif-subsampling", nargs="*", default=["4:2:0", "4:4:4"])
    args = parser.parse_args(argv)
    if args.quick:
        args.webp_methods, args.avif_speeds = [4, 6], [6, 8]
    images = corpus(args.quick)
    pixels = sum(img.width * img.height for img in images)
    ref = measure(images, "jpeg", JPEG_REFERENCE_QUALITY)
    print(f"corpus: {len(images)} thumbnails, {pixels / 1e6:.1f} MP; SSIM = YCbCr 6:1:1, mean over the corpus;"
          " time = one thread, sum over the corpus")
    print(f"{'format / setting':28} {'quality':>7} {'SSIM':>7} {'KB':>7} {'vs JPEG':>7} {'ms':>7} {'vs JPEG':>7}")

    def row(label: str, quality: int | str, r: dict) -> None:
        print(f"{label:28} {quality!s:>7} {r['ssim']:7.4f} {r['bytes'] / 1024:7.0f} {r['bytes'] / ref['bytes']:7.2f}"
              f" {r['ms']:7.0f} {r['ms'] / ref['ms']:7.2f}", flush=True)

    row(f"jpeg q{JPEG_REFERENCE_QUALITY} 4:4:4 (reference)", JPEG_REFERENCE_QUALITY, ref)
    row("jpeg 4:2:0, same SSIM", *matching_quality(images, ref["ssim"], "jpeg", subsampling=2))
    for method in args.webp_methods:
        row(f"webp method {method}", *matching_quality(images, ref["ssim"], "webp", method=method))
    for subsampling in args.avif_subsampling:
        for speed in args.avif_speeds:
            row(f"avif speed {speed} {subsampling}",
                *matching_quality(images, ref["ssim"], "avif", speed=speed, subsampling=subsampling))
    return 0


if __name__ == "__main__":
    sys.exit(main())
