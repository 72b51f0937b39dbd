"""What a person does on the upload page, by the labels they read: shared by the browser
tests and the screenshot script."""
from __future__ import annotations

from playwright.sync_api import expect

PROCESSING = 30_000  # ms: upload, resize and poll, on a loaded 2-core machine


def sign_in(page, user: str, password: str) -> None:
    page.get_by_label("Username", exact=True).fill(user)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_label("Image", exact=True)).to_be_visible()


def choose(page, *files: tuple[str, str, bytes]) -> None:
    page.get_by_label("Image", exact=True).set_input_files(
        [{"name": name, "mimeType": mime, "buffer": data} for name, mime, data in files])


def upload_card(page, filename: str):
    return page.get_by_role("list", name="Uploads").get_by_role("listitem").filter(has_text=filename)
