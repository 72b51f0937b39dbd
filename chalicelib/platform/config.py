"""Settings from the environment, in one place, validated once.

Chalice imports app.py before a stage's environment exists (pytest, `chalice package`), so
nothing here reads or checks the environment at import time except the decorator
arguments at the bottom, which have safe placeholders. `Settings.from_env` checks every
variable and raises ConfigError naming the first bad one: a function (or `make run`) with a
bad setting stops with that message instead of running with a silent default.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Callable, Mapping, TypeVar

from chalicelib.imaging import renditions
from chalicelib.imaging.rendition_rules import parse_renditions

MAX_UPLOAD_BYTES_DEFAULT = 11 * 1024 * 1024  # 11 MiB = 11,534,336 bytes
DEFAULT_RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
# Placeholders so decorators in app.py can be evaluated without a stage environment.
PLACEHOLDER_STREAM_ARN = (
    "arn:aws:dynamodb:us-east-1:000000000000:table/thumbgen-images/stream/1970-01-01T00:00:00.000"
)

T = TypeVar("T")


class ConfigError(ValueError):
    """A setting is present but malformed; the message names the variable."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"expected one of {sorted(_TRUE | _FALSE)}")


def _positive_int(text: str) -> int:
    value = int(text.strip())
    if value < 1:
        raise ValueError("expected a whole number of at least 1")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text.strip())
    if value < 0:
        raise ValueError("expected a whole number of at least 0")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text.strip())
    if not value >= 0 or value == float("inf"):
        raise ValueError("expected a number of at least 0")
    return value


def _positive_float(text: str) -> float:
    value = float(text.strip())
    if not value > 0 or value == float("inf"):
        raise ValueError("expected a positive number of seconds")
    return value


def parse_retry_schedule(text: str | None) -> tuple[int, ...]:
    """'5,300,1800' -> (5, 300, 1800): delays before attempts 2, 3, 4..."""
    if text is None or not text.strip():
        return DEFAULT_RETRY_SCHEDULE
    try:
        delays = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError("expected comma-separated whole seconds, e.g. 5,300,1800") from None
    if any(d < 0 for d in delays):
        raise ValueError("delays must be non-negative seconds")
    return delays


def parse_default_renditions(text: str) -> tuple[renditions.Rendition, ...]:
    """DEFAULT_RENDITIONS: a JSON array, held to the rules of a request's `renditions`
    (for either upload type, since it applies to both)."""
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError('DEFAULT_RENDITIONS must be JSON, e.g. [{"width": 400, "height": 300}]') from None
    return parse_renditions(value, source_types=tuple(renditions.SOURCE_FORMATS), field="DEFAULT_RENDITIONS")


def _read(env: Mapping[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not valid: {exc}") from None


@dataclass(frozen=True)
class Settings:
    bucket: str
    table: str
    upload_queue_url: str
    delivery_queue_url: str
    dead_letter_queue_url: str
    max_upload_bytes: int
    max_pixels: int | None
    upload_url_ttl: int
    download_url_ttl: int
    webhook_secret_overlap_seconds: int
    webhook_hourly_attempts_per_host: int
    webhook_retry_schedule: tuple[int, ...]
    webhook_allow_private_networks: bool
    webhook_require_https: bool
    webhook_connect_timeout: float
    webhook_read_timeout: float
    processing_lease_seconds: int
    stuck_after_seconds: int
    max_pending_uploads: int
    max_redeliveries: int
    default_renditions: tuple[renditions.Rendition, ...]
    rate_limit_table: str
    rate_limit_per_second: float  # 0: no per-user limit
    rate_limit_burst: int
    cognito_region: str
    cognito_user_pool_id: str
    cognito_app_client_id: str
    cognito_jwks_url: str | None
    cognito_endpoint_url: str
    log_level: str
    stage: str

    @property
    def cognito_issuer(self) -> str:
        return f"https://cognito-idp.{self.cognito_region}.amazonaws.com/{self.cognito_user_pool_id}"

    @property
    def jwks_url(self) -> str:
        return self.cognito_jwks_url or f"{self.cognito_issuer}/.well-known/jwks.json"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Every setting, checked; ConfigError names the first malformed variable."""
        e = os.environ if env is None else env
        region = e.get("COGNITO_REGION") or e.get("AWS_REGION") or e.get("AWS_DEFAULT_REGION") or "us-east-1"
        endpoint = (e.get("AWS_ENDPOINT_URL") or "").rstrip("/")
        pool = e.get("COGNITO_USER_POOL_ID", "")
        jwks = e.get("COGNITO_JWKS_URL") or (f"{endpoint}/{pool}/.well-known/jwks.json" if endpoint and pool else None)
        level = e.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"LOG_LEVEL={e.get('LOG_LEVEL')!r} is not valid: expected DEBUG, INFO, WARNING or ERROR")
        return cls(
            bucket=e.get("BUCKET_NAME", "thumbgen-images"),
            table=e.get("TABLE_NAME", "thumbgen-images"),
            upload_queue_url=e.get("UPLOAD_QUEUE_URL", ""),
            delivery_queue_url=e.get("WEBHOOK_QUEUE_URL", ""),
            dead_letter_queue_url=e.get("WEBHOOK_DLQ_URL", ""),
            max_upload_bytes=_read(e, "MAX_UPLOAD_BYTES", _positive_int, MAX_UPLOAD_BYTES_DEFAULT),
            max_pixels=_read(e, "MAX_PIXELS", _positive_int, None),
            upload_url_ttl=_read(e, "UPLOAD_URL_TTL_SECONDS", _positive_int, 600),
            download_url_ttl=_read(e, "DOWNLOAD_URL_TTL_SECONDS", _positive_int, 3600),
            webhook_secret_overlap_seconds=_read(e, "WEBHOOK_SECRET_OVERLAP_SECONDS", _non_negative_int, 86400),
            webhook_hourly_attempts_per_host=_read(e, "WEBHOOK_HOURLY_ATTEMPTS_PER_HOST", _positive_int, 600),
            webhook_retry_schedule=_read(e, "WEBHOOK_RETRY_SCHEDULE", parse_retry_schedule, DEFAULT_RETRY_SCHEDULE),
            webhook_allow_private_networks=_read(e, "WEBHOOK_ALLOW_PRIVATE_NETWORKS", parse_bool, False),
            webhook_require_https=_read(e, "WEBHOOK_REQUIRE_HTTPS", parse_bool, False),
            webhook_connect_timeout=_read(e, "WEBHOOK_CONNECT_TIMEOUT", _positive_float, 3.0),
            webhook_read_timeout=_read(e, "WEBHOOK_READ_TIMEOUT", _positive_float, 10.0),
            processing_lease_seconds=_read(e, "PROCESSING_LEASE_SECONDS", _positive_int, 70),
            stuck_after_seconds=_read(e, "STUCK_AFTER_SECONDS", _positive_int, 600),
            max_pending_uploads=_read(e, "MAX_PENDING_UPLOADS", _positive_int, 20),
            max_redeliveries=_read(e, "MAX_REDELIVERIES", _non_negative_int, 5),
            default_renditions=_read(e, "DEFAULT_RENDITIONS", parse_default_renditions,
                                     renditions.DEFAULT_RENDITIONS),
            rate_limit_table=e.get("RATE_LIMIT_TABLE_NAME", "thumbgen-rate-limits"),
            rate_limit_per_second=_read(e, "RATE_LIMIT_PER_SECOND", _non_negative_float, 10.0),
            rate_limit_burst=_read(e, "RATE_LIMIT_BURST", _positive_int, 50),
            cognito_region=region,
            cognito_user_pool_id=pool,
            cognito_app_client_id=e.get("COGNITO_APP_CLIENT_ID", ""),
            cognito_jwks_url=jwks,
            # Where browsers sign in (the web page): the embedded AWS locally, else the region's.
            cognito_endpoint_url=endpoint or f"https://cognito-idp.{region}.amazonaws.com",
            log_level=level,
            stage=e.get("STAGE", "local") or "local",
        )


# Every variable a deployed stage may set; `make run` passes each through from its own
# environment (thumbgen/local/stack.py), so the local stack can be configured like a stage.
SETTING_NAMES = (
    "BUCKET_NAME", "TABLE_NAME", "TABLE_STREAM_ARN", "UPLOAD_QUEUE_NAME", "UPLOAD_QUEUE_URL",
    "UPLOAD_DLQ_NAME", "WEBHOOK_QUEUE_NAME", "WEBHOOK_QUEUE_URL", "WEBHOOK_DLQ_URL",
    "MAX_UPLOAD_BYTES", "MAX_PIXELS", "UPLOAD_URL_TTL_SECONDS", "DOWNLOAD_URL_TTL_SECONDS",
    "WEBHOOK_SECRET_OVERLAP_SECONDS", "WEBHOOK_HOURLY_ATTEMPTS_PER_HOST", "WEBHOOK_RETRY_SCHEDULE",
    "WEBHOOK_ALLOW_PRIVATE_NETWORKS", "WEBHOOK_REQUIRE_HTTPS", "WEBHOOK_CONNECT_TIMEOUT", "WEBHOOK_READ_TIMEOUT",
    "PROCESSING_LEASE_SECONDS", "STUCK_AFTER_SECONDS", "MAX_PENDING_UPLOADS", "MAX_REDELIVERIES",
    "DEFAULT_RENDITIONS",
    "RATE_LIMIT_TABLE_NAME", "RATE_LIMIT_PER_SECOND", "RATE_LIMIT_BURST",
    "COGNITO_REGION", "COGNITO_USER_POOL_ID", "COGNITO_APP_CLIENT_ID", "COGNITO_JWKS_URL",
    "LOG_LEVEL", "STAGE",
)


def settings() -> Settings:
    """Read on every call: the test Client sets the stage environment only during invoke."""
    return Settings.from_env()


# Read at import time only for decorator arguments (aws/chalice#1893).
STREAM_ARN = os.environ.get("TABLE_STREAM_ARN") or PLACEHOLDER_STREAM_ARN
DELIVERY_QUEUE_NAME = os.environ.get("WEBHOOK_QUEUE_NAME", "thumbgen-webhooks")
UPLOAD_QUEUE_NAME = os.environ.get("UPLOAD_QUEUE_NAME", "thumbgen-uploads")
UPLOAD_DLQ_NAME = os.environ.get("UPLOAD_DLQ_NAME", "thumbgen-uploads-dlq")

# MaximumConcurrency of the SQS mappings (docs/deploy.md, "Function sizes"): Lambda's
# poller never invokes a function more often at once than this, so the mapping itself
# cannot get it throttled -- a throttled invocation hands its message back and uses up one
# of the upload's 4 receives. Together 8: a new account may have only 10 concurrent
# executions, and the API, the stream and the sweep need the rest.
RESIZE_MAX_CONCURRENCY = 4
DEAD_UPLOADS_MAX_CONCURRENCY = 2  # Lambda's minimum
WEBHOOK_MAX_CONCURRENCY = 2
