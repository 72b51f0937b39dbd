"""thumbgen: every way into the service. Each handler is a few lines into chalicelib."""
from __future__ import annotations

import functools
import json
import logging

from boto3.dynamodb.types import TypeDeserializer
from chalice import Chalice, Response

from chalicelib import config, images, paging, service
from chalicelib.auth import Caller, KeysUnavailable, Unauthorized, bearer_token
from chalicelib.errors import ApiError
from chalicelib.queues import DeliveryTask
from chalicelib.records import plain_values
from chalicelib.uploads import parse_upload_request

app = Chalice(app_name="thumbgen")
# Browser apps on any origin may call the API (it has no cookies or credentials to leak).
app.api.cors = True
app.log.setLevel(logging.INFO)
log = logging.getLogger("thumbgen")
_deserializer = TypeDeserializer()


def _json(status: int, body: dict | None, headers: dict | None = None) -> Response:
    return Response(body=json.dumps(body) if body is not None else "", status_code=status,
                    headers={"Content-Type": "application/json", **(headers or {})})


UNAUTHORIZED = ApiError(401, "unauthorized", "a valid bearer token is required",
                        headers={"WWW-Authenticate": 'Bearer realm="thumbgen"'})


def _caller() -> Caller:
    """The verified caller of the current request; ApiError 401 otherwise."""
    try:
        token = bearer_token(app.current_request.headers.get("authorization"))
        return service.verifier().verify(token)
    except Unauthorized as why:
        log.info("unauthorized request: %s", why)
        raise UNAUTHORIZED from None
    except KeysUnavailable as why:
        log.error("cannot verify tokens: %s", why)
        raise ApiError(503, "unavailable", "sign-in cannot be checked right now; try again",
                       headers={"Retry-After": "5"}) from None


def _authenticated(handler):
    """Verify the bearer token, pass the caller on, and turn ApiError into its JSON answer."""
    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        try:
            return handler(_caller(), *args, **kwargs)
        except ApiError as exc:
            return _json(exc.status, exc.body(), exc.headers)
    return wrapped


@app.route("/health", methods=["GET"])
def health():
    return {"status": "ok"}


JSON_BODIES = ["application/json", "text/plain", "application/x-www-form-urlencoded"]


@app.route("/images", methods=["POST"], content_types=JSON_BODIES)
@_authenticated
def create_image(caller: Caller):
    """Register an upload and return its presigned PUT."""
    s = service.current_settings()
    request = parse_upload_request(app.current_request.raw_body, max_upload_bytes=s.max_upload_bytes,
                                   url_policy=service.url_policy())
    body = service.image_api().create(caller.sub, request)
    return _json(201, body, {"Location": f"/images/{body['id']}"})


@app.route("/images", methods=["GET"])
@_authenticated
def list_images(caller: Caller):
    """The caller's images, newest first, a page at a time."""
    params = app.current_request.query_params or {}
    limit = paging.parse_limit(params.get("limit"))
    return _json(200, service.image_api().list(caller.sub, limit, params.get("cursor")))


@app.route("/images/{image_id}", methods=["GET"])
@_authenticated
def get_image(caller: Caller, image_id):
    return _json(200, service.image_api().describe(caller.sub, image_id))


@app.route("/images/{image_id}", methods=["DELETE"])
@_authenticated
def delete_image(caller: Caller, image_id):
    """The original, the thumbnails and the record; a pending webhook finds nothing to send."""
    service.image_api().delete(caller.sub, image_id)
    return Response(body="", status_code=204)


@app.route("/images/{image_id}/webhook/redeliver", methods=["POST"], content_types=JSON_BODIES)
@_authenticated
def redeliver_webhook(caller: Caller, image_id):
    return _json(202, service.image_api().redeliver_webhook(caller.sub, image_id))


@app.on_s3_event(bucket=config.BUCKET_FOR_TRIGGER, events=["s3:ObjectCreated:*"], prefix="uploads/")
def resize_upload(event):
    """S3 ObjectCreated on uploads/{id}: make the thumbnails and record the outcome."""
    outcome = service.processor().process(event.key)
    log.info("resize %s: %s", event.key, outcome)


@app.on_dynamodb_record(stream_arn=config.STREAM_ARN, batch_size=100, starting_position="LATEST")
def on_image_change(event):
    """Items leaving pending_upload free a quota slot; items entering completed/failed queue
    their webhook. Never raises for a bad record."""
    delivery = service.delivery()
    for record in event:
        try:
            old = _plain_image(record.old_image)
            new = _plain_image(record.new_image)
        except (TypeError, ValueError, KeyError, AttributeError):
            log.warning("skipping malformed stream record %s", getattr(record, "event_id", "?"))
            continue
        if images.left_pending_upload(old, new) and old.get("owner") and old.get("quotaEntry"):
            service.records().release_quota(str(old["owner"]), {str(old["quotaEntry"])})
        delivery.on_item_changed(old, new)


@app.on_sqs_message(queue=config.DELIVERY_QUEUE_NAME, batch_size=1)
def deliver_webhook(event):
    """One queued webhook attempt; a receiver's failure schedules the next, never raises."""
    delivery = service.delivery()
    for record in event:
        try:
            task = DeliveryTask.from_json(record.body)
        except ValueError as exc:
            log.warning("dropping malformed delivery task: %s", exc)
            continue
        delivery.handle(task)


def _plain_image(image):
    """Raw DynamoDB JSON from the stream -> plain dict, converted once at the edge."""
    if not image:
        return None
    return plain_values({key: _deserializer.deserialize(value) for key, value in image.items()})
