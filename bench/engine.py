"""Engine benchmark: chalicelib.thumbnail_engine against libvips on the same inputs, same run.

    python -m bench.engine              # the table (~1.5 min on 2 cores; writes bench/out/engine.json)
    python -m bench.engine --reps 7     # more repetitions
    python -m bench.engine --only jpeg-24mp png-rgba-16mp
    python -m bench.engine --sizing     # peak memory on the worst admissible inputs

Every measurement runs in a fresh subprocess: it imports, warms the codec up on a tiny
image of the same format, takes ru_maxrss as the baseline, runs once, and reports wall
time, CPU time (user+sys: libvips uses threads) and the peak-RSS growth. Runs of the
engine, libvips and the decode floor are interleaved so machine noise hits them alike;
the table shows medians.

- engine: `render_thumbnails(data)` -- three encoded thumbnails.
- libvips: decode once with shrink-on-load to the same 2x-cover size the engine keeps
  (`thumbnail_buffer`), then derive the three (`thumbnail_image(crop="centre")`) and
  encode like the engine (JPEG Q85 4:4:4, optimized Huffman; PNG 8-bit with adaptive
  filtering at zlib level 6 -- libvips' setting whose files are no larger than the
  engine's level-2 ones), so both sides make files of comparable size (last column).
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


def _oriented_need(width: int, height: int, orientation: int) -> tuple[int, int]:
    """The 2x-cover size the engine keeps (DRAFT/REDUCE margin), in display orientation."""
    from chalicelib.thumbnail_engine import DRAFT_MARGIN, THUMBNAIL_SIZES

    if orientation in (5, 6, 7, 8):
        width, height = height, width
    scale = min(1.0, DRAFT_MARGIN * max(max(bw / width, bh / height) for bw, bh in THUMBNAIL_SIZES))
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def _libvips_render(data: bytes) -> list[bytes]:
    import pyvips

    from chalicelib.thumbnail_engine import JPEG_QUALITY, THUMBNAIL_SIZES

    head = pyvips.Image.new_from_buffer(data, "")  # header only
    orientation = head.get("orientation") if head.get_typeof("orientation") else 1
    width, height = _oriented_need(head.width, head.height, orientation)
    base = pyvips.Image.thumbnail_buffer(data, width, height=height, size="down").copy_memory()
    is_png = data.startswith(b"\x89PNG")
    out = []
    for bw, bh in THUMBNAIL_SIZES:
        thumb = base.thumbnail_image(bw, height=bh, crop="centre")
        if is_png:
            out.append(thumb.pngsave_buffer(compression=6, filter="all", bitdepth=8, keep="none"))
        else:
            out.append(thumb.jpegsave_buffer(Q=JPEG_QUALITY, subsample_mode="off", optimize_coding=True,
                                             keep="none"))
    return out


def _floor(data: bytes) -> list[bytes]:
    if data.startswith(b"\x89PNG"):
        import pyvips

        pyvips.Image.pngload_buffer(data, access="sequential").avg()
        return []
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data), formats=["JPEG"]) as im:
        orientation = im.getexif().get(0x0112, 1)
        need = _oriented_need(*im.size, orientation)
        im.draft(None, (need[1], need[0]) if orientation in (5, 6, 7, 8) else need)
        im.load()
    return []


def _engine(data: bytes) -> list[bytes]:
    from chalicelib.thumbnail_engine import render_thumbnails

    return [r.data for r in render_thumbnails(data).renditions]


def child(kind: str, path: str) -> dict:
    """One measurement, in this (fresh) process."""
    import gc
    import resource
    import time

    import pyvips

    pyvips.cache_set_max(0)
    import chalicelib.thumbnail_engine  # noqa: F401  (imports are not part of the measurement)

    run = {"engine": _engine, "libvips": _libvips_render, "floor": _floor}[kind]
    data = Path(path).read_bytes()
    run(_tiny(Path(path).suffix.lstrip(".")))  # warm the codec and thread pools up
    gc.collect()
    base = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    outputs = run(data)
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
    import chalicelib.thumbnail_engine  # noqa: F401

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


def _spawn(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "bench.engine", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def measure(paths: dict[str, Path], reps: int) -> list[dict]:
    rows = []
    for name, path in paths.items():
        runs: dict[str, list[dict]] = {k: [] for k in KINDS}
        for _ in range(reps):
            for kind in KINDS:
                runs[kind].append(_spawn("--child", kind, str(path)))
        row = {"class": name, "mb": path.stat().st_size / 1e6}
        for kind in KINDS:
            for key in ("ms", "cpu_ms", "rss_mb", "out_bytes"):
                row[f"{kind}_{key}"] = _median(runs[kind], key)
        rows.append(row)
        print(_format_row(row), flush=True)
    return rows


HEADER = (f"{'input class':18} {'MB':>5} | {'engine':>7} {'libvips':>7} {'ratio':>5} | {'floor':>6} {'eng/fl':>6}"
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
    line = f"cold start: import chalicelib.thumbnail_engine {result['imaging_ms']:.0f} ms"
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
    subprocess.run([sys.executable, "-c", "import sys; from bench.images import CLASSES, SIZING_CLASSES, ensure; "
                    "ensure(tuple(c for c in CLASSES + SIZING_CLASSES if c.name in sys.argv[1:]))", *names],
                   cwd=ROOT, check=True)
    from bench.images import CLASSES, SIZING_CLASSES

    return {c.name: c.path for c in CLASSES + SIZING_CLASSES if c.name in names}


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


def child_total(kind: str, path: str) -> dict:
    import resource

    result = child(kind, path)
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5, help="fresh processes per measurement (default 5)")
    parser.add_argument("--only", nargs="*", metavar="CLASS", help="input classes to run")
    parser.add_argument("--sizing", action="store_true", help="Lambda sizing: worst admissible inputs")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--child-total", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    if args.child_total:
        print(json.dumps(child_total(*args.child_total)))
        return 0
    if args.cold:
        print(json.dumps(cold_start()))
        return 0
    OUT_DIR.mkdir(exist_ok=True)
    if args.sizing:
        rows = sizing(max(1, min(args.reps, 3)))
        (OUT_DIR / "sizing.json").write_text(json.dumps(rows, indent=2))
        return 0

    from bench.images import CLASSES

    paths = ensure_elsewhere([c.name for c in CLASSES if not args.only or c.name in args.only])
    print(f"engine vs libvips, median of {args.reps} fresh processes each; times are wall clock,"
          " MB = peak-RSS growth during the call")
    print(HEADER)
    rows = measure(paths, args.reps)
    cold = report_cold_start(args.reps)
    (OUT_DIR / "engine.json").write_text(json.dumps({"rows": rows, "cold_start": cold}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
