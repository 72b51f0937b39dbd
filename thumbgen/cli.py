"""The `thumbgen` command: `upload` (images to the API, thumbnails back), `run` (the local
stack), `token` (an access token from the local stack's or a deployed stage's user pool),
`receive` (a webhook receiver that verifies signatures), `render` (the thumbnail engine
offline)."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="thumbgen", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    from thumbgen.rendition_arg import rendition_type
    from thumbgen.upload import DESCRIPTION, EPILOG

    upload = sub.add_parser("upload", help="upload images, wait for their thumbnails and save them",
                            description=DESCRIPTION, epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    upload.add_argument("files", nargs="+", metavar="FILE",
                        help="PNG or JPEG files, each within the stage's size limit (11 MiB unless set)")
    upload.add_argument("--out", default=".", metavar="DIR",
                        help="where to save the thumbnails (default: the current directory)")
    upload.add_argument("--json", action="store_true",
                        help="print one JSON object per file (file, id, status, error, thumbnails)")
    upload.add_argument("--timeout", type=float, default=120, metavar="SECONDS",
                        help="how long to wait for each file's thumbnails (default: 120)")
    upload.add_argument("--rendition", action="append", type=rendition_type, metavar="SPEC",
                        help="a thumbnail to make instead of the stage's default, e.g. 800x600,fit=contain,"
                             "format=webp (WxH[,fit=..][,gravity=..][,focus=X:Y][,format=..][,quality=..]"
                             "[,background=#rrggbb]); repeatable, up to 8")

    run = sub.add_parser("run", help="start the embedded AWS, the API and the event pumps")
    run.add_argument("--aws-port", type=int, default=None, help="default: $AWS_PORT or 4566")
    run.add_argument("--api-port", type=int, default=None, help="default: $API_PORT or 8000")

    token = sub.add_parser("token", help="print a fresh access token for a user of the running local stack, "
                                         "or of a deployed stage (--api-url)",
                           description="Print a fresh access token (alone on the last line of stdout). "
                                       "Without --api-url: for a user of the running local stack, created on "
                                       "first use. With --api-url: for a user of that stage's user pool, found "
                                       "from the stage's config.json; no AWS credentials or CLI needed.")
    token.add_argument("--user", default=None, metavar="NAME",
                       help="local stack: default demo; with --api-url: required")
    token.add_argument("--api-url", default=None, metavar="URL",
                       help="a deployed stage's API URL (the `API:` line of `make deploy`'s summary)")
    token.add_argument("--password", default=None,
                       help="with --api-url: the user's password (default: $THUMBGEN_PASSWORD, else asked "
                            "for; on the command line it shows in the process list)")

    receive = sub.add_parser("receive", help="print webhooks arriving on 127.0.0.1:PORT, verified",
                             description="Print every webhook arriving on 127.0.0.1:PORT and whether it "
                                         "verifies with the signed-in user's own secret, fetched from the API "
                                         "(again when one does not verify: the secret may have been rotated). "
                                         "Signs in as `thumbgen upload` does: THUMBGEN_TOKEN, else the local "
                                         "stack's demo user; THUMBGEN_API_URL, else the local stack.")
    receive.add_argument("--port", type=int, default=9000)
    receive.add_argument("--secret", default=None,
                         help="verify with this whsec_… secret instead of fetching the signed-in user's")

    render = sub.add_parser("render", help="make the service's thumbnails offline, no AWS")
    render.add_argument("files", nargs="+", metavar="FILE")
    render.add_argument("--out", required=True, metavar="DIR")
    render.add_argument("--rendition", action="append", type=rendition_type, metavar="SPEC",
                        help="WxH[,fit=..][,gravity=..][,focus=X:Y][,format=..][,quality=..][,background=#rrggbb];"
                             " repeatable (default: the stage's three sizes)")

    args, unknown = parser.parse_known_args(argv)
    if unknown:  # shown with the subcommand's usage, not the top-level one
        sub.choices[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "upload":
        from thumbgen.upload import upload_command

        return upload_command(args.files, args.out, args.json, args.timeout, renditions=args.rendition)
    if args.command == "run":
        from thumbgen.local.runner import run_forever

        return run_forever(aws_port=args.aws_port, api_port=args.api_port)
    if args.command == "token":
        from thumbgen.token import print_token, stage_token

        if args.api_url is None:
            if args.password is not None:
                token.error("--password goes with --api-url (the local stack's users need none)")
            return print_token(args.user or "demo")
        if not args.user:
            token.error("--api-url needs --user NAME")
        return print_token(args.user, fetch=lambda user: stage_token(args.api_url, user, args.password))
    if args.command == "receive":
        from thumbgen.receiver import print_webhooks

        return print_webhooks(args.port, args.secret)
    from thumbgen.render import render_command

    return render_command(args.files, args.out, args.rendition)


if __name__ == "__main__":
    sys.exit(main())
