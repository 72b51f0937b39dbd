"""Rendition requests just over the work budget, whatever it is set to (MAX_OUTPUT_PIXELS and
MAX_AVIF_PIXELS in chalicelib/imaging/renditions.py are set by measurement): distinct entries of the
largest box, one more than the budget holds."""
from __future__ import annotations

from chalicelib.imaging.renditions import MAX_AVIF_PIXELS, MAX_OUTPUT_PIXELS, MAX_RENDITIONS, MAX_SIDE

BOX = MAX_SIDE * MAX_SIDE
_VARIANTS = ({}, {"fit": "contain"}, {"fit": "inside"}, {"format": "webp"}, {"format": "png"},
             {"format": "jpeg", "quality": 50}, {"gravity": "entropy"}, {"gravity": "attention"})
_AVIF = tuple({"format": "avif", "quality": q} for q in (None, 10, 20, 30, 40, 50, 60, 70))


def _largest(variants, count: int) -> list[dict]:
    assert count <= MAX_RENDITIONS, "the budget holds every request: nothing is over it"
    return [{"width": MAX_SIDE, "height": MAX_SIDE, **{k: v for k, v in variant.items() if v is not None}}
            for variant in variants[:count]]


def over_output_budget() -> list[dict]:
    """The sum of width x height just over MAX_OUTPUT_PIXELS."""
    return _largest(_VARIANTS, MAX_OUTPUT_PIXELS // BOX + 1)


def over_avif_budget() -> list[dict]:
    """AVIF entries whose sum is just over MAX_AVIF_PIXELS (the total within MAX_OUTPUT_PIXELS)."""
    entries = _largest(_AVIF, MAX_AVIF_PIXELS // BOX + 1)
    assert len(entries) * BOX <= MAX_OUTPUT_PIXELS
    return entries


def specs(entries: list[dict]) -> list[str]:
    """The same entries as `--rendition` specs of the command line."""
    return [",".join([f"{e['width']}x{e['height']}"] + [f"{k}={v}" for k, v in e.items() if k not in ("width", "height")])
            for e in entries]
