"""openapi.yaml documents exactly the routes app.py serves."""
from __future__ import annotations

from pathlib import Path

import yaml

from app import app

ROOT = Path(__file__).resolve().parents[2]


def test_openapi_paths_match_the_app_routes():
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    documented = {(path.replace("{id}", "{image_id}"), method.upper())
                  for path, ops in spec["paths"].items() for method in ops}
    served = {(path, method) for path, entries in app.routes.items() for method in entries}
    assert documented == served
