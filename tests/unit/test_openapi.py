"""openapi.yaml documents exactly the routes app.py serves, and the rules its handlers apply."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema_rs
import pytest

from app import app
from chalicelib.api import paging, upload_request
from chalicelib.platform.errors import ApiError
from chalicelib.webhooks.urls import UnsafeWebhookUrl, UrlPolicy, check_webhook_url
from tests import openapi_contract as contract
from tests.budget import over_avif_budget, over_output_budget

ROOT = Path(__file__).resolve().parents[2]


def _served() -> dict[tuple[str, str], list[str]]:
    """(path as openapi.yaml writes it, METHOD) -> the request Content-Types Chalice lets through."""
    return {(path.replace("{image_id}", "{id}"), method): entry.content_types
            for path, entries in app.routes.items() for method, entry in entries.items()}


def test_openapi_paths_match_the_app_routes():
    documented = {(path, method.upper()) for path, method, _ in contract.operations()}
    assert documented == set(_served())
    for path in contract.spec()["paths"]:  # no path item holds anything but operations
        assert set(contract.spec()["paths"][path]) <= set(contract.METHODS), path


def test_each_operation_declares_exactly_the_request_content_types_its_route_takes():
    for (path, method), taken in _served().items():
        declared = contract.request_content_types(path, method)
        # Without a requestBody: what Chalice takes by default, application/json (or no Content-Type).
        assert sorted(declared or ["application/json"]) == sorted(taken), (method, path)
    create = contract.spec()["paths"]["/images"]["post"]["requestBody"]
    assert create["required"] is True
    assert {media["schema"]["$ref"] for media in create["content"].values()} == {"#/components/schemas/CreateImage"}


_spec = contract.spec


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
    from chalicelib.imaging.rendition_rules import InvalidRenditions, parse_renditions

    try:
        parse_renditions(renditions, source_types=(content_type,))
    except InvalidRenditions:
        return False
    return True


def test_the_rendition_limits_are_the_servers_own():
    from chalicelib.imaging import rendition_rules, renditions

    schema = _spec()["components"]["schemas"]
    listed, entry = schema["CreateImage"]["properties"]["renditions"], schema["Rendition"]
    assert (listed["minItems"], listed["maxItems"]) == (renditions.MIN_RENDITIONS, renditions.MAX_RENDITIONS)
    assert sorted(entry["properties"]) == sorted(rendition_rules.FIELDS)
    for side in ("width", "height"):
        assert (entry["properties"][side]["minimum"], entry["properties"][side]["maximum"]) == \
            (renditions.MIN_SIDE, renditions.MAX_SIDE)
    assert tuple(entry["properties"]["fit"]["enum"]) == renditions.FITS
    assert tuple(entry["properties"]["gravity"]["enum"]) == renditions.GRAVITIES
    assert tuple(entry["properties"]["format"]["enum"]) == renditions.FORMATS
    assert entry["properties"]["background"]["pattern"] == f"^{rendition_rules.BACKGROUND_PATTERN}$"
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
    from chalicelib.imaging import renditions
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


# --- every response body has exactly the shape openapi.yaml declares -------------------------


def _validator(name: str):
    return contract.validator(contract.spec()["components"]["schemas"][name])


_response_validator = contract.response_validator


def _storage():
    import boto3

    from chalicelib.platform.aws import s3_config
    from chalicelib.platform.storage import ImageStorage

    s3 = boto3.session.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                               region_name="eu-west-1").client("s3", config=s3_config({}))
    return ImageStorage(s3, "thumbgen-dev-123456789012-eu-west-1")


def _records():
    """An image in each state a client can see, webhooks in each delivery state."""
    from dataclasses import replace
    from datetime import datetime, timezone

    from chalicelib.images.record import DeliveryStatus, ImageRecord, ImageStatus, Thumbnail, WebhookState

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    image_id = "7d9f8a2b-1c3e-4f5a-9b6d-0e1f2a3b4c5d"
    pending = ImageRecord.new_pending(image_id, owner="u", quota_entry="1:x", filename="cat.jpg",
                                      content_type="image/jpeg", file_size=1234, webhook_url=None, now=now,
                                      expires_at=now, ttl_epoch=0)
    processing = replace(pending, status=ImageStatus.PROCESSING, processing_started_at="2026-01-01T00:00:01.000Z")
    hook = WebhookState(id=f"msg_{image_id}_completed", url="https://hooks.example.com/x")
    completed = replace(
        processing, status=ImageStatus.COMPLETED, size=1200, type="image/jpeg", width=4000, height=3000,
        completed_at="2026-01-01T00:00:02.000Z",
        thumbnails=tuple(Thumbnail(f"{w}x{h}{suffix}.{ext}", w, h, fit, gravity, fmt, 99,
                                   f"thumbnails/{image_id}/{w}x{h}{suffix}.{ext}", f"image/{fmt}")
                         for w, h, fit, gravity, fmt, suffix, ext in (
                             (400, 300, "cover", "center", "jpeg", "", "jpg"),
                             (800, 600, "contain", "center", "webp", "-contain", "webp"),
                             (120, 120, "cover", "attention", "avif", "-attention", "avif"))),
        placeholder="1QcSHQRnh493V4dIh4eXh1h4kJUI",
        webhook=replace(hook, status=DeliveryStatus.DELIVERED, attempts=1, last_attempt_at="2026-01-01T00:00:02.000Z",
                        last_status_code=204, delivered_at="2026-01-01T00:00:02.000Z"))
    failed = replace(
        processing, status=ImageStatus.FAILED, completed_at="2026-01-01T00:00:02.000Z",
        error={"code": "corrupt_image", "message": "no image header"},
        webhook=replace(hook, id=f"msg_{image_id}_failed", attempts=2, last_attempt_at="2026-01-01T00:00:07.000Z",
                        next_attempt_at="2026-01-01T00:05:07.000Z", last_error="connection refused"))
    return {"pending": pending, "processing": processing, "completed": completed, "failed": failed,
            "pending-webhook": replace(pending, webhook=hook)}


def _views():
    from chalicelib.images import views

    storage = _storage()
    return {state: views.image(image, storage, 3600) for state, image in _records().items()}


@pytest.mark.parametrize("state", ["pending", "processing", "completed", "failed", "pending-webhook"])
def test_the_image_view_in_every_state_is_exactly_the_image_schema(state):
    view = _views()[state]
    errors = [str(e) for e in _validator("Image").iter_errors(view)]
    assert errors == [], view
    for path, method, status in (("/images/{id}", "get", "200"), ("/images/{id}/complete", "post", "202")):
        assert _response_validator(path, method, status).is_valid(view)


def test_a_changed_image_view_is_caught_by_the_schema():
    view = _views()["completed"]
    image, thumbnail = _validator("Image"), _validator("Thumbnail")
    assert not image.is_valid({**view, "renditions": []})  # a field added
    assert not image.is_valid({k: v for k, v in view.items() if k != "error"})  # a field dropped
    assert not image.is_valid({**view, "metadata": {**view["metadata"], "exif": {}}})
    assert not thumbnail.is_valid({**view["thumbnails"][0], "crop": {"x": 0, "y": 0}})
    assert not thumbnail.is_valid({k: v for k, v in view["thumbnails"][0].items() if k != "name"})
    assert not thumbnail.is_valid({**view["thumbnails"][0], "name": "../400x300.jpg"})
    assert not image.is_valid({**view, "placeholder": "not base64!"})
    assert not thumbnail.is_valid({"size": {"width": 400}, "url": view["thumbnails"][0]["url"]})


def test_the_list_the_redelivery_and_the_created_bodies_match_their_schemas():
    from chalicelib.api.upload_request import UploadRequest
    from chalicelib.api.use_cases import ImageApi
    from chalicelib.images import views
    from chalicelib.platform.config import Settings

    class Records:
        def create_within_quota(self, record, max_pending, now_epoch, arrived=None):
            self.created = record

    images = list(_views().values())
    assert _response_validator("/images", "get", "200").is_valid({"images": images, "nextCursor": "abc_-"})
    assert _response_validator("/images", "get", "200").is_valid({"images": [], "nextCursor": None})
    redelivered = {"id": images[0]["id"], "webhook": views.webhook(_records()["completed"].webhook)}
    assert _response_validator("/images/{id}/webhook/redeliver", "post", "202").is_valid(redelivered)
    api = ImageApi(records=Records(), storage=_storage(), settings=Settings.from_env({}), redeliver=None,
                   start_resize=None, cursor_key=lambda: b"k")
    created = api.create("u", UploadRequest(filename="cat.png", content_type="image/png", file_size=42,
                                            webhook_url=None))
    assert [str(e) for e in _validator("Created").iter_errors(created)] == []
    assert not _validator("Created").is_valid({**created, "upload": {**created["upload"], "fields": {}}})


def test_every_error_body_is_exactly_the_error_schema():
    from chalicelib.api.framework_errors import error_body

    error = _validator("Error")
    for body in (ApiError(404, "not_found", "no image").body(), error_body(415), error_body(405), error_body(500),
                 error_body(413, "the request body is over 10485760 bytes")):
        assert error.is_valid(body), body
    assert not error.is_valid({"Code": "UnsupportedMediaType", "Message": "Unsupported media type: text/xml"})
    assert not error.is_valid({"error": {"code": "x"}})
    assert not error.is_valid({"error": {"code": "x", "message": "y"}, "detail": "z"})


def test_the_health_body_matches_its_schema():
    health = contract.response_validator("/health", "get", 200)
    assert health.is_valid({"status": "ok"})
    assert not health.is_valid({"status": "ok", "version": "1"}) and not health.is_valid({})


def _config(**env: str) -> dict:
    from chalicelib.api import webpage
    from chalicelib.platform.config import Settings

    return webpage.client_config(Settings.from_env({"COGNITO_USER_POOL_ID": "p", "COGNITO_APP_CLIENT_ID": "c", **env}))


def test_the_config_json_schema_is_exactly_what_the_page_module_writes():
    config = contract.response_validator("/config.json", "get", 200)
    chosen = '[{"width": 320, "height": 240, "fit": "contain", "format": "webp", "background": "#ffffff"}]'
    for body in (_config(), _config(MAX_UPLOAD_BYTES="5000", DEFAULT_RENDITIONS=chosen)):
        assert [str(e) for e in config.iter_errors(body)] == [], body
    body = _config(MAX_UPLOAD_BYTES="5000")
    assert body["maxUploadBytes"] == 5000  # the stage's setting, not a constant
    assert not config.is_valid({**body, "webhookSecret": "whsec_x"})  # a field added
    for dropped in body:
        assert not config.is_valid({k: v for k, v in body.items() if k != dropped}), dropped
    assert not config.is_valid({**body, "cognito": {**body["cognito"], "clientSecret": "s"}})
    assert not config.is_valid({**body, "maxUploadBytes": "5000"})


def test_the_size_bound_is_the_stages_setting_published_in_config_json():
    schemas = contract.spec()["components"]["schemas"]
    file_size = schemas["CreateImage"]["properties"]["fileSize"]
    assert "maximum" not in file_size and file_size["minimum"] == 1
    assert "maxUploadBytes" in file_size["description"] and "MAX_UPLOAD_BYTES" in file_size["description"]
    limit = schemas["ClientConfig"]["properties"]["maxUploadBytes"]
    assert limit["type"] == "integer" and "maximum" not in limit
    assert "maxUploadBytes" in schemas["ClientConfig"]["required"]
    assert contract.response("/config.json", "get", 200)["content"]["application/json"]["schema"] == \
        {"$ref": "#/components/schemas/ClientConfig"}


def test_the_schemathesis_hooks_bound_file_size_by_the_stages_limit(tmp_path):
    import copy
    import http.server
    import threading

    from tests.e2e.schemathesis_hooks import stage_limit, with_the_stages_limit, without_form_labelled_json

    raw = copy.deepcopy(contract.spec())
    with_the_stages_limit(raw, 5000)
    file_size = raw["components"]["schemas"]["CreateImage"]["properties"]["fileSize"]
    assert file_size["maximum"] == 5000
    with pytest.raises(ValueError, match="hard-codes"):  # a constant in openapi.yaml is refused
        with_the_stages_limit(raw, 5000)
    create = raw["paths"]["/images"]["post"]["requestBody"]["content"]
    without_form_labelled_json(raw)
    assert sorted(create) == ["application/json", "text/plain"]

    body = json.dumps(_config(MAX_UPLOAD_BYTES="4321")).encode()

    class Stage(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802
            found = self.path == "/api/config.json"
            self.send_response(200 if found else 404)
            self.send_header("Content-Length", str(len(body) if found else 0))
            self.end_headers()
            self.wfile.write(body if found else b"")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert stage_limit(f"http://127.0.0.1:{server.server_address[1]}/api/") == 4321
    finally:
        server.shutdown()
        server.server_close()


def _response_schemas():
    """(where, schema) for every schema of every response body, nested ones included."""
    def walk(node, where, seen):
        if isinstance(node, list):
            for i, item in enumerate(node):
                yield from walk(item, f"{where}[{i}]", seen)
            return
        if not isinstance(node, dict):
            return
        if "$ref" in node:
            if node["$ref"] not in seen:
                yield from walk(contract.resolve(node), node["$ref"], seen | {node["$ref"]})
            return
        yield where, node
        for key in ("properties", "items", "allOf", "anyOf", "oneOf", "additionalProperties"):
            value = node.get(key)
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    yield from walk(sub, f"{where}.{name}", seen)
            elif isinstance(value, (dict, list)):
                yield from walk(value, f"{where}.{key}", seen)

    for path, method, op in contract.operations():
        for status, answer in op["responses"].items():
            for media, content in contract.resolve(answer).get("content", {}).items():
                yield from walk(content["schema"], f"{method.upper()} {path} {status} {media}", frozenset())


def test_every_response_object_schema_is_exact():
    """Every object a response carries names its required fields and allows no others, so a
    body that changes shape fails the schema (and Schemathesis)."""
    objects = 0
    for where, schema in _response_schemas():
        if schema.get("type") == "object":
            objects += 1
            assert schema.get("additionalProperties") is False, where
            assert schema.get("required"), where
            assert set(schema["required"]) <= set(schema.get("properties", {})), where
    assert objects > 15


def test_every_operation_answers_405_and_415_in_the_error_shape():
    for path, method, op in contract.operations():
        assert op["responses"]["405"] == {"$ref": "#/components/responses/MethodNotAllowed"}, (method, path)
        assert op["responses"]["415"] == {"$ref": "#/components/responses/UnsupportedMediaType"}, (method, path)
    not_allowed = contract.spec()["components"]["responses"]["MethodNotAllowed"]
    assert not_allowed["headers"]["Allow"]["required"] is True


def _error_pairs_in_the_spec() -> set[tuple[int, str]]:
    pairs = set()
    for path, method, op in contract.operations():
        for status, answer in op["responses"].items():
            if int(status) >= 400:
                codes = contract.error_codes(contract.resolve(answer))
                assert codes, f"{method.upper()} {path} {status}: not the Error schema narrowed to its codes"
                pairs |= {(int(status), code) for code in codes}
    return pairs


def _error_pairs_in_the_code() -> set[tuple[int, str]]:
    """(status, code) of every ApiError the service raises, and of Chalice's own refusals that
    an operation can meet (framework_errors: 405, 415; locally a body over 10 MB, 413)."""
    import re

    from chalicelib.api import framework_errors

    sources = [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]
    raised = {(int(status), code) for source in sources
              for status, code in re.findall(r'ApiError\(\s*(\d{3}),\s*"(\w+)"', source.read_text())}
    assert len(raised) > 10
    return raised | {(status, framework_errors.CODES[status]) for status in (405, 413, 415)}


def test_the_error_codes_in_the_spec_are_exactly_those_the_service_answers():
    assert _error_pairs_in_the_spec() == _error_pairs_in_the_code()


def test_every_error_response_is_the_error_schema():
    for path, method, op in contract.operations():
        for status, answer in op["responses"].items():
            if int(status) >= 400:
                schema = contract.resolve(answer)["content"]["application/json"]["schema"]
                assert schema["allOf"][0] == {"$ref": "#/components/schemas/Error"}, (method, path, status)
                validator = contract.response_validator(path, method, status)
                [code] = sorted(contract.error_codes(contract.resolve(answer)))[:1]
                assert validator.is_valid({"error": {"code": code, "message": "m"}})
                assert not validator.is_valid({"error": {"code": "no_such_code", "message": "m"}})
                assert not validator.is_valid({"error": {"code": code, "message": "m", "detail": 1}})
                assert not validator.is_valid({"Code": code, "Message": "m"})


def test_the_failure_codes_of_an_image_are_the_resizes_own():
    import re

    from chalicelib.imaging.engine import ImageRejected

    outcomes = {code for source in (ROOT / "chalicelib").rglob("*.py")
                for code in re.findall(r'Outcome\.failure\("(\w+)"', source.read_text())}
    assert outcomes
    failure = contract.spec()["components"]["schemas"]["Failure"]["properties"]["code"]["enum"]
    assert set(failure) == set(ImageRejected.CODES) | outcomes
