""".github/workflows and infra/cicd.yaml: actionlint and cfn-lint clean (offline), the
workflows run the suite and deploy each stage as a GitHub environment with OIDC
credentials, and the deploy role trusts only this repository's stage environment and may
do what `make deploy` does, to this stage's resources."""
from __future__ import annotations

import re
import subprocess
import sys
from fnmatch import fnmatchcase
from pathlib import Path

import pytest
import yaml

from infra.project import REPO
from tests.infra import cfn

WORKFLOWS = REPO / ".github" / "workflows"
CICD = REPO / "infra" / "cicd.yaml"
STAGE_OF_REF = "startsWith(github.ref, 'refs/tags/v') && 'prod' || 'dev'"
# What `make deploy`/`make destroy` call themselves (infra/deploy.py); chalice deploy and
# CloudFormation call the rest.
DEPLOY_SCRIPT_CALLS = [
    "cloudformation:CreateStack", "cloudformation:UpdateStack", "cloudformation:DeleteStack",
    "cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents",
    "ssm:GetParameter", "ssm:PutParameter", "ssm:DeleteParameter",
    "s3:ListBucketVersions", "s3:DeleteObject", "s3:DeleteObjectVersion",
    "apigateway:PATCH",  # update_stage: the throttling
    "lambda:ListEventSourceMappings", "lambda:UpdateEventSourceMapping",
    "lambda:PutFunctionEventInvokeConfig",
]
# Actions whose resource IAM cannot name before it exists, or at all.
UNSCOPED = {"cognito-idp:CreateUserPool", "lambda:CreateEventSourceMapping", "lambda:ListEventSourceMappings"}


def workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def steps(job: dict) -> list[dict]:
    return job["steps"]


def uses(job: dict, action: str) -> dict:
    [step] = [s for s in steps(job) if s.get("uses", "").startswith(action + "@")]
    return step


@pytest.fixture(scope="module")
def cicd():
    return cfn.load(CICD)


def test_actionlint_passes_on_both_workflows():
    actionlint = Path(sys.executable).parent / "actionlint"
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == ["ci.yml", "deploy.yml"]
    result = subprocess.run([str(actionlint), "-no-color", *map(str, files)], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_passes_on_the_cicd_template():
    lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(lint), str(CICD)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_suite_on_every_push_and_pull_request_with_python312_and_chromium():
    ci = workflow("ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    [job] = ci["jobs"].values()
    assert uses(job, "actions/setup-python")["with"]["python-version"] == "3.12"
    runs = [s.get("run", "") for s in steps(job)]
    assert any("apt-get install -y chromium" in r for r in runs)
    assert runs[-1] == "bash .ci/run"


def test_deploy_takes_main_to_dev_and_version_tags_to_prod_after_the_suite():
    deploy = workflow("deploy.yml")
    assert deploy["on"] == {"push": {"branches": ["main"], "tags": ["v*"]}}
    assert deploy["jobs"]["test"]["uses"] == "./.github/workflows/ci.yml"
    assert "workflow_call" in workflow("ci.yml")["on"]
    job = deploy["jobs"]["deploy"]
    assert job["needs"] == "test"
    stage = "${{ " + STAGE_OF_REF + " }}"
    # One stage per run: its GitHub environment, its concurrency group, its make deploy.
    assert job["environment"] == stage
    assert job["concurrency"] == {"group": f"deploy-{stage}", "cancel-in-progress": False}
    assert job["env"]["STAGE"] == stage
    assert steps(job)[-1]["run"] == 'make deploy STAGE="$STAGE"'


def test_deploy_gets_aws_credentials_from_oidc_only():
    job = workflow("deploy.yml")["jobs"]["deploy"]
    assert job["permissions"]["id-token"] == "write"
    credentials = uses(job, "aws-actions/configure-aws-credentials")["with"]
    assert credentials["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert not {"aws-access-key-id", "aws-secret-access-key", "aws-session-token"} & set(credentials)
    text = (WORKFLOWS / "deploy.yml").read_text()
    assert "secrets." not in text and "AWS_ACCESS_KEY_ID" not in text


def test_the_deploy_role_trusts_only_this_repositorys_stage_environment(cicd):
    role = cicd["Resources"]["DeployRole"]["Properties"]
    [trust] = cfn.as_list(role["AssumeRolePolicyDocument"]["Statement"])
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert set(trust["Principal"]) == {"Federated"}
    assert trust["Condition"] == {"StringEquals": {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
        # The subject GitHub gives a job that names the environment (deploy.yml does).
        "token.actions.githubusercontent.com:sub": {
            "Fn::Sub": "repo:${GitHubOrg}/${GitHubRepo}:environment:${Stage}"}}}
    assert cicd["Parameters"]["Stage"]["AllowedValues"] == ["dev", "prod"]
    provider = cicd["Resources"]["GitHubOidcProvider"]
    assert provider["Condition"] == "CreateOidcProvider"
    assert provider["Properties"]["Url"] == "https://token.actions.githubusercontent.com"
    assert provider["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]


def _allows(cicd) -> list[dict]:
    statements = list(cfn.role_statements(cicd, "DeployRole"))
    assert all(s["Effect"] == "Allow" for s in statements)
    return statements


def test_the_deploy_role_may_do_what_make_deploy_does(cicd):
    granted = [a for s in _allows(cicd) for a in cfn.as_list(s["Action"])]
    missing = [c for c in DEPLOY_SCRIPT_CALLS if not any(fnmatchcase(c, g) for g in granted)]
    assert not missing
    services = {a.split(":")[0] for a in granted}
    assert services == {"cloudformation", "iam", "s3", "dynamodb", "sqs", "cognito-idp", "logs", "sns",
                        "cloudwatch", "ssm", "lambda", "events", "apigateway"}


def test_the_deploy_role_is_scoped_to_its_stage_wherever_iam_allows(cicd):
    for statement in _allows(cicd):
        actions = cfn.as_list(statement["Action"])
        for action in actions:
            assert action != "*" and not action.endswith(":*"), action
        for resource in cfn.as_list(statement["Resource"]):
            if resource == "*":
                assert set(actions) <= UNSCOPED, statement["Sid"]
                continue
            arn = resource["Fn::Sub"]
            # The stage's names; ids IAM cannot scope by name (pools, APIs, mappings) stay
            # within the account and region.
            assert re.search(r"thumbgen[-/]\$\{Stage\}", arn) or statement["Sid"] in (
                "UserPools", "ReadLogGroups", "ChangeEventSourceMappings", "ReadEventSourceMappings",
                "RestApi"), statement["Sid"]
            assert "${AWS::AccountId}" in arn or arn.startswith("arn:${AWS::Partition}:s3:::") or \
                arn.startswith("arn:${AWS::Partition}:apigateway:${AWS::Region}::"), arn
    # Roles it makes or passes are the stack's execution roles, passed to Lambda only.
    [passing] = [s for s in _allows(cicd) if "iam:PassRole" in cfn.as_list(s["Action"])]
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}
    assert passing["Resource"]["Fn::Sub"].endswith(":role/thumbgen-${Stage}-infra-*")
