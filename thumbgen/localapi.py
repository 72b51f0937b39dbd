"""The local API server: Chalice's local dev server, answering every HTTP method, fast.

Chalice's request handler defines do_GET … do_OPTIONS only, so Python's http.server
answers any other method (TRACE, CONNECT, PROPFIND…) with an HTML 501 before the app
sees it. Here every method goes through the same gateway: a known path with a method it
does not serve gets the app's own 405 with an `Allow` header, as PUT already does, and an
unknown path keeps the gateway's answer for unknown paths.
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Callable

from chalice.app import Chalice
from chalice.config import Config
from chalice.local import ChaliceRequestHandler, LocalDevServer, create_local_server


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

    def __getattr__(self, name: str) -> Callable[[], None]:
        # http.server looks up `do_<METHOD>` and answers 501 when it is missing.
        if name.startswith("do_"):
            return self._generic_handle
        raise AttributeError(name)


def create_api_server(app: Chalice, config: Config, host: str, port: int) -> LocalDevServer:
    """Chalice's local server for `app` on host:port, with AnyMethodHandler as its handler."""
    server = create_local_server(app, config, host, port)
    handler: Any = functools.partial(AnyMethodHandler, app_object=server.app_object, config=config)
    server.server.RequestHandlerClass = handler
    return server
