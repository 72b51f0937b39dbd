"""pytest plugin: every Lambda function the tests run is held to its own execution role.

Chalice's test Client runs handlers in-process: `client.lambda_.invoke(name, …)` runs
function `name`, `client.http.…` runs api_handler. Both are wrapped so that every AWS
call made meanwhile is recorded for that function, with the stage environment it got.
When a test's body ends, every recorded call that the function's role in
infra/thumbgen.yaml does not allow fails the test; the session ends with the full list.
Tests that call chalicelib directly say which function they stand for with `running_as`.
"""
from __future__ import annotations

import contextvars
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ContextManager, Iterable, Mapping

import botocore.handlers
import pytest
from chalice.test import TestHTTPClient, TestLambdaClient

from tests.iam.evaluate import UnsupportedPolicy, decide, resources_allowed
from tests.iam.recorder import Call, Recorder, running_function
from tests.iam.stack import Stack, UnsupportedTemplate
from tests.infra import cfn

RECORDER = Recorder()
_HANDLER = ("before-parameter-build", RECORDER.before_parameter_build)
_found: dict[str, list[str]] = {}  # test id -> calls its functions may not make


def running_as(function: str, environment: Mapping[str, str]) -> ContextManager[None]:
    """Count the AWS calls made inside as made by `function` with this stage environment."""
    return RECORDER.running(function, environment)


@functools.lru_cache(maxsize=1)
def _template() -> dict[str, Any]:
    return cfn.load()


@functools.lru_cache(maxsize=None)
def _statements(environment: tuple[tuple[str, str], ...], function: str) -> tuple[str, list[dict[str, Any]]]:
    stack = Stack(_template(), dict(environment))
    role = stack.role_of(function)
    return role, stack.statements(role)


def problems(calls: Iterable[Call]) -> list[str]:
    """One line per distinct call that the calling function's role does not allow."""
    found = set()
    for call in dict.fromkeys(calls):
        try:
            role, statements = _statements(call.environment, call.function)
            decision = decide(statements, call.request)
        except (KeyError, UnsupportedTemplate, UnsupportedPolicy) as exc:
            found.add(f"{call.function}: cannot check {call.request} ({call.operation}): {exc}")
            continue
        if not decision.allowed:
            elsewhere = resources_allowed(statements, call.request.action)
            hint = f"; it allows {call.request.action} on {', '.join(elsewhere)} only" if elsewhere else ""
            found.add(f"{call.function} ({role}) may not {call.request} "
                      f"[{call.operation}]: {decision.reason}{hint}")
    return sorted(found)


@pytest.fixture
def iam_calls() -> Recorder:
    """The recorder: `.calls` so far in this test, `.take()` to claim them (then unchecked)."""
    return RECORDER


# --- installation ---------------------------------------------------------------------

def _invoke(original):
    @functools.wraps(original)
    def invoke(self, function_name: str, payload: Any = None):
        scoped = self._config.scope(self._config.chalice_stage, function_name)
        with RECORDER.running(function_name, scoped.environment_variables):
            return original(self, function_name, payload)
    return invoke


def _request(original):
    @functools.wraps(original)
    def request(self, *args: Any, **kwargs: Any):
        scoped = self._config.scope(self._config.chalice_stage, "api_handler")
        with RECORDER.running("api_handler", scoped.environment_variables):
            return original(self, *args, **kwargs)
    return request


def _submit(original):
    @functools.wraps(original)
    def submit(self, fn, /, *args: Any, **kwargs: Any):
        if running_function() is None:
            return original(self, fn, *args, **kwargs)
        return original(self, contextvars.copy_context().run, fn, *args, **kwargs)
    return submit


_PATCHES = ((TestLambdaClient, "invoke", _invoke), (TestHTTPClient, "request", _request),
            (ThreadPoolExecutor, "submit", _submit))


def pytest_configure(config: pytest.Config) -> None:
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in _PATCHES]
    for owner, name, wrap in _PATCHES:
        setattr(owner, name, wrap(getattr(owner, name)))
    # Every botocore session created from now on (the app's lazy clients) calls the recorder.
    botocore.handlers.BUILTIN_HANDLERS.append(_HANDLER)

    def uninstall() -> None:
        botocore.handlers.BUILTIN_HANDLERS.remove(_HANDLER)
        for owner, name, original in originals:
            setattr(owner, name, original)
    config.add_cleanup(uninstall)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    RECORDER.take()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    try:
        result = yield
    finally:
        found = problems(RECORDER.take())
        if found:
            _found[item.nodeid] = found
    if found:
        pytest.fail("calls the execution role does not allow (infra/thumbgen.yaml):\n  "
                    + "\n  ".join(found), pytrace=False)
    return result


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _found:
        return
    terminalreporter.section("IAM: calls an execution role does not allow")
    for nodeid, found in _found.items():
        terminalreporter.write_line(nodeid)
        for line in found:
            terminalreporter.write_line(f"    {line}")
