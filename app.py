"""thumbgen: every way into the service. Each handler is a few lines into chalicelib."""
from __future__ import annotations

import functools
import json
import logging
import os

from boto3.dynamodb.types import TypeDeserializer
from chalice import Chalice, Rate, Response

from chalicelib import service
from chalicelib.api import framework_errors, paging, webpage
from chalicelib.api.rate_limit import Throttled
from chalicelib.api.upload_request import parse_upload_request
from chalicelib.images.record import ImageRecord, image_id_from_key, image_of, released_quota
from chalicelib.images.store import plain_values
from chalicelib.platform import config, logs
from chalicelib.platform.auth import Caller, KeysUnavailable, Unauthorized, bearer_token
from chalicelib.platform.errors import ApiError
from chalicelib.resize import upload_events
from chalicelib.resize.resizer import ClaimHeld
from chalicelib.webhooks.queue import DeliveryTask

app = Chalice(app_name="thumbgen")
# Browser apps on any origin may call the API: it uses bearer tokens, never cookies.
app.api.cors = True
# Chalice's own refusals (415, 405, 500) in our error shape, like every other refusal.
app.register_middleware(framework_errors.in_our_shape, "http")
log = logs.get("app")
_deserializer = TypeDeserializer()


def _invocation(handler):
    """Per invocation: settings checked (a bad one fails the function, naming it), JSON
    logs set up, and every line tagged with the function and Lambda request id."""
    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        logs.configure()
        context = getattr(app, "lambda_context", None)
        token = logs.bind_invocation(handler.__name__, getattr(context, "aws_request_id", None))
        try:
            try:
                logs.configure(service.current_settings().log_level)
            except config.ConfigError as bad:
                log.error("config.invalid", extra={"fields": {"reason": str(bad)}})
                raise
            return handler(*args, **kwargs)
        finally:
            logs.unbind(token)
    return wrapped


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
        logs.event(log, "auth.refused", reason=str(why))
        raise UNAUTHORIZED from None
    except KeysUnavailable as why:
        log.error("auth.keys_unavailable", extra={"fields": {"reason": str(why)}})
        raise ApiError(503, "unavailable", "sign-in cannot be checked right now; try again",
                       headers={"Retry-After": str(why.retry_after)}) from None


def _admitted(caller: Caller) -> Caller:
    """The caller, within their own request rate (chalicelib/api/rate_limit.py); ApiError 429 otherwise."""
    try:
        service.rate_limiter().admit(caller.sub)
    except Throttled as throttled:
        raise ApiError(429, "too_many_requests", "too many requests from this user; slow down",
                       headers={"Retry-After": str(throttled.retry_after)}) from None
    return caller


def _authenticated(handler):
    """Verify the bearer token, hold the caller to their request rate, pass the caller on,
    and turn ApiError into its JSON answer."""
    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        try:
            return handler(_admitted(_caller()), *args, **kwargs)
        except ApiError as exc:
            return _json(exc.status, exc.body(), exc.headers)
    return _invocation(wrapped)


@app.route("/health", methods=["GET"])
def health():
    return {"status": "ok"}


@app.route("/", methods=["GET"])
@_invocation
def upload_page():
    """The upload page (chalicelib/api/web/): sign in, upload, thumbnails, recent images."""
    path = (app.current_request.context or {}).get("path") or "/"
    return webpage.page(service.current_settings(), service.bucket_origin(), path)


@app.route("/app.js", methods=["GET"])
def page_script():
    return webpage.asset("app.js", app.current_request.query_params)


@app.route("/thumbhash.js", methods=["GET"])
def page_placeholders():
    return webpage.asset("thumbhash.js", app.current_request.query_params)


@app.route("/app.css", methods=["GET"])
def page_style():
    return webpage.asset("app.css", app.current_request.query_params)


@app.route("/config.json", methods=["GET"])
@_invocation
def page_config():
    """Public client settings of the stage: the user pool to sign in with, the size limit."""
    return webpage.config_response(service.current_settings())


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


@app.route("/images/{image_id}/complete", methods=["POST"], content_types=JSON_BODIES)
@_authenticated
def complete_upload(caller: Caller, image_id):
    """The client's PUT succeeded: start the resize now instead of waiting for S3's event."""
    status, body = service.image_api().complete(caller.sub, image_id)
    return _json(status, body)


@app.route("/images/{image_id}/webhook/redeliver", methods=["POST"], content_types=JSON_BODIES)
@_authenticated
def redeliver_webhook(caller: Caller, image_id):
    return _json(202, service.image_api().redeliver_webhook(caller.sub, image_id))


NO_STORE = {"Cache-Control": "no-store"}  # a secret: never kept by a cache on the way


@app.route("/webhook-secret", methods=["GET"])
@_authenticated
def get_webhook_secret(caller: Caller):
    """The caller's own webhook signing secret (made on first use)."""
    return _json(200, service.webhook_secrets().show(caller.sub), NO_STORE)


@app.route("/webhook-secret/rotate", methods=["POST"], content_types=JSON_BODIES)
@_authenticated
def rotate_webhook_secret(caller: Caller):
    """A new signing secret; the replaced one keeps signing for the overlap."""
    return _json(200, service.webhook_secrets().rotate(caller.sub), NO_STORE)


@app.on_sqs_message(queue=config.UPLOAD_QUEUE_NAME, batch_size=1,
                    maximum_concurrency=config.RESIZE_MAX_CONCURRENCY)
@_invocation
def resize_upload(event):
    """An upload arrived (S3's notification) or was declared complete: make the thumbnails,
    record the outcome, send the first webhook attempt. An infrastructure error raises: the
    queue hands the message back, and its redrive policy ends that in the dead-letter queue."""
    processor = service.resizer()
    for record in event:
        keys = upload_events.read(record.body)
        if not keys and upload_events.is_test_event(record.body):
            logs.event(log, "resize.s3_test_event", level=logging.DEBUG)
        elif not keys:
            logs.event(log, "resize.dropped_message", outcome="malformed", body=record.body[:200])
        for key in keys:
            try:
                processor.process(key)
            except ClaimHeld as held:  # another worker has it: look again when its lease ends
                service.start_resize(key, delay=held.retry_in)


@app.on_sqs_message(queue=config.UPLOAD_DLQ_NAME, batch_size=1,
                    maximum_concurrency=config.DEAD_UPLOADS_MAX_CONCURRENCY)
@_invocation
def fail_dead_uploads(event):
    """Uploads the queue gave up on: their images end failed / internal_error."""
    processor = service.resizer()
    for record in event:
        for key in upload_events.read(record.body):
            image_id = image_id_from_key(key)
            if image_id:
                processor.give_up(image_id, "the image could not be processed; upload it again")


@app.schedule(Rate(5, unit=Rate.MINUTES))
@_invocation
def sweep_stuck_images(event):
    """Images processing for longer than the bound: fail them and count them (the alarm)."""
    service.sweeper().sweep()


# TRIM_HORIZON: a mapping being created starts at the oldest record of the stream (24 h),
# so the items written while it is being enabled are not skipped (quota slots, webhooks).
@app.on_dynamodb_record(stream_arn=config.STREAM_ARN, batch_size=100, starting_position="TRIM_HORIZON")
@_invocation
def on_image_change(event):
    """Items whose upload arrived free their quota slot (a deleted pending item keeps it until
    its upload URL expires); items entering completed/failed queue
    their webhook (if the resize's own attempt did not happen, it is sent from there).
    Never raises for a bad record."""
    changes = []
    for record in event:
        try:
            changes.append((_plain_image(record.old_image), _plain_image(record.new_image)))
        except (TypeError, ValueError, KeyError, AttributeError):
            logs.event(log, "stream.malformed_record", outcome="skipped", eventId=getattr(record, "event_id", "?"))
    for owner, entries in released_quota(changes).items():  # one write per owner and batch
        service.records().release_quota(owner, entries)
    service.delivery().on_changes(changes)


@app.on_sqs_message(queue=config.DELIVERY_QUEUE_NAME, batch_size=1,
                    maximum_concurrency=config.WEBHOOK_MAX_CONCURRENCY)
@_invocation
def deliver_webhook(event):
    """One queued webhook attempt; a receiver's failure schedules the next, never raises."""
    delivery = service.delivery()
    for record in event:
        try:
            task = DeliveryTask.from_json(record.body)
        except ValueError as exc:
            logs.event(log, "webhook.dropped_task", outcome="malformed", reason=str(exc))
            continue
        delivery.handle(task)


def _plain_image(image) -> ImageRecord | None:
    """Raw DynamoDB JSON from the stream -> an ImageRecord (None for no image, or for the
    quota items that share the table), converted once at the edge."""
    if not image:
        return None
    return image_of(plain_values({key: _deserializer.deserialize(value) for key, value in image.items()}))


# Lambda's init phase: only the resize function loads the image libraries, and it loads
# them here, once, not on its first upload (every other function stays light).
if os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "").endswith("-resize_upload"):
    service.load_image_engine()
