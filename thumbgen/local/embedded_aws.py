"""The embedded AWS: moto's server (S3, SQS, Cognito; or DynamoDB + streams) on one port.

Run as its own process (`python -m thumbgen.local.embedded_aws HOST PORT [--one-request-at-a-time]`)
by the local stack, so the pumps and the engine never wait for its share of the GIL.

moto's server picks the service of a request from its signature or X-Amz-Target header;
a plain GET of a user pool's JWKS (`/<pool id>/.well-known/jwks.json`, what the API's token
verifier fetches) has neither, so it is routed to cognito-idp here, as AWS's own
cognito-idp host would answer it.
"""
from __future__ import annotations

import errno
import logging
import re
import signal
import socket
import sys
import threading
from typing import Any, Callable

# The exit status of `main` when its port is already in use.
EXIT_ADDRESS_IN_USE = 3
JWKS_PATH = re.compile(r"^/[a-z]{2}-[a-z]+-\d_[0-9A-Za-z]+/\.well-known/jwks\.json$")


def wait_for_shutdown() -> None:
    """Block until SIGTERM or Ctrl-C."""
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass


def route_jwks_to_cognito(app: Callable) -> Callable:
    def wsgi(environ: dict[str, Any], start_response: Callable) -> Any:
        if environ.get("REQUEST_METHOD") == "GET" and JWKS_PATH.match(environ.get("PATH_INFO", "")):
            environ["HTTP_X_AMZ_TARGET"] = "AWSCognitoIdentityProviderService.GetJwks"
        return app(environ, start_response)
    return wsgi


def one_request_at_a_time(app: Callable) -> Callable:
    """moto's backends are not thread-safe: under load, two UpdateItems on one item in
    werkzeug's threads raised "dictionary changed size during iteration" in moto's copy of
    it, and nothing makes two conditional writes atomic against each other, which DynamoDB's
    are. The DynamoDB process has no long poll to wait on, so its requests can take turns."""
    turn = threading.Lock()

    def wsgi(environ: dict[str, Any], start_response: Callable) -> Any:
        with turn:
            return list(app(environ, start_response))
    return wsgi


def list_moto_modules_once() -> None:
    """moto's dispatcher lists its own package directory on every request to recognise a
    service name (~10% of the embedded AWS's CPU under load, profiled with py-spy); the
    list never changes while it runs."""
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def retention_check_without_counting() -> None:
    """For every message a receive looks at, moto checks its retention by computing all of
    its queue's attributes -- message counts included, each a pass over the queue: a
    receive is quadratic in the queue's length. Delayed retries and the stream's delayed
    copies make queues long under load (profiled with py-spy: half the embedded AWS's CPU
    in bench.load). Same answer, read from the queue itself."""
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def is_valid(self, queue_name, message) -> bool:  # noqa: ANN001 (moto's signature)
        queue = self.get_queue(queue_name)
        return int(queue.message_retention_period) + message.sent_timestamp / 1000 > unix_time()

    SQSBackend.is_message_valid_based_on_retention_period = is_valid


def make_server(host: str, port: int, serial: bool = False) -> Any:
    """moto's server app behind werkzeug's threaded server, answering with TCP_NODELAY;
    `serial`: one request at a time (for DynamoDB, whose writes must be atomic)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug import serving

    class NoDelayHandler(serving.WSGIRequestHandler):
        # werkzeug writes an answer in several sends: on a kept-alive connection Nagle's
        # algorithm and the client's delayed ACK then hold some answers back. Measured:
        # three thumbnail PUTs at once took 17-19 ms, 8 ms with TCP_NODELAY.
        disable_nagle_algorithm = True

    # Listening first, here: a port in use raises OSError (werkzeug would print its own
    # advice and exit 1, indistinguishable from any other failure).
    listener = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        list_moto_modules_once()
        retention_check_without_counting()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        app = route_jwks_to_cognito(DomainDispatcherApplication(create_backend_app))
        return serving.make_server(host, port, one_request_at_a_time(app) if serial else app,
                                   threaded=True, request_handler=NoDelayHandler, fd=listener.fileno())
    finally:
        listener.close()  # the server listens on its own duplicate of it


def main(host: str, port: int, serial: bool = False) -> None:
    """Serve until SIGTERM; a port something else listens on exits EXIT_ADDRESS_IN_USE with
    one line, no traceback (the local stack names the port and its setting)."""
    try:
        server = make_server(host, port, serial)
    except OSError as exc:
        print(f"embedded AWS: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        sys.exit(EXIT_ADDRESS_IN_USE if exc.errno == errno.EADDRINUSE else 1)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        wait_for_shutdown()
    finally:
        server.shutdown()
        thread.join()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), serial="--one-request-at-a-time" in sys.argv[3:])
