"""`thumbgen upload` without the stack: arguments, file checks and exit codes, against a
local server that records every call (so "nothing was uploaded" is checked, not assumed)."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from chalicelib.imaging.renditions import MAX_OUTPUT_PIXELS
from chalicelib.platform.config import (
    MAX_UPLOAD_BYTES_DEFAULT as MAX_UPLOAD_BYTES,  # the limit LocalApi publishes by default
)
from tests.budget import over_output_budget, specs
from tests.unit.localapi import GATEWAY_THROTTLED, GOOD_TOKEN, LocalApi
from thumbgen.cli import main
from thumbgen.local.stack import free_port
from thumbgen.rendition_arg import parse_rendition
from thumbgen.upload import output_dirs, upload_command

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.fixture
def api():
    with LocalApi() as running:
        yield running


def run(files, api_url, *, token=GOOD_TOKEN, out=None, as_json=False, renditions=None):
    stdout, stderr = io.StringIO(), io.StringIO()
    env = {"THUMBGEN_API_URL": api_url, "THUMBGEN_TOKEN": token}
    code = upload_command([str(f) for f in files], str(out or "."), as_json, 10, env=env,
                          stdout=stdout, stderr=stderr, renditions=renditions)
    return code, stdout.getvalue(), stderr.getvalue()


def sized(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.write(PNG[:8])
        f.truncate(size)
    return path


def test_every_file_completed_exits_0_and_saves_thumbnails(api, tmp_path):
    a, b = sized(tmp_path / "a.png", 5_000), sized(tmp_path / "b.png", MAX_UPLOAD_BYTES)  # the limit is fine
    code, out, err = run([a, b], api.url, out=tmp_path / "thumbs")
    assert code == 0, err
    for name in ("a", "b"):
        assert sorted(p.name for p in (tmp_path / "thumbs" / name).iterdir()) == \
            ["120x120.png", "160x120.png", "400x300.png"]
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{a}: completed (id ")
    assert "\x1b" not in err  # stderr is not a terminal: plain lines
    assert "a.png: 100% of 5.0 KB" in err.splitlines()
    assert sorted(p.received for p in api.puts) == [5_000, MAX_UPLOAD_BYTES]


def test_a_refused_file_exits_1_with_its_code_and_json_parses(api, tmp_path):
    good, text = sized(tmp_path / "good.png", 1_000), tmp_path / "notes.txt"
    text.write_text("hello")
    code, out, _ = run([good, text], api.url, out=tmp_path, as_json=True)
    assert code == 1
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["file"] == str(good) and first["status"] == "completed" and first["error"] is None
    assert [Path(p).name for p in first["thumbnails"]] == ["400x300.png", "160x120.png", "120x120.png"]
    assert second == {"file": str(text), "id": None, "status": "failed", "thumbnails": [],
                      "error": {"code": "unsupported_media_type",
                                "message": "contentType must be image/png or image/jpeg"}}


def test_429s_and_503s_are_waited_out_and_the_file_still_completes(api, tmp_path):
    throttled = (429, {"Retry-After": "0"}, {"error": {"code": "too_many_requests", "message": "later"}})
    unavailable = (503, {"Retry-After": "0"}, {"error": {"code": "unavailable", "message": "keys"}})
    api.answer_first("GET /images", unavailable)  # the sign-in check
    api.answer_first("POST /images", GATEWAY_THROTTLED, throttled)
    api.answer_first("POST /images/{id}/complete", throttled)
    api.answer_first("GET /images/{id}", GATEWAY_THROTTLED)
    code, out, err = run([sized(tmp_path / "a.png", 1_000)], api.url, out=tmp_path / "thumbs")
    assert code == 0, err
    assert out.startswith(f"{tmp_path / 'a.png'}: completed (id ")
    assert sum(" -> " in c for c in api.calls) == 5 and len(api.puts) == 1


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.png", "no such file"),
    (lambda d: d, "is a directory"),
    (lambda d: sized(d / "file.png", 10) / "inside", "cannot be read"),
])
def test_file_problems_exit_2_before_anything_is_sent(api, tmp_path, make, message):
    fine = sized(tmp_path / "fine.png", 100)
    code, out, err = run([fine, make(tmp_path)], api.url, out=tmp_path / "out")
    assert code == 2 and message in err and err.startswith("error: ")
    assert out == "" and api.calls == [] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("limit", [MAX_UPLOAD_BYTES, 5_000])
def test_a_file_over_the_stages_limit_exits_2_before_anything_is_uploaded(api, tmp_path, limit):
    """The stage's own limit, from its /config.json: the default one, or a smaller one."""
    api.max_upload_bytes = limit
    fine, big = sized(tmp_path / "fine.png", 100), sized(tmp_path / "big.png", limit + 1)
    code, out, err = run([fine, big], api.url, out=tmp_path / "out")
    assert code == 2 and out == "" and not (tmp_path / "out").exists()
    assert err == f"error: {big}: {limit + 1:,} bytes is over the stage's limit of {limit:,} bytes\n"
    assert "GET /config.json" in api.calls and "POST /images" not in api.calls and api.puts == []


def test_without_a_published_limit_the_apis_413_fails_the_file(api, tmp_path):
    api.max_upload_bytes, api.publishes_limit = 5_000, False
    fine, big = sized(tmp_path / "fine.png", 5_000), sized(tmp_path / "big.png", 5_001)
    code, out, _ = run([fine, big], api.url, out=tmp_path / "thumbs", as_json=True)
    assert code == 1
    outcomes = {Path(o["file"]).name: o for o in map(json.loads, out.splitlines())}
    assert outcomes["fine.png"]["status"] == "completed"
    assert outcomes["big.png"]["error"] == {"code": "file_too_large",
                                            "message": "fileSize 5001 is over the limit of 5000 bytes"}
    assert [p.received for p in api.puts] == [5_000]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_exits_2(api, tmp_path):
    locked = sized(tmp_path / "locked.png", 100)
    locked.chmod(0)
    code, _, err = run([locked], api.url)
    assert code == 2 and "cannot be read" in err and api.calls == []


def test_a_refused_token_exits_2_before_any_upload(api, tmp_path):
    code, out, err = run([sized(tmp_path / "a.png", 100)], api.url, token="forged")
    assert code == 2 and "401 unauthorized" in err and "THUMBGEN_TOKEN" in err
    assert out == "" and api.puts == [] and "POST /images" not in api.calls


def test_no_api_reachable_exits_2(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = run([sized(tmp_path / "a.png", 100)], url)
    assert code == 2 and f"no API reachable at {url}" in err and out == ""


@pytest.mark.parametrize("argv", [["upload"], ["upload", "--bogus", "a.png"], ["upload", "a.png", "--timeout", "soon"]])
def test_bad_usage_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2 and "usage: thumbgen upload" in capsys.readouterr().err


def test_help_explains_sign_in_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["upload", "--help"])
    text = capsys.readouterr().out
    assert exited.value.code == 0
    for words in ("THUMBGEN_TOKEN", "THUMBGEN_API_URL", "exit codes", "the stage's size limit", "MAX_UPLOAD_BYTES",
                  "/config.json", "--json", "--out DIR"):
        assert words in text


def test_files_with_the_same_stem_get_their_own_directories(tmp_path):
    dirs = output_dirs([Path("a/cat.jpg"), Path("b/cat.png"), Path("cat-2.jpg"), Path("dog.jpg")], tmp_path)
    assert [d.name for d in dirs] == ["cat", "cat-2", "cat-2-2", "dog"]


def test_renditions_are_asked_for_and_saved_under_their_names(api, tmp_path):
    api.names = ["800x600-contain.webp", "400x400-attention.avif", "120x120.png"]
    specs = ["800x600,fit=contain,format=webp", "400x400,gravity=attention,format=avif", "120x120"]
    code, out, err = run([sized(tmp_path / "cat.png", 100)], api.url, out=tmp_path / "thumbs",
                         renditions=[parse_rendition(s) for s in specs])
    assert code == 0, err
    assert api.bodies[0]["renditions"] == [
        {"width": 800, "height": 600, "fit": "contain", "format": "webp"},
        {"width": 400, "height": 400, "gravity": "attention", "format": "avif"}, {"width": 120, "height": 120}]
    assert sorted(p.name for p in (tmp_path / "thumbs" / "cat").iterdir()) == sorted(api.names)
    assert "800x600-contain.webp 400x400-attention.avif 120x120.png" in out


@pytest.mark.parametrize("specs, message", [
    (["400x300", "400x300"], "--rendition[1] asks for the same thumbnail as --rendition[0]"),
    ([f"{n}x{n}" for n in range(1, 10)], "--rendition has 9 entries"),
    (specs(over_output_budget()), f"the limit is {MAX_OUTPUT_PIXELS:,}"),
])
def test_renditions_the_api_would_refuse_exit_2_before_anything_is_sent(api, tmp_path, specs, message):
    code, out, err = run([sized(tmp_path / "a.png", 100)], api.url, renditions=[parse_rendition(s) for s in specs])
    assert code == 2 and message in err and out == "" and api.calls == []


def test_a_malformed_rendition_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["upload", "a.png", "--rendition", "800x600,fit=stretch"])
    assert exited.value.code == 2 and "fit" in capsys.readouterr().err
