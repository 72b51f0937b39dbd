"""Pixels: bytes in, renditions out, and the rules a rendition request must follow.

Pure code with no AWS and no settings: the engine (Pillow, with libvips for smart crop),
the `Rendition` value and its limits, the ThumbHash placeholder. `thumbgen render` and the
benchmarks use it alone.
"""
