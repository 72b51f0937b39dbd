"""The HTTP API through Chalice's test Client, with moto behind it."""
from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

MAX = 11 * 1024 * 1024


def post(client, body, raw=None):
    return client.http.post("/images", headers={"Content-Type": "application/json"},
                            body=raw if raw is not None else json.dumps(body))


def good(**changes):
    body = {"filename": "cat.jpg", "contentType": "image/jpeg", "fileSize": 123456}
    body.update(changes)
    return body


def error_of(response):
    return json.loads(response.body)["error"]


def test_health(client):
    response = client.http.get("/health")
    assert response.status_code == 200


def test_upload_expiry_has_millisecond_precision_even_on_a_whole_second(client, monkeypatch):
    """expiresAt has one format, the one every stored time has, whatever the clock reads."""
    from datetime import datetime, timezone

    from chalicelib import service

    assert client.http.get("/images").status_code == 200  # the service built in the stage's environment
    monkeypatch.setattr(service.image_api(), "now", lambda: datetime(2026, 1, 1, tzinfo=timezone.utc))
    response = post(client, good())
    assert response.status_code == 201
    assert json.loads(response.body)["upload"]["expiresAt"] == "2026-01-01T00:10:00.000Z"


def test_create_returns_presigned_put_that_signs_type_length_and_no_overwrite(client, aws):
    response = post(client, good())
    assert response.status_code == 201
    body = json.loads(response.body)
    assert response.headers["Location"] == f"/images/{body['id']}"
    assert body["status"] == "pending_upload"
    upload = body["upload"]
    assert upload["method"] == "PUT"
    assert upload["headers"] == {"Content-Type": "image/jpeg", "Content-Length": "123456", "If-None-Match": "*"}
    url = urlsplit(upload["url"])
    query = parse_qs(url.query)
    assert url.path.endswith(f"/uploads/{body['id']}")
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-SignedHeaders"] == ["content-length;content-type;host;if-none-match"]
    assert 60 <= int(query["X-Amz-Expires"][0]) <= 900
    assert upload["expiresAt"].endswith("Z")

    item = boto3.resource("dynamodb").Table(aws.table).get_item(Key={"id": body["id"]})["Item"]
    assert item["status"] == "pending_upload"
    assert item["filename"] == "cat.jpg"
    assert int(item["declaredSize"]) == 123456
    assert "expiresAtEpoch" in item  # TTL for uploads that never arrive


def test_browsers_on_other_origins_may_call_the_api(client):
    response = post(client, good())
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_filename_is_only_metadata(client):
    body = json.loads(post(client, good(filename="../../etc/passwd")).body)
    assert "passwd" not in body["upload"]["url"]


def test_exactly_max_upload_bytes_is_accepted_one_more_is_not(client):
    assert post(client, good(fileSize=MAX)).status_code == 201
    response = post(client, good(fileSize=MAX + 1))
    assert response.status_code == 413
    assert error_of(response)["code"] == "file_too_large"


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", "", "null", '"text"'])
def test_body_must_be_a_json_object(client, raw):
    response = post(client, None, raw=raw)
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_request"


@pytest.mark.parametrize("changes", [
    {"filename": None}, {"filename": ""}, {"filename": 7}, {"filename": "a\nb"},
    {"contentType": None}, {"contentType": 5},
    {"fileSize": None}, {"fileSize": "12"}, {"fileSize": 1.5}, {"fileSize": True},
    {"fileSize": 0}, {"fileSize": -3},
    {"webhookUrl": 42},
])
def test_missing_or_mistyped_fields_are_invalid_requests(client, changes):
    body = good(**changes)
    body = {k: v for k, v in body.items() if v is not None}
    response = post(client, body)
    assert response.status_code == 400, response.body
    assert error_of(response)["code"] == "invalid_request"


@pytest.mark.parametrize("content_type", ["image/gif", "text/plain", "image/webp", "image/svg+xml"])
def test_only_png_and_jpeg_are_accepted(client, content_type):
    response = post(client, good(contentType=content_type))
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


@pytest.mark.parametrize("url", [
    "ftp://93.184.216.34/hook", "not a url", "/relative/hook", "http://user:pw@93.184.216.34/",
    "http://127.0.0.1:8080/hook", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/",
    "http://[::1]/", "http://2130706433/", "http://0x7f.1/", "http://[::ffff:127.0.0.1]/", "",
])
def test_webhook_urls_that_are_not_public_http_are_refused(client, url):
    response = post(client, good(webhookUrl=url))
    assert response.status_code == 422, url
    assert error_of(response)["code"] == "invalid_webhook_url"


def test_public_webhook_url_is_accepted(client):
    assert post(client, good(webhookUrl="https://93.184.216.34/hook")).status_code == 201


def test_https_required_on_stages_that_say_so(make_client):
    client = make_client(WEBHOOK_REQUIRE_HTTPS="true")
    assert post(client, good(webhookUrl="http://93.184.216.34/hook")).status_code == 422
    assert post(client, good(webhookUrl="https://93.184.216.34/hook")).status_code == 201


def test_local_stage_may_allow_private_receivers(make_client):
    client = make_client(WEBHOOK_ALLOW_PRIVATE_NETWORKS="true")
    assert post(client, good(webhookUrl="http://127.0.0.1:9/hook")).status_code == 201


def test_get_pending_image(client):
    image_id = json.loads(post(client, good()).body)["id"]
    response = client.http.get(f"/images/{image_id}")
    assert response.status_code == 200
    body = json.loads(response.body)
    assert body["status"] == "pending_upload"
    assert body["thumbnails"] == [] and body["error"] is None
    assert body["metadata"]["filename"] == "cat.jpg"


@pytest.mark.parametrize("image_id", ["00000000-0000-4000-8000-000000000000", "nope", "x" * 300])
def test_unknown_image_is_404(client, image_id):
    response = client.http.get(f"/images/{image_id}")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_redeliver_needs_a_final_image_with_a_webhook(client):
    assert client.http.post("/images/00000000-0000-4000-8000-000000000000/webhook/redeliver").status_code == 404
    plain = json.loads(post(client, good()).body)["id"]
    response = client.http.post(f"/images/{plain}/webhook/redeliver")
    assert response.status_code == 409 and error_of(response)["code"] == "no_webhook"
    hooked = json.loads(post(client, good(webhookUrl="https://93.184.216.34/h")).body)["id"]
    response = client.http.post(f"/images/{hooked}/webhook/redeliver")
    assert response.status_code == 409 and error_of(response)["code"] == "not_final"


# openapi.yaml's CreateImage.filename, held to the edge: no control character (C0, DEL, C1)
# anywhere and not only blanks, by the same explicit classes in both places.
SCHEMA_REFUSES = ["\u0085", "\u00a0", "\u3000", "\ufeff", " \u2028 ", "\u2000\u200a", "a\u0085b", "a\x1cb",
                  "\x1f", "a\x7f", "a\x80", "a\x9f", "\t", "cat\n.jpg", "x" * 256]
SCHEMA_ALLOWS = ["a\u00a0b", " cat.jpg ", "\u200b", "\u180e", "\u3000x", "é", "\U0001f408" * 255, "x" * 255]


def test_filenames_are_refused_or_accepted_as_the_schema_says(client):
    for filename in SCHEMA_REFUSES:
        response = post(client, good(filename=filename))
        assert response.status_code == 400 and error_of(response)["code"] == "invalid_request", repr(filename)
    for filename in SCHEMA_ALLOWS:
        response = post(client, good(filename=filename))
        assert response.status_code == 201, repr(filename)
        image = json.loads(client.http.get(f"/images/{json.loads(response.body)['id']}").body)
        assert image["metadata"]["filename"] == filename


def test_bodies_that_are_not_unicode_json_are_invalid_requests_not_errors(client):
    for raw in ['{"filename": "\\ud800", "contentType": "image/png", "fileSize": 5}',
                '{"filename": "a.png", "contentType": "image/png", "fileSize": 5, '
                '"webhookUrl": "https://93.184.216.34/\\udfff"}',
                "[" * 100_000]:
        response = post(client, None, raw=raw)
        assert response.status_code == 400 and error_of(response)["code"] == "invalid_request", raw[:80]


def test_content_type_must_be_exactly_one_of_the_schema_enum(client):
    for content_type in ["IMAGE/PNG", "image/jpeg; charset=binary", " image/png"]:
        assert post(client, good(contentType=content_type)).status_code == 415, content_type


def test_a_null_webhook_url_means_no_webhook(client):
    response = post(client, good(webhookUrl=None))
    assert response.status_code == 201
    image = json.loads(client.http.get(f"/images/{json.loads(response.body)['id']}").body)
    assert image["webhook"] is None
