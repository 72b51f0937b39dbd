"""openapi.yaml documents exactly the routes app.py serves, and the rules its handlers apply."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import jsonschema_rs
import pytest
import yaml

from app import app
from tests.budget import over_avif_budget, over_output_budget
from chalicelib import paging, upload_request
from chalicelib.errors import ApiError
from chalicelib.webhook_urls import UnsafeWebhookUrl, UrlPolicy, check_webhook_url

ROOT = Path(__file__).resolve().parents[2]


def test_openapi_paths_match_the_app_routes():
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    documented = {(path.replace("{id}", "{image_id}"), method.upper())
                  for path, ops in spec["paths"].items() for method in ops}
    served = {(path, method) for path, entries in app.routes.items() for method in entries}
    assert documented == served


@functools.cache
def _spec() -> dict:
    return yaml.safe_load((ROOT / "openapi.yaml").read_text())


def _operations(spec: dict):
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            yield path, method, op


def test_the_filename_and_cursor_rules_are_the_servers_own_patterns():
    spec = _spec()
    filename = spec["components"]["schemas"]["CreateImage"]["properties"]["filename"]
    assert filename["pattern"] == f"^{upload_request.FILENAME_PATTERN}$"
    assert filename["maxLength"] == upload_request.MAX_FILENAME_LENGTH
    [cursor] = [p for p in spec["paths"]["/images"]["get"]["parameters"] if p["name"] == "cursor"]
    assert cursor["schema"]["pattern"] == f"^{paging.CURSOR_PATTERN}$"
    assert cursor["schema"]["maxLength"] == paging.MAX_CURSOR_LENGTH


# Python's isspace()/strip() and ECMA-262's \s disagree on U+001C-U+001F, U+0085 and U+FEFF;
# Rust's regex (jsonschema_rs, which Schemathesis validates with) has its own \s. Both
# sides must decide every one of these alike.
EDGE_CHARACTERS = (
    [chr(c) for c in range(0x00, 0x21)] + [chr(c) for c in range(0x7E, 0xA1)]
    + list("\u1680\u180e\u2000\u2001\u200a\u200b\u200c\u200d\u2028\u2029\u202f\u205f\u2060\u3000\ufeff")
    + ["é", "\U0001f408"]
)


def _server_accepts_filename(filename: str) -> bool:
    body = json.dumps({"filename": filename, "contentType": "image/png", "fileSize": 1})
    try:
        upload_request.parse_upload_request(body, max_upload_bytes=10, url_policy=UrlPolicy())
    except ApiError as refused:
        assert refused.status == 400
        return False
    return True


@pytest.mark.parametrize("character", EDGE_CHARACTERS, ids=lambda c: f"U+{ord(c):04X}")
def test_server_and_schema_agree_on_every_edge_character_of_a_filename(character):
    schema = jsonschema_rs.Draft4Validator(_spec()["components"]["schemas"]["CreateImage"]["properties"]["filename"])
    for filename in (character, character * 3, f"a{character}", f"{character}a", f"a{character}b"):
        assert _server_accepts_filename(filename) == schema.is_valid(filename), repr(filename)


def test_filename_length_is_counted_in_code_points_on_both_sides():
    schema = jsonschema_rs.Draft4Validator(_spec()["components"]["schemas"]["CreateImage"]["properties"]["filename"])
    for filename, allowed in (("\U0001f408" * 255, True), ("\U0001f408" * 256, False), ("x" * 256, False)):
        assert _server_accepts_filename(filename) == schema.is_valid(filename) == allowed


def test_a_created_image_links_to_the_operations_on_it():
    spec = _spec()
    by_id = {op.get("operationId"): (path, method) for path, method, op in _operations(spec)}
    links = spec["paths"]["/images"]["post"]["responses"]["201"]["links"]
    targets = {by_id[link["operationId"]] for link in links.values()}
    assert targets == {("/images/{id}", "get"), ("/images/{id}", "delete"),
                       ("/images/{id}/complete", "post"), ("/images/{id}/webhook/redeliver", "post")}
    assert all(link["parameters"] == {"id": "$response.body#/id"} for link in links.values())


def test_every_authenticated_operation_documents_401_and_503_with_their_headers():
    spec = _spec()
    responses = spec["components"]["responses"]
    assert responses["Unauthorized"]["headers"]["WWW-Authenticate"]["required"] is True
    assert responses["Unavailable"]["headers"]["Retry-After"]["required"] is True
    for path, method, op in _operations(spec):
        if op.get("security", spec["security"]):
            assert op["responses"]["401"] == {"$ref": "#/components/responses/Unauthorized"}, (method, path)
            assert op["responses"]["503"] == {"$ref": "#/components/responses/Unavailable"}, (method, path)


def test_a_null_webhook_url_is_documented_as_no_webhook():
    webhook_url = _spec()["components"]["schemas"]["CreateImage"]["properties"]["webhookUrl"]
    assert webhook_url["nullable"] is True
    request = upload_request.parse_upload_request(
        json.dumps({"filename": "a.png", "contentType": "image/png", "fileSize": 1, "webhookUrl": None}),
        max_upload_bytes=10, url_policy=UrlPolicy())
    assert request.webhook_url is None


WEBHOOK_URLS = [
    "https://hooks.example.com/thumbgen", "HTTP://EXAMPLE.COM", "http://a:65535/x?y=1#z", "http://a:/",
    "http://[::1]:8080/h", "http://a/%41%e2%82%AC", "http://a/b;c=d,e?f=g&h=i'j()*+!$",
    "http://a:65536/", "http://a:99999/", "http://a:x/", "http://:80/", "http:///x", "http://u@a/",
    "http://u:p@a/", "ftp://a/", "mailto:a@b", "//a/b", "/relative", "", "http://a/é", "http://é/",
    "https://\U0001f408?\u00aai", "http://a/%zz", "http://a/%", "http://a/[x]", "http://a/?q=[1]",
    "http://[::1", "http://a]/", "http://[v1.x]/", "http://a/b#c#d", "http://a/{}", "http://a/|",
    "http://a/\\", "http://a/<x>", "http://a/^", "http://a/`", 'http://a/"', "http://a b/",
    "http://a/\t", "http://a/\u0085", "http://a/\u3000", "http://a/b@c", "http://a@b@c/",
]


@pytest.mark.parametrize("url", WEBHOOK_URLS)
def test_server_and_schema_agree_on_the_syntax_of_a_webhook_url(url):
    """Syntax only: on a stage that allows private receivers nothing is resolved, so a URL
    the schema allows is accepted; elsewhere its host must also resolve to public addresses."""
    schema = jsonschema_rs.Draft4Validator(
        {k: v for k, v in _spec()["components"]["schemas"]["CreateImage"]["properties"]["webhookUrl"].items()
         if k != "nullable"}, validate_formats=True)
    try:
        check_webhook_url(url, UrlPolicy(allow_private_networks=True))
        accepted = True
    except UnsafeWebhookUrl:
        accepted = False
    assert accepted == schema.is_valid(url)


# --- renditions: the schema says what the server checks, but for the two rules it cannot ---

def _rendition_schema():
    spec = _spec()
    renditions = dict(spec["components"]["schemas"]["CreateImage"]["properties"]["renditions"])
    renditions.pop("nullable")
    return jsonschema_rs.Draft4Validator({**renditions, "components": spec["components"]})


def _server_accepts_renditions(renditions, content_type="image/png") -> bool:
    from chalicelib.rendition_request import InvalidRenditions, parse_renditions

    try:
        parse_renditions(renditions, source_types=(content_type,))
    except InvalidRenditions:
        return False
    return True


def test_the_rendition_limits_are_the_servers_own():
    from chalicelib import rendition_request, renditions

    schema = _spec()["components"]["schemas"]
    listed, entry = schema["CreateImage"]["properties"]["renditions"], schema["Rendition"]
    assert (listed["minItems"], listed["maxItems"]) == (renditions.MIN_RENDITIONS, renditions.MAX_RENDITIONS)
    assert sorted(entry["properties"]) == sorted(rendition_request.FIELDS)
    for side in ("width", "height"):
        assert (entry["properties"][side]["minimum"], entry["properties"][side]["maximum"]) == \
            (renditions.MIN_SIDE, renditions.MAX_SIDE)
    assert tuple(entry["properties"]["fit"]["enum"]) == renditions.FITS
    assert tuple(entry["properties"]["gravity"]["enum"]) == renditions.GRAVITIES
    assert tuple(entry["properties"]["format"]["enum"]) == renditions.FORMATS
    assert entry["properties"]["background"]["pattern"] == f"^{rendition_request.BACKGROUND_PATTERN}$"
    assert f"{renditions.MAX_OUTPUT_PIXELS:,}" in listed["description"]
    assert f"{renditions.MAX_AVIF_PIXELS:,}" in listed["description"]


_VALUES = {  # valid and invalid values of each field
    "width": [1, 2048, 0, 2049, True, 1.5, "400", None], "height": [1, 2048, 0, 2049, False, None],
    "fit": ["cover", "contain", "inside", "fill", "", None, 1], "gravity": ["center", "attention", "entropy", "north", None],
    "focus": [{"x": 0, "y": 1}, {"x": 0.5, "y": 0.25}, {"x": 1.5, "y": 0}, {"x": 0.5}, {"x": 0.1, "y": 0.1, "z": 0},
              [0.5, 0.5], {"x": True, "y": 0}, None],
    "format": ["source", "jpeg", "png", "webp", "avif", "gif", "JPEG", None],
    "quality": [1, 100, 0, 101, 50.5, True, None],
    "background": ["#000000", "#AbCdEf", "#fff", "white", "#0000000", "#00000g", None],
    "extra": [1],
}


def _pairs():
    """Every pair of fields with every pair of their values, on a valid 10x10 entry: each rule
    between fields involves two of them, so this meets every rule and every value."""
    import itertools

    for a, b in itertools.combinations(sorted(_VALUES), 2):
        for va, vb in itertools.product(_VALUES[a], _VALUES[b]):
            yield {"width": 10, "height": 10, a: va, b: vb}


def test_server_and_schema_agree_on_every_pair_of_rendition_fields():
    schema, checked, accepted = _rendition_schema(), 0, 0
    for entry in _pairs():
        server = _server_accepts_renditions([entry])
        assert server == schema.is_valid([entry]), entry
        checked, accepted = checked + 1, accepted + server
    assert checked > 1000 and 100 < accepted < checked  # both answers were seen, many times


WHAT_THE_SCHEMA_CANNOT_SAY = (
    [{"width": 10, "height": 10}, {"width": 10, "height": 10, "fit": "cover"}],
    [{"width": 10, "height": 10, "format": "png"}, {"width": 10, "height": 10}],
    [{"width": 10, "height": 10, "focus": {"x": 0.12345, "y": 0}}, {"width": 10, "height": 10, "focus": {"x": 0.1234, "y": 0}}],
    over_output_budget(),
    over_avif_budget(),
    [{"width": 2048, "height": 1024, "format": "avif"}, {"width": 2048, "height": 1025, "format": "avif", "quality": 5}],
)


def test_the_schemathesis_hook_brings_valid_requests_within_the_rules_the_schema_cannot_say():
    from chalicelib import renditions
    from tests.e2e import schemathesis_hooks
    from tests.e2e.schemathesis_hooks import within_the_rules

    assert (schemathesis_hooks.MAX_OUTPUT_PIXELS, schemathesis_hooks.MAX_AVIF_PIXELS) == \
        (renditions.MAX_OUTPUT_PIXELS, renditions.MAX_AVIF_PIXELS)

    for entries in WHAT_THE_SCHEMA_CANNOT_SAY:
        body = within_the_rules({"contentType": "image/png", "renditions": entries})
        assert 1 <= len(body["renditions"]) and _server_accepts_renditions(body["renditions"]), body
    fine = [{"width": 10, "height": 10}, {"width": 20, "height": 20, "format": "avif"}]
    assert within_the_rules({"contentType": "image/png", "renditions": fine})["renditions"] == fine


def test_what_the_schema_cannot_say_is_refused_by_the_server_only():
    schema = _rendition_schema()
    for entries in WHAT_THE_SCHEMA_CANNOT_SAY:
        assert schema.is_valid(entries) and not _server_accepts_renditions(entries), entries
