"""The local API server: Chalice's local dev server, answering every HTTP method, fast.

Chalice's request handler defines do_GET … do_OPTIONS only, so Python's http.server
answers any other method (TRACE, CONNECT, PROPFIND…) with an HTML 501 before the app
sees it. Here every method goes through the same gateway: a known path with a method it
does not serve gets the app's own 405 with an `Allow` header, as PUT already does.

What the local gateway answers itself is in the API's error shape too: an unknown path is
`404 not_found` (Chalice's local gateway imitates API Gateway's 403 "Missing
Authentication Token", and echoes the Authorization header in it), and a body over API
Gateway's 10 MB payload limit is `413 request_too_large`, refused before it is read.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Callable

from chalice.app import Chalice
from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    CustomLocalChalice,
    ForbiddenError,
    LocalChalice,
    LocalDevServer,
    LocalGatewayException,
    ThreadedHTTPServer,
)

from chalicelib.api.framework_errors import error_body

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit (10 MB)


class AnyMethodHandler(ChaliceRequestHandler):
    """Routes every request method through the local gateway, not only the seven Chalice lists."""

    # Chalice's handler writes headers and body in separate sends: on a kept-alive
    # connection Nagle's algorithm and the client's delayed ACK then add ~40 ms to every
    # answer. TCP_NODELAY on each accepted socket removes it.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
        """The access log only at DEBUG: the service's own JSON lines say what happened."""
        if logging.getLogger("thumbgen").isEnabledFor(logging.DEBUG):
            super().log_message(format, *args)

    def _generic_handle(self) -> None:
        length = self.headers.get("content-length", "0")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            self.close_connection = True  # the body is never read
            self._send_our_error(413, f"the request body is over {MAX_BODY_BYTES} bytes")
            return
        super()._generic_handle()

    # Chalice's class binds these to its own _generic_handle: rebind them to the one above.
    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

    def _send_error_response(self, error: LocalGatewayException) -> None:
        """The local gateway's own refusals: an unknown path (ForbiddenError) is a 404."""
        self._send_our_error(404 if isinstance(error, ForbiddenError) else error.CODE)

    def _send_our_error(self, status: int, message: str | None = None) -> None:
        self._send_http_response(status, {"Content-Type": "application/json"},
                                 json.dumps(error_body(status, message)))

    def __getattr__(self, name: str) -> Callable[[], None]:
        # http.server looks up `do_<METHOD>` and answers 501 when it is missing.
        if name.startswith("do_"):
            return self._generic_handle
        raise AttributeError(name)


class _Server(ThreadedHTTPServer):
    # socketserver listens with a backlog of 5: a burst of new connections (16 clients
    # starting at once) overflowed it and some were reset. Lambda behind API Gateway has
    # no such queue to overflow.
    request_queue_size = 128


def create_api_server(app: Chalice, config: Config, host: str, port: int) -> LocalDevServer:
    """Chalice's local server for `app` on host:port (as chalice.local.create_local_server
    makes it), with AnyMethodHandler as its handler and a deeper listen backlog."""
    CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
    app.__class__ = CustomLocalChalice
    return LocalDevServer(app, config, host, port, handler_cls=AnyMethodHandler, server_cls=_Server)
