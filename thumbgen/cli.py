"""The `thumbgen` command: `thumbgen run` (the local stack), `thumbgen render` (offline engine)."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="thumbgen", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start the embedded AWS, the API and the event pumps")
    run.add_argument("--aws-port", type=int, default=None, help="default: $AWS_PORT or 4566")
    run.add_argument("--api-port", type=int, default=None, help="default: $API_PORT or 8000")

    render = sub.add_parser("render", help="make the service's thumbnails offline, no AWS")
    render.add_argument("files", nargs="+", metavar="FILE")
    render.add_argument("--out", required=True, metavar="DIR")

    args = parser.parse_args(argv)
    if args.command == "run":
        from thumbgen.runner import run_forever

        return run_forever(aws_port=args.aws_port, api_port=args.api_port)
    from thumbgen.render import render_command

    return render_command(args.files, args.out)


if __name__ == "__main__":
    sys.exit(main())
