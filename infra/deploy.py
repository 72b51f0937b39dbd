"""`make deploy STAGE=…` and `make destroy STAGE=…`: the stack, then the Chalice stage.

    python -m infra.deploy deploy dev      # create or update; safe to run again
    python -m infra.deploy destroy dev     # remove everything, data included

deploy: (1) creates or updates the CloudFormation stack `thumbgen-<stage>-infra` from
infra/thumbgen.yaml (an unchanged template is "No updates": nothing happens), (2) reads the
stage's webhook secret from SSM Parameter Store (`/thumbgen/<stage>/webhook-secret`,
SecureString), creating it on the first deploy, (3) renders the stage's Chalice config
from the stack's outputs, the roles and the secret into build/deploy/<stage>/, (4) runs
`chalice deploy --stage <stage>` there and prints the API URL.

Chalice's record of what it created stays in the repository's .chalice/deployed/
(gitignored): keep it, `chalice deploy` needs it to update and `destroy` to delete.
Credentials and region come from the usual AWS environment (AWS_PROFILE, AWS_REGION, …).
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from botocore.exceptions import WaiterError

from infra.project import (REPO, build_project, chalice_command, load_config, render_stage,
                           require_python312)

TEMPLATE = REPO / "infra" / "thumbgen.yaml"
BUILD = REPO / "build" / "deploy"
STATE = REPO / ".chalice"  # deployed/ and deployments/ live here, as with plain `chalice`
NO_CHANGES = "No updates are to be performed"


def stack_name(stage: str) -> str:
    return f"thumbgen-{stage}-infra"


def secret_parameter(stage: str) -> str:
    return f"/thumbgen/{stage}/webhook-secret"


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def stack_parameters(stage: str, env: dict[str, str]) -> list[dict[str, str]]:
    params = [{"ParameterKey": "Stage", "ParameterValue": stage}]
    for variable, key in (("CORS_ORIGINS", "CorsAllowedOrigins"),
                          ("LOG_RETENTION_DAYS", "LogRetentionDays")):
        if env.get(variable):
            params.append({"ParameterKey": key, "ParameterValue": env[variable]})
    return params


def _stack_status(cfn: Any, name: str) -> str | None:
    try:
        return cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    except cfn.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def deploy_stack(cfn: Any, name: str, template_body: str, parameters: list[dict[str, str]],
                 tags: list[dict[str, str]], log=print) -> bool:
    """Create or update the stack and wait for it; False when there was nothing to change."""
    status = _stack_status(cfn, name)
    if status is not None and status.endswith("_IN_PROGRESS"):
        raise SystemExit(f"error: {name} is busy ({status}); run again when it has finished")
    args = dict(StackName=name, TemplateBody=template_body, Parameters=parameters,
                Capabilities=["CAPABILITY_IAM"], Tags=tags)
    stack_id = name
    if status is None:
        # A failed creation is rolled back and deleted: the next run starts afresh.
        stack_id = cfn.create_stack(**args, OnFailure="DELETE")["StackId"]
        waiter, done = "stack_create_complete", "created"
    else:
        try:
            cfn.update_stack(**args)
        except cfn.exceptions.ClientError as exc:
            if NO_CHANGES in str(exc):
                log(f"{name}: no changes")
                return False
            raise
        waiter, done = "stack_update_complete", "updated"
    log(f"{name}: waiting for CloudFormation…")
    try:
        cfn.get_waiter(waiter).wait(StackName=stack_id, WaiterConfig={"Delay": 5, "MaxAttempts": 360})
    except WaiterError as exc:  # the stack failed and was rolled back
        reasons = "\n".join(_failures(cfn, stack_id))
        raise SystemExit(f"error: {name} failed: {exc}\n{reasons}") from exc
    log(f"{name}: {done}")
    return True


def _failures(cfn: Any, stack_id: str) -> list[str]:
    """Why resources failed (by stack id, which still answers once a stack is deleted)."""
    try:
        events = cfn.describe_stack_events(StackName=stack_id)["StackEvents"]
    except cfn.exceptions.ClientError:
        return []
    return [f"  {e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
            for e in events if e["ResourceStatus"].endswith("FAILED")][:10]


def stack_outputs(cfn: Any, name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def webhook_secret(ssm: Any, stage: str) -> str:
    """The stage's signing secret: read it, or create it once (never rotated by deploy)."""
    name = secret_parameter(stage)
    try:
        return ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        pass
    try:
        ssm.put_parameter(Name=name, Value=new_webhook_secret(), Type="SecureString",
                          Overwrite=False,
                          Description=f"thumbgen {stage}: Standard Webhooks signing secret")
    except ssm.exceptions.ParameterAlreadyExists:
        pass  # another deploy made it first: use theirs
    return ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]


def api_url(state_dir: Path, stage: str) -> str | None:
    deployed = state_dir / "deployed" / f"{stage}.json"
    if not deployed.exists():
        return None
    for resource in json.loads(deployed.read_text()).get("resources", []):
        if resource.get("name") == "rest_api":
            return resource.get("rest_api_url")
    return None


def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object (and version) so CloudFormation can delete the bucket."""
    deleted = 0
    try:
        pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
        for page in pages:
            keys = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                    for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            for start in range(0, len(keys), 1000):
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[start:start + 1000],
                                                         "Quiet": True})
            deleted += len(keys)
    except s3.exceptions.NoSuchBucket:
        return 0
    return deleted


def _session():
    import boto3

    session = boto3.session.Session()
    if not session.region_name:
        raise SystemExit("error: no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a profile's region)")
    if session.get_credentials() is None:
        raise SystemExit("error: no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/…")
    return session


def _chalice(project: Path, region: str, *args: str) -> None:
    env = dict(os.environ, AWS_DEFAULT_REGION=region)
    subprocess.run([*chalice_command(), *args], cwd=project, env=env, check=True)


def prepare(session: Any, stage: str, *, build_dir: Path = BUILD, state_dir: Path = STATE,
            env: dict[str, str] | None = None) -> tuple[Path, dict[str, str]]:
    """Steps 1-3: the stack, the secret and the stage's rendered Chalice project."""
    config = load_config()
    if stage not in config["stages"]:
        raise SystemExit(f"error: no stage {stage!r} in .chalice/config.json")
    cfn = session.client("cloudformation")
    name = stack_name(stage)
    deploy_stack(cfn, name, TEMPLATE.read_text(),
                 stack_parameters(stage, dict(os.environ if env is None else env)),
                 [{"Key": "app", "Value": "thumbgen"}, {"Key": "stage", "Value": stage}])
    outputs = stack_outputs(cfn, name)
    secret = webhook_secret(session.client("ssm"), stage)
    project = build_project(build_dir / stage, render_stage(config, stage, outputs, secret),
                            state_dir=state_dir)
    return project, outputs


def deploy(stage: str, *, build_dir: Path = BUILD, state_dir: Path = STATE) -> str | None:
    require_python312()
    session = _session()
    account = session.client("sts").get_caller_identity()["Account"]
    print(f"deploying thumbgen {stage} to account {account}, region {session.region_name}")
    project, outputs = prepare(session, stage, build_dir=build_dir, state_dir=state_dir)
    _chalice(project, session.region_name, "deploy", "--stage", stage)
    url = api_url(state_dir, stage)
    print(f"\nthumbgen {stage} is deployed.\n"
          f"  API:            {url}\n"
          f"  bucket:         {outputs['BucketName']}\n"
          f"  table:          {outputs['TableName']}\n"
          f"  webhook queue:  {outputs['WebhookQueueUrl']}\n"
          f"  dead letters:   {outputs['WebhookDlqUrl']}\n"
          f"  webhook secret: aws ssm get-parameter --with-decryption "
          f"--name {secret_parameter(stage)} --query Parameter.Value --output text")
    return url


def destroy(stage: str, assume_yes: bool = False, *, build_dir: Path = BUILD,
            state_dir: Path = STATE) -> None:
    require_python312()
    config = load_config()
    if stage not in config["stages"]:
        raise SystemExit(f"error: no stage {stage!r} in .chalice/config.json")
    session = _session()
    if stage == "prod" and not assume_yes:
        answer = input("This deletes prod's images, records and queues. Type 'prod' to go on: ")
        if answer.strip() != "prod":
            raise SystemExit("not destroyed")
    name = stack_name(stage)
    cfn = session.client("cloudformation")
    # 1. Chalice's functions, API and triggers (its record says what they are).
    if (state_dir / "deployed" / f"{stage}.json").exists():
        project = build_project(build_dir / stage, config, state_dir=state_dir)
        _chalice(project, session.region_name, "delete", "--stage", stage)
    else:
        print(f"no Chalice deployment recorded in .chalice/deployed/{stage}.json: skipping "
              f"`chalice delete` (delete thumbgen-{stage}* functions and the API by hand if they exist)")
    # 2. The stack, after emptying the bucket CloudFormation cannot delete otherwise.
    if _stack_status(cfn, name) is not None:
        bucket = stack_outputs(cfn, name).get("BucketName")
        if bucket:
            print(f"emptying s3://{bucket}: {empty_bucket(session.client('s3'), bucket)} objects deleted")
        cfn.delete_stack(StackName=name)
        cfn.get_waiter("stack_delete_complete").wait(StackName=name,
                                                     WaiterConfig={"Delay": 5, "MaxAttempts": 360})
        print(f"{name}: deleted")
    else:
        print(f"{name}: no such stack")
    # 3. The secret.
    ssm = session.client("ssm")
    try:
        ssm.delete_parameter(Name=secret_parameter(stage))
        print(f"{secret_parameter(stage)}: deleted")
    except ssm.exceptions.ParameterNotFound:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["deploy", "destroy"])
    parser.add_argument("stage")
    parser.add_argument("--yes", action="store_true", help="destroy prod without asking")
    args = parser.parse_args(argv)
    if args.action == "deploy":
        deploy(args.stage)
    else:
        destroy(args.stage, assume_yes=args.yes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
