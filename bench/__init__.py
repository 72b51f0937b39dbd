"""Benchmarks: `python -m bench.engine` (the image engine against libvips)."""
