"""Every refusal is {"error": {"code", "message"}}, including the ones Chalice makes itself
(415 for a Content-Type a route does not take, 405, 500): through the test Client and
through Chalice's Lambda handler called with API Gateway's event, as in Lambda."""
from __future__ import annotations

import json

import pytest
from chalice.local import LambdaContext

from tests.handlers.test_ownership import body_of, create


def is_ours(body: dict, code: str) -> bool:
    return set(body) == {"error"} and set(body["error"]) == {"code", "message"} and body["error"]["code"] == code


@pytest.mark.parametrize("method,path", [("POST", "/images"), ("GET", "/images"),
                                          ("POST", "/images/00000000-0000-4000-8000-000000000000/complete")])
def test_a_content_type_a_route_does_not_take_is_our_415(client, method, path):
    response = client.http.request(method, path, headers={"Content-Type": "application/xml"}, body=b"<x/>")
    assert response.status_code == 415
    assert is_ours(body_of(response), "unsupported_media_type"), response.body
    assert response.headers["Content-Type"] == "application/json"


def test_a_method_a_path_does_not_serve_is_our_405_with_allow(client):
    response = client.http.request("PUT", "/images", headers={"Content-Type": "application/json"}, body=b"{}")
    assert response.status_code == 405 and is_ours(body_of(response), "method_not_allowed")
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_an_error_no_handler_caught_is_our_500_and_says_nothing_of_it(client, aws):
    from botocore.stub import Stubber

    from chalicelib.platform import aws as lazy_aws

    image_id = create(client)["id"]
    with Stubber(lazy_aws.resource("dynamodb").meta.client) as dynamodb:
        dynamodb.add_client_error("get_item", "InternalServerError", "secret detail", http_status_code=500)
        response = client.http.get(f"/images/{image_id}")
    assert response.status_code == 500 and is_ours(body_of(response), "internal_error")
    assert "secret detail" not in response.body.decode() and "InternalServerError" not in response.body.decode()


def api_gateway_event(method: str, path: str, headers: dict, body: str) -> dict:
    """The REST API proxy event Lambda hands Chalice's handler."""
    return {"resource": path, "path": path, "httpMethod": method, "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()}, "queryStringParameters": None,
            "multiValueQueryStringParameters": None, "pathParameters": None, "stageVariables": None,
            "requestContext": {"resourcePath": path, "httpMethod": method, "path": f"/api{path}",
                               "stage": "api", "requestId": "r-1", "identity": {"sourceIp": "203.0.113.9"}},
            "body": body, "isBase64Encoded": False}


def test_in_lambda_chalices_own_refusals_are_ours_too():
    from app import app

    for method, headers, status, code in (("POST", {"content-type": "text/xml"}, 415, "unsupported_media_type"),
                                          ("PATCH", {"content-type": "application/json"}, 405, "method_not_allowed")):
        answer = app(api_gateway_event(method, "/images", headers, "{}"), LambdaContext("api_handler", 256))
        assert answer["statusCode"] == status
        assert is_ours(json.loads(answer["body"]), code), answer["body"]
        assert answer["headers"]["Content-Type"] == "application/json"


def test_our_own_refusals_are_left_as_they_are(client):
    response = client.http.get("/images/not-an-id")
    assert response.status_code == 404 and is_ours(body_of(response), "not_found")
    anonymous = client.anonymous().http.get("/images")
    assert anonymous.status_code == 401 and is_ours(body_of(anonymous), "unauthorized")
