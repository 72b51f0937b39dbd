"""`thumbgen upload` as a user runs it, a subprocess against the embedded stack."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.e2e.conftest import ROOT
from tests.imagegen import make_jpeg, make_png
from thumbgen.client import ThumbgenClient

SIZES = {"400x300", "160x120", "120x120"}


def thumbgen_upload(stack, *args, token: str | None, cwd: Path, extra_env: dict | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("THUMBGEN_")}
    env.update({"AWS_PORT": stack.aws_url.rsplit(":", 1)[1], "API_PORT": stack.api_url.rsplit(":", 1)[1],
                "PYTHONPATH": str(ROOT), **(extra_env or {})})
    if token is not None:
        env["THUMBGEN_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "thumbgen.cli", "upload", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def images(directory: Path) -> tuple[Path, Path, Path, Path]:
    jpeg, png = directory / "cat.jpg", directory / "logo.png"
    jpeg.write_bytes(make_jpeg(1600, 1200))
    png.write_bytes(make_png(800, 600, mode="RGBA"))
    text, fake = directory / "notes.txt", directory / "fake.jpg"
    text.write_text("not an image\n")
    fake.write_text("not an image either\n")
    return jpeg, png, text, fake


def saved(directory: Path) -> dict[str, tuple[str, tuple[int, int]]]:
    found = {}
    for path in directory.iterdir():
        with Image.open(path) as image:
            found[path.stem] = (image.format, image.size)
    return found


def test_images_and_non_images_together(stack, tmp_path):
    jpeg, png, text, fake = images(tmp_path)
    result = thumbgen_upload(stack, jpeg, png, text, fake, "--out", tmp_path / "thumbs",
                             token=stack.token("e2e-cli"), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert saved(tmp_path / "thumbs" / "cat") == {"400x300": ("JPEG", (400, 300)), "160x120": ("JPEG", (160, 120)),
                                                  "120x120": ("JPEG", (120, 120))}
    assert saved(tmp_path / "thumbs" / "logo") == {"400x300": ("PNG", (400, 300)), "160x120": ("PNG", (160, 120)),
                                                   "120x120": ("PNG", (120, 120))}
    assert sorted(p.name for p in (tmp_path / "thumbs").iterdir()) == ["cat", "logo"]
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert lines[str(jpeg)].startswith("completed (id ") and lines[str(png)].startswith("completed (id ")
    assert lines[str(text)].startswith("failed: unsupported_media_type: ")  # refused by POST /images
    assert lines[str(fake)].startswith("failed (id ") and ": unsupported_format: " in lines[str(fake)]
    assert "\x1b" not in result.stderr and f"{jpeg.name}: 100% of" in result.stderr  # piped: plain lines


def test_json_output_parses(stack, tmp_path):
    jpeg, _, text, _ = images(tmp_path)
    token = stack.token("e2e-cli-json")
    result = thumbgen_upload(stack, jpeg, text, "--json", "--out", "out", token=token, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    done, refused = (json.loads(line) for line in result.stdout.splitlines())
    assert done["file"] == str(jpeg) and done["status"] == "completed" and done["error"] is None
    assert {Path(p).stem for p in done["thumbnails"]} == SIZES
    assert all((tmp_path / p).is_file() for p in done["thumbnails"])
    assert ThumbgenClient(stack.api_url, token).get(done["id"])["status"] == "completed"
    assert refused["status"] == "failed" and refused["error"]["code"] == "unsupported_media_type"
    assert refused["id"] is None and refused["thumbnails"] == []


def test_a_bad_token_exits_2(stack, tmp_path):
    jpeg, *_ = images(tmp_path)
    result = thumbgen_upload(stack, jpeg, token="not.a.token", cwd=tmp_path)
    assert result.returncode == 2
    assert "401 unauthorized" in result.stderr and "THUMBGEN_TOKEN" in result.stderr
    assert result.stdout == "" and not (tmp_path / "cat").exists()


def test_without_a_token_it_signs_in_as_the_local_demo_user(stack, tmp_path):
    jpeg, png, *_ = images(tmp_path)
    # as a user of `make run` would: the demo password it was started with, no token
    result = thumbgen_upload(stack, jpeg, png, "--json", token=None, cwd=tmp_path,
                             extra_env={"THUMBGEN_DEMO_PASSWORD": stack.demo_password})  # default --out: here
    assert result.returncode == 0, result.stderr
    outcomes = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["status"] for o in outcomes] == ["completed", "completed"]
    assert {p.stem for p in (tmp_path / "cat").iterdir()} == SIZES
    assert {p.stem for p in (tmp_path / "logo").iterdir()} == SIZES
    demo = ThumbgenClient(stack.api_url, stack.token("demo"))
    assert {o["id"] for o in outcomes} <= {image["id"] for image in demo.list()}
