"""Webhook events: the payload, its Standard Webhooks signature, and one HTTP attempt."""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

import requests
from requests_hardened import Config as HardenedConfig
from requests_hardened import HTTPSession
from requests_hardened.ip_filter import InvalidIPAddress
from standardwebhooks import Webhook

from chalicelib import images
from chalicelib.urlsafety import Resolver, UnsafeWebhookUrl, UrlPolicy, check_webhook_url, system_resolver

MAX_RESPONSE_BYTES = 4096
# Webhook exchanges run here so that each can be abandoned at its total deadline.
_exchanges = ThreadPoolExecutor(max_workers=32, thread_name_prefix="webhook")
USER_AGENT = "thumbgen-webhooks/1.0"


def build_event(item: Mapping[str, Any], original_url: str | None,
                thumbnail_urls: list[tuple[int, int, str]]) -> dict[str, Any]:
    """The body of thumbnails.generated / thumbnails.failed (DESIGN.md), from the item."""
    status = item["status"]
    data: dict[str, Any] = {
        "id": item["id"],
        "status": status,
        "originalUrl": original_url,
        "thumbnails": images.thumbnail_views(thumbnail_urls),
        "metadata": images.file_facts(item),
    }
    if status == images.FAILED:
        data["error"] = item.get("error") or {"code": "internal_error", "message": "failed"}
        data["thumbnails"] = []
    return {
        "type": images.EVENT_TYPES[status],
        "timestamp": item.get("completedAt") or item.get("updatedAt"),
        "data": data,
    }


def encode_event(event: Mapping[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def sign(secret: str, msg_id: str, body: str, at: datetime) -> dict[str, str]:
    """Standard Webhooks headers; a fresh timestamp on every attempt, the same id."""
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None = None
    error: str | None = None
    retry_after: int | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        """410, or a URL the rules refuse: retrying cannot help."""
        return self.status_code == 410 or (self.error or "").startswith("refused:")


def _retry_after(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return max(0, int(value.strip()))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value)
        return max(0, int(when.timestamp() - time.time()))
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Sender:
    """POSTs one signed event; never raises for anything the receiver does."""

    policy: UrlPolicy
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    resolve: Resolver = system_resolver
    session_factory: Callable[[], requests.Session] | None = None

    def _session(self) -> requests.Session:
        if self.session_factory is not None:
            return self.session_factory()
        return HTTPSession(
            HardenedConfig(
                # Pins the connection to the checked address, keeps SNI/Host on the name.
                ip_filter_enable=not self.policy.allow_private_networks,
                ip_filter_allow_loopback_ips=False,
                never_redirect=True,
                default_timeout=(self.connect_timeout, self.read_timeout),
                user_agent_override=USER_AGENT,
            )
        )

    @property
    def total_timeout(self) -> float:
        return self.connect_timeout + self.read_timeout

    def post(self, url: str, body: str, headers: Mapping[str, str]) -> AttemptResult:
        """One attempt, over within total_timeout whatever the receiver does.

        requests' timeouts bound each connect and each read, not the whole exchange (a
        receiver dripping one header byte at a time would hold it): the exchange runs
        on a worker thread and is abandoned at the deadline, its socket closing itself
        on the next read timeout.
        """
        try:
            check_webhook_url(url, self.policy, self.resolve)
        except UnsafeWebhookUrl as exc:
            return AttemptResult(error=f"refused: {exc}")
        exchange = _exchanges.submit(self._exchange, url, body, headers)
        try:
            return exchange.result(timeout=self.total_timeout)
        except FutureTimeout:
            return AttemptResult(error="timeout")

    def _exchange(self, url: str, body: str, headers: Mapping[str, str]) -> AttemptResult:
        deadline = time.monotonic() + self.total_timeout
        try:
            with self._session() as session:
                response = session.post(
                    url,
                    data=body.encode(),
                    headers=dict(headers),
                    timeout=(self.connect_timeout, self.read_timeout),
                    allow_redirects=False,
                    stream=True,
                )
                try:
                    # Read at most a few KB, and not past the deadline: the body is ignored.
                    read = 0
                    for chunk in response.iter_content(1024):
                        read += len(chunk)
                        if read >= MAX_RESPONSE_BYTES or time.monotonic() > deadline:
                            break
                finally:
                    response.close()
                return AttemptResult(
                    status_code=response.status_code,
                    retry_after=_retry_after(response.headers.get("Retry-After")),
                )
        except InvalidIPAddress:
            return AttemptResult(error="refused: address not allowed")
        except requests.exceptions.Timeout:
            return AttemptResult(error="timeout")
        except requests.exceptions.ConnectionError:
            return AttemptResult(error="connection error")
        except requests.RequestException as exc:
            return AttemptResult(error=f"request error: {type(exc).__name__}")


def utc_from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)
