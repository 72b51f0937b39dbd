"""Name lookups at send time, with stubbed resolvers (never real DNS): a resolver's failure
is retried like a connection error, only a forbidden address is final, and both lookups
-- the URL's check and the connection's own in requests-hardened -- end by the attempt's
deadline."""
from __future__ import annotations

import socket
import threading

import pytest

from chalicelib.webhooks import state as webhook_state
from chalicelib.webhooks.sender import Sender
from chalicelib.webhooks.urls import HostUnresolved, UnsafeWebhookUrl, UrlPolicy, check_webhook_url

STRICT = UrlPolicy()
SCHEDULE = (5, 300)
URL = "https://hooks.example.com/hook"


class NoSession:
    def __init__(self):
        raise AssertionError("no connection may be attempted")


def failing(error: OSError):
    def resolve(host, port):
        raise error
    return resolve


@pytest.mark.parametrize("error", [
    socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"),
    socket.gaierror(socket.EAI_FAIL, "Non-recoverable failure in name resolution"),
    socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
    TimeoutError("timed out"),
], ids=["EAI_AGAIN", "EAI_FAIL", "EAI_NONAME", "timeout"])
def test_a_resolver_failure_at_send_time_is_retried_not_final(error):
    result = Sender(STRICT, resolve=failing(error), session_factory=NoSession).post(URL, "{}", {})
    assert result.error == "name lookup failed" and not result.gone
    step = webhook_state.after_attempt(1, SCHEDULE, result)
    assert step.retry_in == 5 and not step.dead_letter


@pytest.mark.parametrize("answers", [[], ["not-an-address"]])
def test_no_answer_or_a_garbled_one_is_a_resolver_failure_too(answers):
    result = Sender(STRICT, resolve=lambda host, port: answers, session_factory=NoSession).post(URL, "{}", {})
    assert result.error == "name lookup failed" and not result.gone


def test_only_a_resolved_address_that_is_forbidden_is_final():
    result = Sender(STRICT, resolve=lambda host, port: ["93.184.216.34", "10.0.0.7"],
                    session_factory=NoSession).post(URL, "{}", {})
    assert result.error.startswith("refused:") and result.gone
    assert webhook_state.after_attempt(1, SCHEDULE, result).dead_letter


def test_registration_still_refuses_a_name_that_does_not_resolve():
    """POST /images answers 422 for it: the check raises, a subclass of the refusal."""
    with pytest.raises(UnsafeWebhookUrl) as refused:
        check_webhook_url(URL, STRICT, failing(socket.gaierror(socket.EAI_AGAIN, "again")))
    assert isinstance(refused.value, HostUnresolved)


def test_a_name_no_resolver_can_take_stays_refused():
    def too_long(host, port):
        raise UnicodeError("label too long")
    result = Sender(STRICT, resolve=too_long, session_factory=NoSession).post(URL, "{}", {})
    assert result.error.startswith("refused:") and result.gone


def test_the_urls_own_lookup_ends_at_the_attempts_deadline():
    released = threading.Event()

    def hanging(host, port):
        released.wait(30)  # a resolver that takes its retries x servers x seconds
        return ["93.184.216.34"]

    sender = Sender(STRICT, connect_timeout=0.2, read_timeout=0.3, resolve=hanging, session_factory=NoSession)
    try:
        result = sender.post(URL, "{}", {})
        assert not released.is_set()  # returned while the resolver was still busy
        assert result.error == "timeout" and not result.gone
    finally:
        released.set()


def test_the_connections_own_lookup_ends_at_the_attempts_deadline_and_connects_nowhere(monkeypatch):
    """Our check saw a public answer; requests-hardened resolves again to pin the address,
    and that resolver hangs: the attempt still ends by its deadline, with no connection."""
    released, looked_up, connects = threading.Event(), [], []
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host, *args, **kwargs):
        if host == "hooks.example.com":
            looked_up.append(host)
            released.wait(30)
            raise socket.gaierror(socket.EAI_AGAIN, "gave up")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(sock, address):
        connects.append(address)
        return real_connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    sender = Sender(STRICT, connect_timeout=0.2, read_timeout=0.3, resolve=lambda host, port: ["93.184.216.34"])
    try:
        result = sender.post(URL, "{}", {})
        assert looked_up == ["hooks.example.com"] and not released.is_set()
        assert result.error == "timeout" and not result.gone
        assert connects == []
    finally:
        released.set()


def test_the_connections_own_lookup_failing_is_a_connection_error_retried(monkeypatch):
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == "hooks.example.com":
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    result = Sender(STRICT, resolve=lambda host, port: ["93.184.216.34"]).post(URL, "{}", {})
    assert result.error == "connection error" and not result.gone
