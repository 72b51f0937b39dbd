"""Which AWS calls each Lambda function makes while the tests run it.

A botocore handler on `before-parameter-build` sees every API call and every presigned
URL (botocore emits the event for both), and records it as the IAM requests it needs,
for the function running at that moment. The running function is a context variable set
around the handler, so the test's own calls never count; work a handler hands to a thread
pool runs in a copy of its context (see plugin.py), so that work counts for the handler.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from tests.iam.actions import ACCOUNT, REGION, iam_requests
from tests.iam.evaluate import Request


@dataclass(frozen=True)
class Invocation:
    function: str
    environment: tuple[tuple[str, str], ...]  # the stage environment it was given


@dataclass(frozen=True)
class Call:
    function: str
    request: Request
    operation: str  # e.g. "s3.PutObject (presigned)"
    environment: tuple[tuple[str, str], ...]


_running: ContextVar[Invocation | None] = ContextVar("lambda_function", default=None)


def running_function() -> Invocation | None:
    return _running.get()


class Recorder:
    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._lock = threading.Lock()

    @contextmanager
    def running(self, function: str, environment: Mapping[str, str]) -> Iterator[None]:
        """Count the calls made inside as `function`'s, under this stage environment."""
        token = _running.set(Invocation(function, tuple(sorted(environment.items()))))
        try:
            yield
        finally:
            _running.reset(token)

    def before_parameter_build(self, params: Mapping[str, Any], model: Any,
                               context: Mapping[str, Any] | None = None, **_: Any) -> None:
        invocation = _running.get()
        if invocation is None:
            return
        context = context or {}
        region = context.get("client_region") or os.environ.get("AWS_DEFAULT_REGION") or REGION
        service = model.service_model
        operation = f"{service.service_name}.{model.name}"
        if context.get("is_presign_request"):
            operation += " (presigned)"
        calls = [Call(invocation.function, request, operation, invocation.environment)
                 for request in iam_requests(service.signing_name, model.name, params, region, ACCOUNT)]
        with self._lock:
            self._calls.extend(calls)

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def take(self) -> list[Call]:
        """The calls recorded so far, forgotten here."""
        with self._lock:
            calls, self._calls = self._calls, []
        return calls
