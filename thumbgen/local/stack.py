"""The whole pipeline on one machine: embedded AWS (moto server), the API, the pumps.

The Chalice app is imported after the environment points boto3 at the embedded server,
so its handlers run unchanged: the API through Chalice's own local server, the event
handlers through their Lambda wrappers, called by the pumps.
"""
from __future__ import annotations

import errno
import importlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config

from chalicelib.platform.config import SETTING_NAMES, Settings
from chalicelib.resize import upload_events
from thumbgen import users
from thumbgen.local import latency, pumps, resources
from thumbgen.local.embedded_aws import EXIT_ADDRESS_IN_USE
from thumbgen.local.workers import WorkerPool

REPO_ROOT = Path(__file__).resolve().parents[2]
TABLE_SERVICES = ("dynamodb", "dynamodbstreams")
DEMO_USER = "demo"
# What the local stack sets unless the environment says otherwise (every other setting
# takes the stage default of chalicelib/platform/config.py): a receiver on 127.0.0.1 must work,
# retries come quickly, a killed resize is retried within seconds, and the per-user
# request rate is generous (load tests and Schemathesis send hundreds a second as one user).
LOCAL_DEFAULTS = {
    "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
    "WEBHOOK_RETRY_SCHEDULE": "2,5,10,30",
    "PROCESSING_LEASE_SECONDS": "8",
    "STUCK_AFTER_SECONDS": "60",
    "RATE_LIMIT_PER_SECOND": "1000",
    "RATE_LIMIT_BURST": "10000",
}
# Removed from the environment, as any AWS_ENDPOINT_URL_<SERVICE> the stack does not set.
STRAY_AWS_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
# The resize's timeout here (the worker is killed after it, as Lambda kills a function):
# shorter than the lease (8 s), itself shorter than the uploads queue's visibility timeout
# (10 s), as on AWS (60 s < 70 s < 120 s).
LOCAL_RESIZE_TIMEOUT = 6.0
LOCAL_SWEEP_INTERVAL = 15.0

log = logging.getLogger("thumbgen.local.stack")


def local_client(service: str, aws_url: str) -> Any:
    """A boto3 client for the embedded AWS (its fixed local credentials, SigV4 for S3)."""
    config = Config(max_pool_connections=50)  # pumps and API threads share one client
    if service == "s3":
        config = config.merge(Config(signature_version="s3v4"))
    return boto3.session.Session().client(
        service, endpoint_url=aws_url, region_name="us-east-1",
        aws_access_key_id="thumbgen-local", aws_secret_access_key="thumbgen-local", config=config,
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (for tests and benchmarks on loopback)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class StartFailed(RuntimeError):
    """The local stack could not start; the message says why and what to change."""


class PortInUse(StartFailed):
    pass


def port_in_use(host: str, port: int, setting: str | None) -> PortInUse:
    if setting is None:  # the embedded DynamoDB's port: picked free at start, taken since
        return PortInUse(f"{host}:{port}, the port picked for the embedded DynamoDB, was taken "
                         "before it could listen there; start again")
    return PortInUse(f"{host}:{port} is already in use; choose another with {setting}=…")


def ensure_port_free(host: str, port: int, setting: str) -> None:
    """Fail at once with a clear message rather than with a stack that half starts.

    The probe binds as the servers will (SO_REUSEADDR, as werkzeug's and http.server's
    do): a port left in TIME_WAIT by the last `make run` is free for them, one something
    listens on is not."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise port_in_use(host, port, setting) from None


def _upload_hops(message: dict) -> tuple[latency.Hop, ...]:
    """S3's notification crosses S3's hop and SQS's; a "complete" message only SQS's."""
    if upload_events.COMPLETE_MESSAGE in message.get("Body", ""):
        return (latency.SQS_TO_LAMBDA,)
    return (latency.S3_NOTIFICATION, latency.SQS_TO_LAMBDA)


@dataclass
class LocalStack:
    aws_port: int = 4566
    api_port: int = 8000
    host: str = "127.0.0.1"
    extra_env: dict[str, str] = field(default_factory=dict)
    demo_password: str | None = None
    # Twice the cores: a resize waits on the embedded AWS (read, writes, webhook) about as
    # long as it computes, so two per core keep the cores busy (bench.load).
    resize_workers: int = field(default_factory=lambda: 2 * (os.cpu_count() or 2))
    # AWS's asynchronous hops as published delays (thumbgen/local/latency.py); off by default.
    latency_model: bool = field(default_factory=lambda: os.environ.get("THUMBGEN_AWS_LATENCY") == "1")
    _threads: list[Any] = field(default_factory=list, init=False)
    _moto: list[subprocess.Popen] = field(default_factory=list, init=False)
    tables_port: int = 0  # the embedded DynamoDB's own process: a free port unless given
    # Variables of the environment the stack set otherwise or removed (named at `make run`'s start).
    overridden: list[str] = field(default_factory=list, init=False)

    @property
    def aws_url(self) -> str:
        """S3, SQS and Cognito (S3's notifications reach SQS inside one moto process)."""
        return f"http://{self.host}:{self.aws_port}"

    @property
    def tables_url(self) -> str:
        """DynamoDB and its streams, in a moto process of their own."""
        return f"http://{self.host}:{self.tables_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    def client(self, service: str) -> Any:
        return local_client(service, self.tables_url if service in TABLE_SERVICES else self.aws_url)

    def start(self) -> "LocalStack":
        """Start everything, or stop what did start and raise: no process is left behind."""
        for name, port in (("AWS_PORT", self.aws_port), ("API_PORT", self.api_port)):
            ensure_port_free(self.host, port, name)
        Settings.from_env({**LOCAL_DEFAULTS, **os.environ, **self.extra_env})  # fail before starting anything
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        # The embedded AWS runs in processes of its own, so the pumps and the engine never
        # wait for its share of a GIL; DynamoDB gets a second one: under load one moto
        # process is the bottleneck, each request costing it ~5 ms of CPU (bench.load).
        self.tables_port = self.tables_port or free_port(self.host)
        for port, options in ((self.aws_port, []), (self.tables_port, ["--one-request-at-a-time"])):
            self._moto.append(subprocess.Popen(
                [sys.executable, "-m", "thumbgen.local.embedded_aws", self.host, str(port), *options],
                cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
            ))
        for process, url, port, setting in ((self._moto[0], self.aws_url, self.aws_port, "AWS_PORT"),
                                            (self._moto[1], self.tables_url, self.tables_port, None)):
            self._wait_for(f"{url}/moto-api/", "the embedded AWS", process=process, port=(port, setting))
        self.resources = resources.create_resources(
            self.client("s3"), self.client("dynamodb"), self.client("sqs"), self.client("cognito-idp")
        )
        cognito = self.client("cognito-idp")
        self.demo_password = self.demo_password or users.local_password(self.resources.user_pool_id, DEMO_USER)
        users.ensure_user(cognito, self.resources.user_pool_id, DEMO_USER, self.demo_password)
        self._apply_environment(os.environ)
        app_module = self._import_app()
        self._start_api(app_module)
        self._resize = WorkerPool("resize_upload", self.resize_workers, {}, timeout=LOCAL_RESIZE_TIMEOUT)
        sqs = self.client("sqs")
        model = latency.LatencyModel(self.latency_model)
        stream = pumps.StreamPump(self.client("dynamodbstreams"), self.resources.stream_arn,
                                  app_module.on_image_change, hop=latency.STREAM_TO_LAMBDA, latency=model)
        r = self.resources
        self._threads = [
            pumps.SqsPump(sqs, r.upload_queue_url, r.upload_queue_arn, "resize", pumps.sqs_lambda_events,
                          self._resize.invoke, workers=self.resize_workers,
                          hops=_upload_hops, latency=model),
            pumps.SqsPump(self.client("sqs"), r.upload_dlq_url, r.upload_dlq_arn, "dead-uploads",
                          pumps.sqs_lambda_events, app_module.fail_dead_uploads, workers=1),
            stream,
            pumps.SqsPump(self.client("sqs"), r.webhook_queue_url, r.webhook_queue_arn, "webhooks",
                          pumps.sqs_lambda_events, app_module.deliver_webhook, workers=16,
                          hops=lambda message: (latency.SQS_TO_LAMBDA,), latency=model),
            pumps.Schedule(app_module.sweep_stuck_images, "sweep", every=LOCAL_SWEEP_INTERVAL),
        ]
        self._resize.warm()
        for thread in self._threads:
            thread.start()
        self._wait_healthy()

    def demo_token(self) -> str:
        return users.sign_in(self.client("cognito-idp"), self.resources.app_client_id,
                             DEMO_USER, self.demo_password or "")

    def webhook_secret(self, token: str) -> str:
        """The signing secret of the token's user, as `GET /webhook-secret` gives it."""
        response = requests.get(f"{self.api_url}/webhook-secret", timeout=10,
                                headers={"Authorization": f"Bearer {token}"})
        response.raise_for_status()
        return response.json()["secret"]

    def token(self, username: str) -> str:
        """A fresh access token for a user of the local pool (created on first use)."""
        password = self.demo_password if username == DEMO_USER else None
        return users.token_for(self.client("cognito-idp"), self.resources.user_pool_id,
                               self.resources.app_client_id, username, password)

    def _apply_environment(self, environ: MutableMapping[str, str]) -> None:
        """Point `environ` (this process's, inherited by the workers) at the local stack,
        noting in `overridden` every variable it had that the stack set otherwise or removed."""
        env = self._environment(environ)
        # Never mix real credentials or another endpoint (LocalStack's, say) into the local stack.
        stray = [name for name in environ if name in STRAY_AWS_VARIABLES
                 or (name.startswith("AWS_ENDPOINT_URL") and name not in env)]
        self.overridden = sorted({*stray, *(name for name, value in env.items()
                                            if environ.get(name) and environ[name] != value)})
        for name in stray:
            del environ[name]
        environ.update(env)

    def _owned_environment(self) -> dict[str, str]:
        """What the local stack sets whatever the environment says: its endpoints, region
        and credentials, and the names of its own resources and user pool."""
        r = self.resources
        return {
            "AWS_ENDPOINT_URL": self.aws_url,
            "AWS_ENDPOINT_URL_DYNAMODB": self.tables_url,
            "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": self.tables_url,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "thumbgen-local",
            "AWS_SECRET_ACCESS_KEY": "thumbgen-local",
            "BUCKET_NAME": r.bucket,
            "TABLE_NAME": r.table,
            "TABLE_STREAM_ARN": r.stream_arn,
            "RATE_LIMIT_TABLE_NAME": r.rate_limit_table,
            "UPLOAD_QUEUE_NAME": resources.UPLOAD_QUEUE,
            "UPLOAD_QUEUE_URL": r.upload_queue_url,
            "UPLOAD_DLQ_NAME": resources.UPLOAD_DLQ,
            "WEBHOOK_QUEUE_NAME": resources.WEBHOOK_QUEUE,
            "WEBHOOK_QUEUE_URL": r.webhook_queue_url,
            "WEBHOOK_DLQ_URL": r.webhook_dlq_url,
            "COGNITO_USER_POOL_ID": r.user_pool_id,
            "COGNITO_APP_CLIENT_ID": r.app_client_id,
            "COGNITO_REGION": "us-east-1",
        }

    def _environment(self, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
        """The stage environment of the local stack: the local defaults, every setting the
        caller's environment gives (as a deployed stage would read it), then what the stack
        owns (`_owned_environment`), validated. COGNITO_JWKS_URL passes through too; unset,
        the embedded pool's keys are found from the endpoint."""
        env = {
            **LOCAL_DEFAULTS,
            **{name: environ[name] for name in SETTING_NAMES if environ.get(name)},
            **self._owned_environment(),
            **self.extra_env,
        }
        Settings.from_env(env)  # a bad value stops here, naming the variable
        return env

    def _import_app(self) -> Any:
        if str(REPO_ROOT) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT))
        app_module = importlib.import_module("app")
        from chalicelib import service

        service.reset()
        # Lambda's init phase: build the clients now, not on the first upload.
        service.resizer()
        service.delivery()
        return app_module

    def _start_api(self, app_module: Any) -> None:
        from chalice.config import Config as ChaliceConfig

        from thumbgen.local.localapi import create_api_server

        config = ChaliceConfig.create(chalice_stage="local", app_name="thumbgen")
        try:
            self._api = create_api_server(app_module.app, config, self.host, self.api_port)
        except OSError as exc:  # taken since start() found it free
            if exc.errno != errno.EADDRINUSE:
                raise
            raise port_in_use(self.host, self.api_port, "API_PORT") from None
        thread = threading.Thread(target=self._api.server.serve_forever, name="api", daemon=True)
        thread.start()

    def _wait_healthy(self) -> None:
        self._wait_for(f"{self.api_url}/health", "the local API")

    def _wait_for(self, url: str, what: str, timeout: float = 30, process: subprocess.Popen | None = None,
                  port: tuple[int, str | None] | None = None) -> None:
        """Until `url` answers 200; fails at once if `process`, which should answer it, exits
        (on `port` already in use: PortInUse naming the port and its setting)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = process.poll() if process is not None else None
            if code is not None:
                if code == EXIT_ADDRESS_IN_USE and port is not None:
                    raise port_in_use(self.host, port[0], port[1])
                raise StartFailed(f"{what} exited (code {code}) before answering at {url}")
            try:
                if requests.get(url, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise StartFailed(f"{what} did not come up at {url} within {timeout:g} s")

    def stop(self) -> None:
        for thread in self._threads:
            thread.stop()
        for thread in self._threads:
            thread.join(timeout=3)
        if getattr(self, "_resize", None):
            self._resize.close()
        if getattr(self, "_api", None):
            self._api.shutdown()
        for process in self._moto:
            process.terminate()
        for process in self._moto:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
