"""Reading infra/thumbgen.yaml the way CloudFormation will: intrinsics as {"Fn::…": …}."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

from cfnlint.decode import decode

from infra.project import REPO

TEMPLATE_PATH = REPO / "infra" / "thumbgen.yaml"
TEMPLATES = sorted(p for p in (REPO / "infra").iterdir() if p.suffix in (".yaml", ".yml", ".json"))


IAM_IDENTITIES = ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group")


def load(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    template, problems = decode(str(path))
    assert not problems, problems
    return template


def resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == type_}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(template: dict[str, Any], role: str) -> Iterator[dict[str, Any]]:
    for policy in template["Resources"][role]["Properties"].get("Policies", []):
        yield from as_list(policy["PolicyDocument"]["Statement"])


def all_policy_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every statement of every identity or resource policy in the template."""
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        documents = []
        if resource["Type"] in IAM_IDENTITIES:  # a user pool's Policies are password rules
            documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
        if "PolicyDocument" in props:
            documents.append(props["PolicyDocument"])
        for document in documents:
            for statement in as_list(document["Statement"]):
                yield name, statement


_REF = re.compile(r"\$\{([A-Za-z0-9]+)\.Arn\}")


def resolve_arn(value: Any, arns: dict[str, str]) -> str:
    """!GetAtt X.Arn and !Sub "${X.Arn}/…" with the given ARN for each logical id."""
    if isinstance(value, str):
        return value
    if "Fn::GetAtt" in value:
        name, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn", value
        return arns[name]
    if "Fn::Sub" in value:
        text = value["Fn::Sub"]
        assert isinstance(text, str), value
        return _REF.sub(lambda m: arns[m.group(1)], text)
    raise AssertionError(f"unexpected intrinsic in a policy resource: {value}")


def referenced_resources(value: Any) -> set[str]:
    """Logical ids a policy resource is built from (none for a literal string)."""
    if isinstance(value, str):
        return set()
    if "Fn::GetAtt" in value:
        return {value["Fn::GetAtt"][0]}
    if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return set(_REF.findall(value["Fn::Sub"]))
    return set()
