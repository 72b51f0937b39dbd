"""openapi.yaml against the app itself (Chalice's test Client), for what Schemathesis sends
only as probes and does not hold to the schema: every path answers a method it does not
serve with 405 (Allow: the methods openapi.yaml lists under it), every operation a request
Content-Type it does not take with 415, and takes each one it declares. Every answer here
is checked against the operation's documented status, headers and body schema."""
from __future__ import annotations

import json

import pytest

from tests import openapi_contract as contract

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
CREATE = {"filename": "cat.png", "contentType": "image/png", "fileSize": 1000}
OPERATIONS = [(path, method) for path, method, _ in contract.operations()]


def concrete(path: str) -> str:
    return path.replace("{id}", UNKNOWN_ID)


def conforms(path: str, method: str, response) -> None:
    """The answer is one `method path` documents: its status, required headers (with values
    their schemas allow) and, for JSON, a body its schema allows."""
    responses = contract.spec()["paths"][path][method]["responses"]
    assert str(response.status_code) in responses, (method, path, response.status_code, response.body)
    documented = contract.response(path, method, response.status_code)
    headers = {name.lower(): value for name, value in response.headers.items()}
    for name, header in documented.get("headers", {}).items():
        header = contract.resolve(header)
        value = headers.get(name.lower())
        if header.get("required"):
            assert value is not None, (method, path, response.status_code, name)
        if value is not None and header["schema"].get("type") == "string":
            assert contract.validator(header["schema"]).is_valid(value), (method, path, name, value)
    content = documented.get("content")
    if not content:
        assert not response.body, (method, path, response.status_code)
        return
    # A handler's dict has no Content-Type of its own: API Gateway and the local server send
    # application/json for it.
    media = headers.get("content-type", "application/json").split(";")[0].strip()
    assert media in content, (method, path, response.status_code, media)
    if media == "application/json":
        body = json.loads(response.body)
        errors = [str(e) for e in contract.validator(content[media]["schema"]).iter_errors(body)]
        assert errors == [], (method, path, response.status_code, body)


@pytest.mark.parametrize("path", list(contract.spec()["paths"]))
def test_a_method_a_path_does_not_serve_is_405_with_the_paths_methods_in_allow(client, path):
    served = contract.methods_of(path)
    for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - served):
        response = client.http.request(method, concrete(path), headers={"Content-Type": "application/json"},
                                       body=b"{}")
        assert response.status_code == 405, (method, path)
        assert {m.strip() for m in response.headers["Allow"].split(",")} == served
        for documented in served:  # each operation of the path documents this answer
            conforms(path, documented.lower(), response)


@pytest.mark.parametrize("path, method", OPERATIONS)
def test_a_content_type_the_operation_does_not_take_is_415(client, path, method):
    for content_type in ("application/xml", "multipart/form-data", "image/png"):
        assert content_type not in contract.request_content_types(path, method)
        response = client.http.request(method.upper(), concrete(path), headers={"Content-Type": content_type},
                                       body=b"<x/>")
        assert response.status_code == 415, (method, path, content_type)
        assert json.loads(response.body)["error"]["code"] == "unsupported_media_type"
        conforms(path, method, response)


@pytest.mark.parametrize("path, method", OPERATIONS)
def test_every_content_type_the_operation_declares_is_taken(client, path, method):
    """Each Content-Type of the requestBody (without one: application/json), and none."""
    body = json.dumps(CREATE) if (path, method) == ("/images", "post") else ""
    for content_type in (contract.request_content_types(path, method) or ["application/json"]) + [None]:
        if content_type is None and body:
            continue  # POST /images needs its body, which is JSON text whatever labels it
        headers = {"Content-Type": content_type} if content_type else {}
        response = client.http.request(method.upper(), concrete(path), headers=headers, body=body)
        assert response.status_code != 415, (method, path, content_type)
        conforms(path, method, response)
        if body:
            assert response.status_code == 201, (content_type, response.body)


def test_post_images_reads_json_text_under_every_label_and_form_fields_under_none(client):
    for content_type in contract.request_content_types("/images", "post"):
        response = client.http.post("/images", headers={"Content-Type": content_type}, body=json.dumps(CREATE))
        assert response.status_code == 201, content_type
    fields = "filename=cat.png&contentType=image%2Fpng&fileSize=1000"
    response = client.http.post("/images", headers={"Content-Type": "application/x-www-form-urlencoded"},
                                body=fields)
    assert response.status_code == 400 and json.loads(response.body)["error"]["code"] == "invalid_request"
    conforms("/images", "post", response)


def test_the_public_routes_answer_as_documented_without_a_token(client):
    anonymous = client.anonymous().http
    for path in ("/health", "/", "/app.js", "/thumbhash.js", "/app.css", "/config.json"):
        assert contract.spec()["paths"][path]["get"]["security"] == []
        response = anonymous.get(path)
        assert response.status_code == 200, path
        conforms(path, "get", response)
