"""The local API server answers undeclared methods with 405 and `Allow`, never an HTML 501."""
from __future__ import annotations

import json
import threading

import pytest
import requests
from chalice import Chalice
from chalice.config import Config

from thumbgen.local.localapi import create_api_server
from thumbgen.local.stack import free_port


@pytest.fixture(scope="module")
def api_url():
    app = Chalice(app_name="methods")

    @app.route("/things", methods=["GET", "POST"])
    def things():
        return {"ok": True}

    @app.route("/things/{thing_id}", methods=["DELETE"])
    def thing(thing_id):
        return {"deleted": thing_id}

    port = free_port()
    server = create_api_server(app, Config.create(chalice_stage="local", app_name="methods"), "127.0.0.1", port)
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server.server_close()


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "FOO", "PUT", "PATCH"])
def test_a_known_path_answers_an_undeclared_method_with_405_and_allow(api_url, method):
    response = requests.request(method, f"{api_url}/things", timeout=5)
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["Allow"].split(",")} == {"GET", "POST"}
    assert response.headers["Content-Type"] == "application/json"


def test_a_path_with_a_parameter_lists_its_own_methods(api_url):
    response = requests.request("TRACE", f"{api_url}/things/42", timeout=5)
    assert response.status_code == 405 and response.headers["Allow"] == "DELETE"


def test_an_unknown_path_answers_the_same_for_every_method(api_url):
    known_method = requests.get(f"{api_url}/nowhere", timeout=5)
    other_method = requests.request("TRACE", f"{api_url}/nowhere", timeout=5)
    assert known_method.status_code == other_method.status_code != 405
    assert known_method.json() == other_method.json()
    assert "Allow" not in other_method.headers


def test_declared_methods_still_reach_their_views(api_url):
    assert requests.get(f"{api_url}/things", timeout=5).json() == {"ok": True}
    assert requests.delete(f"{api_url}/things/7", timeout=5).json() == {"deleted": "7"}


def test_a_burst_of_new_connections_finds_room_in_the_listen_queue():
    """socketserver's default backlog of 5 reset some of 16 clients connecting at once; the
    queue is sized when the server listens, so it is checked on a server as made."""
    import socket

    app = Chalice(app_name="burst")
    server = create_api_server(app, Config.create(chalice_stage="local", app_name="burst"), "127.0.0.1", free_port())
    try:
        assert server.server.request_queue_size >= 64
        address = server.server.server_address
        clients = [socket.create_connection(address, timeout=5) for _ in range(40)]  # nothing accepts yet
        for client in clients:
            client.close()
    finally:
        server.server.server_close()


def test_an_unknown_path_is_our_404_and_never_echoes_the_authorization_header(api_url):
    for method in ("GET", "POST", "TRACE"):
        response = requests.request(method, f"{api_url}/nowhere", headers={"Authorization": "Bearer s3cr3t"},
                                    timeout=5)
        assert response.status_code == 404, method
        assert response.json() == {"error": {"code": "not_found", "message": "no such route"}}
        assert "s3cr3t" not in response.text


def test_a_body_over_api_gateways_limit_is_our_413_before_it_is_read(api_url):
    """Only the headers are sent: the answer comes without the server waiting for 20 MB."""
    import socket
    from urllib.parse import urlsplit

    from thumbgen.local.localapi import MAX_BODY_BYTES

    parts = urlsplit(api_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as conn:
        conn.sendall(f"POST /things HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {2 * MAX_BODY_BYTES}\r\n\r\n".encode())
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert json.loads(body)["error"]["code"] == "request_too_large"
    assert requests.post(f"{api_url}/things", json={}, timeout=5).json() == {"ok": True}  # a normal body still is
