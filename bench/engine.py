"""Engine benchmark: chalicelib.imaging.engine against libvips on the same requests, same run.

    python -m bench.engine              # the table (~4 min on 2 cores; writes bench/out/engine.json)
    python -m bench.engine --reps 7     # more repetitions
    python -m bench.engine --only jpeg-24mp avif many
    python -m bench.engine --sizing     # peak memory on the worst admissible inputs
    python -m bench.engine --budget     # the worst accepted request on the worst input

Every measurement runs in a fresh subprocess: it imports, warms the codecs up on a tiny
image of the same format, takes ru_maxrss as the baseline, runs once, and reports wall
time, CPU time and the peak-RSS growth. --sizing and --budget pin it to one CPU (the
resize Lambda's one vCPU at 1769 MB); BENCH_CPU=N pins every measurement to CPU N (on a
machine shared with other work, pinning exposes the table to whatever else runs there). Runs of the engine, libvips and the decode floor are interleaved so machine noise
hits them alike; the table shows medians.

A row is an input class (bench/images.py) and a request: the stage's default three
thumbnails, or renditions in `thumbgen render --rendition` syntax (ROWS below).

- engine: `render(data, renditions)` -- the encoded outputs (and the placeholder).
- libvips: the same request its best way: decode once with shrink-on-load to the same
  working size the engine keeps (2x the largest output's scale, `thumbnail_buffer`), then
  per rendition `thumbnail_image` (crop centre / attention / entropy for cover; fit inside
  the box for contain, then `embed` on the background, transparent where the format has
  alpha; `size="down"` for inside) and encode with the engine's settings: JPEG Q 4:4:4
  optimized Huffman; PNG 8-bit, adaptive filtering at zlib level 6 (libvips' setting whose
  files are no larger than the engine's level-2 ones); WebP Q at the engine's method
  (`effort`); AVIF through libheif with the same aom encoder, Q, speed (effort = 9 -
  speed) and chroma subsampling; no metadata. Output bytes are shown side by side.
- floor: decoding alone with the engine's decoder -- JPEG: Pillow at the engine's reduced
  DCT scale; PNG: libvips' sequential PNG loader reading every pixel.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = Path(__file__).resolve().parent / "out"
KINDS = ("engine", "libvips", "floor")


# ---------------------------------------------------------------- child side


def _tiny(ext: str) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 120, 150)).save(buf, "PNG" if ext == "png" else "JPEG")
    return buf.getvalue()


def _renditions(specs: list[str]) -> tuple:
    from chalicelib.imaging.renditions import DEFAULT_RENDITIONS
    from thumbgen.rendition_arg import parse_rendition

    return tuple(parse_rendition(spec) for spec in specs) or DEFAULT_RENDITIONS


def _oriented_need(width: int, height: int, orientation: int, renditions: tuple) -> tuple[int, int]:
    """The working size the engine keeps (DRAFT/REDUCE margin x the largest output scale),
    in display orientation."""
    from chalicelib.imaging.engine import DRAFT_MARGIN

    if orientation in (5, 6, 7, 8):
        width, height = height, width
    scale = 0.0
    for r in renditions:
        ratios = (r.width / width, r.height / height)
        scale = max(scale, max(ratios) if r.fit == "cover" else min(ratios) if r.fit == "contain"
                    else min(*ratios, 1.0))
    scale = min(1.0, DRAFT_MARGIN * scale)
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


_CROP = {"center": "centre", "attention": "attention", "entropy": "entropy"}


def _libvips_render(data: bytes, renditions: tuple) -> list[bytes]:
    import pyvips

    from chalicelib.imaging import engine
    from chalicelib.imaging.renditions import HAS_ALPHA, quality_of, resolve_format

    head = pyvips.Image.new_from_buffer(data, "")  # header only
    orientation = head.get("orientation") if head.get_typeof("orientation") else 1
    width, height = _oriented_need(head.width, head.height, orientation, renditions)
    base = pyvips.Image.thumbnail_buffer(data, width, height=height, size="down").copy_memory()
    source = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    out = []
    for r in renditions:
        fmt = resolve_format(r, source)
        quality = quality_of(r, fmt)
        colour = [int(r.background[i:i + 2], 16) for i in (1, 3, 5)] if r.background else None
        if r.fit == "cover":
            thumb = base.thumbnail_image(r.width, height=r.height, crop=_CROP[r.gravity])
        else:
            thumb = base.thumbnail_image(r.width, height=r.height, size="both" if r.fit == "contain" else "down")
        if r.fit == "contain" and (thumb.width, thumb.height) != (r.width, r.height):
            if fmt in HAS_ALPHA and colour is None:
                thumb = thumb if thumb.hasalpha() else thumb.bandjoin(255)
                fill = [0] * thumb.bands
            else:
                fill = (colour or [255, 255, 255])[:max(1, thumb.bands - thumb.hasalpha())]
                fill = fill + [255] if thumb.hasalpha() else fill
            thumb = thumb.gravity("centre", r.width, r.height, extend="background", background=fill)
        if fmt == "jpeg" and thumb.hasalpha():
            thumb = thumb.flatten(background=colour or [255, 255, 255])
        if fmt == "jpeg":
            out.append(thumb.jpegsave_buffer(Q=quality, subsample_mode="off", optimize_coding=True, keep="none"))
        elif fmt == "png":
            out.append(thumb.pngsave_buffer(compression=6, filter="all", bitdepth=8, keep="none"))
        elif fmt == "webp":
            out.append(thumb.webpsave_buffer(Q=quality, effort=engine.WEBP_METHOD, keep="none"))
        else:
            out.append(thumb.heifsave_buffer(Q=quality, compression="av1", encoder="aom", effort=9 - engine.AVIF_SPEED,
                                             subsample_mode="off" if engine.AVIF_SUBSAMPLING == "4:4:4" else "on",
                                             bitdepth=8, keep="none"))
    return out


def _floor(data: bytes, renditions: tuple) -> list[bytes]:
    if data.startswith(b"\x89PNG"):
        import pyvips

        pyvips.Image.pngload_buffer(data, access="sequential").avg()
        return []
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data), formats=["JPEG"]) as im:
        orientation = im.getexif().get(0x0112, 1)
        need = _oriented_need(*im.size, orientation, renditions)
        im.draft(None, (need[1], need[0]) if orientation in (5, 6, 7, 8) else need)
        im.load()
    return []


def _engine(data: bytes, renditions: tuple) -> list[bytes]:
    from chalicelib.imaging.engine import render

    return [r.data for r in render(data, renditions).renditions]


def child(kind: str, path: str, specs: list[str], *, one_cpu: bool = False) -> dict:
    """One measurement, in this (fresh) process; on one CPU if asked or $BENCH_CPU is set."""
    import gc
    import os
    import resource
    import time

    import pyvips

    if one_cpu or "BENCH_CPU" in os.environ:
        os.sched_setaffinity(0, {int(os.environ.get("BENCH_CPU", min(os.sched_getaffinity(0))))})
    pyvips.cache_set_max(0)
    import chalicelib.imaging.engine  # noqa: F401  (imports are not part of the measurement)

    run = {"engine": _engine, "libvips": _libvips_render, "floor": _floor}[kind]
    renditions = _renditions(specs)
    data = Path(path).read_bytes()
    run(_tiny(Path(path).suffix.lstrip(".")), renditions)  # warm the codecs and thread pools up
    gc.collect()
    base = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    outputs = run(data, renditions)
    wall = time.perf_counter() - t0
    end = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (end.ru_utime + end.ru_stime) - (base.ru_utime + base.ru_stime)
    return {"ms": wall * 1000, "cpu_ms": cpu * 1000, "rss_mb": (end.ru_maxrss - base.ru_maxrss) / 1024,
            "out_bytes": sum(len(o) for o in outputs)}


def cold_start() -> dict:
    """Import cost of the engine (and of app.py, if present) in this fresh process."""
    import resource
    import time

    t0 = time.perf_counter()
    import chalicelib.imaging.engine  # noqa: F401

    result = {"imaging_ms": (time.perf_counter() - t0) * 1000}
    if (ROOT / "app.py").exists():
        t0 = time.perf_counter()
        try:
            import app  # noqa: F401

            result["app_ms"] = (time.perf_counter() - t0) * 1000
        except Exception as exc:  # app.py is someone else's and may be mid-edit
            result["app_error"] = f"{type(exc).__name__}: {exc}"
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


# ---------------------------------------------------------------- parent side


@dataclass(frozen=True)
class Row:
    """One line of the table: an input class and a request (no specs: the default three)."""

    name: str
    input: str
    specs: tuple[str, ...] = ()


_THREE = ("400x300", "160x120", "120x120")
# The paths a client may choose, each on a typical upload: formats, smart crop, fits, and
# a request of eight entries mixing them all.
REQUEST_ROWS: tuple[Row, ...] = (
    Row("webp", "jpeg-12mp", tuple(f"{s},format=webp" for s in _THREE)),
    Row("avif", "jpeg-12mp", tuple(f"{s},format=avif" for s in _THREE)),
    Row("attention", "jpeg-12mp", tuple(f"{s},gravity=attention" for s in _THREE)),
    Row("entropy", "jpeg-12mp", tuple(f"{s},gravity=entropy" for s in _THREE)),
    Row("contain", "png-rgba-16mp", ("400x400,fit=contain", "800x450,fit=contain,format=webp",
                                      "160x160,fit=contain,format=jpeg")),
    Row("inside", "jpeg-24mp", ("1600x1600,fit=inside", "800x800,fit=inside,format=webp",
                                "320x320,fit=inside")),
    Row("many", "jpeg-24mp", ("1920x1080,format=jpeg", "1280x720,format=webp", "800x600,format=avif",
                              "400x300", "400x400,gravity=attention,format=webp", "640x640,fit=contain,format=png",
                              "320x320,fit=inside,format=avif", "120x120")),
)


def rows_for(names: list[str] | None) -> list[Row]:
    from bench.images import CLASSES

    rows = [Row(c.name, c.name) for c in CLASSES] + list(REQUEST_ROWS)
    return [r for r in rows if not names or r.name in names]


def _spawn(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "bench.engine", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def measure(rows: list[Row], paths: dict[str, Path], reps: int) -> list[dict]:
    results = []
    for row in rows:
        path = paths[row.input]
        runs: dict[str, list[dict]] = {k: [] for k in KINDS}
        for _ in range(reps):
            for kind in KINDS:
                runs[kind].append(_spawn("--child", kind, str(path), *row.specs))
        result = {"class": row.name, "input": row.input, "renditions": list(row.specs),
                  "mb": path.stat().st_size / 1e6}
        for kind in KINDS:
            for key in ("ms", "cpu_ms", "rss_mb", "out_bytes"):
                result[f"{kind}_{key}"] = _median(runs[kind], key)
        results.append(result)
        print(_format_row(result), flush=True)
    return results


HEADER = (f"{'class':18} {'MB':>5} | {'engine':>7} {'libvips':>7} {'ratio':>5} | {'floor':>6} {'eng/fl':>6}"
          f" | {'eng MB':>6} {'vips MB':>7} {'ratio':>5} | {'eng cpu':>7} {'vips cpu':>8} | {'out KB eng/vips':>15}")


def _format_row(r: dict) -> str:
    def ratio(a: float, b: float) -> str:
        return f"{a / b:5.2f}" if b > 0.05 else "  n/a"

    return (f"{r['class']:18} {r['mb']:5.1f} | {r['engine_ms']:5.0f}ms {r['libvips_ms']:5.0f}ms"
            f" {ratio(r['engine_ms'], r['libvips_ms'])} | {r['floor_ms']:4.0f}ms {ratio(r['engine_ms'], r['floor_ms']):>6}"
            f" | {r['engine_rss_mb']:6.1f} {r['libvips_rss_mb']:7.1f} {ratio(r['engine_rss_mb'], r['libvips_rss_mb'])}"
            f" | {r['engine_cpu_ms']:5.0f}ms {r['libvips_cpu_ms']:6.0f}ms"
            f" | {r['engine_out_bytes'] / 1024:6.0f}/{r['libvips_out_bytes'] / 1024:<6.0f}")


def report_cold_start(reps: int) -> dict:
    runs = [_spawn("--cold") for _ in range(reps)]
    result = {"imaging_ms": _median(runs, "imaging_ms"), "rss_mb": _median(runs, "rss_mb")}
    line = f"cold start: import chalicelib.imaging.engine {result['imaging_ms']:.0f} ms"
    if all("app_ms" in r for r in runs):
        result["app_ms"] = _median(runs, "app_ms")
        line += f", import app {result['app_ms']:.0f} ms"
    elif any("app_error" in r for r in runs):
        line += f" (app.py not importable: {runs[0].get('app_error')})"
    print(line + f"; process RSS after imports {result['rss_mb']:.0f} MB (median of {reps} fresh processes)")
    return result


def ensure_elsewhere(names: list[str]) -> dict[str, Path]:
    """Build missing inputs in a process of its own: Linux keeps a process's peak RSS across
    exec, so inputs built here would become every measuring child's peak-memory baseline."""
    subprocess.run([sys.executable, "-c", "import sys; from bench.images import ALL_CLASSES, ensure; "
                    "ensure(tuple(c for c in ALL_CLASSES if c.name in sys.argv[1:]))", *names],
                   cwd=ROOT, check=True)
    from bench.images import ALL_CLASSES

    return {c.name: c.path for c in ALL_CLASSES if c.name in names}


def sizing(reps: int) -> list[dict]:
    """Peak RSS of the engine on the worst inputs that pass the limits (Lambda sizing)."""
    from bench.images import SIZING_CLASSES

    print("Lambda sizing: engine on worst admissible inputs (MAX_PIXELS, <= 11 MiB)")
    print(f"{'input':34} {'MB':>5} | {'time':>7} | {'peak RSS growth':>15} | {'process peak':>12}")
    rows = []
    for name, path in ensure_elsewhere([c.name for c in SIZING_CLASSES]).items():
        runs = [_spawn("--child-total", "engine", str(path)) for _ in range(reps)]
        row = {"class": name, "mb": path.stat().st_size / 1e6, "ms": _median(runs, "ms"),
               "rss_mb": max(r["rss_mb"] for r in runs), "peak_mb": max(r["peak_mb"] for r in runs)}
        rows.append(row)
        print(f"{name:34} {row['mb']:5.1f} | {row['ms']:5.0f}ms | {row['rss_mb']:12.0f} MB | {row['peak_mb']:9.0f} MB",
              flush=True)
    return rows


def budget_specs(avif_quality: int, output_pixels: int | None = None, avif_pixels: int | None = None
                 ) -> tuple[str, ...]:
    """The most work an accepted request can ask for (renditions.MAX_*): MAX_RENDITIONS
    entries of different aspects, so no two share a resample: the AVIF pixels in one square
    (up to 2048 x 2048, which needs the full-size working image) with attention gravity,
    every other pixel in WebP at quality 100 (after AVIF the slowest encoder per pixel), in
    seven other aspects, the first as large as it allows, the rest shared out evenly."""
    from chalicelib.imaging.renditions import MAX_AVIF_PIXELS, MAX_OUTPUT_PIXELS, MAX_RENDITIONS, MAX_SIDE

    output_pixels, avif_pixels = output_pixels or MAX_OUTPUT_PIXELS, avif_pixels or MAX_AVIF_PIXELS
    side = min(MAX_SIDE, math.isqrt(avif_pixels))
    specs = [f"{side}x{side},gravity=attention,format=avif,quality={avif_quality}"]
    left = output_pixels - side * side
    aspects = [(16, 9), (9, 16), (4, 3), (3, 4), (3, 2), (2, 3), (2, 1)][:MAX_RENDITIONS - 1]
    for i, (aw, ah) in enumerate(aspects):
        share = left if i == 0 else left / (len(aspects) - i)  # the first takes all it can
        height = max(1, min(MAX_SIDE, math.isqrt(int(share * ah / aw)), MAX_SIDE * ah // aw))
        width = max(1, min(MAX_SIDE, int(share) // height))
        gravity = ("center", "entropy", "attention")[i % 3]
        specs.append(f"{width}x{height},gravity={gravity},format=webp,quality=100")
        left -= width * height
    return tuple(specs)


def budget(avif_qualities: list[int], output_pixels: int | None, avif_pixels: int | None,
           reps: int = 3) -> list[dict]:
    """Time and peak memory of the worst accepted request on the worst admissible input
    (the budget in renditions.py, or the one given to try another): the median of `reps`
    fresh processes, as every figure here, with the slowest run beside it."""
    from bench.images import BUDGET_CLASSES
    from chalicelib.imaging.renditions import MAX_AVIF_PIXELS, MAX_OUTPUT_PIXELS

    (name, path), = ensure_elsewhere([c.name for c in BUDGET_CLASSES]).items()
    print(f"work budget: output pixels {output_pixels or MAX_OUTPUT_PIXELS:,}, AVIF pixels"
          f" {avif_pixels or MAX_AVIF_PIXELS:,}; input {name} ({path.stat().st_size / 1e6:.1f} MB);"
          " one CPU; resize timeout 60 s")
    rows = []
    for quality in avif_qualities:
        specs = budget_specs(quality, output_pixels, avif_pixels)
        runs = [_spawn("--child-total", "engine", str(path), *specs) for _ in range(reps)]
        run = {key: _median(runs, key) for key in ("ms", "cpu_ms", "out_bytes")}
        run |= {key: max(r[key] for r in runs) for key in ("rss_mb", "peak_mb")}
        slowest = max(r["ms"] for r in runs)
        row = {"avif_quality": quality, "renditions": list(specs), **run, "slowest_ms": slowest,
               "margin": 60_000 / run["ms"], "slowest_margin": 60_000 / slowest}
        rows.append(row)
        print(f"  {' '.join(specs)}")
        print(f"  -> {run['ms'] / 1000:.1f} s median of {reps} (cpu {run['cpu_ms'] / 1000:.1f} s; slowest"
              f" {slowest / 1000:.1f} s), {run['out_bytes'] / 1e6:.1f} MB out, peak RSS growth"
              f" {run['rss_mb']:.0f} MB, process peak {run['peak_mb']:.0f} MB; margin to the timeout"
              f" {row['margin']:.1f}x (slowest run {row['slowest_margin']:.1f}x)", flush=True)
    return rows


def child_total(kind: str, path: str, specs: list[str]) -> dict:
    import resource

    result = child(kind, path, specs, one_cpu=True)
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5, help="fresh processes per measurement (default 5)")
    parser.add_argument("--only", nargs="*", metavar="CLASS", help="rows to run (input classes or request rows)")
    parser.add_argument("--sizing", action="store_true", help="Lambda sizing: worst admissible inputs")
    parser.add_argument("--budget", nargs="*", type=int, metavar="AVIF_QUALITY",
                        help="the worst accepted request on the worst input (AVIF qualities to try; default 30 60)")
    parser.add_argument("--output-pixels", type=int, help="with --budget: try this MAX_OUTPUT_PIXELS")
    parser.add_argument("--avif-pixels", type=int, help="with --budget: try this MAX_AVIF_PIXELS")
    parser.add_argument("--child", nargs="+", metavar="KIND PATH [SPEC]", help=argparse.SUPPRESS)
    parser.add_argument("--child-total", nargs="+", metavar="KIND PATH [SPEC]", help=argparse.SUPPRESS)
    parser.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.child[2:])))
        return 0
    if args.child_total:
        print(json.dumps(child_total(args.child_total[0], args.child_total[1], args.child_total[2:])))
        return 0
    if args.cold:
        print(json.dumps(cold_start()))
        return 0
    OUT_DIR.mkdir(exist_ok=True)
    if args.budget is not None:
        rows = budget(args.budget or [30, 60], args.output_pixels, args.avif_pixels, args.reps)
        (OUT_DIR / "budget.json").write_text(json.dumps(rows, indent=2))
        return 0
    if args.sizing:
        rows = sizing(max(1, min(args.reps, 3)))
        (OUT_DIR / "sizing.json").write_text(json.dumps(rows, indent=2))
        return 0

    rows = rows_for(args.only)
    paths = ensure_elsewhere(sorted({r.input for r in rows}))
    print(f"engine vs libvips, median of {args.reps} fresh processes each; times are wall clock,"
          " MB = peak-RSS growth during the call")
    print(HEADER)
    results = measure(rows, paths, args.reps)
    cold = report_cold_start(args.reps)
    (OUT_DIR / "engine.json").write_text(json.dumps({"rows": results, "cold_start": cold}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
