"""`thumbgen upload FILE...`: upload images, wait for their thumbnails, save them."""
from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

import requests

from chalicelib.imaging.renditions import Rendition
from thumbgen.client import ApiError, ThumbgenClient
from thumbgen.progress import ProgressBoard

PARALLEL_UPLOADS = 4
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

DESCRIPTION = """\
Upload PNG or JPEG images to thumbgen, wait until their thumbnails are made (the stage's
default, 400x300, 160x120 and 120x120 unless set, or those of --rendition), and save them
as DIR/<file name without extension>/<thumbnail name>, e.g. cat/400x300.jpg or
cat/800x600-contain.webp. Up to 4 files go up at once, each with a progress bar on stderr;
one result line per file goes to stdout. A call answered 429 or 503 is sent again after its
Retry-After (or a growing random wait), for up to a minute."""

EPILOG = """\
sign-in:
  THUMBGEN_API_URL  the API (default: the local stack, http://127.0.0.1:$API_PORT, port 8000)
  THUMBGEN_TOKEN    an access token (default: sign in as the local stack's demo user, as
                    `thumbgen token` does; THUMBGEN_DEMO_PASSWORD if `make run` was given one)

exit codes:
  0  every file completed and its thumbnails were saved
  1  at least one file failed (its error code and message are printed)
  2  a usage, file or sign-in problem: bad arguments, a missing or unreadable file, a
     file over the stage's size limit (its MAX_UPLOAD_BYTES, 11 MiB unless set, as its
     /config.json says), a token the API refuses, no API reachable. All are checked
     before anything is uploaded.

examples:
  thumbgen upload cat.jpg logo.png --out thumbs
  thumbgen upload cat.jpg --rendition 800x600,fit=contain,format=webp --rendition 400x400,gravity=attention
  THUMBGEN_TOKEN=... THUMBGEN_API_URL=https://... thumbgen upload *.jpg --json"""


class UsageError(Exception):
    """Something to fix before anything is uploaded (exit code 2)."""


@dataclass
class Outcome:
    file: str
    id: str | None = None
    status: str = "failed"
    error: dict[str, str] | None = None
    thumbnails: list[str] = field(default_factory=list)
    http_status: int | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "completed" and self.error is None

    def as_json(self) -> str:
        fields = asdict(self)
        fields.pop("http_status")
        return json.dumps(fields)

    def as_text(self) -> str:
        ident = f" (id {self.id})" if self.id else ""
        if self.ok:
            folder = Path(self.thumbnails[0]).parent if self.thumbnails else ""
            names = " ".join(Path(t).name for t in self.thumbnails)
            return f"{self.file}: completed{ident}, thumbnails in {folder}{os.sep}: {names}"
        error = self.error or {"code": "?", "message": ""}
        return f"{self.file}: {self.status}{ident}: {error['code']}: {error['message']}"


def check_files(names: list[str]) -> list[Path]:
    """Every file exists and is readable; else UsageError naming each."""
    problems, paths = [], []
    for name in names:
        path = Path(name)
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                f.read(1)
        except FileNotFoundError:
            problems.append(f"{name}: no such file")
            continue
        except IsADirectoryError:
            problems.append(f"{name}: is a directory")
            continue
        except OSError as exc:
            problems.append(f"{name}: cannot be read ({exc.strerror or exc})")
            continue
        paths.append(path)
    if problems:
        raise UsageError("\n".join(problems))
    return paths


def check_sizes(paths: list[Path], limit: int | None) -> None:
    """Every file is within the stage's size limit; else UsageError naming each. Without a
    limit (a stage that does not publish one) the API's own 413 judges each file."""
    if limit is None:
        return
    problems = [f"{path}: {size:,} bytes is over the stage's limit of {limit:,} bytes"
                for path in paths if (size := path.stat().st_size) > limit]
    if problems:
        raise UsageError("\n".join(problems))


def check_renditions(renditions: list[Rendition] | None) -> None:
    """What the API would refuse for every file alike (too many, written twice, over the
    budget): UsageError before anything is uploaded, by the API's own rules. (Two that differ
    only by `source` and the format it becomes for one file are refused for that file.)"""
    if not renditions:
        return
    from chalicelib.imaging.rendition_rules import InvalidRenditions, parse_renditions

    try:
        parse_renditions([r.to_item() for r in renditions], source_types=(), field="--rendition")
    except InvalidRenditions as exc:
        raise UsageError(str(exc)) from None


def output_dirs(paths: list[Path], out: Path) -> list[Path]:
    """DIR/<stem> per file; a stem seen before gets -2, -3… so no file overwrites another's."""
    taken: set[str] = set()
    dirs = []
    for path in paths:
        stem = path.stem or path.name
        name, n = stem, 1
        while name in taken:
            n += 1
            name = f"{stem}-{n}"
        taken.add(name)
        dirs.append(out / name)
    return dirs


def connect(env: Mapping[str, str]) -> ThumbgenClient:
    """The client for THUMBGEN_API_URL with THUMBGEN_TOKEN, else the local stack's demo user;
    checked with one request so a bad token or no API stops everything (UsageError), and
    the stage's size limit read (its /config.json)."""
    from thumbgen.token import SignInError, local_api_url, local_token

    api_url = env.get("THUMBGEN_API_URL") or local_api_url(env)
    token = env.get("THUMBGEN_TOKEN")
    if not token:
        try:
            token = local_token("demo", env)
        except SignInError as exc:
            raise UsageError(f"{exc}\n(or set THUMBGEN_TOKEN to an access token)") from None
    client = ThumbgenClient(api_url, token)
    try:
        next(client.list(page_size=1), None)
        client.max_upload_bytes()
    except ApiError as exc:
        hint = "; set THUMBGEN_TOKEN to a valid access token (`thumbgen token` prints one " \
               "for the local stack)" if exc.status == 401 else ""
        raise UsageError(f"the API at {api_url} refused the request ({exc}){hint}") from None
    except requests.RequestException as exc:
        raise UsageError(f"no API reachable at {api_url} ({type(exc).__name__}); "
                         "set THUMBGEN_API_URL, or start the local stack with `make run`") from None
    return client


def process(client: ThumbgenClient, path: Path, directory: Path, timeout: float,
            board: ProgressBoard, index: int, renditions: list[Rendition] | None = None) -> Outcome:
    """Upload one file, wait for its outcome and save its thumbnails; never raises."""
    outcome = Outcome(file=str(path))
    try:
        outcome.id = client.upload_file(path, progress=lambda sent, total: board.update(index, sent, total),
                                        renditions=renditions)
        board.note(index, "waiting for thumbnails")
        image = client.wait(outcome.id, timeout)
        outcome.status = image["status"]
        if outcome.status == "failed":
            outcome.error = image.get("error") or {"code": "failed", "message": "no reason given"}
        else:
            try:
                outcome.thumbnails = [str(p) for p in client.download_thumbnails(image, directory)]
            except (requests.RequestException, OSError) as exc:
                outcome.error = {"code": "download_failed", "message": str(exc)}
    except ApiError as exc:
        outcome.error, outcome.http_status = {"code": exc.code, "message": exc.message}, exc.status
    except TimeoutError as exc:
        outcome.status = "processing"
        outcome.error = {"code": "timeout", "message": str(exc)}
    except requests.RequestException as exc:
        outcome.error = {"code": "connection_error", "message": str(exc)}
    except OSError as exc:
        outcome.error = {"code": "file_error", "message": str(exc)}
    except Exception as exc:  # a surprise must still show as this file's failure, never as success
        outcome.error = {"code": "client_error", "message": f"{type(exc).__name__}: {exc}"}
    board.note(index, outcome.status if outcome.error is None else f"{outcome.status}: {outcome.error['code']}")
    return outcome


def run_all(client: ThumbgenClient, paths: list[Path], dirs: list[Path], timeout: float,
            board: ProgressBoard, renditions: list[Rendition] | None = None) -> list[Outcome]:
    """A few files at a time on daemon threads, so Ctrl-C ends the command at once."""
    outcomes: list[Outcome | None] = [None] * len(paths)
    pending = list(range(len(paths)))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                i = pending.pop(0)
            outcomes[i] = process(client, paths[i], dirs[i], timeout, board, i, renditions)

    threads = [threading.Thread(target=worker, daemon=True, name=f"upload-{n}")
               for n in range(min(PARALLEL_UPLOADS, len(paths)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)
    return [o or Outcome(file=str(p), error={"code": "client_error", "message": "not processed"})
            for o, p in zip(outcomes, paths)]


def upload_command(files: list[str], out: str, as_json: bool, timeout: float, *,
                   renditions: list[Rendition] | None = None, env: Mapping[str, str] | None = None,
                   stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    env = os.environ if env is None else env
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    try:
        check_renditions(renditions)
        paths = check_files(files)
        client = connect(env)
        check_sizes(paths, client.max_upload_bytes())
    except UsageError as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    board = ProgressBoard([p.name for p in paths], stderr)
    try:
        outcomes = run_all(client, paths, output_dirs(paths, Path(out)), timeout, board, renditions)
    except KeyboardInterrupt:
        board.close()
        print("interrupted", file=stderr)
        return 130
    board.close()
    for outcome in outcomes:
        print(outcome.as_json() if as_json else outcome.as_text(), file=stdout)
    stdout.flush()
    if any(o.http_status == 401 for o in outcomes):
        print("error: the API stopped accepting the token (expired?); set THUMBGEN_TOKEN", file=stderr)
        return EXIT_USAGE
    return EXIT_OK if all(o.ok for o in outcomes) else EXIT_FAILED
