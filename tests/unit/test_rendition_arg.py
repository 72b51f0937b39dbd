"""The command line's --rendition syntax (thumbgen/rendition_arg.py) and `thumbgen render`
with it."""
from __future__ import annotations

import pytest

from chalicelib.imaging.engine import render
from chalicelib.imaging.renditions import Rendition
from tests.imagegen import cached_jpeg
from thumbgen.cli import main
from thumbgen.rendition_arg import parse_rendition


@pytest.mark.parametrize(("text", "expected"), [
    ("400x300", Rendition(400, 300)),
    ("800X600,fit=contain,format=webp", Rendition(800, 600, fit="contain", format="webp")),
    (" 400x400 , gravity=Attention , format=AVIF ", Rendition(400, 400, gravity="attention", format="avif")),
    ("300x200,focus=0.25:1", Rendition(300, 200, focus=(0.25, 1.0))),
    ("300x200,focus=0.12345:0", Rendition(300, 200, focus=(0.123, 0.0))),
    ("50x50,fit=inside,quality=30,background=AABBCC", Rendition(50, 50, fit="inside", quality=30, background="#aabbcc")),
    ("1x2048,background=#000000,format=jpeg", Rendition(1, 2048, background="#000000", format="jpeg")),
])
def test_parses(text, expected):
    assert parse_rendition(text) == expected


@pytest.mark.parametrize(("text", "field"), [
    ("400", "WIDTHxHEIGHT"), ("0x10", "width"), ("10x2049", "height"), ("10x10,fit=fill", "fit"),
    ("10x10,gravity=north", "gravity"), ("10x10,format=gif", "format"), ("10x10,quality=0", "quality"),
    ("10x10,quality=high", "quality"), ("10x10,format=png,quality=50", "quality"),
    ("10x10,background=red", "background"), ("10x10,focus=0.5", "focus"), ("10x10,focus=2:0", "focus"),
    ("10x10,fit=contain,focus=0.5:0.5", "focus"), ("10x10,gravity=entropy,focus=0.5:0.5", "focus"),
    ("10x10,fit=inside,gravity=attention", "gravity"), ("10x10,size=3", "expected one of"),
    ("10x10,fit=cover,fit=contain", "fit given twice"), ("10x10,fit", "expected one of"),
])
def test_refuses_naming_the_field(text, field):
    with pytest.raises(ValueError, match=field):
        parse_rendition(text)


def test_render_command_writes_each_rendition_under_its_name(tmp_path, capsys):
    photo = tmp_path / "cat.jpg"
    photo.write_bytes(cached_jpeg(640, 480))
    out = tmp_path / "out"
    code = main(["render", str(photo), "--out", str(out), "--rendition", "200x200,gravity=attention,format=webp",
                 "--rendition", "300x300,fit=contain,format=png", "--rendition", "100x100"])
    assert code == 0
    expected = render(photo.read_bytes(), [Rendition(200, 200, gravity="attention", format="webp"),
                                           Rendition(300, 300, fit="contain", format="png"), Rendition(100, 100)])
    for r in expected.renditions:
        assert (out / "cat" / r.name).read_bytes() == r.data
    assert sorted(p.name for p in (out / "cat").iterdir()) == ["100x100.jpg", "200x200-attention.webp",
                                                              "300x300-contain.png"]
    assert expected.placeholder in capsys.readouterr().out


def test_render_command_refuses_a_bad_or_repeated_rendition(tmp_path, capsys):
    photo = tmp_path / "cat.jpg"
    photo.write_bytes(cached_jpeg(64, 48))
    with pytest.raises(SystemExit) as caught:
        main(["render", str(photo), "--out", str(tmp_path), "--rendition", "10x10,fit=fill"])
    assert caught.value.code == 2 and "fit 'fill'" in capsys.readouterr().err
    assert main(["render", str(photo), "--out", str(tmp_path), "--rendition", "10x10",
                 "--rendition", "10x10,fit=cover"]) == 2
    assert "equal" in capsys.readouterr().out
