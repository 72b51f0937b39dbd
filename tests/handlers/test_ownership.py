"""Auth, ownership and limits through Chalice's test Client, with moto's user pool behind it.

Tokens are real: moto's cognito-idp signs them with RS256 and serves the pool's JWKS.
"""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import boto3
import pytest
import yaml

from tests.conftest import put_upload, queue_messages, sub_of, upload_event
from tests.imagegen import make_jpeg
from thumbgen.local.stack import free_port

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def body_of(response) -> dict:
    return json.loads(response.body) if response.body else {}


def create(client, **changes) -> dict:
    body = {"filename": "cat.jpg", "contentType": "image/jpeg", "fileSize": 1000, **changes}
    response = client.http.post("/images", headers={"Content-Type": "application/json"}, body=json.dumps(body))
    assert response.status_code == 201, response.body
    return body_of(response)


def routes(image_id: str) -> list[tuple[str, str, str | None]]:
    create_body = json.dumps({"filename": "a.png", "contentType": "image/png", "fileSize": 5})
    return [
        ("POST", "/images", create_body),
        ("GET", "/images", None),
        ("GET", f"/images/{image_id}", None),
        ("DELETE", f"/images/{image_id}", None),
        ("POST", f"/images/{image_id}/webhook/redeliver", None),
    ]


def call(client, method: str, path: str, body: str | None, headers: dict | None = None):
    headers = {"Content-Type": "application/json", **(headers or {})}
    return client.http.request(method, path, headers=headers, body=body or b"")


def forged_token(real: str) -> str:
    """Same header and claims, signature of a key the pool never had."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    claims = jwt.decode(real, options={"verify_signature": False})
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": jwt.get_unverified_header(real)["kid"]})


def tampered_token(real: str) -> str:
    header, payload, signature = real.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


def alg_none_token(real: str) -> str:
    _, payload, _ = real.split(".")
    header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"dummy"}').decode().rstrip("=")
    return f"{header}.{payload}."


@pytest.fixture
def bad_credentials(tokens):
    real = tokens("alice")
    return {
        "missing": None,
        "empty-bearer": "Bearer ",
        "basic": "Basic YWxpY2U6c2VjcmV0",
        "garbage": "Bearer not-a-token",
        "forged": f"Bearer {forged_token(real)}",
        "tampered": f"Bearer {tampered_token(real)}",
        "alg-none": f"Bearer {alg_none_token(real)}",
    }


def test_health_needs_no_token(client):
    assert client.anonymous().http.get("/health").status_code == 200


def test_every_route_refuses_every_bad_credential_the_same_way(client, bad_credentials):
    image_id = create(client)["id"]
    anonymous = client.anonymous()
    answers = set()
    for method, path, body in routes(image_id):
        for name, credential in bad_credentials.items():
            headers = {"Authorization": credential} if credential is not None else {}
            response = call(anonymous, method, path, body, headers)
            assert response.status_code == 401, (method, path, name, response.body)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert body_of(response)["error"]["code"] == "unauthorized"
            answers.add(response.body)
    assert len(answers) == 1  # the answer never says which part failed
    assert client.http.get(f"/images/{image_id}").status_code == 200  # and nothing changed


def moto_signed(claims: dict) -> str:
    """A token signed with the key moto's user pools really use (as a stolen key would)."""
    import jwt
    from jwt import PyJWK
    from moto.utilities.utils import load_resource

    private = PyJWK(load_resource("moto.cognitoidp.models", "resources/jwks-private.json"))
    return jwt.encode(claims, private.key, algorithm="RS256", headers={"kid": "dummy"})


def test_expired_and_foreign_pool_tokens_are_refused(client, aws):
    import time

    import jwt

    from thumbgen.users import token_for

    # moto signs every pool's tokens with one key, so a token of another pool has a good
    # signature: only the `iss` and app client checks stand between it and the API.
    cognito = boto3.client("cognito-idp")
    other_pool = cognito.create_user_pool(PoolName="elsewhere")["UserPool"]["Id"]
    other_client = cognito.create_user_pool_client(
        UserPoolId=other_pool, ClientName="x", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"],
    )["UserPoolClient"]["ClientId"]
    foreign = token_for(cognito, other_pool, other_client, "mallory")
    mine = jwt.decode(client.http._token, options={"verify_signature": False})
    cases = {
        "foreign-pool": foreign,
        "expired": moto_signed({**mine, "exp": int(time.time()) - 3600}),
        "other-app-client": moto_signed({**mine, "client_id": other_client}),
        "id-token": moto_signed({**mine, "token_use": "id"}),
        "control": moto_signed(mine),
    }
    for name, token in cases.items():
        response = call(client.anonymous(), "GET", "/images", None, {"Authorization": f"Bearer {token}"})
        assert response.status_code == (200 if name == "control" else 401), name


def test_another_users_image_answers_like_an_unknown_one(client):
    image_id = create(client)["id"]
    bob = client.as_user("bob")
    for method, path, body in routes(image_id)[2:]:
        theirs = call(bob, method, path, body)
        unknown = call(bob, method, path.replace(image_id, UNKNOWN), body)
        assert theirs.status_code == unknown.status_code == 404, (method, path)
        assert body_of(theirs)["error"]["code"] == body_of(unknown)["error"]["code"] == "not_found"
        assert body_of(theirs)["error"]["message"].replace(image_id, UNKNOWN) == body_of(unknown)["error"]["message"]
    assert client.http.get(f"/images/{image_id}").status_code == 200  # alice's image is untouched


def test_list_shows_only_the_callers_images_newest_first_a_page_at_a_time(client):
    mine = [create(client, filename=f"a{i}.jpg")["id"] for i in range(5)]
    theirs = create(client.as_user("bob"))["id"]
    seen, cursor, pages = [], None, 0
    while True:
        path = "/images?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = body_of(client.http.get(path))
        pages += 1
        seen += [image["id"] for image in page["images"]]
        assert all(set(image) >= {"id", "status", "metadata", "thumbnails", "error", "webhook"}
                   for image in page["images"])
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(mine)) and pages == 3
    assert theirs not in seen
    assert [i["id"] for i in body_of(client.as_user("bob").http.get("/images"))["images"]] == [theirs]


def test_a_cursor_is_bound_to_its_user(client):
    for i in range(3):
        create(client, filename=f"a{i}.jpg")
    create(client.as_user("bob"))
    alices = body_of(client.http.get("/images?limit=1"))["nextCursor"]
    bob = client.as_user("bob")
    first = body_of(bob.http.get("/images?limit=1"))
    # alice's cursor in bob's hands names no position of his: his own first page
    assert body_of(bob.http.get(f"/images?limit=1&cursor={alices}")) == first
    assert all(image["id"] != "" for image in first["images"]) and len(first["images"]) == 1


def test_cursors_are_signed_with_the_stages_own_key_which_never_leaves_the_table(client, aws, tokens, capsys):
    import hashlib

    from chalicelib import service

    _, middle, newest = (create(client, filename=f"a{i}.jpg")["id"] for i in range(3))
    first = body_of(client.http.get("/images?limit=1"))
    assert [i["id"] for i in first["images"]] == [newest]
    [key_item] = [i for i in boto3.resource("dynamodb").Table(aws.table).scan()["Items"]
                  if i["id"].startswith("stagekey#")]
    secret = bytes(key_item["secret"].value)
    assert key_item["id"] == "stagekey#cursor" and len(secret) == 32
    # A cursor made the old way (a plain hash of the owner) for alice, naming her middle image:
    sub = sub_of(tokens("alice"))
    forged = base64.urlsafe_b64encode(json.dumps({
        "o": hashlib.sha256(f"thumbgen-cursor:{sub}".encode()).hexdigest()[:16], "i": middle,
        "c": body_of(client.http.get(f"/images/{middle}"))["metadata"]["createdAt"]}).encode()).decode().rstrip("=")
    assert body_of(client.http.get(f"/images?limit=1&cursor={forged}")) == first  # the first page again
    service.reset()  # another container: the same key, read from the table
    second = body_of(client.http.get(f"/images?limit=1&cursor={first['nextCursor']}"))
    assert [i["id"] for i in second["images"]] == [middle]
    shown = capsys.readouterr().out + json.dumps([first, second])
    assert all(form not in shown for form in (secret.hex(), base64.b64encode(secret).decode(),
                                              base64.urlsafe_b64encode(secret).decode().rstrip("=")))


def test_a_cursor_the_schema_allows_but_not_made_for_the_caller_starts_over_others_are_400(client):
    """openapi.yaml: cursor is up to 512 of [A-Za-z0-9_-]; a well-formed one not made for the
    caller names no position of theirs (the first page), anything else is malformed."""
    mine = [create(client, filename=f"a{i}.jpg")["id"] for i in range(2)]
    made_up = base64.urlsafe_b64encode(b'{"o":"0","i":"a","c":"b"}').decode().rstrip("=")
    for unknown in ("x", "abcde", made_up, "A" * 512):
        response = client.http.get(f"/images?cursor={unknown}")
        assert response.status_code == 200, unknown
        assert [i["id"] for i in body_of(response)["images"]] == list(reversed(mine))
    for malformed in ("%00", "a%2Bb", "a.b", "%C3%A9", "A" * 513, made_up + "%3D"):
        response = client.http.get(f"/images?cursor={malformed}")
        assert response.status_code == 400 and body_of(response)["error"]["code"] == "invalid_request", malformed
    assert client.http.get("/images?cursor=").status_code == 200  # empty: the first page


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5", ""])
def test_list_limit_must_be_between_1_and_100(client, limit):
    response = client.http.get(f"/images?limit={limit}")
    assert response.status_code == 400 and body_of(response)["error"]["code"] == "invalid_request"


def test_list_limit_is_ascii_digits_as_the_schema_integer(client):
    """int() would take "+5", " 5", "1_0" and other scripts' digits (U+FF15 is a 5)."""
    for limit in ("%2B5", "%205", "5%20", "%EF%BC%95", "1_0", "1" * 5000):
        response = client.http.get(f"/images?limit={limit}")
        assert response.status_code == 400 and body_of(response)["error"]["code"] == "invalid_request", limit
    assert client.http.get("/images?limit=005").status_code == 200


def test_delete_removes_the_record_and_every_object(client, aws):
    image = create(client)
    image_id = image["id"]
    put_upload(aws, image_id, make_jpeg(800, 600))
    client.lambda_.invoke("resize_upload", upload_event(aws.bucket, f"uploads/{image_id}"))
    s3 = boto3.client("s3")
    before = s3.list_objects_v2(Bucket=aws.bucket)["KeyCount"]
    assert before == 4
    assert client.as_user("bob").http.delete(f"/images/{image_id}").status_code == 404
    response = client.http.delete(f"/images/{image_id}")
    assert response.status_code == 204
    assert s3.list_objects_v2(Bucket=aws.bucket)["KeyCount"] == 0
    assert client.http.get(f"/images/{image_id}").status_code == 404
    assert client.http.delete(f"/images/{image_id}").status_code == 404


@pytest.mark.parametrize("failure", ["s3-error", "key-refused"])
def test_a_delete_stopped_by_s3_says_so_and_the_next_delete_finishes_it(client, aws, failure):
    """Never "gone" (204, then 404) while bytes remain: a DELETE whose objects S3 would not
    delete answers 503, the image is still there, and DELETE again removes everything."""
    from botocore.stub import Stubber

    from chalicelib.platform import aws as lazy_aws

    image_id = create(client)["id"]
    put_upload(aws, image_id, make_jpeg(800, 600))
    client.lambda_.invoke("resize_upload", upload_event(aws.bucket, f"uploads/{image_id}"))
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=aws.bucket)["Contents"]]
    assert len(keys) == 4
    with Stubber(lazy_aws.client("s3")) as s3_trouble:  # the API's own S3 client
        s3_trouble.add_response("list_objects_v2", {"Contents": [{"Key": k} for k in keys if k.startswith("thumb")],
                                                    "KeyCount": 3, "IsTruncated": False})
        if failure == "s3-error":
            s3_trouble.add_client_error("delete_objects", "InternalError", http_status_code=500)
        else:
            s3_trouble.add_response("delete_objects", {"Errors": [{"Key": keys[0], "Code": "AccessDenied"}]})
        stopped = client.http.delete(f"/images/{image_id}")
    assert stopped.status_code == 503 and body_of(stopped)["error"]["code"] == "unavailable"
    assert int(stopped.headers["Retry-After"]) >= 1
    assert s3.list_objects_v2(Bucket=aws.bucket)["KeyCount"] == 4
    shown = client.http.get(f"/images/{image_id}")
    assert shown.status_code == 200 and body_of(shown)["status"] == "completed"  # not told "gone"
    assert client.as_user("bob").http.delete(f"/images/{image_id}").status_code == 404  # still only hers
    assert client.http.delete(f"/images/{image_id}").status_code == 204
    assert s3.list_objects_v2(Bucket=aws.bucket)["KeyCount"] == 0
    assert client.http.get(f"/images/{image_id}").status_code == 404
    assert client.http.delete(f"/images/{image_id}").status_code == 404


def test_pending_uploads_are_limited_per_user(make_client, aws):
    client = make_client(MAX_PENDING_UPLOADS="3")
    for _ in range(3):
        create(client)
    refused = call(client, "POST", "/images", json.dumps({"filename": "a.jpg", "contentType": "image/jpeg",
                                                          "fileSize": 10}))
    assert refused.status_code == 429
    assert body_of(refused)["error"]["code"] == "too_many_requests"
    assert 1 <= int(refused.headers["Retry-After"]) <= 601
    create(client.as_user("bob"))  # one user's limit never affects another


def stream_records(aws, *changes):
    """A DynamoDB stream event for (old, new) item pairs, as Lambda hands it over."""
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()

    def raw(item):
        return {k: serializer.serialize(v) for k, v in item.items()} if item else None

    records = []
    for n, (old, new) in enumerate(changes):
        dynamodb = {"Keys": {"id": {"S": (new or old)["id"]}}, "StreamViewType": "NEW_AND_OLD_IMAGES",
                    "SequenceNumber": str(n + 1), "SizeBytes": 10, "ApproximateCreationDateTime": 1767312000}
        if old:
            dynamodb["OldImage"] = raw(old)
        if new:
            dynamodb["NewImage"] = raw(new)
        records.append({"eventID": str(n), "eventName": "MODIFY" if old and new else ("INSERT" if new else "REMOVE"),
                        "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
                        "dynamodb": dynamodb, "eventSourceARN": aws.stream_arn})
    return {"Records": records}


def test_a_slot_frees_when_the_upload_starts_processing(make_client, aws):
    client = make_client(MAX_PENDING_UPLOADS="2")
    table = boto3.resource("dynamodb").Table(aws.table)
    first, second = create(client)["id"], create(client)["id"]
    body = json.dumps({"filename": "a.jpg", "contentType": "image/jpeg", "fileSize": 10})
    assert call(client, "POST", "/images", body).status_code == 429
    old = table.get_item(Key={"id": first})["Item"]
    put_upload(aws, first, make_jpeg(64, 48))
    client.lambda_.invoke("resize_upload", upload_event(aws.bucket, f"uploads/{first}"))
    new = table.get_item(Key={"id": first})["Item"]
    client.lambda_.invoke("on_image_change", stream_records(aws, (old, new)))
    boto3.client("s3").delete_object(Bucket=aws.bucket, Key=f"uploads/{first}")  # only the stream freed it
    third = create(client)["id"]
    assert third not in (first, second)
    assert call(client, "POST", "/images", body).status_code == 429


def test_bytes_in_the_bucket_free_the_slot_at_once(make_client, aws):
    """S3's event may be seconds away, or queued behind other resizes: an upload whose
    object is there no longer waits for its bytes, whatever the pipeline has done so far."""
    client = make_client(MAX_PENDING_UPLOADS="2")
    first, _ = create(client)["id"], create(client)["id"]
    body = json.dumps({"filename": "a.jpg", "contentType": "image/jpeg", "fileSize": 10})
    refused = call(client, "POST", "/images", body)
    assert refused.status_code == 429
    # A slot frees when an upload arrives: a short wait, not the upload URLs' 600 s.
    assert 1 <= int(refused.headers["Retry-After"]) <= 5
    expiry = re.search(r"the first in (\d+) s", body_of(refused)["error"]["message"])
    assert expiry and 590 <= int(expiry.group(1)) <= 601  # the worst case, in words
    put_upload(aws, first, make_jpeg(64, 48))  # no event handled, no stream record
    assert call(client, "POST", "/images", body).status_code == 201
    assert call(client, "POST", "/images", body).status_code == 429


def test_deleting_a_pending_image_keeps_its_slot_until_its_upload_url_expires(make_client, aws):
    """Its upload URL still works after the DELETE: freeing the slot would let delete and
    create cycles hand out any number of live upload URLs."""
    client = make_client(MAX_PENDING_UPLOADS="1")
    table = boto3.resource("dynamodb").Table(aws.table)
    pending = create(client)["id"]
    old = table.get_item(Key={"id": pending})["Item"]
    assert client.http.delete(f"/images/{pending}").status_code == 204
    client.lambda_.invoke("on_image_change", stream_records(aws, (old, None)))
    body = json.dumps({"filename": "a.jpg", "contentType": "image/jpeg", "fileSize": 10})
    assert call(client, "POST", "/images", body).status_code == 429
    quota = table.get_item(Key={"id": f"quota#{sub_of(client.http._token)}"})["Item"]
    [entry] = quota["pendingIds"]
    table.update_item(Key={"id": quota["id"]}, UpdateExpression="SET pendingIds = :e",
                      ExpressionAttributeValues={":e": {"1:" + entry.split(":", 1)[1]}})  # its URL expired
    assert call(client, "POST", "/images", body).status_code == 201


def test_expired_upload_urls_stop_counting(make_client, aws):
    client = make_client(MAX_PENDING_UPLOADS="1", UPLOAD_URL_TTL_SECONDS="1")
    create(client)
    body = json.dumps({"filename": "a.jpg", "contentType": "image/jpeg", "fileSize": 10})
    assert call(client, "POST", "/images", body).status_code == 429
    table = boto3.resource("dynamodb").Table(aws.table)
    quota = table.get_item(Key={"id": f"quota#{sub_of(client.http._token)}"})["Item"]
    # Age the entry instead of sleeping: rewrite its expiry into the past.
    [entry] = quota["pendingIds"]
    table.update_item(Key={"id": quota["id"]}, UpdateExpression="SET pendingIds = :e",
                      ExpressionAttributeValues={":e": {"1:" + entry.split(":", 1)[1]}})
    assert call(client, "POST", "/images", body).status_code == 201


def test_redelivery_is_one_round_at_a_time_and_limited(make_client, aws, tokens):
    client = make_client(MAX_REDELIVERIES="2")
    table = boto3.resource("dynamodb").Table(aws.table)
    image_id = "22222222-2222-4222-8222-222222222222"
    table.put_item(Item={
        "id": image_id, "owner": sub_of(tokens("alice")), "status": "completed",
        "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-01T00:00:00.000Z",
        "uploadKey": f"uploads/{image_id}", "filename": "a.jpg", "declaredType": "image/jpeg",
        "declaredSize": 10, "webhookUrl": "https://hooks.example/x",
        "webhook": {"id": f"msg_{image_id}_completed", "url": "https://hooks.example/x",
                    "status": "delivered", "round": 1, "attempts": 1},
    })
    path = f"/images/{image_id}/webhook/redeliver"
    assert client.http.post(path).status_code == 202
    in_flight = client.http.post(path)
    assert in_flight.status_code == 429 and int(in_flight.headers["Retry-After"]) >= 1
    for round_ in (2, 3):
        table.update_item(Key={"id": image_id}, UpdateExpression="SET webhook.#s = :d",
                          ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":d": "delivered"})
        response = client.http.post(path)
        if round_ == 2:
            assert response.status_code == 202
        else:
            assert response.status_code == 429
            assert "redelivered 2 times" in body_of(response)["error"]["message"]
    assert int(table.get_item(Key={"id": image_id})["Item"]["webhook"]["round"]) == 3
    assert queue_messages(aws) == []  # the API only writes the round: its stream record queues it
    assert client.as_user("bob").http.post(path).status_code == 404


def test_a_slot_whose_item_cannot_be_written_is_given_back(aws):
    from botocore.exceptions import ClientError

    from chalicelib.images.record import ImageRecord, ImageStatus, quota_key
    from chalicelib.images.store import RecordStore
    from tests.conftest import stage_environment
    from tests.iam.plugin import running_as

    table = boto3.resource("dynamodb").Table(aws.table)
    records = RecordStore(table)
    table.put_item(Item={"id": "taken"})
    taken = ImageRecord("taken", ImageStatus.PENDING_UPLOAD, owner="owner-1", quota_entry="99:taken")
    with running_as("api_handler", stage_environment(aws)), pytest.raises(ClientError):
        records.create_within_quota(taken, 5, 0)  # the id exists
    assert "pendingIds" not in table.get_item(Key={"id": quota_key("owner-1")}).get("Item", {})


def test_slots_a_prune_freed_are_taken_even_if_the_owners_other_uploads_refilled_them(aws):
    """While one create prunes, the owner's other creates may fill the freed slots with
    uploads whose bytes arrive as fast: the prune's count decides, up to twice the limit."""
    from chalicelib.images.record import ImageRecord, ImageStatus, quota_key
    from chalicelib.images.store import QuotaFull, RecordStore
    from tests.conftest import stage_environment
    from tests.iam.plugin import running_as

    table = boto3.resource("dynamodb").Table(aws.table)
    records = RecordStore(table)
    key = {"id": quota_key("owner-1")}
    table.put_item(Item={**key, "pendingIds": {f"900:old-{n}" for n in range(3)}})

    def refilled_by(count):
        def arrived(entries):  # every entry seen has its bytes; meanwhile `count` more came
            table.update_item(Key=key, UpdateExpression="ADD pendingIds :e",
                              ExpressionAttributeValues={":e": {f"900:new-{count}-{n}" for n in range(count)}})
            return set(entries)
        return arrived

    first = ImageRecord("first", ImageStatus.PENDING_UPLOAD, owner="owner-1", quota_entry="900:first")
    second = ImageRecord("second", ImageStatus.PENDING_UPLOAD, owner="owner-1", quota_entry="900:second")
    with running_as("api_handler", stage_environment(aws)):
        records.create_within_quota(first, 3, 0, refilled_by(3))
        assert table.get_item(Key=key)["Item"]["pendingIds"] == {"900:first"} | {f"900:new-3-{n}" for n in range(3)}
        with pytest.raises(QuotaFull) as full:  # refilled beyond twice the limit: come back in a second
            records.create_within_quota(second, 3, 0, refilled_by(6))
    assert full.value.retry_after == 1
    assert "900:second" not in table.get_item(Key=key)["Item"]["pendingIds"]


def test_unreachable_signing_keys_answer_503_as_openapi_documents(make_client):
    spec = yaml.safe_load((Path(__file__).resolve().parents[2] / "openapi.yaml").read_text())
    client = make_client(COGNITO_JWKS_URL=f"http://127.0.0.1:{free_port()}/jwks.json")
    response = client.http.get("/images")
    assert response.status_code == 503 and body_of(response)["error"]["code"] == "unavailable"
    documented = spec["paths"]["/images"]["get"]["responses"]["503"]["$ref"].rsplit("/", 1)[-1]
    for name, header in spec["components"]["responses"][documented]["headers"].items():
        assert not header.get("required") or name in response.headers
    assert int(response.headers["Retry-After"]) >= 1
    again = client.http.get("/images")  # the failed fetch did not count: still no verdict
    assert again.status_code == 503 and body_of(again)["error"]["code"] == "unavailable"
