"""The upload page under throttling and outages, in headless Chromium on the running stack:
answers of the API and of Cognito are replaced for a while by route interception, as API
Gateway's throttling, a 503 of the API or a Cognito hiccup would answer."""
from __future__ import annotations

import json
import re
from collections import Counter
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser import chromium
from tests.browser.actions import PROCESSING, choose, sign_in, upload_card
from tests.imagegen import make_jpeg

# Every test is reported as skipped without Chromium (counted in the run's summary).
pytestmark = pytest.mark.skipif(not chromium.available(), reason=chromium.INSTALL_HINT)

GATEWAY_THROTTLED = {"status": 429, "content_type": "application/json",
                     "body": json.dumps({"message": "Too Many Requests"})}  # API Gateway's own: no Retry-After


def own_error(status: int, code: str, retry_after: str) -> dict:
    return {"status": status, "content_type": "application/json", "headers": {"Retry-After": retry_after},
            "body": json.dumps({"error": {"code": code, "message": "not now"}})}


class Interceptor:
    """Answers the first requests of a kind with canned answers, lets the rest through,
    and keeps what it answered: `answers["POST /images"] = [answer, …]`."""

    def __init__(self, page, origin: str):
        self.answers: dict[str, list[dict]] = {}
        self.answered: list[str] = []
        self.passed: list[str] = []
        page.route(lambda url: url.startswith(origin), self._handle)

    @staticmethod
    def kind(request) -> str:
        path = urlsplit(request.url).path
        if request.headers.get("x-amz-target"):  # Cognito: the action, and the flow of InitiateAuth
            action = request.headers["x-amz-target"].rsplit(".", 1)[-1]
            flow = json.loads(request.post_data or "{}").get("AuthFlow")
            return f"{action} {flow}" if flow else action
        return f"{request.method} {re.sub(r'^/images/[^/]+', '/images/{id}', path)}"

    def _handle(self, route, request) -> None:
        kind = self.kind(request)
        queue = self.answers.get(kind)
        if queue:
            self.answered.append(kind)
            route.fulfill(**queue.pop(0))
        else:
            self.passed.append(kind)
            route.continue_()


def record_card_states(page) -> None:
    """Every state and status text any upload card shows, kept in window.cardStates."""
    page.evaluate("""() => {
        window.cardStates = [];
        new MutationObserver(() => {
            for (const card of document.querySelectorAll('#uploads .card')) {
                const seen = `${card.dataset.state || ''}|${card.querySelector('.status').textContent}`;
                if (window.cardStates.at(-1) !== seen) window.cardStates.push(seen);
            }
        }).observe(document.getElementById('uploads'), {subtree: true, childList: true, characterData: true,
                                                        attributes: true, attributeFilter: ['data-state']});
    }""")


def stored_session(page):
    return page.evaluate("() => JSON.parse(sessionStorage.getItem('thumbgen.session'))")


def test_throttled_calls_are_retried_and_every_file_completes(page, stack, person):
    sign_in(page, *person("browser-throttled"))
    api = Interceptor(page, stack.api_url)
    api.answers["POST /images"] = [GATEWAY_THROTTLED] * 4  # the stage's throttling, no Retry-After
    api.answers["POST /images/{id}/complete"] = [own_error(503, "unavailable", "1")]
    api.answers["GET /images/{id}"] = [own_error(429, "too_many_requests", "1")]
    record_card_states(page)
    files = [(f"busy-{n}.jpg", "image/jpeg", make_jpeg(320, 240, seed=n)) for n in range(3)]
    choose(page, *files)
    for name, _, _ in files:
        expect(upload_card(page, name).get_by_role("status")).to_have_text("Thumbnails ready.", timeout=PROCESSING)
        expect(upload_card(page, name).get_by_role("img")).to_have_count(3)
    assert Counter(api.answered) == {"POST /images": 4, "POST /images/{id}/complete": 1, "GET /images/{id}": 1}
    states = page.evaluate("() => window.cardStates")
    assert any(s.startswith("retrying|The service is busy; trying again in") for s in states), states
    assert any(s.startswith("retrying|The service is unavailable for a moment") for s in states), states
    assert not [s for s in states if s.startswith("failed|")], states


def test_a_503_and_a_cognito_hiccup_keep_the_session(page, stack, person):
    with page.expect_response(lambda r: "/images?limit=" in r.url and r.status == 200):
        sign_in(page, *person("browser-outage"))
    api, cognito = Interceptor(page, stack.api_url), Interceptor(page, stack.aws_url)
    api.answers["GET /images"] = [own_error(503, "unavailable", "1")]  # the pool's keys out of reach
    cognito.answers["InitiateAuth REFRESH_TOKEN_AUTH"] = [
        {"status": 500, "content_type": "application/x-amz-json-1.1",
         "body": json.dumps({"__type": "InternalErrorException", "message": "try later"})}]
    page.evaluate("""() => {  // the access token is due for a refresh
        const s = JSON.parse(sessionStorage.getItem('thumbgen.session'));
        s.expiresAt = 0;
        sessionStorage.setItem('thumbgen.session', JSON.stringify(s));
    }""")
    before = stored_session(page)
    with page.expect_response(lambda r: "/images?limit=" in r.url and r.status == 200, timeout=PROCESSING):
        page.reload()  # the tab's stored session: refreshed before its first request
    assert api.answered == ["GET /images"] and cognito.answered == ["InitiateAuth REFRESH_TOKEN_AUTH"]
    assert cognito.passed.count("InitiateAuth REFRESH_TOKEN_AUTH") == 1  # tried again, and it worked
    assert "RevokeToken" not in cognito.passed  # the refresh token was never given up
    after = stored_session(page)
    assert after["refresh"] == before["refresh"] and after["expiresAt"] > 0  # refreshed, same session
    expect(page.get_by_label("Image", exact=True)).to_be_visible()
    expect(page.get_by_label("Username", exact=True)).to_be_hidden()  # still signed in


def test_only_a_401_after_a_refresh_signs_out(page, stack, person):
    with page.expect_response(lambda r: "/images?limit=" in r.url and r.status == 200):
        sign_in(page, *person("browser-revoked"))
    api, cognito = Interceptor(page, stack.api_url), Interceptor(page, stack.aws_url)
    refused = {"status": 401, "content_type": "application/json", "headers": {"WWW-Authenticate": "Bearer"},
               "body": json.dumps({"error": {"code": "unauthorized", "message": "a valid bearer token is required"}})}
    api.answers["GET /images"] = [refused, refused]
    with page.expect_request(lambda r: r.headers.get("x-amz-target", "").endswith(".RevokeToken")):
        page.get_by_role("button", name="Refresh", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("Your session has ended: sign in again.")
    expect(page.get_by_label("Image", exact=True)).to_be_hidden()
    assert api.answered == ["GET /images", "GET /images"]
    assert cognito.passed[:1] == ["InitiateAuth REFRESH_TOKEN_AUTH"]  # refreshed between the two
    assert stored_session(page) is None


def test_polling_starts_after_a_short_delay_and_backs_off_with_jitter(page, stack, person):
    """The page's timers are recorded (and run 20 times faster): the waits it asks for."""
    page.add_init_script("""(() => {
        const realSetTimeout = window.setTimeout.bind(window);
        window.timerDelays = [];
        window.setTimeout = (callback, ms, ...rest) => {
            window.timerDelays.push(ms);
            return realSetTimeout(callback, ms / 20, ...rest);
        };
    })()""")
    page.reload()
    sign_in(page, *person("browser-poller"))
    api = Interceptor(page, stack.api_url)
    processing = {"status": 200, "content_type": "application/json",
                  "body": json.dumps({"id": "x", "status": "processing", "thumbnails": [], "error": None})}
    api.answers["GET /images/{id}"] = [processing] * 6
    choose(page, ("polled.jpg", "image/jpeg", make_jpeg(320, 240, seed=9)))
    expect(upload_card(page, "polled.jpg").get_by_role("status")).to_have_text("Thumbnails ready.", timeout=PROCESSING)
    delays = page.evaluate("() => window.timerDelays")
    assert len(delays) >= 7  # six answered "processing", then the real answer
    nominal = [min(5000, 500 * 1.6 ** n) for n in range(len(delays))]
    assert all(n / 2 <= d <= n for d, n in zip(delays, nominal)), delays  # jitter: 50-100 % of each
    assert 250 <= delays[0] <= 500 and max(delays) <= 5000
    assert len(set(delays)) == len(delays)  # jittered
