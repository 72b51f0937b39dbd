"""`make package`, built once for this module (no Chalice zip cache), and what Lambda's
python3.12 x86_64 runtime will make of its deployment.zip.

The zip is checked as Lambda sees it: wheel tags and the ELF files themselves (machine,
glibc symbol versions), size, what ships, and the handlers imported and run in a fresh
Python 3.12 whose only package is boto3 (the runtime provides it), with the zip's
contents on PYTHONPATH as in /var/task.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from infra.project import FUNCTIONS, REPO, load_config
from tests.infra import cfn

MAX_ZIP_BYTES = 30 * 1024 * 1024
LAMBDA_GLIBC = (2, 34)  # Amazon Linux 2023, the python3.12 runtime's OS
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")  # never bundled


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    out = tmp_path_factory.mktemp("package") / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}  # no credentials
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "infra.package", str(out)], cwd=REPO, env=env, check=True)
    print(f"make package: {time.monotonic() - started:.1f} s")
    return out


@pytest.fixture(scope="module")
def zip_path(package):
    return package / "deployment.zip"


@pytest.fixture(scope="module")
def names(zip_path):
    with zipfile.ZipFile(zip_path) as z:
        return z.namelist()


@pytest.fixture(scope="module")
def task_root(zip_path, tmp_path_factory):
    """The zip unpacked, as Lambda unpacks it into /var/task."""
    root = tmp_path_factory.mktemp("var-task")
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(root)
    return root


@pytest.fixture(scope="module")
def terraform(package):
    return json.loads((package / "chalice.tf.json").read_text())


@pytest.fixture(scope="module")
def lambda_python(tmp_path_factory):
    """A fresh Python 3.12 venv holding boto3 (and its dependencies) and nothing else."""
    python312 = subprocess.run([str(REPO / "scripts" / "find-python312")], capture_output=True,
                               text=True, check=True).stdout.strip()
    venv = tmp_path_factory.mktemp("lambda-runtime")
    subprocess.run([python312, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    boto3 = re.search(r"^boto3==(\S+)", (REPO / "requirements-dev.txt").read_text(), re.M)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--only-binary=:all:", f"boto3=={boto3.group(1)}"], check=True)
    return python


def test_package_holds_the_zip_the_terraform_and_the_stack_template(package):
    assert sorted(p.name for p in package.iterdir()) == ["chalice.tf.json", "deployment.zip", "thumbgen.yaml"]


def test_zip_is_at_most_30_mb(zip_path):
    size = zip_path.stat().st_size
    print(f"deployment.zip: {size / 1e6:.1f} MB")
    assert size <= MAX_ZIP_BYTES


def _tag_runs_on_lambda(tag: str) -> bool:
    py, abi, platforms = tag.split("-")
    if platforms == "any":
        return abi == "none" and py in ("py3", "py2.py3", "py30")
    if not (abi == "cp312" and py == "cp312" or abi == "abi3" and re.fullmatch(r"cp3(\d+)", py)
            and int(py[3:]) <= 12):
        return False
    for platform in platforms.split("."):
        m = re.fullmatch(r"manylinux_(\d+)_(\d+)_x86_64", platform)
        glibc = (int(m[1]), int(m[2])) if m else LEGACY_MANYLINUX.get(platform.removesuffix("_x86_64"))
        if platform.endswith("_x86_64") and glibc is not None and glibc <= LAMBDA_GLIBC:
            return True
    return False


def test_tag_rules_accept_lambda_wheels_and_refuse_the_rest():
    assert _tag_runs_on_lambda("py3-none-any")
    assert _tag_runs_on_lambda("cp312-cp312-manylinux_2_28_x86_64")
    assert _tag_runs_on_lambda("cp312-cp312-manylinux2014_x86_64")
    assert _tag_runs_on_lambda("cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64")
    assert not _tag_runs_on_lambda("cp312-cp312-linux_x86_64")          # built here from source
    assert not _tag_runs_on_lambda("cp312-cp312-manylinux_2_35_x86_64")  # newer glibc than AL2023
    assert not _tag_runs_on_lambda("cp312-cp312-manylinux_2_28_aarch64")
    assert not _tag_runs_on_lambda("cp311-cp311-manylinux_2_28_x86_64")
    assert not _tag_runs_on_lambda("cp312-cp312-macosx_11_0_arm64")


def test_every_bundled_wheel_runs_on_lambda_python312_x86_64(task_root):
    dist_infos = sorted(task_root.glob("*.dist-info"))
    assert dist_infos, "no installed distributions in the zip"
    for dist in dist_infos:
        wheel = (dist / "WHEEL").read_text()
        tags = re.findall(r"^Tag: (\S+)$", wheel, re.M)
        assert tags, f"{dist.name}: no wheel tags"
        assert not [t for t in tags if t.endswith("-linux_x86_64")], f"{dist.name}: built from source: {tags}"
        assert any(_tag_runs_on_lambda(t) for t in tags), f"{dist.name}: {tags}"


def _glibc_needed(data: bytes) -> tuple[int, int]:
    versions = [(int(a), int(b)) for a, b in re.findall(rb"GLIBC_(\d+)\.(\d+)", data)]
    return max(versions, default=(0, 0))


def test_every_native_library_is_x86_64_and_needs_at_most_lambdas_glibc(task_root):
    libraries = [p for p in task_root.rglob("*") if p.is_file() and re.search(r"\.so(\.|$)", p.name)]
    assert libraries, "expected Pillow's native code in the zip"
    for lib in libraries:
        data = lib.read_bytes()
        assert data[:4] == b"\x7fELF", lib
        assert data[4] == 2, f"{lib}: not 64-bit"
        assert int.from_bytes(data[18:20], "little") == 62, f"{lib}: not x86_64"
        assert _glibc_needed(data) <= LAMBDA_GLIBC, f"{lib}: needs glibc {_glibc_needed(data)}"


def test_only_the_app_and_its_dependencies_ship(names):
    top = {n.split("/", 1)[0] for n in names}
    assert {"app.py", "chalicelib", "chalice"} <= top
    for private in ("tests", "thumbgen", "infra", "bench", "scripts", ".chalice", *RUNTIME_PROVIDED):
        assert private not in top, private
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    shipped_lib = sorted(n for n in names if n.startswith("chalicelib/"))
    in_repo = sorted(f"chalicelib/{p.relative_to(REPO / 'chalicelib')}"
                     for p in (REPO / "chalicelib").rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts)
    assert shipped_lib == in_repo
    assert "chalicelib/api/web/index.html" in shipped_lib  # the web page ships with the code


def test_terraform_declares_every_function_on_python312_with_the_configured_size(terraform):
    functions = terraform["resource"]["aws_lambda_function"]
    assert sorted(functions) == sorted(FUNCTIONS)
    config = load_config()["stages"]["dev"]["lambda_functions"]
    for name, function in functions.items():
        assert function["runtime"] == "python3.12"
        assert function["architectures"] == ["x86_64"]
        assert function["memory_size"] == config[name]["lambda_memory_size"]
        assert function["timeout"] == config[name]["lambda_timeout"]


def test_the_queue_stream_and_schedule_triggers_are_packaged(terraform):
    resources = terraform["resource"]
    # S3 notifies the upload queue (infra/thumbgen.yaml): no function is an S3 trigger.
    assert "aws_s3_bucket_notification" not in resources
    mappings = {m["function_name"].split(".")[1]: m for m in resources["aws_lambda_event_source_mapping"].values()}
    assert sorted(mappings) == ["deliver_webhook", "fail_dead_uploads", "on_image_change", "resize_upload"]
    assert ":table/thumbgen-dev-images/stream/" in mappings["on_image_change"]["event_source_arn"]
    # A new mapping starts at the oldest record: nothing written while it is enabled is skipped.
    assert mappings["on_image_change"]["starting_position"] == "TRIM_HORIZON"
    for function, queue, most in (("resize_upload", "thumbgen-dev-uploads", 4),
                                  ("fail_dead_uploads", "thumbgen-dev-uploads-dlq", 2),
                                  ("deliver_webhook", "thumbgen-dev-webhooks", 2)):
        assert mappings[function]["event_source_arn"].endswith(f":{queue}"), function
        assert mappings[function]["batch_size"] == 1, function
        # The poller never invokes more at once, so it cannot throttle the function itself.
        assert mappings[function]["scaling_config"] == {"maximum_concurrency": most}, function
    # Within a new account's 10 concurrent executions, with room for the API, stream and sweep.
    assert sum(m["scaling_config"]["maximum_concurrency"] for m in mappings.values() if "scaling_config" in m) <= 8
    [rule] = resources["aws_cloudwatch_event_rule"].values()
    assert rule["schedule_expression"] == "rate(5 minutes)"
    [target] = resources["aws_cloudwatch_event_target"].values()
    assert target["arn"] == "${aws_lambda_function.sweep_stuck_images.arn}"


def test_the_stacks_log_groups_are_the_functions_log_groups(terraform):
    names = {f"/aws/lambda/{f['function_name']}" for f in terraform["resource"]["aws_lambda_function"].values()}
    template = cfn.load()
    groups = {g["Properties"]["LogGroupName"]["Fn::Sub"].replace("${Stage}", "dev")
              for g in cfn.resources(template, "AWS::Logs::LogGroup").values()}
    assert groups == names


SMOKE = r"""
import io, json, os, sys, time
started = time.perf_counter()
handlers = json.loads(sys.argv[1])
import importlib
for handler in handlers:
    module, name = handler.rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), name)), handler
import_seconds = time.perf_counter() - started
import app
from PIL import Image
from chalicelib.imaging import engine
rendered = {}
for fmt in ("JPEG", "PNG"):
    buf = io.BytesIO()
    Image.new("RGB", (1600, 1200), (200, 30, 30)).save(buf, fmt)
    result = engine.render_thumbnails(buf.getvalue())
    rendered[fmt] = [[r.width, r.height, r.content_type] for r in result.renditions]
health = app.app({
    "resource": "/health", "path": "/health", "httpMethod": "GET", "headers": {"Host": "x"},
    "multiValueHeaders": {"Host": ["x"]}, "queryStringParameters": None,
    "multiValueQueryStringParameters": None, "pathParameters": None, "stageVariables": None,
    "body": None, "isBase64Encoded": False,
    "requestContext": {"resourcePath": "/health", "httpMethod": "GET", "path": "/api/health",
                       "stage": "api", "identity": {"sourceIp": "192.0.2.1"}}}, None)
import resource
origins = {m: sys.modules[m].__file__ for m in
           ("app", "chalicelib", "chalice", "PIL", "requests", "requests_hardened",
            "standardwebhooks", "boto3")}
print(json.dumps({"import_seconds": import_seconds, "rendered": rendered,
                  "health": health["statusCode"], "origins": origins,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def test_handlers_import_and_run_in_a_fresh_python312_from_the_zip_alone(
        terraform, task_root, lambda_python, tmp_path):
    functions = terraform["resource"]["aws_lambda_function"]
    handlers = sorted({f["handler"] for f in functions.values()})
    assert handlers == ["app.app", "app.deliver_webhook", "app.fail_dead_uploads", "app.on_image_change",
                        "app.resize_upload", "app.sweep_stuck_images"]
    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
        "PYTHONPATH": str(task_root),
        # The stage environment Lambda would set; no credentials, and nowhere to send a call.
        **functions["api_handler"]["environment"]["variables"],
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    }
    result = subprocess.run([str(lambda_python), "-s", "-B", "-c", SMOKE, json.dumps(handlers)],
                            cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    print(f"cold import of every handler: {report['import_seconds']:.2f} s, "
          f"max RSS {report['max_rss_mb']:.0f} MB")
    sizes = [[400, 300], [160, 120], [120, 120]]
    assert report["rendered"] == {
        "JPEG": [[w, h, "image/jpeg"] for w, h in sizes],
        "PNG": [[w, h, "image/png"] for w, h in sizes],
    }
    assert report["health"] == 200
    venv = lambda_python.parent.parent
    for module, origin in report["origins"].items():
        expected = venv if module == "boto3" else task_root
        assert Path(origin).is_relative_to(expected), (module, origin)


TOKENS = r"""
import json, sys, time
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
token = jwt.encode({"sub": "u1", "token_use": "access", "exp": int(time.time()) + 60}, key,
                   algorithm="RS256", headers={"kid": "k1"})
claims = jwt.decode(token, jwt.PyJWK(jwk, algorithm="RS256").key, algorithms=["RS256"])
forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
try:
    jwt.decode(forged, jwt.PyJWK(jwk, algorithm="RS256").key, algorithms=["RS256"])
    refused = False
except jwt.InvalidSignatureError:
    refused = True
import cryptography
print(json.dumps({"sub": claims["sub"], "refused": refused,
                  "origins": [jwt.__file__, cryptography.__file__]}))
"""


def test_tokens_are_verified_with_the_zips_pyjwt_and_cryptography(task_root, lambda_python, tmp_path):
    """RS256 as the API checks Cognito's tokens: cryptography's Rust/OpenSSL code from the zip."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8", "PYTHONPATH": str(task_root)}
    result = subprocess.run([str(lambda_python), "-s", "-B", "-c", TOKENS], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["sub"] == "u1" and report["refused"] is True
    for origin in report["origins"]:
        assert Path(origin).is_relative_to(task_root), origin
