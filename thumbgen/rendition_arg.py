"""The command line's rendition syntax (`--rendition`, repeatable), shared by the commands:

    WIDTHxHEIGHT[,fit=cover|contain|inside][,gravity=center|attention|entropy]
                [,focus=X:Y][,format=source|jpeg|png|webp|avif][,quality=1-100]
                [,background=#rrggbb]

e.g. `800x600,fit=contain,format=webp` or `400x400,focus=0.3:0.25`. Each field and value
is the one `POST /images` takes in `renditions` (docs/api.md); the same limits apply, so a
spec the CLI accepts is one the API accepts.
"""
from __future__ import annotations

import argparse
import re

from chalicelib.imaging.renditions import (
    FITS,
    FOCUS_DECIMALS,
    FORMATS,
    GRAVITIES,
    MAX_SIDE,
    MIN_SIDE,
    Rendition,
)

FIELDS = ("fit", "gravity", "focus", "format", "quality", "background")
_SIZE = re.compile(r"(\d+)[xX](\d+)")
_COLOUR = re.compile(r"#?([0-9a-fA-F]{6})")


def parse_rendition(text: str) -> Rendition:
    """One spec -> a Rendition; ValueError naming the field that is wrong."""
    head, *fields = [part.strip() for part in text.strip().split(",")]
    size = _SIZE.fullmatch(head)
    if size is None:
        raise ValueError(f"{text!r}: expected WIDTHxHEIGHT first, e.g. 800x600")
    width, height = int(size.group(1)), int(size.group(2))
    for name, value in (("width", width), ("height", height)):
        if not MIN_SIDE <= value <= MAX_SIDE:
            raise ValueError(f"{name} {value}: must be {MIN_SIDE}-{MAX_SIDE}")
    given: dict[str, str] = {}
    for field in fields:
        name, sep, value = field.partition("=")
        name = name.strip().lower()
        if not sep or name not in FIELDS:
            raise ValueError(f"{field!r}: expected one of {', '.join(f + '=' for f in FIELDS)}")
        if name in given:
            raise ValueError(f"{name} given twice")
        given[name] = value.strip()
    fit = _choice("fit", given.get("fit", "cover").lower(), FITS)
    gravity = _choice("gravity", given.get("gravity", "center").lower(), GRAVITIES)
    fmt = _choice("format", given.get("format", "source").lower(), FORMATS)
    if gravity != "center" and fit != "cover":
        raise ValueError(f"gravity {gravity}: only with fit=cover")
    focus = _focus(given["focus"]) if "focus" in given else None
    if focus is not None and (fit != "cover" or gravity != "center"):
        raise ValueError("focus: only with fit=cover and gravity=center")
    quality = _quality(given["quality"]) if "quality" in given else None
    if quality is not None and fmt == "png":
        raise ValueError("quality: not for format=png (lossless)")
    background = None
    if "background" in given:
        colour = _COLOUR.fullmatch(given["background"])
        if colour is None:
            raise ValueError(f"background {given['background']!r}: expected #rrggbb")
        background = "#" + colour.group(1).lower()
    return Rendition(width, height, fit=fit, gravity=gravity, focus=focus, format=fmt, quality=quality,
                     background=background)


def rendition_type(text: str) -> Rendition:
    """argparse `type=`: a bad spec becomes a usage error (exit 2) with the reason."""
    try:
        return parse_rendition(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} {value!r}: must be one of {', '.join(allowed)}")
    return value


def _focus(value: str) -> tuple[float, float]:
    parts = value.split(":")
    try:
        x, y = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"focus {value!r}: expected X:Y, each 0-1, e.g. 0.5:0.3") from None
    if not (0 <= x <= 1 and 0 <= y <= 1):
        raise ValueError(f"focus {value!r}: X and Y must be 0-1")
    return (round(x, FOCUS_DECIMALS), round(y, FOCUS_DECIMALS))


def _quality(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 100:
        raise ValueError(f"quality {value!r}: must be an integer 1-100")
    return int(value)
