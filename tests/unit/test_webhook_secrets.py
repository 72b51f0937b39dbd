"""Users' signing secrets against the table (moto): made once, rotated atomically, at most
two valid at a time."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
import pytest

from chalicelib.webhooks.secrets import SecretStore, SigningSecrets, WebhookSecrets, new_secret

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def store(aws):
    return SecretStore(boto3.resource("dynamodb").Table(aws.table))


def secrets_at(store, moment: datetime, overlap: int = 3600) -> WebhookSecrets:
    return WebhookSecrets(store, overlap, clock=lambda: moment)


def test_the_first_secret_made_is_the_one_kept(store):
    first = store.create("u1", new_secret(), "2026-01-01T00:00:00.000Z")
    again = store.create("u1", new_secret(), "2026-01-01T00:00:01.000Z")  # a racing first use
    assert again == first and store.get("u1") == first
    assert store.get("u2") is None


def test_rotation_of_no_secret_changes_nothing(store):
    assert store.rotate("u1", new_secret(), "2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z") is None
    assert store.get("u1") is None


def test_the_previous_secret_signs_until_the_overlap_ends_exactly(store):
    made = secrets_at(store, NOW).show("u1")["secret"]
    rotated = secrets_at(store, NOW).rotate("u1")
    assert rotated["previousValidUntil"] == "2026-01-01T01:00:00.000Z"
    assert secrets_at(store, NOW + timedelta(minutes=59)).signing("u1") == (rotated["secret"], made)
    assert secrets_at(store, NOW + timedelta(hours=1)).signing("u1") == (rotated["secret"],)
    assert secrets_at(store, NOW + timedelta(hours=1)).show("u1") == {"secret": rotated["secret"],
                                                                      "previousValidUntil": None}


def test_an_overlap_of_zero_switches_at_once(store):
    secrets_at(store, NOW, overlap=0).show("u1")
    rotated = secrets_at(store, NOW, overlap=0).rotate("u1")
    assert secrets_at(store, NOW, overlap=0).signing("u1") == (rotated["secret"],)


def test_a_rotation_racing_a_first_use_rotates_the_secret_that_won(store):
    class Racing(SecretStore):
        """Another request makes the user's first secret between our two writes."""

        def __init__(self, table):
            super().__init__(table)
            self.theirs: SigningSecrets | None = None

        def rotate(self, owner, secret, now_iso, until_iso):
            if self.theirs is None:
                self.theirs = super().create(owner, new_secret(), now_iso)
                return None
            return super().rotate(owner, secret, now_iso, until_iso)

    racing = Racing(store._table)
    rotated = secrets_at(racing, NOW).rotate("u1")
    assert rotated["secret"] != racing.theirs.current  # a new secret, as asked
    assert secrets_at(racing, NOW).signing("u1") == (rotated["secret"], racing.theirs.current)


def test_secrets_need_an_owner(store):
    with pytest.raises(ValueError):
        store.get("")
