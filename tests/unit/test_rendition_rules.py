"""`renditions` of POST /images and DEFAULT_RENDITIONS: values out, or a refusal naming the field."""
from __future__ import annotations

import json

import pytest

from chalicelib.imaging.rendition_rules import InvalidRenditions, parse_renditions
from chalicelib.imaging.renditions import (
    DEFAULT_RENDITIONS,
    MAX_AVIF_PIXELS,
    MAX_OUTPUT_PIXELS,
    MAX_SIDE,
    Rendition,
)
from chalicelib.platform.config import ConfigError, Settings
from tests.budget import BOX, over_avif_budget, over_output_budget


def parse(value, content_type="image/jpeg"):
    return parse_renditions(value, source_types=(content_type,))


def refused(value, content_type="image/jpeg") -> InvalidRenditions:
    with pytest.raises(InvalidRenditions) as caught:
        parse(value, content_type)
    assert str(caught.value).startswith(caught.value.field + " ")  # the message starts with the field
    return caught.value


def test_only_width_and_height_take_every_default():
    assert parse([{"width": 400, "height": 300}]) == (Rendition(400, 300),)
    assert parse([{"width": 400, "height": 300}])[0] == Rendition(400, 300, "cover", "center", None, "source")


def test_every_field_is_read_and_normalised():
    [got] = parse([{"width": 800, "height": 600, "fit": "cover", "gravity": "center",
                    "focus": {"x": 0.33333, "y": 1}, "format": "webp", "quality": 70, "background": "#AbCdEf"}])
    assert got == Rendition(800, 600, focus=(0.333, 1.0), format="webp", quality=70, background="#abcdef")


def test_a_request_of_exactly_the_budget_is_accepted():
    full = over_output_budget()[:-1]  # the budget is a whole number of the largest box
    assert sum(b["width"] * b["height"] for b in full) == MAX_OUTPUT_PIXELS
    assert len(parse(full, "image/png")) == len(full)
    assert len(parse(over_avif_budget()[:-1])) == MAX_AVIF_PIXELS // BOX


@pytest.mark.parametrize("value, field", [
    ({"width": 1, "height": 1}, "renditions"),  # an object, not an array
    ("400x300", "renditions"),
    ([], "renditions"),
    ([{"width": w, "height": 1} for w in range(1, 10)], "renditions"),  # 9 entries
    ([{"width": 1, "height": 1}, 7], "renditions[1]"),
    ([{"width": 1, "height": 1, "colour": "#ffffff"}], "renditions[0].colour"),
    ([{"height": 1}], "renditions[0].width"),
    ([{"width": 1}], "renditions[0].height"),
    ([{"width": True, "height": 1}], "renditions[0].width"),  # a bool is not an integer
    ([{"width": 1, "height": False}], "renditions[0].height"),
    ([{"width": 400.0, "height": 300}], "renditions[0].width"),
    ([{"width": "400", "height": 300}], "renditions[0].width"),
    ([{"width": 0, "height": 1}], "renditions[0].width"),
    ([{"width": MAX_SIDE + 1, "height": 1}], "renditions[0].width"),
    ([{"width": 1, "height": -5}], "renditions[0].height"),
    ([{"width": 1, "height": 1, "fit": "fill"}], "renditions[0].fit"),
    ([{"width": 1, "height": 1, "fit": None}], "renditions[0].fit"),
    ([{"width": 1, "height": 1, "gravity": "north"}], "renditions[0].gravity"),
    ([{"width": 1, "height": 1, "focus": [0.5, 0.5]}], "renditions[0].focus"),
    ([{"width": 1, "height": 1, "focus": {"x": 0.5}}], "renditions[0].focus.y"),
    ([{"width": 1, "height": 1, "focus": {"x": 0.5, "y": 0.5, "z": 1}}], "renditions[0].focus.z"),
    ([{"width": 1, "height": 1, "focus": {"x": 1.01, "y": 0.5}}], "renditions[0].focus.x"),
    ([{"width": 1, "height": 1, "focus": {"x": 0.5, "y": -0.1}}], "renditions[0].focus.y"),
    ([{"width": 1, "height": 1, "focus": {"x": True, "y": 0.5}}], "renditions[0].focus.x"),
    ([{"width": 1, "height": 1, "focus": {"x": float("nan"), "y": 0.5}}], "renditions[0].focus.x"),
    ([{"width": 1, "height": 1, "format": "gif"}], "renditions[0].format"),
    ([{"width": 1, "height": 1, "format": "JPEG"}], "renditions[0].format"),
    ([{"width": 1, "height": 1, "quality": 0}], "renditions[0].quality"),
    ([{"width": 1, "height": 1, "quality": 101}], "renditions[0].quality"),
    ([{"width": 1, "height": 1, "quality": 80.5}], "renditions[0].quality"),
    ([{"width": 1, "height": 1, "quality": True}], "renditions[0].quality"),
    ([{"width": 1, "height": 1, "background": "white"}], "renditions[0].background"),
    ([{"width": 1, "height": 1, "background": "#fff"}], "renditions[0].background"),
    ([{"width": 1, "height": 1, "background": "#ffffff\n"}], "renditions[0].background"),
])
def test_each_refusal_names_the_field(value, field):
    assert refused(value).field == field


@pytest.mark.parametrize("entry, field", [
    ({"fit": "contain", "gravity": "attention"}, "renditions[1].gravity"),
    ({"fit": "inside", "gravity": "entropy"}, "renditions[1].gravity"),
    ({"fit": "contain", "focus": {"x": 0.5, "y": 0.5}}, "renditions[1].focus"),
    ({"gravity": "attention", "focus": {"x": 0.5, "y": 0.5}}, "renditions[1].focus"),
    ({"format": "png", "quality": 80}, "renditions[1].quality"),
])
def test_fields_that_mean_nothing_together_are_refused(entry, field):
    assert refused([{"width": 9, "height": 9}, {"width": 10, "height": 10, **entry}]).field == field


@pytest.mark.parametrize("entry", [
    {"fit": "contain", "gravity": "center"},  # the default, said out loud
    {"gravity": "center", "focus": {"x": 0, "y": 1}},
    {"format": "source", "quality": 60},  # applies when the upload is a JPEG
    {"format": "avif", "quality": 1, "background": "#000000"},
])
def test_fields_that_go_together_are_accepted(entry):
    assert parse([{"width": 10, "height": 10, **entry}], "image/png")


def test_checks_run_in_table_order_within_an_entry():
    assert refused([{"width": 0, "height": 0, "fit": "nope"}]).field == "renditions[0].width"
    assert refused([{"width": 1, "height": 1, "fit": "nope", "format": "gif"}]).field == "renditions[0].fit"
    assert refused([{"width": 1, "height": 1, "unknown": 1, "fit": "nope"}]).field == "renditions[0].unknown"
    # an earlier entry's fault is reported before a later one's, and before equality or budget
    assert refused([{"width": 1, "height": 1}, {"width": 1, "height": 1}, {"width": 1}]).field == "renditions[2].height"


def test_two_entries_asking_for_the_same_thumbnail_are_refused():
    same = refused([{"width": 10, "height": 10}, {"width": 20, "height": 20}, {"width": 10, "height": 10}])
    assert same.field == "renditions[2]" and "renditions[0]" in str(same)
    # written differently, equal once defaults are filled in and focus is rounded
    assert refused([{"width": 10, "height": 10, "fit": "cover", "gravity": "center"},
                    {"width": 10, "height": 10}]).field == "renditions[1]"
    assert refused([{"width": 10, "height": 10, "focus": {"x": 0.1234, "y": 0.5}},
                    {"width": 10, "height": 10, "focus": {"x": 0.1231, "y": 0.5}}]).field == "renditions[1]"
    assert refused([{"width": 10, "height": 10, "background": "#FFFFFF"},
                    {"width": 10, "height": 10, "background": "#ffffff"}]).field == "renditions[1]"


def test_source_is_resolved_against_the_declared_type_before_comparing():
    pair = [{"width": 10, "height": 10, "format": "jpeg"}, {"width": 10, "height": 10}]
    assert "source is jpeg" in str(refused(pair, "image/jpeg"))
    assert len(parse(pair, "image/png")) == 2  # source is png there: two thumbnails
    assert refused([{"width": 10, "height": 10}, {"width": 10, "height": 10, "format": "png"}],
                   "image/png").field == "renditions[1]"


def test_entries_differing_in_any_field_are_not_equal():
    base = {"width": 10, "height": 10}
    variants = [{}, {"fit": "contain"}, {"gravity": "entropy"}, {"focus": {"x": 0.5, "y": 0.5}}, {"format": "webp"},
                {"quality": 85}, {"background": "#000000"}, {"width": 11}]
    assert len(parse([{**base, **v} for v in variants])) == 8


def test_more_work_than_the_budget_is_refused():
    over = refused(over_output_budget())
    assert over.field == "renditions" and f"{MAX_OUTPUT_PIXELS:,}" in str(over)
    assert "AVIF" not in str(over)
    over = refused(over_output_budget()[:-1] + [{"width": 1, "height": 1}])  # one pixel more is too many
    assert over.field == "renditions" and f"{MAX_OUTPUT_PIXELS:,}" in str(over)


def test_avif_has_a_budget_of_its_own():
    rows = MAX_AVIF_PIXELS // 2 // MAX_SIDE  # two AVIF entries of half the budget each
    halves = [{"width": MAX_SIDE, "height": rows, "format": "avif"},
              {"width": MAX_SIDE, "height": rows, "format": "avif", "quality": 40}]
    assert parse(halves + [{"width": MAX_SIDE, "height": MAX_SIDE, "format": "webp"}])
    over = refused([halves[0], {**halves[1], "height": rows + 1}])
    assert over.field == "renditions" and "AVIF" in str(over) and f"{MAX_AVIF_PIXELS:,}" in str(over)
    assert "AVIF" in str(refused(over_avif_budget()))


def test_the_stage_default_is_the_three_sizes_and_can_be_set():
    assert Settings.from_env({}).default_renditions == DEFAULT_RENDITIONS
    chosen = [{"width": 320, "height": 320, "format": "webp"}, {"width": 64, "height": 64, "fit": "inside"}]
    assert Settings.from_env({"DEFAULT_RENDITIONS": json.dumps(chosen)}).default_renditions == (
        Rendition(320, 320, format="webp"), Rendition(64, 64, fit="inside"))


@pytest.mark.parametrize("text, names", [
    ("not json", "DEFAULT_RENDITIONS"),
    ("[]", "DEFAULT_RENDITIONS"),
    ('[{"width": 10, "height": 10, "fit": "fill"}]', "DEFAULT_RENDITIONS[0].fit"),
    # equal for a JPEG upload (source is jpeg), so refused for the stage, which serves both types
    ('[{"width": 10, "height": 10}, {"width": 10, "height": 10, "format": "jpeg"}]', "DEFAULT_RENDITIONS[1]"),
    (json.dumps(over_output_budget()), "DEFAULT_RENDITIONS"),
])
def test_a_bad_default_stops_the_stage_naming_the_setting_and_the_field(text, names):
    with pytest.raises(ConfigError) as bad:
        Settings.from_env({"DEFAULT_RENDITIONS": text})
    assert str(bad.value).startswith("DEFAULT_RENDITIONS=") and f": {names}" in str(bad.value)


def test_the_contract_states_the_servers_own_budget_and_default_qualities():
    from pathlib import Path

    from chalicelib.imaging.renditions import DEFAULT_QUALITY

    api = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    section = api[api.index("## Renditions"):api.index("## Limits")]
    assert f"above {MAX_OUTPUT_PIXELS:,} (`MAX_OUTPUT_PIXELS`" in section
    assert f"above {MAX_AVIF_PIXELS:,} (`MAX_AVIF_PIXELS`" in section
    assert f"JPEG {DEFAULT_QUALITY['jpeg']}, WebP {DEFAULT_QUALITY['webp']}, AVIF {DEFAULT_QUALITY['avif']}" in section
