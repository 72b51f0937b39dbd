"""Browser fixtures: one headless Chromium per test module (closed before the rest of the
suite runs), a fresh tab (so a fresh sessionStorage: signed out) per test on the
running stack's page."""
from __future__ import annotations

import pytest

from tests.browser import chromium
from thumbgen.users import local_password, local_pool


@pytest.fixture(scope="module")
def browser_context():
    if not chromium.available():
        pytest.skip(chromium.INSTALL_HINT)
    with chromium.browser(viewport={"width": 1100, "height": 900}) as context:
        yield context


class PageProblems:
    """What the page did wrong on its own: uncaught errors and Content-Security-Policy
    refusals (a refused script, style, image or connection)."""

    def __init__(self, page):
        self.items: list[str] = []
        page.on("pageerror", lambda error: self.items.append(f"uncaught: {error}"))
        page.on("console", self._console)

    def _console(self, message):
        if "Content Security Policy" in message.text:
            self.items.append(f"CSP: {message.text}")


@pytest.fixture
def page(browser_context, stack):
    page = browser_context.new_page()
    problems = PageProblems(page)
    page.goto(f"{stack.api_url}/")
    yield page
    page.close()
    assert problems.items == []


@pytest.fixture
def person(stack):
    """person(name) -> (name, password): a user of the stack's pool, made on first use."""
    cognito = stack.boto("cognito-idp")
    pool_id, _ = local_pool(cognito)

    def make(name: str) -> tuple[str, str]:
        if name == stack.demo_user:
            return name, stack.demo_password
        stack.token(name)
        return name, local_password(pool_id, name)
    return make
