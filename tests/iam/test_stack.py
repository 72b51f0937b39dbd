"""The template's roles, resolved to the resources a stage environment names."""
from __future__ import annotations

import pytest

from tests.iam.evaluate import Request, as_list, decide
from tests.iam.stack import Stack, UnsupportedTemplate
from tests.infra import cfn

ACCOUNT, REGION = "123456789012", "us-east-1"
ENVIRONMENT = {
    "BUCKET_NAME": "bkt-local",
    "TABLE_NAME": "tbl-local",
    "TABLE_STREAM_ARN": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/tbl-local/stream/2026-01-01T00:00:00.000",
    "WEBHOOK_QUEUE_URL": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/hooks-local",
    "WEBHOOK_DLQ_URL": f"http://127.0.0.1:4566/{ACCOUNT}/hooks-dlq-local",
}


@pytest.fixture(scope="module")
def stack():
    return Stack(cfn.load(), ENVIRONMENT)


def strings_only(value):
    if isinstance(value, dict):
        return all(strings_only(v) for v in value.values())
    if isinstance(value, list):
        return all(strings_only(v) for v in value)
    return isinstance(value, str)


def test_every_function_has_a_role_resolved_to_plain_arns(stack):
    for function in stack.functions():
        statements = stack.statements(stack.role_of(function))
        assert statements, function
        for statement in statements:
            assert strings_only(statement["Resource"]), (function, statement)


def test_resources_are_the_ones_the_stage_environment_names(stack):
    statements = stack.statements(stack.role_of("deliver_webhook"))
    resources = {r for s in statements for r in as_list(s["Resource"])}
    assert f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/tbl-local" in resources
    assert f"arn:aws:sqs:{REGION}:{ACCOUNT}:hooks-local" in resources
    assert f"arn:aws:sqs:{REGION}:{ACCOUNT}:hooks-dlq-local" in resources
    assert "arn:aws:s3:::bkt-local/thumbnails/*" in resources
    # not named by the environment: named from the template, for the Stage's first value
    assert f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/thumbgen-dev-deliver_webhook:*" in resources


def test_a_function_without_a_role_output_is_reported(stack):
    with pytest.raises(KeyError, match="OUTPUT_ROLE"):
        stack.role_of("no_such_function")


def role_template(statements, **resources):
    return {
        "Parameters": {"Stage": {"Type": "String", "AllowedValues": ["dev", "prod"]}},
        "Resources": {
            "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": {"Fn::Sub": "t-${Stage}"}}},
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "q"}},
            "Role": {"Type": "AWS::IAM::Role", "Properties": {
                "Policies": [{"PolicyName": "p", "PolicyDocument": {"Statement": statements}}]}},
            **resources,
        },
    }


def test_intrinsics():
    statements = [{"Effect": "Allow", "Action": "dynamodb:Query", "Resource": [
        {"Fn::GetAtt": ["Table", "Arn"]},
        {"Fn::Sub": "${Table.Arn}/index/*"},
        {"Fn::Sub": ["arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${Name}",
                     {"Name": {"Ref": "Table"}}]},
        {"Fn::Join": ["", ["arn:aws:sqs:", {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"}, ":",
                           {"Fn::GetAtt": ["Queue", "QueueName"]}]]},
        {"Fn::Sub": "${!Literal}"},
    ]}]
    [statement] = Stack(role_template(statements), {}).statements("Role")
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/t-dev"
    assert statement["Resource"] == [table, f"{table}/index/*", table, f"arn:aws:sqs:{REGION}:{ACCOUNT}:q", "${Literal}"]


def test_policies_attached_to_the_role_count():
    policy = {"Type": "AWS::IAM::Policy", "Properties": {
        "Roles": [{"Ref": "Role"}],
        "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage",
                                          "Resource": {"Fn::GetAtt": ["Queue", "Arn"]}}]}}}
    statements = Stack(role_template([], Extra=policy), {}).statements("Role")
    assert decide(statements, Request("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:q")).allowed


@pytest.mark.parametrize("resource, complaint", [
    ({"Fn::If": ["IsProd", "a", "b"]}, "Fn::If"),
    ({"Fn::GetAtt": ["Topic", "Arn"]}, "AWS::SNS::Topic"),
    ({"Fn::GetAtt": ["Queue", "Nonsense"]}, "Queue.Nonsense"),
    ({"Ref": "Missing"}, "Missing"),
])
def test_what_cannot_be_resolved_is_refused(resource, complaint):
    template = role_template([{"Effect": "Allow", "Action": "sns:Publish", "Resource": resource}],
                             Topic={"Type": "AWS::SNS::Topic", "Properties": {}})
    with pytest.raises(UnsupportedTemplate, match=complaint):
        Stack(template, {}).statements("Role")


def test_managed_policies_are_refused():
    template = role_template([])
    template["Resources"]["Role"]["Properties"]["ManagedPolicyArns"] = ["arn:aws:iam::aws:policy/AdministratorAccess"]
    with pytest.raises(UnsupportedTemplate, match="managed"):
        Stack(template, {}).statements("Role")
