"""Settings from the environment, in one place, with safe defaults at import time.

Chalice imports app.py before a stage's environment exists (pytest, `chalice package`),
so nothing here may raise on a missing variable; values are read when first used.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

MAX_UPLOAD_BYTES_DEFAULT = 11 * 1024 * 1024  # 11 MiB = 11,534,336 bytes
DEFAULT_RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
# Placeholders so decorators in app.py can be evaluated without a stage environment.
PLACEHOLDER_STREAM_ARN = (
    "arn:aws:dynamodb:us-east-1:000000000000:table/thumbgen-images/stream/1970-01-01T00:00:00.000"
)


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def parse_retry_schedule(text: str | None) -> tuple[int, ...]:
    """'5,300,1800' -> (5, 300, 1800): delays before attempts 2, 3, 4..."""
    if not text:
        return DEFAULT_RETRY_SCHEDULE
    delays = tuple(int(part) for part in text.split(",") if part.strip())
    if any(d < 0 for d in delays):
        raise ValueError("WEBHOOK_RETRY_SCHEDULE must hold non-negative seconds")
    return delays


@dataclass(frozen=True)
class Settings:
    bucket: str
    table: str
    delivery_queue_url: str
    dead_letter_queue_url: str
    max_upload_bytes: int
    max_pixels: int | None
    upload_url_ttl: int
    download_url_ttl: int
    webhook_secret: str
    webhook_retry_schedule: tuple[int, ...]
    webhook_allow_private_networks: bool
    webhook_require_https: bool
    webhook_connect_timeout: float
    webhook_read_timeout: float
    processing_lease_seconds: int

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        e = os.environ if env is None else env
        max_pixels = e.get("MAX_PIXELS")
        return cls(
            bucket=e.get("BUCKET_NAME", "thumbgen-images"),
            table=e.get("TABLE_NAME", "thumbgen-images"),
            delivery_queue_url=e.get("WEBHOOK_QUEUE_URL", ""),
            dead_letter_queue_url=e.get("WEBHOOK_DLQ_URL", ""),
            max_upload_bytes=_int(e.get("MAX_UPLOAD_BYTES"), MAX_UPLOAD_BYTES_DEFAULT),
            max_pixels=int(max_pixels) if max_pixels else None,
            upload_url_ttl=_int(e.get("UPLOAD_URL_TTL_SECONDS"), 600),
            download_url_ttl=_int(e.get("DOWNLOAD_URL_TTL_SECONDS"), 3600),
            webhook_secret=e.get("WEBHOOK_SECRET", ""),
            webhook_retry_schedule=parse_retry_schedule(e.get("WEBHOOK_RETRY_SCHEDULE")),
            webhook_allow_private_networks=_bool(e.get("WEBHOOK_ALLOW_PRIVATE_NETWORKS")),
            webhook_require_https=_bool(e.get("WEBHOOK_REQUIRE_HTTPS")),
            webhook_connect_timeout=float(e.get("WEBHOOK_CONNECT_TIMEOUT", "3")),
            webhook_read_timeout=float(e.get("WEBHOOK_READ_TIMEOUT", "10")),
            processing_lease_seconds=_int(e.get("PROCESSING_LEASE_SECONDS"), 300),
        )


def settings() -> Settings:
    """Read on every call: the test Client sets the stage environment only during invoke."""
    return Settings.from_env()


# Read at import time only for decorator arguments (aws/chalice#1893).
STREAM_ARN = os.environ.get("TABLE_STREAM_ARN") or PLACEHOLDER_STREAM_ARN
BUCKET_FOR_TRIGGER = os.environ.get("BUCKET_NAME", "thumbgen-images")
DELIVERY_QUEUE_NAME = os.environ.get("WEBHOOK_QUEUE_NAME", "thumbgen-webhooks")
