"""Fault injection for the local stack's resize workers (tests and the load benchmark only).

When the stack runs with THUMBGEN_FAULTS_DIR set, a file named after an image id in that
directory, holding `<point>:<action>`, makes the worker that reaches that point of that
image's resize act once (the file is removed first, so the retry runs clean):

- points: `after_claim`, `after_thumbnails`, `before_outcome` (chalicelib/resize/resizer.py)
- actions: `kill` (the process dies at once: an out-of-memory kill or crash), `hang`
  (it stops answering until the stack's function timeout kills it), `raise` (an
  unexpected exception)
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

POINTS = ("after_claim", "after_thumbnails", "before_outcome")
ACTIONS = ("kill", "hang", "raise")


def arm(directory: str | Path, image_id: str, point: str, action: str) -> None:
    if point not in POINTS or action not in ACTIONS:
        raise ValueError(f"unknown fault {point}:{action}")
    Path(directory, image_id).write_text(f"{point}:{action}")


def checkpoint_from(directory: str | Path) -> Callable[[str, str], None]:
    def checkpoint(point: str, image_id: str) -> None:
        path = Path(directory, image_id)
        try:
            wanted, action = path.read_text().strip().split(":", 1)
        except (FileNotFoundError, ValueError):
            return
        if wanted != point:
            return
        path.unlink(missing_ok=True)  # fire once: the retry must run clean
        if action == "kill":
            os._exit(137)
        if action == "hang":
            time.sleep(3600)
        if action == "raise":
            raise RuntimeError(f"injected fault at {point}")
    return checkpoint


def install(service: Any) -> None:
    """Arm the processor's checkpoints when THUMBGEN_FAULTS_DIR is set."""
    directory = os.environ.get("THUMBGEN_FAULTS_DIR")
    if directory:
        service.resizer().checkpoint = checkpoint_from(directory)
