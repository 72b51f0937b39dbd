"""The per-user request rate through the handlers, with a low setting: a user past their
burst gets 429 too_many_requests with Retry-After on every authenticated route, while
another user goes on; requests without a valid token are not counted for anyone."""
from __future__ import annotations

import json
import math
import time

import pytest

BURST = 3
PER_SECOND = 0.0001  # a window of 30,000 s: the test never sees two


def body_of(response) -> dict:
    return json.loads(response.body) if response.body else {}


@pytest.fixture
def limited(make_client):
    window = BURST / PER_SECOND
    left = window - time.time() % window
    if left < 10:  # so close to a window's end that the test could straddle two: start in the next
        time.sleep(left)
    return make_client(RATE_LIMIT_PER_SECOND=str(PER_SECOND), RATE_LIMIT_BURST=str(BURST))


def create_body() -> str:
    return json.dumps({"filename": "a.jpg", "contentType": "image/jpeg", "fileSize": 10})


def test_past_its_burst_a_user_gets_429_with_retry_after_on_every_route(limited):
    headers = {"Content-Type": "application/json"}
    assert limited.http.post("/images", headers=headers, body=create_body()).status_code == 201
    assert limited.http.get("/images").status_code == 200
    assert limited.http.get("/images/00000000-0000-4000-8000-000000000000").status_code == 404  # counted too
    for method, path, body in [("GET", "/images", b""), ("POST", "/images", create_body()),
                               ("DELETE", "/images/00000000-0000-4000-8000-000000000000", b""),
                               ("GET", "/webhook-secret", b"")]:
        refused = limited.http.request(method, path, headers=headers, body=body)
        assert refused.status_code == 429, (method, path)
        assert body_of(refused)["error"]["code"] == "too_many_requests"
        assert 1 <= int(refused.headers["Retry-After"]) <= math.ceil(BURST / PER_SECOND)
    bob = limited.as_user("bob")
    assert bob.http.get("/images").status_code == 200  # one user's rate is theirs alone


def test_requests_without_a_valid_token_count_for_nobody(limited):
    anonymous = limited.anonymous()
    for _ in range(BURST + 2):
        assert anonymous.http.get("/images").status_code == 401
        assert anonymous.http.get("/images", headers={"Authorization": "Bearer forged"}).status_code == 401
    for _ in range(BURST):
        assert limited.http.get("/images").status_code == 200
    assert limited.http.get("/health").status_code == 200  # unauthenticated routes are not limited
