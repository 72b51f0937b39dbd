"""infra/thumbgen.yaml's execution roles as concrete policies, for one stage environment.

Which role a function runs under comes from the template's outputs: infra.project.OUTPUT_ROLE
names the function each role output is for (the table deploy sets the roles from).
Which physical resource a logical id stands for comes from the stage environment the
function was given: the output `TableName: !Ref ImagesTable` becomes TABLE_NAME
(infra.project.OUTPUT_ENV), so TABLE_NAME's value is what `!Ref ImagesTable` resolves to.
Resources the functions are not told about (log groups) are named from their properties.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from infra.project import OUTPUT_ENV, OUTPUT_ROLE
from tests.iam.actions import ACCOUNT, PARTITION, REGION, queue_arn, table_arn
from tests.iam.evaluate import as_list, validate


class UnsupportedTemplate(ValueError):
    """Something in the template this resolver does not know how to turn into an ARN."""


def _queue(name: str, url: str | None, region: str, account: str) -> dict[str, str]:
    url = url or f"https://sqs.{region}.amazonaws.com/{account}/{name}"
    return {"Ref": url, "QueueUrl": url, "QueueName": name, "Arn": queue_arn(url, region, account)}


def _table(name: str, region: str, account: str) -> dict[str, str]:
    arn = table_arn(name, region, account)
    return {"Ref": name, "Arn": arn, "StreamArn": f"{arn}/stream/unknown"}


# Resource type -> (name property, attributes from the physical name (and the URL for queues)).
_TYPES: dict[str, tuple[str, Callable[[str, str | None, str, str], dict[str, str]]]] = {
    "AWS::S3::Bucket": ("BucketName", lambda n, _, r, a: {"Ref": n, "Arn": f"arn:{PARTITION}:s3:::{n}"}),
    "AWS::DynamoDB::Table": ("TableName", lambda n, _, r, a: _table(n, r, a)),
    "AWS::SQS::Queue": ("QueueName", _queue),
    "AWS::Logs::LogGroup": ("LogGroupName",
                            lambda n, _, r, a: {"Ref": n, "Arn": f"arn:{PARTITION}:logs:{r}:{a}:log-group:{n}:*"}),
    "AWS::IAM::Role": ("RoleName", lambda n, _, r, a: {"Ref": n, "Arn": f"arn:{PARTITION}:iam::{a}:role/{n}"}),
}
_POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")


def _parameter_default(name: str, spec: Mapping[str, Any]) -> Any:
    if "Default" in spec:
        return spec["Default"]
    if spec.get("AllowedValues"):
        return spec["AllowedValues"][0]
    raise UnsupportedTemplate(f"parameter {name} has neither a Default nor AllowedValues")


def _getatt(value: Any) -> tuple[str, str]:
    logical, attribute = value.split(".", 1) if isinstance(value, str) else value
    return logical, attribute


class Stack:
    """The template, with every Ref/GetAtt/Sub in its role policies resolved."""

    def __init__(self, template: Mapping[str, Any], environment: Mapping[str, str], *,
                 account: str = ACCOUNT, region: str = REGION, stack_name: str = "thumbgen-test"):
        self.template = template
        self._account, self._region = account, region
        self._pseudo = {"AWS::AccountId": account, "AWS::Region": region, "AWS::Partition": PARTITION,
                        "AWS::StackName": stack_name, "AWS::URLSuffix": "amazonaws.com"}
        self._parameters = {name: _parameter_default(name, spec)
                            for name, spec in template.get("Parameters", {}).items()}
        self._given: dict[str, dict[str, str]] = {}
        for output, variable in OUTPUT_ENV.items():
            value = template.get("Outputs", {}).get(output, {}).get("Value")
            if variable not in environment or not isinstance(value, Mapping):
                continue
            if "Ref" in value:
                self._given.setdefault(value["Ref"], {})["Ref"] = environment[variable]
            elif "Fn::GetAtt" in value:
                logical, attribute = _getatt(value["Fn::GetAtt"])
                self._given.setdefault(logical, {})[attribute] = environment[variable]

    # --- roles ------------------------------------------------------------------------

    def functions(self) -> list[str]:
        return list(OUTPUT_ROLE.values())

    def role_of(self, function: str) -> str:
        for output, name in OUTPUT_ROLE.items():
            if name == function:
                value = self.template["Outputs"][output]["Value"]
                return _getatt(value["Fn::GetAtt"])[0]
        raise KeyError(f"no execution role for function {function!r}: "
                       f"add the output of its role to infra.project.OUTPUT_ROLE")

    def statements(self, role: str) -> list[dict[str, Any]]:
        """Every statement of the role's policies, inline or attached, with concrete ARNs."""
        properties = self.template["Resources"][role].get("Properties", {})
        if properties.get("ManagedPolicyArns"):
            raise UnsupportedTemplate(f"{role}: managed policies are not in the template to check")
        documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
        for resource in self.template["Resources"].values():
            if resource["Type"] in _POLICY_TYPES and {"Ref": role} in as_list(resource["Properties"].get("Roles", [])):
                documents.append(resource["Properties"]["PolicyDocument"])
        statements = [self.resolve(s) for document in documents for s in as_list(document["Statement"])]
        for statement in statements:
            validate(statement)
        return statements

    # --- intrinsics -------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, Mapping):
            return value
        if len(value) == 1:
            (key, argument), = value.items()
            if key == "Ref":
                return self._ref(argument)
            if key == "Fn::GetAtt":
                return self._attribute(*_getatt(argument))
            if key == "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                return self._sub(text, {k: self.resolve(v) for k, v in variables.items()})
            if key == "Fn::Join":
                delimiter, items = argument
                return delimiter.join(self.resolve(items))
            if key.startswith("Fn::") or key == "Condition":
                raise UnsupportedTemplate(f"{key} in a policy is not resolved here: {value}")
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return self._attribute(*name.split(".", 1))
            return str(self._ref(name))
        return re.sub(r"\$\{([^}]+)\}", one, text)

    def _ref(self, name: str) -> Any:
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self._parameters:
            return self._parameters[name]
        return self._attribute(name, "Ref")

    def _attribute(self, logical: str, attribute: str) -> str:
        resource = self.template["Resources"].get(logical)
        if resource is None:
            raise UnsupportedTemplate(f"{logical} is not a parameter or resource of the template")
        if resource["Type"] not in _TYPES:
            raise UnsupportedTemplate(f"{resource['Type']} ({logical}): teach tests/iam/stack.py its ARN")
        name_property, attributes = _TYPES[resource["Type"]]
        given = self._given.get(logical, {})
        if "Ref" in given:  # a queue's Ref is its URL, ending in its name
            name = given["Ref"].rstrip("/").rsplit("/", 1)[-1] if resource["Type"] == "AWS::SQS::Queue" else given["Ref"]
        elif name_property in given:
            name = given[name_property]
        elif name_property in resource.get("Properties", {}):
            name = self.resolve(resource["Properties"][name_property])
        else:
            raise UnsupportedTemplate(f"{logical} has no {name_property} and no output in "
                                      f"infra.project.OUTPUT_ENV names it")
        values = attributes(name, given.get("Ref"), self._region, self._account) | given
        if attribute not in values:
            raise UnsupportedTemplate(f"{logical}.{attribute} is not resolved by tests/iam/stack.py")
        return values[attribute]
