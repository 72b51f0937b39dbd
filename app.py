"""thumbgen: every way into the service. Each handler is a few lines into chalicelib."""
from __future__ import annotations

import json
import logging

from boto3.dynamodb.types import TypeDeserializer
from chalice import Chalice, Response

from chalicelib import config, service
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


def _json(status: int, body: dict, headers: dict | None = None) -> Response:
    return Response(body=json.dumps(body), status_code=status,
                    headers={"Content-Type": "application/json", **(headers or {})})


def _api(handler):
    """Turn ApiError into DESIGN.md's {"error": {...}} responses."""
    def wrapped(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except ApiError as exc:
            return _json(exc.status, exc.body())
    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


@app.route("/health", methods=["GET"])
def health():
    return {"status": "ok"}


@app.route("/images", methods=["POST"], content_types=["application/json", "text/plain",
                                                        "application/x-www-form-urlencoded"])
@_api
def create_image():
    """Register an upload and return its presigned PUT."""
    s = service.current_settings()
    request = parse_upload_request(app.current_request.raw_body, max_upload_bytes=s.max_upload_bytes,
                                   url_policy=service.url_policy())
    body = service.create_image(request)
    return _json(201, body, {"Location": f"/images/{body['id']}"})


@app.route("/images/{image_id}", methods=["GET"])
@_api
def get_image(image_id):
    return _json(200, service.describe_image(image_id))


@app.route("/images/{image_id}/webhook/redeliver", methods=["POST"],
           content_types=["application/json", "text/plain", "application/x-www-form-urlencoded"])
@_api
def redeliver_webhook(image_id):
    return _json(202, service.redeliver_webhook(image_id))


@app.on_s3_event(bucket=config.BUCKET_FOR_TRIGGER, events=["s3:ObjectCreated:*"], prefix="uploads/")
def resize_upload(event):
    """S3 ObjectCreated on uploads/{id}: make the thumbnails and record the outcome."""
    outcome = service.processor().process(event.key)
    log.info("resize %s: %s", event.key, outcome)


@app.on_dynamodb_record(stream_arn=config.STREAM_ARN, batch_size=100, starting_position="LATEST")
def on_image_change(event):
    """Items entering completed/failed queue their webhook; never raises for a bad record."""
    delivery = service.delivery()
    for record in event:
        try:
            old = _plain_image(record.old_image)
            new = _plain_image(record.new_image)
        except (TypeError, ValueError, KeyError, AttributeError):
            log.warning("skipping malformed stream record %s", getattr(record, "event_id", "?"))
            continue
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
