"""IAM's decision on one request against identity-policy statements.

An explicit Deny wins, then any Allow; otherwise the request is denied. Action and
Resource (and NotAction, NotResource) take IAM's wildcards `*` and `?`; actions match
without regard to case, resources with it. moto's own evaluator (moto.iam.access_control)
is not used: it matches actions case-sensitively, reads `?` and `.` as regex, cannot read
NotResource and skips Condition blocks silently. A Condition here is evaluated only for
the operators and keys below; any other is refused, never guessed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Mapping, Sequence

# Condition keys the recorder takes from a call's parameters (see actions.py).
CONTEXT_KEYS = frozenset({"s3:prefix"})
# operator -> (wildcards allowed, negated)
_STRING_OPERATORS = {"StringEquals": (False, False), "StringNotEquals": (False, True),
                     "StringLike": (True, False), "StringNotLike": (True, True)}
# Needs no permission: AWS answers it even under an explicit Deny.
ALWAYS_ALLOWED = frozenset({"sts:getcalleridentity"})


class UnsupportedPolicy(ValueError):
    """A statement this evaluator cannot decide on faithfully."""


@dataclass(frozen=True)
class Request:
    """What IAM decides on: one action on one resource, with the condition keys it carries."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        keys = "".join(f" [{k}={v!r}]" for k, v in self.context)
        return f"{self.action} on {self.resource}{keys}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


@lru_cache(maxsize=None)
def _pattern(wildcards: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in wildcards)
    return re.compile(f"{body}\\Z", (re.IGNORECASE | re.DOTALL) if ignore_case else re.DOTALL)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcard match: `*` any run of characters, `?` any one character."""
    return _pattern(pattern, ignore_case).match(value) is not None


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def validate(statement: Mapping[str, Any]) -> None:
    """Refuse what cannot be decided here (raises UnsupportedPolicy)."""
    where = f"statement {statement.get('Sid', '(no Sid)')}"
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise UnsupportedPolicy(f"{where}: Effect must be Allow or Deny")
    if "Principal" in statement or "NotPrincipal" in statement:
        raise UnsupportedPolicy(f"{where}: a Principal belongs in a resource policy, not a role's")
    if ("Action" in statement) == ("NotAction" in statement):
        raise UnsupportedPolicy(f"{where}: needs exactly one of Action, NotAction")
    if ("Resource" in statement) == ("NotResource" in statement):
        raise UnsupportedPolicy(f"{where}: needs exactly one of Resource, NotResource")
    for operator, keys in statement.get("Condition", {}).items():
        base = operator.removesuffix("IfExists")
        if base not in _STRING_OPERATORS:
            raise UnsupportedPolicy(f"{where}: condition operator {operator} is not evaluated here "
                                    f"(supported: {', '.join(_STRING_OPERATORS)}, with IfExists)")
        for key in keys:
            if key not in CONTEXT_KEYS:
                raise UnsupportedPolicy(f"{where}: condition key {key} is not recorded from calls "
                                        f"(recorded: {', '.join(sorted(CONTEXT_KEYS))}; see tests/iam/actions.py)")


def _condition_holds(operator: str, expected: Any, value: str | None) -> bool:
    wildcards, negated = _STRING_OPERATORS[operator.removesuffix("IfExists")]
    if value is None:  # the key is absent from the request
        return operator.endswith("IfExists") or negated
    hit = any(wildcard_match(str(e), value) if wildcards else str(e) == value for e in as_list(expected))
    return hit != negated


def statement_applies(statement: Mapping[str, Any], request: Request) -> bool:
    """Does this statement speak about this request (whatever its Effect)?"""
    validate(statement)
    if "Action" in statement:
        if not any(wildcard_match(a, request.action, ignore_case=True) for a in as_list(statement["Action"])):
            return False
    elif any(wildcard_match(a, request.action, ignore_case=True) for a in as_list(statement["NotAction"])):
        return False
    if "Resource" in statement:
        if not any(wildcard_match(r, request.resource) for r in as_list(statement["Resource"])):
            return False
    elif any(wildcard_match(r, request.resource) for r in as_list(statement["NotResource"])):
        return False
    context = dict(request.context)
    return all(_condition_holds(operator, expected, context.get(key))
               for operator, keys in statement.get("Condition", {}).items()
               for key, expected in keys.items())


def decide(statements: Sequence[Mapping[str, Any]], request: Request) -> Decision:
    """Explicit Deny, else Allow, else the implicit deny."""
    if request.action.lower() in ALWAYS_ALLOWED:
        return Decision(True, "needs no permission")
    applying = [s for s in statements if statement_applies(s, request)]
    for statement in applying:
        if statement["Effect"] == "Deny":
            return Decision(False, f"explicitly denied by {statement.get('Sid', 'a Deny statement')}")
    if applying:
        return Decision(True, f"allowed by {applying[0].get('Sid', 'an Allow statement')}")
    return Decision(False, "no statement allows it")


def resources_allowed(statements: Iterable[Mapping[str, Any]], action: str) -> list[str]:
    """The Resource patterns of the Allow statements naming this action (for diagnostics)."""
    return sorted({resource for s in statements
                   if s["Effect"] == "Allow" and "Action" in s and "Resource" in s
                   and any(wildcard_match(a, action, ignore_case=True) for a in as_list(s["Action"]))
                   for resource in as_list(s["Resource"])})


def unused_grants(statements: Iterable[Mapping[str, Any]], requests: Iterable[Request]) -> list[tuple[str, str]]:
    """(action, resource) pairs of Allow statements that no request exercised."""
    requests = list(requests)
    unused = []
    for statement in statements:
        if statement["Effect"] != "Allow" or "Action" not in statement or "Resource" not in statement:
            continue
        for action in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                one = {**statement, "Action": action, "Resource": resource}
                if not any(statement_applies(one, r) for r in requests):
                    unused.append((action, resource))
    return unused
