"""Rendition values: the stored form round-trips, formats resolve, names follow the rule."""
from chalicelib.imaging.renditions import (
    DEFAULT_RENDITIONS,
    Rendition,
    base_name,
    names,
    quality_of,
    resolve_format,
)


def test_defaults_are_the_three_original_sizes():
    assert [(r.width, r.height) for r in DEFAULT_RENDITIONS] == [(400, 300), (160, 120), (120, 120)]
    assert names(DEFAULT_RENDITIONS, "image/jpeg") == ["400x300.jpg", "160x120.jpg", "120x120.jpg"]
    assert names(DEFAULT_RENDITIONS, "image/png") == ["400x300.png", "160x120.png", "120x120.png"]


def test_item_round_trip_leaves_defaults_out():
    full = Rendition(800, 600, fit="cover", gravity="center", focus=(0.25, 0.7), format="webp",
                     quality=70, background="#ffeedd")
    assert Rendition.from_item(full.to_item()) == full
    assert Rendition(10, 20).to_item() == {"width": 10, "height": 20}
    assert Rendition.from_item({"width": 10, "height": 20}) == Rendition(10, 20)


def test_source_follows_the_real_type_and_explicit_formats_stay():
    assert resolve_format(Rendition(1, 1), "image/png") == "png"
    assert resolve_format(Rendition(1, 1), "image/jpeg") == "jpeg"
    assert resolve_format(Rendition(1, 1, format="avif"), "image/png") == "avif"


def test_quality_defaults_per_format_and_none_for_png():
    assert quality_of(Rendition(1, 1), "png") is None
    assert quality_of(Rendition(1, 1, quality=40), "png") is None
    assert quality_of(Rendition(1, 1, quality=40), "webp") == 40
    assert quality_of(Rendition(1, 1), "jpeg") == 85


def test_suffixes_name_every_non_default_field_in_a_fixed_order():
    assert base_name(Rendition(800, 600, fit="contain")) == "800x600-contain"
    assert base_name(Rendition(400, 400, gravity="attention")) == "400x400-attention"
    assert base_name(Rendition(400, 400, focus=(0.25, 1.0))) == "400x400-focus-0.25-1"
    assert base_name(Rendition(400, 400, focus=(0.0, 0.125))) == "400x400-focus-0-0.125"
    assert base_name(Rendition(50, 50, fit="inside", quality=30, background="#AABBCC")) == "50x50-inside-q30-bgaabbcc"


def test_an_explicit_format_equal_to_the_source_gets_a_counter():
    both = [Rendition(400, 300), Rendition(400, 300, format="jpeg"), Rendition(400, 300, format="webp")]
    assert names(both, "image/jpeg") == ["400x300.jpg", "400x300-2.jpg", "400x300.webp"]
    assert names(both, "image/png") == ["400x300.png", "400x300.jpg", "400x300.webp"]
