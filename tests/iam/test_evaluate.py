"""The policy evaluator: IAM's rules, and where moto's evaluator agrees with them."""
from __future__ import annotations

import json

import pytest
from moto.iam.access_control import IAMPolicy, PermissionResult

from tests.iam.evaluate import Request, UnsupportedPolicy, decide, unused_grants

BUCKET = "arn:aws:s3:::thumbgen-images"
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/thumbgen-images"


def allow(action, resource, **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource, **extra):
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


UPLOADS = allow("s3:GetObject", f"{BUCKET}/uploads/*")
PREFIXES = allow("s3:ListBucket", BUCKET, Condition={"StringLike": {"s3:prefix": ["uploads/*", "thumbnails/*"]}})

# (statements, request, allowed, moto's evaluator agrees?)
CASES = {
    "exact action and resource": ([allow("dynamodb:UpdateItem", TABLE)], Request("dynamodb:UpdateItem", TABLE), True, True),
    "another action on the same resource": ([allow("dynamodb:UpdateItem", TABLE)], Request("dynamodb:GetItem", TABLE), False, True),
    "another table": ([allow("dynamodb:GetItem", TABLE)], Request("dynamodb:GetItem", TABLE + "-other"), False, True),
    "an index is not its table": ([allow("dynamodb:Query", TABLE)], Request("dynamodb:Query", f"{TABLE}/index/owner-created"), False, True),
    "prefix wildcard": ([UPLOADS], Request("s3:GetObject", f"{BUCKET}/uploads/abc"), True, True),
    "outside the prefix": ([UPLOADS], Request("s3:GetObject", f"{BUCKET}/thumbnails/abc/400x300.jpg"), False, True),
    "actions ignore case": ([allow("s3:getobject", f"{BUCKET}/*")], Request("s3:GetObject", f"{BUCKET}/k"), True, False),
    "resources keep case": ([allow("s3:GetObject", f"{BUCKET}/Uploads/*")], Request("s3:GetObject", f"{BUCKET}/uploads/k"), False, True),
    "? is one character": ([allow("s3:GetObject", f"{BUCKET}/upload?/*")], Request("s3:GetObject", f"{BUCKET}/uploads/k"), True, False),
    ". is a dot": ([allow("s3:GetObject", "arn:aws:s3:::a.b/*")], Request("s3:GetObject", "arn:aws:s3:::axb/k"), False, False),
    "action wildcard": ([allow("dynamodb:*Item", TABLE)], Request("dynamodb:PutItem", TABLE), True, True),
    "explicit deny wins": ([allow("s3:*", "*"), deny("s3:GetObject", f"{BUCKET}/uploads/*")],
                           Request("s3:GetObject", f"{BUCKET}/uploads/k"), False, True),
    "a deny elsewhere does not matter": ([allow("s3:*", "*"), deny("s3:GetObject", f"{BUCKET}/uploads/*")],
                                         Request("s3:GetObject", f"{BUCKET}/thumbnails/k"), True, True),
    "NotAction allows the rest": ([{"Effect": "Allow", "NotAction": "s3:PutObject", "Resource": "*"}],
                                  Request("s3:GetObject", f"{BUCKET}/k"), True, True),
    "NotAction excludes its own": ([{"Effect": "Allow", "NotAction": "s3:PutObject", "Resource": "*"}],
                                   Request("s3:PutObject", f"{BUCKET}/k"), False, True),
    "NotResource": ([{"Effect": "Allow", "Action": "s3:GetObject", "NotResource": f"{BUCKET}/thumbnails/*"}],
                    Request("s3:GetObject", f"{BUCKET}/thumbnails/k"), False, False),
    "nothing said": ([], Request("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:q"), False, True),
    "s3:prefix within": ([PREFIXES], Request("s3:ListBucket", BUCKET, (("s3:prefix", "uploads/abc"),)), True, False),
    "s3:prefix outside": ([PREFIXES], Request("s3:ListBucket", BUCKET, (("s3:prefix", "other/"),)), False, False),
    "s3:prefix absent": ([PREFIXES], Request("s3:ListBucket", BUCKET), False, False),
    "negated operator, key absent": ([allow("s3:ListBucket", BUCKET, Condition={"StringNotEquals": {"s3:prefix": "secret/"}})],
                                     Request("s3:ListBucket", BUCKET), True, False),
    "IfExists, key absent": ([allow("s3:ListBucket", BUCKET, Condition={"StringLikeIfExists": {"s3:prefix": "uploads/*"}})],
                             Request("s3:ListBucket", BUCKET), True, False),
    "GetCallerIdentity needs nothing": ([deny("*", "*")], Request("sts:GetCallerIdentity", "*"), True, True),
}


@pytest.mark.parametrize("statements, request_, allowed, moto_agrees", CASES.values(), ids=CASES.keys())
def test_decisions(statements, request_, allowed, moto_agrees):
    assert decide(statements, request_).allowed is allowed
    if moto_agrees and request_.action != "sts:GetCallerIdentity":
        policy = IAMPolicy(json.dumps({"Version": "2012-10-17", "Statement": statements}))
        result = policy.is_action_permitted(request_.action, request_.resource)
        assert (result == PermissionResult.PERMITTED) is allowed


def test_decisions_say_why():
    assert decide([{**UPLOADS, "Sid": "Reads"}], Request("s3:GetObject", f"{BUCKET}/uploads/k")).reason == "allowed by Reads"
    assert decide([UPLOADS], Request("s3:PutObject", f"{BUCKET}/uploads/k")).reason == "no statement allows it"


@pytest.mark.parametrize("statement, complaint", [
    (allow("s3:GetObject", "*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}), "operator IpAddress"),
    (allow("s3:GetObject", "*", Condition={"StringEquals": {"aws:SourceVpce": "vpce-1"}}), "key aws:SourceVpce"),
    (allow("s3:GetObject", "*", Condition={"ForAnyValue:StringLike": {"s3:prefix": "x"}}), "ForAnyValue:StringLike"),
    ({**allow("s3:GetObject", "*"), "Principal": "*"}, "Principal"),
    ({"Effect": "Allow", "Action": "s3:GetObject"}, "Resource"),
    ({"Effect": "Maybe", "Action": "s3:GetObject", "Resource": "*"}, "Effect"),
])
def test_what_cannot_be_decided_faithfully_is_refused(statement, complaint):
    with pytest.raises(UnsupportedPolicy, match=complaint):
        decide([statement], Request("s3:GetObject", f"{BUCKET}/k"))


def test_unused_grants_are_listed_per_action_and_resource():
    statements = [allow(["s3:GetObject", "s3:PutObject"], [f"{BUCKET}/uploads/*", f"{BUCKET}/thumbnails/*"])]
    used = [Request("s3:GetObject", f"{BUCKET}/uploads/a"), Request("s3:PutObject", f"{BUCKET}/thumbnails/a/1.jpg")]
    assert unused_grants(statements, used) == [("s3:GetObject", f"{BUCKET}/thumbnails/*"),
                                               ("s3:PutObject", f"{BUCKET}/uploads/*")]
