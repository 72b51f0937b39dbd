"""A Chalice project directory for one stage: the app's files plus a rendered config.

`chalice deploy` and `chalice package` read `.chalice/config.json` from the project
directory and nothing else. The repository's config.json holds what every deployment
shares (memory, timeouts, limits, webhook rules) and placeholders for what only a real
account has: resource names and ARNs (the stack's outputs) and the execution roles.
`make deploy` writes those into a copy of the project under build/ and never into the
repository, so no account id lands in a commit.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Mapping

REPO = Path(__file__).resolve().parent.parent

# What Chalice ships to Lambda (the local runner, tests and infra never do).
APP_FILES = ("app.py", "requirements.txt")
APP_DIRS = ("chalicelib", "vendor")
FUNCTIONS = ("api_handler", "resize_upload", "fail_dead_uploads", "on_image_change",
             "deliver_webhook", "sweep_stuck_images")

# Stack output -> stage environment variable (infra/thumbgen.yaml, Outputs).
OUTPUT_ENV = {
    "BucketName": "BUCKET_NAME",
    "TableName": "TABLE_NAME",
    "TableStreamArn": "TABLE_STREAM_ARN",
    "RateLimitTableName": "RATE_LIMIT_TABLE_NAME",
    "UploadQueueName": "UPLOAD_QUEUE_NAME",
    "UploadQueueUrl": "UPLOAD_QUEUE_URL",
    "UploadDlqName": "UPLOAD_DLQ_NAME",
    "WebhookQueueName": "WEBHOOK_QUEUE_NAME",
    "WebhookQueueUrl": "WEBHOOK_QUEUE_URL",
    "WebhookDlqUrl": "WEBHOOK_DLQ_URL",
    "UserPoolId": "COGNITO_USER_POOL_ID",
    "UserPoolClientId": "COGNITO_APP_CLIENT_ID",
}
# Stack output -> the Chalice function whose execution role it is.
OUTPUT_ROLE = {
    "ApiRoleArn": "api_handler",
    "ResizeRoleArn": "resize_upload",
    "DeadUploadsRoleArn": "fail_dead_uploads",
    "StreamRoleArn": "on_image_change",
    "DeliverRoleArn": "deliver_webhook",
    "SweepRoleArn": "sweep_stuck_images",
}
# Stack outputs that `make deploy` uses after `chalice deploy` (infra/deploy.py).
OUTPUT_POST_DEPLOY = ("FailuresQueueArn", "AlarmTopicArn")

# API Gateway throttling of each stage, for every method: (requests per second, burst).
# Chalice has no setting for it; `make deploy` applies it after `chalice deploy`.
API_THROTTLING = {"dev": (20, 40), "prod": (100, 200)}


def function_name(app_name: str, stage: str, function: str) -> str:
    """The Lambda function Chalice makes: the API is <app>-<stage>, others <app>-<stage>-<name>."""
    return f"{app_name}-{stage}" if function == "api_handler" else f"{app_name}-{stage}-{function}"


def require_python312() -> None:
    """Chalice packages dependencies for the Python it runs on: Lambda's is 3.12."""
    if sys.version_info[:2] != (3, 12):
        raise SystemExit(
            f"error: run this with Python 3.12 (Lambda's python3.12 runtime), not "
            f"{sys.version.split()[0]}: use `make …`, which runs .venv/bin/python"
        )


def chalice_command() -> list[str]:
    """The chalice CLI of the running interpreter's environment."""
    script = Path(sys.executable).parent / "chalice"
    if not script.exists():
        found = shutil.which("chalice")
        if found is None:
            raise SystemExit("error: chalice is not installed (run `make venv`)")
        script = Path(found)
    return [str(script)]


def load_config(repo: Path = REPO) -> dict[str, Any]:
    return json.loads((repo / ".chalice" / "config.json").read_text())


def render_stage(config: Mapping[str, Any], stage: str, outputs: Mapping[str, str]) -> dict[str, Any]:
    """The config with `stage` filled in from the stack's outputs."""
    if stage not in config.get("stages", {}):
        raise KeyError(f"stage {stage!r} is not in .chalice/config.json")
    missing = sorted(name for name in (*OUTPUT_ENV, *OUTPUT_ROLE) if not outputs.get(name))
    if missing:
        raise KeyError(f"the stack has no output {', '.join(missing)}")
    rendered = copy.deepcopy(dict(config))
    stage_config = rendered["stages"][stage]
    env = stage_config.setdefault("environment_variables", {})
    env.update({variable: outputs[output] for output, variable in OUTPUT_ENV.items()})
    functions = stage_config.setdefault("lambda_functions", {})
    for output, function in OUTPUT_ROLE.items():
        functions.setdefault(function, {})["iam_role_arn"] = outputs[output]
    return rendered


def build_project(dest: Path, config: Mapping[str, Any], *, state_dir: Path | None = None,
                  repo: Path = REPO) -> Path:
    """Write a Chalice project at `dest`: a copy of the app and the given config.

    With `state_dir`, `.chalice/deployed` (what Chalice created, needed to update or
    delete it later) and `.chalice/deployments` (the zip cache) live there instead, so
    they outlive `dest`; without it, the project starts from nothing (no cached zip).
    """
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in APP_FILES:
        shutil.copy2(repo / name, dest / name)
    for name in APP_DIRS:
        if (repo / name).is_dir():
            shutil.copytree(repo / name, dest / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    chalice_dir = dest / ".chalice"
    chalice_dir.mkdir()
    config_path = chalice_dir / "config.json"
    # Names the account's resources and roles: readable by the owner only.
    fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    if state_dir is not None:
        for name in ("deployed", "deployments"):
            (state_dir / name).mkdir(parents=True, exist_ok=True)
            (chalice_dir / name).symlink_to((state_dir / name).resolve(), target_is_directory=True)
    return dest
