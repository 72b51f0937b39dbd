"""`renditions` as a client sends them (POST /images) or a stage sets them (DEFAULT_RENDITIONS):
JSON in, `Rendition` values out, or InvalidRenditions naming the first field at fault.

The checks run in the order of docs/api.md ("Renditions"): the list, then each entry's
fields in table order, then entries asking for the same thumbnail, then the work budget.
"""
from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any, Iterable, Sequence

from chalicelib.imaging.renditions import (
    FITS,
    FOCUS_DECIMALS,
    FORMATS,
    GRAVITIES,
    MAX_AVIF_PIXELS,
    MAX_OUTPUT_PIXELS,
    MAX_RENDITIONS,
    MAX_SIDE,
    MIN_RENDITIONS,
    MIN_SIDE,
    SOURCE_FORMATS,
    Rendition,
    resolve_format,
)

FIELDS = ("width", "height", "fit", "gravity", "focus", "format", "quality", "background")
MIN_QUALITY, MAX_QUALITY = 1, 100
BACKGROUND_PATTERN = "#[0-9A-Fa-f]{6}"  # openapi.yaml's Rendition.background is "^" + this + "$"
_BACKGROUND = re.compile(BACKGROUND_PATTERN)


class InvalidRenditions(ValueError):
    """`field` (e.g. "renditions[2].fit") is what to fix; the message starts with it."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field} {problem}")
        self.field = field


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _one_of(value: Any, choices: Sequence[str], field: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise InvalidRenditions(field, f"must be one of {', '.join(choices)}")
    return value


def _side(entry: dict[str, Any], name: str, field: str) -> int:
    if name not in entry:
        raise InvalidRenditions(f"{field}.{name}", "is required")
    value = entry[name]
    if not _is_int(value):
        raise InvalidRenditions(f"{field}.{name}", "must be an integer number of pixels")
    if not MIN_SIDE <= value <= MAX_SIDE:
        raise InvalidRenditions(f"{field}.{name}", f"must be {MIN_SIDE} to {MAX_SIDE} pixels, not {value}")
    return value


def _focus(value: Any, field: str) -> tuple[float, float]:
    if not isinstance(value, dict):
        raise InvalidRenditions(field, 'must be an object {"x": 0-1, "y": 0-1}')
    for key in value:
        if key not in ("x", "y"):
            raise InvalidRenditions(f"{field}.{key}", "is not a field of focus (x, y)")
    point = []
    for axis in ("x", "y"):
        if axis not in value:
            raise InvalidRenditions(f"{field}.{axis}", "is required")
        number = value[axis]
        if not _is_number(number) or not math.isfinite(number) or not 0 <= number <= 1:
            raise InvalidRenditions(f"{field}.{axis}", "must be a number from 0 to 1")
        point.append(round(float(number), FOCUS_DECIMALS))
    return point[0], point[1]


def parse_entry(entry: Any, field: str) -> Rendition:
    """One entry: its fields in table order, then the rules between them."""
    if not isinstance(entry, dict):
        raise InvalidRenditions(field, "must be an object with width and height")
    for name in entry:
        if name not in FIELDS:
            raise InvalidRenditions(f"{field}.{name}", f"is not a field of a rendition ({', '.join(FIELDS)})")
    width, height = _side(entry, "width", field), _side(entry, "height", field)
    fit = _one_of(entry.get("fit", "cover"), FITS, f"{field}.fit")
    gravity = _one_of(entry.get("gravity", "center"), GRAVITIES, f"{field}.gravity")
    focus = _focus(entry["focus"], f"{field}.focus") if "focus" in entry else None
    output = _one_of(entry.get("format", "source"), FORMATS, f"{field}.format")
    quality = entry.get("quality")
    if "quality" in entry and (not _is_int(quality) or not MIN_QUALITY <= quality <= MAX_QUALITY):
        raise InvalidRenditions(f"{field}.quality", f"must be an integer from {MIN_QUALITY} to {MAX_QUALITY}")
    background = entry.get("background")
    if "background" in entry and (not isinstance(background, str) or not _BACKGROUND.fullmatch(background)):
        raise InvalidRenditions(f"{field}.background", 'must be a colour "#rrggbb"')

    if gravity != "center" and fit != "cover":
        raise InvalidRenditions(f"{field}.gravity", f"{gravity} applies to fit cover only, not {fit}")
    if focus is not None and fit != "cover":
        raise InvalidRenditions(f"{field}.focus", f"applies to fit cover only, not {fit}")
    if focus is not None and gravity != "center":
        raise InvalidRenditions(f"{field}.focus", f"cannot be combined with gravity {gravity}")
    if quality is not None and output == "png":
        raise InvalidRenditions(f"{field}.quality", "does not apply to png, which is lossless")
    return Rendition(width=width, height=height, fit=fit, gravity=gravity, focus=focus, format=output,
                     quality=quality, background=background.lower() if background is not None else None)


def parse_renditions(value: Any, *, source_types: Iterable[str], field: str = "renditions") -> tuple[Rendition, ...]:
    """The whole list. `source_types`: what `source` may become, for the equality check (the
    declared contentType of a request; both types for a stage's default; none: entries are
    compared as written)."""
    if not isinstance(value, list):
        raise InvalidRenditions(field, f"must be an array of {MIN_RENDITIONS} to {MAX_RENDITIONS} renditions")
    if not MIN_RENDITIONS <= len(value) <= MAX_RENDITIONS:
        raise InvalidRenditions(field, f"has {len(value)} entries; {MIN_RENDITIONS} to {MAX_RENDITIONS} are allowed")
    renditions = tuple(parse_entry(entry, f"{field}[{i}]") for i, entry in enumerate(value))
    _refuse_equal_entries(renditions, source_types, field)
    _refuse_over_budget(renditions, field)
    return renditions


def _refuse_equal_entries(renditions: Sequence[Rendition], source_types: Iterable[str], field: str) -> None:
    for source_type in tuple(source_types) or (None,):
        seen: dict[Rendition, int] = {}
        for i, rendition in enumerate(renditions):
            made = replace(rendition, format=resolve_format(rendition, source_type)) if source_type else rendition
            if made in seen:
                first = seen[made]
                why = ""
                if source_type and "source" in (rendition.format, renditions[first].format):
                    why = f" (source is {SOURCE_FORMATS[source_type]} for {source_type})"
                raise InvalidRenditions(f"{field}[{i}]", f"asks for the same thumbnail as {field}[{first}]{why}")
            seen[made] = i


def pixels(renditions: Iterable[Rendition]) -> int:
    """The work a list asks for: the sum of width x height (the boxes, whatever the fit)."""
    return sum(r.width * r.height for r in renditions)


def _refuse_over_budget(renditions: Sequence[Rendition], field: str) -> None:
    total = pixels(renditions)
    if total > MAX_OUTPUT_PIXELS:
        raise InvalidRenditions(field, f"ask for {total:,} pixels in all (the sum of width x height); "
                                       f"the limit is {MAX_OUTPUT_PIXELS:,}")
    avif = pixels(r for r in renditions if r.format == "avif")
    if avif > MAX_AVIF_PIXELS:
        raise InvalidRenditions(field, f"ask for {avif:,} AVIF pixels (the sum of width x height of the avif "
                                       f"entries); the limit is {MAX_AVIF_PIXELS:,}")
