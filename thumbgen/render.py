"""`thumbgen render FILE... --out DIR`: the service's engine, offline, no AWS.

Writes `<out>/<stem>/<w>x<h>.<ext>` for each file -- exactly the bytes the resize Lambda
would store -- and prints one line per file. A refused file prints its failure code and
message, as the `failed` status would carry them, and the exit status becomes 1. The upload
size limit is checked first, as the service does before looking at the bytes.
"""
from __future__ import annotations

from pathlib import Path

from chalicelib.thumbnail_engine import ImageRejected, render_thumbnails

MAX_UPLOAD_BYTES = 11 * 1024 * 1024  # docs/api.md "Limits": 11 MiB


def render_command(paths: list[str], out: str) -> int:
    """Render every file; 0 if all rendered, 1 if any was refused or unreadable."""
    failures = 0
    for name in paths:
        ok, line = render_file(Path(name), Path(out))
        failures += not ok
        print(line, flush=True)
    return 1 if failures else 0


def render_file(path: Path, out_dir: Path) -> tuple[bool, str]:
    """(ok, the line to print) for one file."""
    try:
        size = path.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            return False, f"{path}: failed file_too_large: {size:,} bytes; the limit is {MAX_UPLOAD_BYTES:,}"
        result = render_thumbnails(path.read_bytes())
    except ImageRejected as exc:
        return False, f"{path}: failed {exc.code}: {exc.message}"
    except OSError as exc:
        return False, f"{path}: failed unreadable: {exc.strerror or exc}"
    target = out_dir / path.stem
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for rendition in result.renditions:
        file = target / f"{rendition.width}x{rendition.height}.{rendition.extension}"
        file.write_bytes(rendition.data)
        written.append(f"{file.name} {len(rendition.data):,} B")
    return True, f"{path}: ok {result.content_type} {result.width}x{result.height} -> {target}/ ({', '.join(written)})"
