"""GET /images cursors: HMAC-tagged with the stage's key, bound to their owner and position,
and a position that is not an id and a time never reaches DynamoDB."""
from __future__ import annotations

import base64
import hashlib
import json

import pytest

from chalicelib.api import paging
from chalicelib.api.use_cases import ImageApi
from chalicelib.platform.config import Settings
from chalicelib.platform.errors import ApiError

KEY, OTHER_KEY = b"k" * 32, b"o" * 32
OWNER = "3f0e6c1a-0000-4000-8000-000000000001"
POSITION = {"id": "7d9f8a2b-1c3e-4f5a-9b6d-0e1f2a3b4c5d", "createdAt": "2026-01-01T00:00:00.000Z"}


def b64(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def tag(key: bytes, owner: str, image_id: str, created_at: str) -> str:
    return json.loads(base64.urlsafe_b64decode(paging.encode_cursor(
        key, owner, {"id": image_id, "createdAt": created_at}) + "=="))["t"]


def test_a_cursor_leads_back_to_its_position_for_its_owner_only():
    cursor = paging.encode_cursor(KEY, OWNER, POSITION)
    assert paging.decode_cursor(KEY, OWNER, cursor) == POSITION
    assert paging.decode_cursor(KEY, "someone-else", cursor) is None
    assert paging.decode_cursor(OTHER_KEY, OWNER, cursor) is None  # another stage's, or a new key
    assert len(cursor) <= paging.MAX_CURSOR_LENGTH


def test_a_cursor_made_with_the_old_plain_hash_tag_is_not_accepted():
    """The old tag was sha256("thumbgen-cursor:" + owner)[:16]: anyone who knew a user's sub
    could make one. Now such a cursor names no position: the first page."""
    forged = b64({"o": hashlib.sha256(f"thumbgen-cursor:{OWNER}".encode()).hexdigest()[:16],
                  "i": POSITION["id"], "c": POSITION["createdAt"]})
    assert paging.decode_cursor(KEY, OWNER, forged) is None


def test_an_edited_position_breaks_the_tag():
    good = json.loads(base64.urlsafe_b64decode(paging.encode_cursor(KEY, OWNER, POSITION) + "=="))
    edited = b64({**good, "c": "2025-01-01T00:00:00.000Z"})
    assert paging.decode_cursor(KEY, OWNER, edited) is None


@pytest.mark.parametrize("image_id,created_at", [
    ("", ""), ("", POSITION["createdAt"]), (POSITION["id"], ""), ("not-an-id", POSITION["createdAt"]),
    (POSITION["id"], "yesterday"), (POSITION["id"].upper(), POSITION["createdAt"]),
])
def test_a_position_that_is_not_an_id_and_a_time_is_the_first_page_even_with_a_valid_tag(image_id, created_at):
    cursor = b64({"i": image_id, "c": created_at, "t": tag(KEY, OWNER, image_id, created_at)})
    assert paging.decode_cursor(KEY, OWNER, cursor) is None


@pytest.mark.parametrize("body", ["[]", "null", '"x"', "{}", '{"i": 1, "c": 2, "t": 3}'])
def test_well_formed_cursors_that_are_not_ours_start_over(body):
    cursor = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
    assert paging.decode_cursor(KEY, OWNER, cursor) is None


@pytest.mark.parametrize("cursor", ["a.b", "a=", "x" * 513, "é"])
def test_cursors_outside_the_pattern_are_400(cursor):
    with pytest.raises(ApiError) as refused:
        paging.decode_cursor(KEY, OWNER, cursor)
    assert refused.value.status == 400


class StrictRecords:
    """list_owned as DynamoDB judges an ExclusiveStartKey: an empty key value is a
    ValidationException (a 500 for the caller)."""

    def __init__(self):
        self.afters = []

    def list_owned(self, owner, limit, after):
        self.afters.append(after)
        if after is not None and not all(after.values()):
            raise AssertionError("ValidationException: empty key attribute value")
        return [], False


def test_a_cursor_with_empty_fields_does_not_reach_dynamodb():
    records = StrictRecords()
    api = ImageApi(records=records, storage=None, settings=Settings.from_env({}), redeliver=None,
                   start_resize=None, cursor_key=lambda: KEY)
    empty = b64({"i": "", "c": "", "t": tag(KEY, OWNER, "", "")})
    assert api.list(OWNER, 20, empty) == {"images": [], "nextCursor": None}
    assert records.afters == [None]
