"""docs/screenshot.png: the page with a few uploads and their thumbnails, taken in headless
Chromium on a fresh local stack. Run `make screenshot` (or `.venv/bin/python -m
tests.browser.screenshot [--width W] [--height H] [--out FILE]`)."""
from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

from playwright.sync_api import expect

from tests.browser import chromium
from tests.browser.actions import PROCESSING, choose, sign_in, upload_card
from tests.imagegen import scene, with_alpha
from tests.live_stack import ROOT, running_stack

OUT = ROOT / "docs" / "screenshot.png"


def encoded(image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def sample_files() -> list[tuple[str, str, bytes]]:
    """Two pictures (smooth, so the PNG of the page stays small) and a file that is not one."""
    return [("harbour.jpg", "image/jpeg", encoded(scene(2400, 1600, seed=11, grain=0, texture=.1), "JPEG")),
            ("badge.png", "image/png", encoded(with_alpha(scene(900, 900, seed=7, grain=0, texture=.1)), "PNG")),
            ("notes.txt", "text/plain", b"not an image\n")]


def take(out: Path, width: int, height: int) -> None:
    if not chromium.available():
        raise SystemExit(chromium.INSTALL_HINT)
    with tempfile.TemporaryDirectory() as tmp, running_stack(Path(tmp) / "stack.log") as stack, \
            chromium.browser(viewport={"width": width, "height": height}, device_scale_factor=1) as context:
        page = context.new_page()
        page.goto(f"{stack.api_url}/")
        sign_in(page, stack.demo_user, stack.demo_password)
        files = sample_files()
        choose(page, *files)
        for name, _, _ in files:
            expect(upload_card(page, name).get_by_role("status")).not_to_have_text(
                "Uploading…", timeout=PROCESSING)
        for name in ("harbour.jpg", "badge.png"):
            expect(upload_card(page, name).get_by_role("status")).to_have_text("Thumbnails ready.", timeout=PROCESSING)
        page.wait_for_load_state("networkidle")
        page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
        page.locator("body").evaluate("b => document.activeElement.blur()")
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=True)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    take(args.out, args.width, args.height)


if __name__ == "__main__":
    main()
