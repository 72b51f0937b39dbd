"""Webhook URL rules over a table of hostile URLs; the resolver is stubbed, so a refusal
is proven to happen before any connection is attempted."""
from __future__ import annotations

import pytest

from chalicelib.webhooks.sender import Sender
from chalicelib.webhooks.urls import (
    UnsafeWebhookUrl,
    UrlPolicy,
    check_webhook_url,
    is_public,
    normalise_ip,
    system_resolver,
)
from thumbgen.receiver import WebhookReceiver

STRICT = UrlPolicy()


def no_dns(host, port):
    raise AssertionError(f"resolver must not be called for {host}")


def resolves_to(*answers):
    def resolve(host, port):
        return list(answers)
    return resolve


@pytest.mark.parametrize("url", [
    "ftp://example.com/", "file:///etc/passwd", "gopher://example.com/", "javascript:alert(1)",
    "//example.com/hook", "example.com/hook", "http://", "http:///path", "https://:443/",
    "http://user@example.com/", "http://user:pass@example.com/", "http://example.com:99999/",
    "http://exa mple.com/", "http://example.com/\r\nX-Injected: 1", "http://[::1/", "",
    "http://example.com/" + "a" * 3000,
])
def test_malformed_or_non_http_urls_are_refused_without_dns(url):
    with pytest.raises(UnsafeWebhookUrl):
        check_webhook_url(url, STRICT, no_dns)


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.1.2.3", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
    "100.64.0.1", "169.254.169.254", "169.254.170.2", "0.0.0.0", "224.0.0.1", "255.255.255.255",
    "240.0.0.1", "192.0.0.170", "198.18.0.1", "::1", "::", "fc00::1", "fd12:3456::1", "fe80::1",
    "fe80::1%eth0", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "2001:db8::1",
])
def test_every_non_public_answer_is_refused(address):
    with pytest.raises(UnsafeWebhookUrl):
        check_webhook_url("https://hooks.example.com/x", STRICT, resolves_to(address))


def test_one_private_answer_among_public_ones_is_enough_to_refuse():
    with pytest.raises(UnsafeWebhookUrl):
        check_webhook_url("https://multi.example.com/", STRICT, resolves_to("93.184.216.34", "10.0.0.7"))


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://2130706433/", "http://0x7f000001/", "http://0177.0.0.1/",
    "http://127.1/", "http://0/", "http://[::1]/", "http://[::ffff:7f00:1]/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]/", "http://169.254.169.254/", "http://0xA9.0xFE.0xA9.0xFE/",
    "http://localhost/", "http://localhost:8080/", "http://[fd00:ec2::254]/",
])
def test_odd_spellings_of_private_addresses_are_refused(url):
    # The real resolver: IP literals in any spelling (and localhost) resolve locally.
    with pytest.raises(UnsafeWebhookUrl):
        check_webhook_url(url, STRICT, system_resolver)


def test_public_answers_pass_and_are_returned():
    got = check_webhook_url("https://hooks.example.com/x", STRICT, resolves_to("93.184.216.34", "2606:2800:220:1::1"))
    assert [str(ip) for ip in got] == ["93.184.216.34", "2606:2800:220:1::1"]


def test_unresolvable_host_is_refused():
    def fail(host, port):
        raise OSError("no such host")
    with pytest.raises(UnsafeWebhookUrl):
        check_webhook_url("https://nowhere.invalid/", STRICT, fail)


def test_https_can_be_required():
    with pytest.raises(UnsafeWebhookUrl):
        check_webhook_url("http://93.184.216.34/", UrlPolicy(require_https=True), no_dns)
    check_webhook_url("https://93.184.216.34/", UrlPolicy(require_https=True), resolves_to("93.184.216.34"))


def test_local_stack_policy_lifts_only_the_address_rule():
    check_webhook_url("http://127.0.0.1:9/hook", UrlPolicy(allow_private_networks=True), no_dns)
    with pytest.raises(UnsafeWebhookUrl):
        check_webhook_url("ftp://127.0.0.1/", UrlPolicy(allow_private_networks=True), no_dns)


def test_ipv4_mapped_addresses_are_unwrapped():
    assert str(normalise_ip("::ffff:10.0.0.1")) == "10.0.0.1"
    assert not is_public(normalise_ip("::ffff:10.0.0.1"))
    assert is_public(normalise_ip("8.8.8.8"))


class ExplodingSession:
    def __init__(self):
        raise AssertionError("no connection may be attempted for a refused URL")


def test_sender_refuses_before_any_connection():
    sender = Sender(STRICT, resolve=resolves_to("169.254.169.254"), session_factory=ExplodingSession)
    result = sender.post("http://metadata.example/", "{}", {})
    assert result.error.startswith("refused") and result.gone


def test_rebinding_between_check_and_connect_is_caught_by_the_pinned_connection():
    """The check saw a public answer; the connection resolves again and gets loopback.

    requests-hardened checks the address it actually connects to, so nothing is sent.
    """
    with WebhookReceiver() as receiver:
        sender = Sender(STRICT, resolve=resolves_to("93.184.216.34"))
        result = sender.post(f"http://localhost:{receiver.port}/hook", "{}", {})
        assert result.status_code is None and result.error.startswith("refused")
        assert receiver.received() == []


def test_a_receiver_that_drips_its_answer_is_cut_off_at_the_total_timeout():
    """Each read is short, but the whole exchange must end by connect + read timeout."""
    import socket
    import threading
    import time

    from chalicelib.webhooks.urls import UrlPolicy

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    stop = threading.Event()

    def drip():
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not stop.wait(0.2):
            try:
                conn.sendall(b"X")  # one byte of an endless header line
            except OSError:
                break
        conn.close()

    threading.Thread(target=drip, daemon=True).start()
    sender = Sender(UrlPolicy(allow_private_networks=True), connect_timeout=0.5, read_timeout=1.0)
    began = time.monotonic()
    result = sender.post(f"http://127.0.0.1:{server.getsockname()[1]}/", "{}", {})
    elapsed = time.monotonic() - began
    stop.set()
    server.close()
    assert result.error == "timeout" and result.status_code is None
    assert elapsed < 3.0
