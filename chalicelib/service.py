"""Wiring: builds the adapters from the settings, lazily, once per process.

Handlers in app.py call these getters; tests reset them between runs. Nothing here
decides anything: the use cases live in api/use_cases.py, resize/resizer.py and
webhooks/delivery.py.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from chalicelib.api.rate_limit import RateLimit, RateLimiter
from chalicelib.api.use_cases import ImageApi
from chalicelib.images.record import ImageRecord, StageKey
from chalicelib.images.store import RecordStore
from chalicelib.platform import aws, logs
from chalicelib.platform.auth import JwksCache, TokenVerifier
from chalicelib.platform.config import Settings, settings
from chalicelib.platform.storage import ImageStorage, require_conditional_put
from chalicelib.resize import upload_events
from chalicelib.resize.resizer import Resizer
from chalicelib.resize.sweeper import Sweeper
from chalicelib.webhooks.budget import HostBudget
from chalicelib.webhooks.delivery import WebhookDelivery
from chalicelib.webhooks.queue import DeliveryQueue
from chalicelib.webhooks.secrets import SecretStore, WebhookSecrets
from chalicelib.webhooks.sender import Sender
from chalicelib.webhooks.urls import UrlPolicy

_lock = threading.RLock()
_cache: dict[str, Any] = {}
_background = ThreadPoolExecutor(max_workers=4, thread_name_prefix="thumbgen-prefetch")


def _cached(name: str, build):
    with _lock:
        if name not in _cache:
            _cache[name] = build()
        return _cache[name]


def reset() -> None:
    with _lock:
        _cache.clear()
    aws.reset()


def current_settings() -> Settings:
    return _cached("settings", settings)


def url_policy() -> UrlPolicy:
    s = current_settings()
    return UrlPolicy(allow_private_networks=s.webhook_allow_private_networks,
                     require_https=s.webhook_require_https)


def storage() -> ImageStorage:
    def build() -> ImageStorage:
        s3 = aws.client("s3")
        require_conditional_put(s3)
        return ImageStorage(s3, current_settings().bucket)
    return _cached("storage", build)


def bucket_origin() -> str:
    return _cached("bucket_origin", lambda: storage().origin())


def records() -> RecordStore:
    return _cached("records", lambda: RecordStore(aws.resource("dynamodb").Table(current_settings().table)))


def resizer() -> Resizer:
    """The resize, sending the first webhook attempt itself (the queue path stays the
    fallback: an attempt it could not make is made from the stream)."""
    def build() -> Resizer:
        return Resizer(records(), storage(), current_settings(), notify=_first_attempt)
    return _cached("resizer", build)


def _first_attempt(claimed: ImageRecord) -> Callable[[ImageRecord], None]:
    """The resize's own first attempt: the owner's signing secrets are read while the
    outcome is written, so reading them adds nothing to the webhook's latency; the call
    returned sends the attempt once the outcome is recorded."""
    secrets = _background.submit(lambda: delivery().signing_secrets(claimed.owner))  # its errors: in send

    def send(done: ImageRecord) -> None:
        try:
            delivery().send_claimed(done, secrets.result())
        except Exception:  # the outcome is recorded; the stream's queued copy takes over
            logs.get("service").exception("webhook.inline_attempt_failed", extra={"fields": {"imageId": done.id}})
    return send


def sweeper() -> Sweeper:
    s = current_settings()
    return _cached("sweeper", lambda: Sweeper(records(), resizer(), s.stuck_after_seconds, s.stage))


def delivery() -> WebhookDelivery:
    def build() -> WebhookDelivery:
        s = current_settings()
        return WebhookDelivery(
            records=records(),
            queue=DeliveryQueue(aws.client("sqs"), s.delivery_queue_url, s.dead_letter_queue_url),
            sender=Sender(url_policy(), s.webhook_connect_timeout, s.webhook_read_timeout),
            storage=storage(),
            settings=s,
            secrets=webhook_secrets(),
            budget=HostBudget(aws.resource("dynamodb").Table(s.table), s.webhook_hourly_attempts_per_host),
        )
    return _cached("delivery", build)


def webhook_secrets() -> WebhookSecrets:
    """Users' signing secrets, through a Table object of their own: it is used from the
    prefetch thread while the records' one writes an outcome."""
    def build() -> WebhookSecrets:
        s = current_settings()
        return WebhookSecrets(SecretStore(aws.resource("dynamodb").Table(s.table)), s.webhook_secret_overlap_seconds)
    return _cached("webhook_secrets", build)


def start_resize(key: str, delay: int = 0) -> None:
    """Queue the resize of an uploaded key (now, or after `delay` seconds, at most 900)."""
    aws.client("sqs").send_message(QueueUrl=current_settings().upload_queue_url,
                                   MessageBody=upload_events.complete_message(key),
                                   DelaySeconds=max(0, min(900, int(delay))))


def image_api() -> ImageApi:
    return _cached("image_api", lambda: ImageApi(
        records=records(), storage=storage(), settings=current_settings(),
        redeliver=lambda image_id, max_round: delivery().redeliver(image_id, max_round),
        start_resize=start_resize,
        cursor_key=cursor_key,
    ))


def rate_limiter() -> RateLimiter:
    def build() -> RateLimiter:
        s = current_settings()
        return RateLimiter(aws.client("dynamodb"), s.rate_limit_table,
                           RateLimit(s.rate_limit_per_second, s.rate_limit_burst))
    return _cached("rate_limiter", build)


def cursor_key() -> bytes:
    """The stage's cursor key, read (or made) once per process."""
    return _cached("cursor_key", lambda: records().stage_key(StageKey.CURSOR))


def verifier() -> TokenVerifier:
    def build() -> TokenVerifier:
        s = current_settings()
        return TokenVerifier(s.cognito_issuer, s.cognito_app_client_id, JwksCache(s.jwks_url))
    return _cached("verifier", build)


def load_image_engine() -> None:
    """Import the image libraries now (the resize function's init phase)."""
    from chalicelib.imaging import engine  # noqa: F401
