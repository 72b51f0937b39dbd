"""Each user's own webhook signing secrets (Standard Webhooks, `whsec_…`).

A user's webhooks are signed with their secret only, so no user can sign -- or verify --
another's events. One item per user in the images table (`secret#<sub>`, record.Secret):
made on first use (by `GET /webhook-secret` or by the first attempt that needs it), read
for every attempt, so an attempt is signed with the secrets valid when it is sent.

A rotation keeps the replaced secret valid for WEBHOOK_SECRET_OVERLAP_SECONDS: meanwhile
every webhook carries both signatures, space-separated in `webhook-signature` as the spec
allows, and receivers switch at their own pace. At most two secrets are ever valid: a
rotation during an overlap drops the oldest at once. Nothing here logs a secret, and the
values' repr hides them.
"""
from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from botocore.exceptions import ClientError

from chalicelib.images import record
from chalicelib.images.record import Item, Secret, secret_key

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # the spec asks for 24 to 64


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


@dataclass(frozen=True)
class SigningSecrets:
    """A user's secrets as stored: the current one and, after a rotation, the one it replaced."""

    current: str = field(repr=False)
    previous: str | None = field(default=None, repr=False)
    previous_valid_until: str | None = None  # RFC 3339, as record.iso writes it

    def valid(self, now_iso: str) -> tuple[str, ...]:
        """The secrets an attempt sent now is signed with, the current one first."""
        if self.previous and self.previous_valid_until and now_iso < self.previous_valid_until:
            return self.current, self.previous
        return (self.current,)

    def view(self, now_iso: str) -> dict[str, Any]:
        """The API's answer: the current secret, and until when the previous one still signs."""
        overlap = len(self.valid(now_iso)) > 1
        return {"secret": self.current, "previousValidUntil": self.previous_valid_until if overlap else None}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> "SigningSecrets":
        current = item.get(Secret.CURRENT)
        if not isinstance(current, str) or not current.startswith(SECRET_PREFIX):
            raise ValueError("the stored webhook secret is malformed")
        return cls(current, item.get(Secret.PREVIOUS), item.get(Secret.PREVIOUS_VALID_UNTIL))


def _condition_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class SecretStore:
    """DynamoDB adapter: `secret#<sub>` items. Reads are strongly consistent, so an attempt
    right after a rotation already signs with the new secret."""

    def __init__(self, table: Any):
        self._table = table

    @staticmethod
    def _key(owner: str) -> dict[str, str]:
        if not owner:
            raise ValueError("a webhook secret belongs to a user: no owner given")
        return {Item.ID: secret_key(owner)}

    def get(self, owner: str) -> SigningSecrets | None:
        item = self._table.get_item(Key=self._key(owner), ConsistentRead=True).get("Item")
        return SigningSecrets.from_item(item) if item else None

    def create(self, owner: str, secret: str, now_iso: str) -> SigningSecrets:
        """The owner's secrets, made with `secret` unless they already have one (then theirs)."""
        response = self._table.update_item(
            Key=self._key(owner),
            UpdateExpression="SET #current = if_not_exists(#current, :secret), "
                             "#rotated = if_not_exists(#rotated, :now)",
            ExpressionAttributeNames={"#current": Secret.CURRENT, "#rotated": Secret.ROTATED_AT},
            ExpressionAttributeValues={":secret": secret, ":now": now_iso},
            ReturnValues="ALL_NEW",
        )
        return SigningSecrets.from_item(response["Attributes"])

    def rotate(self, owner: str, secret: str, now_iso: str, previous_until_iso: str) -> SigningSecrets | None:
        """current -> previous (valid until previous_until_iso), `secret` -> current, in one
        atomic write; None when the owner has no secret yet."""
        try:
            response = self._table.update_item(
                Key=self._key(owner),
                UpdateExpression="SET #previous = #current, #current = :secret, #until = :until, #rotated = :now",
                ConditionExpression="attribute_exists(#current)",
                ExpressionAttributeNames={"#previous": Secret.PREVIOUS, "#current": Secret.CURRENT,
                                          "#until": Secret.PREVIOUS_VALID_UNTIL, "#rotated": Secret.ROTATED_AT},
                ExpressionAttributeValues={":secret": secret, ":until": previous_until_iso, ":now": now_iso},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _condition_failed(exc):
                return None
            raise
        return SigningSecrets.from_item(response["Attributes"])


@dataclass
class WebhookSecrets:
    """What the routes and the senders ask of a user's secrets."""

    store: SecretStore
    overlap_seconds: int
    clock: Callable[[], datetime] = record.utc_now

    def _secrets(self, owner: str, now_iso: str) -> SigningSecrets:
        return self.store.get(owner) or self.store.create(owner, new_secret(), now_iso)

    def signing(self, owner: str) -> tuple[str, ...]:
        """The secrets valid now for signing the owner's webhooks (made on first use)."""
        now = record.iso(self.clock())
        return self._secrets(owner, now).valid(now)

    def show(self, owner: str) -> dict[str, Any]:
        """`GET /webhook-secret`: the owner's current secret (made on first use)."""
        now = record.iso(self.clock())
        return self._secrets(owner, now).view(now)

    def rotate(self, owner: str) -> dict[str, Any]:
        """`POST /webhook-secret/rotate`: a new current secret; the replaced one keeps
        signing for the overlap. With no secret yet, the new one is simply the first."""
        moment = self.clock()
        now, until = record.iso(moment), record.iso(moment + timedelta(seconds=self.overlap_seconds))
        secret = new_secret()
        rotated = self.store.rotate(owner, secret, now, until)
        if rotated is None:
            made = self.store.create(owner, secret, now)
            # Another request made their first secret meanwhile: rotate that one instead.
            if made.current != secret:
                made = self.store.rotate(owner, secret, now, until) or made
            rotated = made
        return rotated.view(now)
