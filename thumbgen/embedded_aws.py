"""The embedded AWS: moto's ThreadedMotoServer (S3, DynamoDB + streams, SQS) on one port.

Run as its own process (`python -m thumbgen.embedded_aws HOST PORT`) by the local stack,
so the pumps and the engine never wait for its share of the GIL.
"""
from __future__ import annotations

import logging
import signal
import sys
import threading


def wait_for_shutdown() -> None:
    """Block until SIGTERM or Ctrl-C."""
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass


def main(host: str, port: int) -> None:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    try:
        wait_for_shutdown()
    finally:
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
