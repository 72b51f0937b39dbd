"""The upload page's routes through the Chalice test Client: no token needed, strict
headers, the stage's public settings, cacheable assets."""
from __future__ import annotations

import json
import re

import boto3
from botocore.config import Config as BotoConfig

from chalicelib.api import webpage
from chalicelib.platform.config import Settings
from chalicelib.platform.storage import ImageStorage


def directives(csp: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in csp.split(";") if part.strip())}


def test_the_page_needs_no_token_and_sends_a_strict_policy(client):
    created = client.http.post("/images", headers={"Content-Type": "application/json"}, body=json.dumps(
        {"filename": "a.png", "contentType": "image/png", "fileSize": 10}))
    bucket = webpage.origin(json.loads(created.body)["upload"]["url"])  # what the page will PUT to
    response = client.anonymous().http.get("/")
    assert response.status_code == 200
    headers = {k.lower(): v for k, v in response.headers.items()}
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-cache"
    csp = directives(headers["content-security-policy"])
    cognito = "https://cognito-idp.us-east-1.amazonaws.com"
    assert csp["default-src"] == csp["script-src"] == csp["style-src"] == ["'self'"]
    assert csp["img-src"] == ["'self'", bucket]
    assert csp["connect-src"] == ["'self'", cognito, bucket]
    # form-action 'none': the script signs in; a native submission would send the password away
    assert csp["object-src"] == csp["base-uri"] == csp["form-action"] == csp["frame-ancestors"] == ["'none'"]


def test_the_page_has_no_inline_script_or_style_and_links_versioned_assets(client):
    html = client.anonymous().http.get("/").body.decode()
    version = webpage.version()
    assert f'src="app.js?v={version}"' in html and f'href="app.css?v={version}"' in html
    assert re.findall(r"<script\b[^>]*>", html) == [f'<script type="module" src="app.js?v={version}">']
    assert "<style" not in html and " style=" not in html and not re.search(r" on[a-z]+=", html)
    for label in ("Username", "Password", "Image"):
        assert re.search(rf'<label for="[a-z-]+">{label}</label>', html), label


def test_assets_are_cached_for_good_only_at_their_current_version(client):
    http = client.anonymous().http
    for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css"), ("thumbhash.js", "text/javascript")):
        current = http.get(f"/{name}?v={webpage.version()}")
        assert current.status_code == 200 and current.headers["Content-Type"].startswith(kind)
        assert current.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert current.headers["X-Content-Type-Options"] == "nosniff"
        assert current.body.decode() == (webpage.WEB / name).read_text()
        for stale in (f"/{name}", f"/{name}?v=0000"):
            assert http.get(stale).headers["Cache-Control"] == "no-cache"


def test_config_json_holds_the_public_client_settings_only(client, aws):
    response = client.anonymous().http.get("/config.json")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    assert json.loads(response.body) == {
        "cognito": {"region": "us-east-1", "userPoolId": aws.user_pool_id, "clientId": aws.app_client_id,
                    "endpoint": "https://cognito-idp.us-east-1.amazonaws.com"},
        "maxUploadBytes": 11 * 1024 * 1024,
        "renditions": [{"width": 400, "height": 300}, {"width": 160, "height": 120}, {"width": 120, "height": 120}],
    }
    assert b"whsec_" not in response.body


def test_config_json_offers_the_stages_own_default_renditions(make_client):
    chosen = [{"width": 320, "height": 240, "fit": "contain", "background": "#ffffff"}]
    client = make_client(DEFAULT_RENDITIONS=json.dumps(chosen))
    assert json.loads(client.anonymous().http.get("/config.json").body)["renditions"] == chosen


def test_the_cognito_endpoint_is_the_embedded_aws_locally():
    local = Settings.from_env({"AWS_ENDPOINT_URL": "http://127.0.0.1:4566/", "COGNITO_REGION": "eu-west-1"})
    assert local.cognito_endpoint_url == "http://127.0.0.1:4566"
    assert Settings.from_env({"AWS_REGION": "eu-west-1"}).cognito_endpoint_url == \
        "https://cognito-idp.eu-west-1.amazonaws.com"


def test_the_bucket_origin_is_where_presigned_urls_point():
    s3 = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x",
                      config=BotoConfig(signature_version="s3v4"))
    storage = ImageStorage(s3, "thumbgen-dev-images")
    upload = storage.presign_upload("uploads/x", "image/png", 10, 60)
    assert storage.origin() == webpage.origin(upload.url)
    assert storage.origin().startswith("https://thumbgen-dev-images.s3.")


def test_a_stage_root_without_its_slash_is_redirected():
    settings = Settings.from_env({})
    response = webpage.page(settings, "https://b.s3.amazonaws.com", "/api")
    assert (response.status_code, response.headers["Location"]) == (308, "/api/")


def test_config_json_publishes_the_limit_post_images_holds_to(make_client):
    """maxUploadBytes is the stage's MAX_UPLOAD_BYTES, the very bound of POST /images."""
    client = make_client(MAX_UPLOAD_BYTES="5000")
    assert json.loads(client.anonymous().http.get("/config.json").body)["maxUploadBytes"] == 5000

    def create(size: int):
        return client.http.post("/images", headers={"Content-Type": "application/json"}, body=json.dumps(
            {"filename": "a.png", "contentType": "image/png", "fileSize": size}))

    assert create(5000).status_code == 201
    refused = create(5001)
    assert refused.status_code == 413
    assert json.loads(refused.body)["error"] == {"code": "file_too_large",
                                                 "message": "fileSize 5001 is over the limit of 5000 bytes"}
