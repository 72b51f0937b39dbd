"""The embedded AWS: moto's server (S3, DynamoDB + streams, SQS, Cognito) on one port.

Run as its own process (`python -m thumbgen.embedded_aws HOST PORT`) by the local stack,
so the pumps and the engine never wait for its share of the GIL.

moto's server picks the service of a request from its signature or X-Amz-Target header;
a plain GET of a user pool's JWKS (`/<pool id>/.well-known/jwks.json`, what the API's token
verifier fetches) has neither, so it is routed to cognito-idp here, as AWS's own
cognito-idp host would answer it.
"""
from __future__ import annotations

import logging
import re
import signal
import sys
import threading
from typing import Any, Callable

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


def main(host: str, port: int) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(host, port, route_jwks_to_cognito(DomainDispatcherApplication(create_backend_app)),
                         threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        wait_for_shutdown()
    finally:
        server.shutdown()
        thread.join()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
