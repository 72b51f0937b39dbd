"""`thumbgen receive`'s verification: the user's secret, fetched again when a webhook does
not verify (a rotation), never kept stale."""
from __future__ import annotations

import io
from contextlib import redirect_stderr
from datetime import datetime, timezone

from chalicelib.webhooks.events import sign
from thumbgen.local.stack import free_port
from thumbgen.receiver import SecretVerifier, print_webhooks

OLD, NEW = "whsec_" + "T0xET0xET0xET0xET0xET0xET0xE", "whsec_" + "TkVXTkVXTkVXTkVXTkVXTkVXTkVX"
BODY = '{"type":"thumbnails.generated"}'


def signed(*secrets: str) -> dict[str, str]:
    return sign(secrets, "msg_1", BODY, datetime.now(timezone.utc))


class Secrets:
    """What the API would answer, and how often it was asked."""

    def __init__(self, *answers: str | Exception):
        self.answers, self.calls = list(answers), 0

    def __call__(self) -> str:
        self.calls += 1
        answer = self.answers[min(self.calls, len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_a_webhook_signed_with_the_users_secret_verifies_without_fetching_again():
    fetch = Secrets(OLD)
    verifier = SecretVerifier(fetch)
    assert verifier.verdict(BODY.encode(), signed(OLD)) == "signature OK"
    assert verifier.verdict(BODY.encode(), signed(NEW, OLD)) == "signature OK"  # an overlap
    assert fetch.calls == 1


def test_after_a_rotation_the_secret_is_fetched_again_and_kept():
    fetch = Secrets(OLD, NEW)
    verifier = SecretVerifier(fetch)
    assert verifier.verdict(BODY.encode(), signed(NEW)) == "signature OK (with the new secret: it was rotated)"
    assert verifier.secret == NEW and fetch.calls == 2
    assert verifier.verdict(BODY.encode(), signed(NEW)) == "signature OK"
    assert fetch.calls == 2


def test_a_forged_webhook_is_invalid_and_the_secret_stays():
    fetch = Secrets(OLD)
    verifier = SecretVerifier(fetch)
    forged = signed("whsec_" + "Rk9SR0VERk9SR0VERk9SR0VERk9S")
    assert verifier.verdict(BODY.encode(), forged).startswith("signature INVALID (")
    assert verifier.verdict(BODY.replace("generated", "failed").encode(), signed(OLD)).startswith("signature INVALID")
    assert verifier.secret == OLD


def test_a_failed_fetch_is_reported_and_listening_goes_on():
    verifier = SecretVerifier(Secrets(OLD, ConnectionError("no API")))
    verdict = verifier.verdict(BODY.encode(), signed(NEW))
    assert verdict.startswith("signature INVALID") and "could not be fetched again (no API)" in verdict
    assert verifier.secret == OLD


def test_a_secret_given_explicitly_is_used_as_is():
    verifier = SecretVerifier(secret=OLD)
    assert verifier.verdict(BODY.encode(), signed(OLD)) == "signature OK"
    assert verifier.verdict(BODY.encode(), signed(NEW)).startswith("signature INVALID")


def test_without_an_api_to_ask_receive_stops_with_a_usage_error():
    env = {"THUMBGEN_API_URL": f"http://127.0.0.1:{free_port()}", "THUMBGEN_TOKEN": "t"}
    err = io.StringIO()
    with redirect_stderr(err):
        assert print_webhooks(free_port(), None, env) == 2
    assert "no API reachable" in err.getvalue() and "--secret" in err.getvalue()
