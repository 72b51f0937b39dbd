"""Debian's Chromium, driven by Playwright (which cannot download a browser of its own here).

Used by the browser tests and by the screenshot script."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

CHROMIUM = Path(os.environ.get("THUMBGEN_CHROMIUM", "/usr/bin/chromium"))
INSTALL_HINT = "Chromium is not installed: `sudo apt-get install -y chromium` runs the browser tests"
# Headless, offline and quiet: no GPU, no QUIC, no first-run UI, no background traffic.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def available() -> bool:
    return CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)


@contextlib.contextmanager
def browser(**context_options: Any) -> Iterator[Any]:
    """A Chromium context with a fresh profile of its own, closed (and deleted) on exit."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="thumbgen-chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=FLAGS, **context_options)
        try:
            yield context
        finally:
            context.close()
