"""`thumbgen render FILE... --out DIR [--rendition SPEC]...`: the service's engine, offline.

Writes `<out>/<stem>/<name>` for each file and rendition -- exactly the bytes and the
object names the resize Lambda would store (`400x300.jpg`, `800x600-contain.webp`, ...) --
and prints one line per file. Without `--rendition` it makes the stage's default three.
A refused file prints its failure code and message, as the `failed` status would carry
them, and the exit status becomes 1. The upload size limit is checked first, as the
service does before looking at the bytes.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from chalicelib.imaging.engine import ImageRejected, render
from chalicelib.imaging.renditions import DEFAULT_RENDITIONS, Rendition

MAX_UPLOAD_BYTES = 11 * 1024 * 1024  # docs/api.md "Limits": 11 MiB


def render_command(paths: list[str], out: str, renditions: Sequence[Rendition] | None = None) -> int:
    """Render every file; 0 if all rendered, 1 if any was refused or unreadable, 2 for a
    request the API would refuse (two equal renditions)."""
    wanted = tuple(renditions or DEFAULT_RENDITIONS)
    if len(set(wanted)) != len(wanted):
        print("thumbgen render: error: two --rendition are equal", flush=True)
        return 2
    failures = 0
    for name in paths:
        ok, line = render_file(Path(name), Path(out), wanted)
        failures += not ok
        print(line, flush=True)
    return 1 if failures else 0


def render_file(path: Path, out_dir: Path, renditions: Sequence[Rendition] = DEFAULT_RENDITIONS
                ) -> tuple[bool, str]:
    """(ok, the line to print) for one file."""
    try:
        size = path.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            return False, f"{path}: failed file_too_large: {size:,} bytes; the limit is {MAX_UPLOAD_BYTES:,}"
        result = render(path.read_bytes(), renditions)
    except ImageRejected as exc:
        return False, f"{path}: failed {exc.code}: {exc.message}"
    except OSError as exc:
        return False, f"{path}: failed unreadable: {exc.strerror or exc}"
    target = out_dir / path.stem
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for rendition in result.renditions:
        (target / rendition.name).write_bytes(rendition.data)
        written.append(f"{rendition.name} {rendition.width}x{rendition.height} {len(rendition.data):,} B")
    return True, (f"{path}: ok {result.content_type} {result.width}x{result.height} -> {target}/"
                  f" ({', '.join(written)}; placeholder {result.placeholder})")
