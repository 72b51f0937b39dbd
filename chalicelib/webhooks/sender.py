"""One webhook attempt over HTTP: refused before any connection when the URL's rules say
so, pinned to the checked address, never redirected, over within its deadline -- its name
lookups included."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Mapping

import requests
import urllib3
from requests_hardened import Config as HardenedConfig
from requests_hardened import HTTPSession
from requests_hardened.ip_filter import InvalidIPAddress

from chalicelib.webhooks.deadline import Deadline, LookupTimeout, watch_connections
from chalicelib.webhooks.events import USER_AGENT
from chalicelib.webhooks.urls import (
    HostUnresolved,
    Resolver,
    UnsafeWebhookUrl,
    UrlPolicy,
    check_webhook_url,
    system_resolver,
)

MAX_RESPONSE_BYTES = 4096


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
        """410, or a URL the rules refuse (an address they forbid): retrying cannot help.
        A name that does not resolve is not gone: resolvers fail for a while."""
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
        """One attempt, over within total_timeout whatever the receiver or the resolver does.

        The exchange runs on the calling thread; at the deadline its socket is shut down,
        so a receiver that drips its answer cannot hold a thread or a socket past it. The
        URL's check and the connection's own lookup wait for the resolver only until then.
        """
        with Deadline(self.total_timeout) as deadline:
            try:
                check_webhook_url(url, self.policy, lambda host, port: deadline.run(self.resolve, host, port))
            except HostUnresolved as exc:  # the resolver failed: try again later, like a connection error
                late = isinstance(exc.__cause__, LookupTimeout)
                return AttemptResult(error="timeout" if late else "name lookup failed")
            except UnsafeWebhookUrl as exc:
                return AttemptResult(error=f"refused: {exc}")
            result = self._exchange(url, body, headers, deadline)
        if deadline.expired and result.status_code is None and not result.gone:
            return AttemptResult(error="timeout")  # the cut surfaces as a connection error
        return result

    def _exchange(self, url: str, body: str, headers: Mapping[str, str], deadline: Deadline) -> AttemptResult:
        try:
            with watch_connections(self._session()) as session:
                # No proxy or netrc from the environment: straight to the checked address.
                session.trust_env = False
                response = session.post(
                    url,
                    data=body.encode(),
                    headers=dict(headers),
                    timeout=(self.connect_timeout, self.read_timeout),
                    allow_redirects=False,
                    stream=True,
                )
                with response:
                    if deadline.expired:
                        # The cut reads as the end of the headers: they may be incomplete.
                        return AttemptResult(error="timeout")
                    _drain(response)
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


def _drain(response: requests.Response) -> None:
    """Read at most a few KB of the ignored body; the status already stands, so a body
    that breaks off or is cut at the deadline changes nothing."""
    try:
        response.raw.read(MAX_RESPONSE_BYTES, decode_content=False)
    except (urllib3.exceptions.HTTPError, OSError):
        pass
