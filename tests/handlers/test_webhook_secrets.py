"""Each user's own webhook signing secret: the routes, and every attempt signed with the
owner's secrets as they are when it is sent (a rotation's overlap signs with both)."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from chalicelib.platform.logs import JsonFormatter
from tests.conftest import put_upload, queue_messages, sqs_event, sub_of, upload_event
from tests.imagegen import make_jpeg
from thumbgen.receiver import Reply


def secret_of(client) -> dict:
    response = client.http.get("/webhook-secret")
    assert response.status_code == 200, response.body
    assert response.headers["Cache-Control"] == "no-store"
    return json.loads(response.body)


def rotate(client) -> dict:
    response = client.http.post("/webhook-secret/rotate")
    assert response.status_code == 200, response.body
    assert response.headers["Cache-Control"] == "no-store"
    return json.loads(response.body)


def uploaded(client, aws, url: str) -> str:
    """An image of the client's user, uploaded and resized: its first attempt is sent."""
    body = {"filename": "a.jpg", "contentType": "image/jpeg", "fileSize": 10, "webhookUrl": url}
    image_id = json.loads(client.http.post("/images", headers={"Content-Type": "application/json"},
                                           body=json.dumps(body)).body)["id"]
    put_upload(aws, image_id, make_jpeg(64, 48))
    client.lambda_.invoke("resize_upload", upload_event(aws.bucket, f"uploads/{image_id}"))
    return image_id


def verifies(secret: str, got) -> bool:
    try:
        Webhook(secret).verify(got.body, got.headers)
    except WebhookVerificationError:
        return False
    return True


def deliver_queued(client, aws) -> None:
    for message in queue_messages(aws):
        client.lambda_.invoke("deliver_webhook", sqs_event([message["Body"]]))


def end_overlap(aws, owner: str) -> None:
    """Time passes: the rotation's overlap is over."""
    boto3.resource("dynamodb").Table(aws.table).update_item(
        Key={"id": f"secret#{owner}"}, UpdateExpression="SET previousValidUntil = :past",
        ExpressionAttributeValues={":past": "2000-01-01T00:00:00.000Z"})


def test_the_routes_need_a_token(client):
    for method, path in (("GET", "/webhook-secret"), ("POST", "/webhook-secret/rotate")):
        response = client.anonymous().http.request(method, path)
        assert response.status_code == 401
        assert json.loads(response.body)["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        forged = client.anonymous().http.request(method, path, headers={"Authorization": "Bearer x.y.z"})
        assert forged.status_code == 401


def test_each_user_has_a_secret_of_their_own_made_on_first_use(client, aws):
    alice, bob = secret_of(client), secret_of(client.as_user("bob"))
    assert alice["secret"].startswith("whsec_") and alice["previousValidUntil"] is None
    assert bob["secret"] != alice["secret"]
    assert secret_of(client) == alice  # kept, not made again
    assert Webhook(alice["secret"])  # a valid Standard Webhooks secret (base64 of 32 bytes)


def test_rotation_answers_a_new_secret_and_keeps_the_old_one_for_the_overlap(make_client):
    client = make_client(WEBHOOK_SECRET_OVERLAP_SECONDS="3600")
    before = secret_of(client)
    began = datetime.now(timezone.utc)
    rotated = rotate(client)
    assert rotated["secret"] != before["secret"] and rotated["secret"].startswith("whsec_")
    until = datetime.fromisoformat(rotated["previousValidUntil"].replace("Z", "+00:00"))
    assert timedelta(seconds=3590) < until - began < timedelta(seconds=3610)
    assert secret_of(client) == rotated
    assert secret_of(client.as_user("bob"))["previousValidUntil"] is None  # only alice rotated


def test_rotation_before_any_secret_simply_makes_the_first(client):
    first = rotate(client)
    assert first["secret"].startswith("whsec_") and first["previousValidUntil"] is None
    assert secret_of(client) == first


def test_one_users_webhook_does_not_verify_with_another_users_secret(local_client, aws, receiver):
    bob = local_client.as_user("bob")
    uploaded(local_client, aws, receiver.url("/alice"))
    uploaded(bob, aws, receiver.url("/bob"))
    [to_alice], [to_bob] = receiver.received("/alice"), receiver.received("/bob")
    alice_secret, bob_secret = secret_of(local_client)["secret"], secret_of(bob)["secret"]
    assert verifies(alice_secret, to_alice) and verifies(bob_secret, to_bob)
    assert not verifies(bob_secret, to_alice)  # bob cannot verify (nor sign) alice's events
    assert not verifies(alice_secret, to_bob)


def test_during_the_overlap_both_secrets_verify_and_after_it_only_the_new(make_client, aws, receiver, tokens):
    client = make_client(WEBHOOK_ALLOW_PRIVATE_NETWORKS="true", WEBHOOK_RETRY_SCHEDULE="0,0")
    old = secret_of(client)["secret"]
    new = rotate(client)["secret"]
    receiver.script("/hook", [Reply(500)])
    uploaded(client, aws, receiver.url("/hook"))
    [during] = receiver.received("/hook")
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert verifies(new, during) and verifies(old, during)  # receivers switch at their own pace

    end_overlap(aws, sub_of(tokens("alice")))
    deliver_queued(client, aws)  # the retry, signed as things are now
    _, after = receiver.received("/hook")
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert verifies(new, after) and not verifies(old, after)
    assert secret_of(client)["previousValidUntil"] is None


def test_a_retry_after_a_rotation_carries_the_new_signature(make_client, aws, receiver):
    client = make_client(WEBHOOK_ALLOW_PRIVATE_NETWORKS="true", WEBHOOK_RETRY_SCHEDULE="0,0",
                         WEBHOOK_SECRET_OVERLAP_SECONDS="0")  # the old secret stops at once
    old = secret_of(client)["secret"]
    receiver.script("/hook", [Reply(500)])
    uploaded(client, aws, receiver.url("/hook"))  # the first attempt fails
    new = rotate(client)["secret"]
    deliver_queued(client, aws)
    first, retry = receiver.received("/hook")
    assert verifies(old, first) and not verifies(new, first)
    assert verifies(new, retry) and not verifies(old, retry)
    assert first.headers["webhook-id"] == retry.headers["webhook-id"]


def test_a_second_rotation_during_the_overlap_drops_the_oldest(make_client, aws, receiver):
    client = make_client(WEBHOOK_ALLOW_PRIVATE_NETWORKS="true")
    first = secret_of(client)["secret"]
    second = rotate(client)["secret"]
    third = rotate(client)["secret"]
    uploaded(client, aws, receiver.url("/hook"))
    [got] = receiver.received("/hook")
    assert verifies(third, got) and verifies(second, got) and not verifies(first, got)


def test_no_secret_reaches_the_logs(local_client, aws, receiver):
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(JsonFormatter().format(record))

    handler = Collect(level=logging.DEBUG)
    logging.getLogger("thumbgen").addHandler(handler)
    try:
        secrets = [secret_of(local_client)["secret"], rotate(local_client)["secret"]]
        uploaded(local_client, aws, receiver.url("/hook"))
        assert receiver.received("/hook")
    finally:
        logging.getLogger("thumbgen").removeHandler(handler)
    assert lines  # the handlers did log
    text = "\n".join(lines)
    for secret in secrets:
        assert secret not in text and secret.removeprefix("whsec_") not in text


def test_secret_values_hide_themselves_from_repr():
    from chalicelib.webhooks.secrets import SigningSecrets

    value = SigningSecrets("whsec_c2VjcmV0", "whsec_b2xk", "2030-01-01T00:00:00.000Z")
    assert "c2VjcmV0" not in repr(value) and "b2xk" not in repr(value)


@pytest.mark.parametrize("stored", [{"current": "not-a-secret"}, {"current": 7}, {}])
def test_a_malformed_stored_secret_is_refused_not_used(stored):
    from chalicelib.webhooks.secrets import SigningSecrets

    with pytest.raises(ValueError):
        SigningSecrets.from_item(stored)
