"""`make deploy STAGE=…` and `make destroy STAGE=…`: the stack, then the Chalice stage.

    python -m infra.deploy deploy dev      # create or update; safe to run again
    python -m infra.deploy destroy dev     # remove everything, data included

deploy: (1) creates or updates the CloudFormation stack `thumbgen-<stage>-infra` from
infra/thumbgen.yaml (an unchanged template is "No updates": nothing happens), (2) renders
the stage's Chalice config from the stack's outputs and the roles into
build/deploy/<stage>/, (3) runs `chalice deploy --stage <stage>` there, (4) sets what
Chalice cannot: the API's throttling, the stream mapping's retries and on-failure
destination, the sweep's on-failure destination, and prints the API URL and how to get a
token. There is no stage-wide secret: each user's webhook signing secret is made by the
API on first use (`GET /webhook-secret`) and kept in the images table.

Chalice's record of what it created (.chalice/deployed/<stage>.json, gitignored) is kept
in SSM too (`/thumbgen/<stage>/chalice-deployed`), so a deploy from a fresh checkout (CI)
updates the stage instead of trying to create it again.
Credentials and region come from the usual AWS environment (AWS_PROFILE, AWS_REGION, …).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from botocore.exceptions import ClientError, WaiterError
from chalice.config import Config

from infra.project import (API_THROTTLING, REPO, build_project, chalice_command,
                           function_name, load_config, render_stage, require_python312)

TEMPLATE = REPO / "infra" / "thumbgen.yaml"
BUILD = REPO / "build" / "deploy"
STATE = REPO / ".chalice"  # deployed/ and deployments/ live here, as with plain `chalice`
NO_CHANGES = "No updates are to be performed"
# Operator settings read from the environment -> stack parameters.
PARAMETER_ENV = (("CORS_ORIGINS", "CorsAllowedOrigins"), ("LOG_RETENTION_DAYS", "LogRetentionDays"),
                 ("ALARM_EMAIL", "AlarmEmail"),
                 ("WEBHOOK_DLQ_ALARM_THRESHOLD", "WebhookDlqAlarmThreshold"))
# A stream batch that still fails after this many retries (each half retried on its own,
# BisectBatchOnFunctionError) is reported to the failures queue and skipped: the shard is
# blocked while it retries, and a transient AWS error clears in far fewer.
STREAM_MAX_RETRIES = 5
# The sweep runs every 5 minutes: Lambda's two retries of a failed run are enough, and a run
# older than the next one is pointless. Then it is reported to the failures queue.
SWEEP_MAX_RETRIES = 2
SWEEP_MAX_EVENT_AGE = 300
SETTLE_ATTEMPTS, SETTLE_DELAY = 60, 2.0  # Lambda settles a new mapping within seconds


def stack_name(stage: str) -> str:
    return f"thumbgen-{stage}-infra"


def record_parameter(stage: str) -> str:
    return f"/thumbgen/{stage}/chalice-deployed"


def stack_parameters(stage: str, env: dict[str, str]) -> list[dict[str, str]]:
    params = [{"ParameterKey": "Stage", "ParameterValue": stage}]
    for variable, key in PARAMETER_ENV:
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


def deployed_rest_api(state_dir: Path, stage: str) -> dict[str, str] | None:
    """The REST API of Chalice's record (rest_api_id, rest_api_url), if it made one."""
    deployed = state_dir / "deployed" / f"{stage}.json"
    if not deployed.exists():
        return None
    for resource in json.loads(deployed.read_text()).get("resources", []):
        if resource.get("name") == "rest_api":
            return resource
    return None


def api_url(state_dir: Path, stage: str) -> str | None:
    api = deployed_rest_api(state_dir, stage)
    return api.get("rest_api_url") if api else None


def restore_chalice_record(ssm: Any, stage: str, state_dir: Path) -> bool:
    """Write Chalice's record of the stage from SSM, the copy the last deploy left there."""
    try:
        value = ssm.get_parameter(Name=record_parameter(stage))["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return False
    path = state_dir / "deployed" / f"{stage}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json.loads(value), indent=2) + "\n")
    return True


def save_chalice_record(ssm: Any, stage: str, state_dir: Path) -> bool:
    """Keep Chalice's record in SSM (ARNs and ids only, no secret) for the next deploy."""
    path = state_dir / "deployed" / f"{stage}.json"
    if not path.exists():
        return False
    ssm.put_parameter(Name=record_parameter(stage), Type="String", Overwrite=True,
                      Value=json.dumps(json.loads(path.read_text()), separators=(",", ":")),
                      # Standard (4 KB) while it fits, advanced (8 KB) if it ever grows.
                      Tier="Intelligent-Tiering")
    return True


def _when_settled(call: Callable[..., Any], sleep: Callable[[float], None], **kwargs: Any) -> Any:
    """Lambda refuses changes while a function or mapping is still updating: wait, retry."""
    for attempt in range(1, SETTLE_ATTEMPTS + 1):
        try:
            return call(**kwargs)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code not in ("ResourceInUseException", "ResourceConflictException") or attempt == SETTLE_ATTEMPTS:
                raise
            sleep(SETTLE_DELAY)


def throttle_api(apigateway: Any, rest_api_id: str, api_stage: str, rate: int, burst: int) -> None:
    """Every method of the stage: `rate` requests per second, bursts of `burst`."""
    apigateway.update_stage(restApiId=rest_api_id, stageName=api_stage, patchOperations=[
        {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": str(rate)},
        {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(burst)},
    ])


def route_stream_failures(lambda_: Any, function: str, stream_arn: str, failures_arn: str,
                          sleep: Callable[[float], None] = time.sleep) -> str:
    """Bounded retries, bisected batches and an on-failure queue for the stream mapping."""
    mappings = lambda_.list_event_source_mappings(
        FunctionName=function, EventSourceArn=stream_arn)["EventSourceMappings"]
    if len(mappings) != 1:
        raise SystemExit(f"error: expected one mapping of {stream_arn} to {function}, "
                         f"found {len(mappings)}")
    uuid = mappings[0]["UUID"]
    _when_settled(lambda_.update_event_source_mapping, sleep, UUID=uuid,
                  MaximumRetryAttempts=STREAM_MAX_RETRIES, BisectBatchOnFunctionError=True,
                  DestinationConfig={"OnFailure": {"Destination": failures_arn}})
    return uuid


def route_sweep_failures(lambda_: Any, function: str, failures_arn: str,
                         sleep: Callable[[float], None] = time.sleep) -> None:
    """The scheduled (asynchronous) runs of the sweep report their failures to the queue."""
    _when_settled(lambda_.put_function_event_invoke_config, sleep, FunctionName=function,
                  MaximumRetryAttempts=SWEEP_MAX_RETRIES,
                  MaximumEventAgeInSeconds=SWEEP_MAX_EVENT_AGE,
                  DestinationConfig={"OnFailure": {"Destination": failures_arn}})


def configure_stage(session: Any, stage: str, outputs: dict[str, str], rest_api_id: str, *,
                    config: dict[str, Any] | None = None,
                    sleep: Callable[[float], None] = time.sleep) -> None:
    """Step 4: what `chalice deploy` has no setting for, applied again on every deploy."""
    config = load_config() if config is None else config
    app = config["app_name"]
    rate, burst = API_THROTTLING[stage]
    api_stage = Config(chalice_stage=stage, config_from_disk=config).api_gateway_stage
    throttle_api(session.client("apigateway"), rest_api_id, api_stage, rate, burst)
    lambda_ = session.client("lambda")
    route_stream_failures(lambda_, function_name(app, stage, "on_image_change"),
                          outputs["TableStreamArn"], outputs["FailuresQueueArn"], sleep)
    route_sweep_failures(lambda_, function_name(app, stage, "sweep_stuck_images"),
                         outputs["FailuresQueueArn"], sleep)


def access_token_minutes(template: str | None = None) -> int:
    """The app client's access-token validity, as the template sets it (in minutes)."""
    text = template if template is not None else TEMPLATE.read_text()
    units = re.search(r"TokenValidityUnits:\s*\n\s*AccessToken:\s*(\w+)", text)
    if units is None or units.group(1) != "minutes":
        raise ValueError("the template must give the access token's validity in minutes")
    return int(re.search(r"AccessTokenValidity:\s*(\d+)", text).group(1))


def summary(stage: str, outputs: dict[str, str], url: str | None, alarm_email: str = "") -> str:
    """What was deployed, and how to make a user and call the API with its token."""
    rate, burst = API_THROTTLING[stage]
    pool, client = outputs["UserPoolId"], outputs["UserPoolClientId"]
    alarms = (f"{outputs['AlarmTopicArn']} (mailing {alarm_email})" if alarm_email else
              f"{outputs['AlarmTopicArn']} (no subscriber: set ALARM_EMAIL, or subscribe)")
    return f"""
thumbgen {stage} is deployed.
  API:            {url}
  throttling:     {rate} requests/s, bursts of {burst}
  user pool:      {pool} (app client {client})
  bucket:         {outputs['BucketName']}
  table:          {outputs['TableName']}
  upload queue:   {outputs['UploadQueueUrl']}
  webhook queue:  {outputs['WebhookQueueUrl']}
  dead letters:   {outputs['WebhookDlqUrl']}
  alarms:         {alarms}

Create a user (administrators, with the AWS CLI):
  read -rsp 'new password for alice: ' PASSWORD; echo
  aws cognito-idp admin-create-user --user-pool-id {pool} --username alice --message-action SUPPRESS
  aws cognito-idp admin-set-user-password --user-pool-id {pool} --username alice --password "$PASSWORD" --permanent
Sign in as that user (no AWS credentials needed; the access token lasts {access_token_minutes()} minutes):
  TOKEN=$(thumbgen token --api-url {url} --user alice)
  curl -H "Authorization: Bearer $TOKEN" {url}images
  curl -H "Authorization: Bearer $TOKEN" {url}webhook-secret    # alice's webhook signing secret"""


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
    """Steps 1-2: the stack and the stage's rendered Chalice project."""
    config = load_config()
    if stage not in config["stages"]:
        raise SystemExit(f"error: no stage {stage!r} in .chalice/config.json")
    cfn = session.client("cloudformation")
    name = stack_name(stage)
    deploy_stack(cfn, name, TEMPLATE.read_text(),
                 stack_parameters(stage, dict(os.environ if env is None else env)),
                 [{"Key": "app", "Value": "thumbgen"}, {"Key": "stage", "Value": stage}])
    outputs = stack_outputs(cfn, name)
    project = build_project(build_dir / stage, render_stage(config, stage, outputs), state_dir=state_dir)
    return project, outputs


def deploy(stage: str, *, build_dir: Path = BUILD, state_dir: Path = STATE) -> str | None:
    require_python312()
    session = _session()
    account = session.client("sts").get_caller_identity()["Account"]
    print(f"deploying thumbgen {stage} to account {account}, region {session.region_name}")
    project, outputs = prepare(session, stage, build_dir=build_dir, state_dir=state_dir)
    ssm = session.client("ssm")
    restore_chalice_record(ssm, stage, state_dir)
    try:
        _chalice(project, session.region_name, "deploy", "--stage", stage)
    finally:  # a failed deploy still records what it created, and the next run needs that
        save_chalice_record(ssm, stage, state_dir)
    api = deployed_rest_api(state_dir, stage)
    if api is None:
        raise SystemExit(f"error: chalice recorded no REST API in .chalice/deployed/{stage}.json")
    configure_stage(session, stage, outputs, api["rest_api_id"])
    print(summary(stage, outputs, api.get("rest_api_url"), os.environ.get("ALARM_EMAIL", "")))
    return api.get("rest_api_url")


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
    ssm = session.client("ssm")
    restore_chalice_record(ssm, stage, state_dir)
    # 1. Chalice's functions, API and triggers (its record says what they are).
    if (state_dir / "deployed" / f"{stage}.json").exists():
        project = build_project(build_dir / stage, config, state_dir=state_dir)
        _chalice(project, session.region_name, "delete", "--stage", stage)
        _delete_parameter(ssm, record_parameter(stage))  # it names nothing that exists now
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


def _delete_parameter(ssm: Any, name: str) -> None:
    try:
        ssm.delete_parameter(Name=name)
        print(f"{name}: deleted")
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
