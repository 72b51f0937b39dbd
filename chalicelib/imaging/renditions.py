"""What a client may ask the engine for: a rendition, its output format and its stable name.

Pure values shared by the request parser (POST /images), the record, the engine and the
clients. A rendition is fully described by a `Rendition` value; `source` stays a format
until the upload's real type is known (sniffed from the bytes), and `resolve_format` turns
it into jpeg or png then. Names follow one rule (`name`), so a client can predict them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

FITS = ("cover", "contain", "inside")
GRAVITIES = ("center", "attention", "entropy")
FORMATS = ("source", "jpeg", "png", "webp", "avif")
MIN_SIDE, MAX_SIDE = 1, 2048
MIN_RENDITIONS, MAX_RENDITIONS = 1, 8
FOCUS_DECIMALS = 3  # a focal point is kept to 0.001 of the side (2 px at 2048)

EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "avif": "avif"}
CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "avif": "image/avif"}
SOURCE_FORMATS = {"image/jpeg": "jpeg", "image/png": "png"}
HAS_ALPHA = frozenset({"png", "webp", "avif"})
QUALITY_FORMATS = frozenset({"jpeg", "webp", "avif"})

# Quality when a rendition names none (docs/engine.md shows how each was chosen): WebP
# and AVIF at the quality whose SSIM matches the JPEG default's on the benchmark corpus.
DEFAULT_QUALITY = {"jpeg": 85, "webp": 87, "avif": 71}

# The work one request may ask for (docs/api.md "Renditions"): set by measurement so the
# worst accepted request renders well inside the resize timeout (docs/engine.md "Work
# budget": 18.2 s of the 60 s on one CPU, 840 MB peak, `python -m bench.engine --budget`).
MAX_OUTPUT_PIXELS = 4 * 2048 * 2048  # the sum of width x height over the request's renditions
MAX_AVIF_PIXELS = 2048 * 2048  # the same sum over its AVIF renditions alone


@dataclass(frozen=True)
class Rendition:
    """One thumbnail to make. Defaults are the original challenge's: cover, centre, source."""

    width: int
    height: int
    fit: str = "cover"
    gravity: str = "center"
    focus: tuple[float, float] | None = None  # (x, y), each 0-1; cover with centre gravity only
    format: str = "source"
    quality: int | None = None  # 1-100; None: DEFAULT_QUALITY of the output format
    background: str | None = None  # "#rrggbb", lower case

    def to_item(self) -> dict[str, Any]:
        """The request form (camelCase JSON; defaults left out), as stored and shown."""
        item: dict[str, Any] = {"width": self.width, "height": self.height}
        if self.fit != "cover":
            item["fit"] = self.fit
        if self.gravity != "center":
            item["gravity"] = self.gravity
        if self.focus is not None:
            item["focus"] = {"x": self.focus[0], "y": self.focus[1]}
        if self.format != "source":
            item["format"] = self.format
        if self.quality is not None:
            item["quality"] = self.quality
        if self.background is not None:
            item["background"] = self.background
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> "Rendition":
        """Back from to_item (trusted: our own record). Numbers may be DynamoDB's."""
        focus = item.get("focus")
        return cls(
            width=int(item["width"]), height=int(item["height"]), fit=str(item.get("fit", "cover")),
            gravity=str(item.get("gravity", "center")),
            focus=(float(focus["x"]), float(focus["y"])) if focus else None,
            format=str(item.get("format", "source")),
            quality=int(item["quality"]) if item.get("quality") is not None else None,
            background=item.get("background"),
        )


DEFAULT_RENDITIONS: tuple[Rendition, ...] = (Rendition(400, 300), Rendition(160, 120), Rendition(120, 120))


def resolve_format(rendition: Rendition, source_content_type: str) -> str:
    """The output format: jpeg, png, webp or avif (`source` follows the upload's real type)."""
    if rendition.format == "source":
        return SOURCE_FORMATS[source_content_type]
    return rendition.format


def quality_of(rendition: Rendition, output_format: str) -> int | None:
    """The encoder quality used (None for PNG, which is lossless)."""
    if output_format not in QUALITY_FORMATS:
        return None
    return rendition.quality if rendition.quality is not None else DEFAULT_QUALITY[output_format]


def _number(value: float) -> str:
    return f"{value:.{FOCUS_DECIMALS}f}".rstrip("0").rstrip(".") or "0"


def base_name(rendition: Rendition) -> str:
    """`{w}x{h}`, then a suffix for each field that is not its default, in a fixed order:
    -contain / -inside, -attention / -entropy, -focus-<x>-<y>, -q<quality>, -bg<rrggbb>."""
    parts = [f"{rendition.width}x{rendition.height}"]
    if rendition.fit != "cover":
        parts.append(rendition.fit)
    if rendition.gravity != "center":
        parts.append(rendition.gravity)
    if rendition.focus is not None:
        parts.append(f"focus-{_number(rendition.focus[0])}-{_number(rendition.focus[1])}")
    if rendition.quality is not None:
        parts.append(f"q{rendition.quality}")
    if rendition.background is not None:
        parts.append(f"bg{rendition.background.lstrip('#').lower()}")
    return "-".join(parts)


def names(renditions: Iterable[Rendition], source_content_type: str) -> list[str]:
    """The object name of each rendition, in order: base_name + "." + extension.

    Two entries can only end with the same name when an explicit format equals what
    `source` became (a PNG declared, a JPEG uploaded); the later one then gets -2, -3...
    before its extension, so names stay unique within the image.
    """
    taken: set[str] = set()
    result = []
    for rendition in renditions:
        base = base_name(rendition)
        extension = EXTENSIONS[resolve_format(rendition, source_content_type)]
        name, n = f"{base}.{extension}", 1
        while name in taken:
            n += 1
            name = f"{base}-{n}.{extension}"
        taken.add(name)
        result.append(name)
    return result
