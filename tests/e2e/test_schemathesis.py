"""The API does exactly what openapi.yaml says: Schemathesis against the embedded stack.

The CLI runs as a person would run it (`st run openapi.yaml --url …`), every phase
(examples, coverage, fuzzing, stateful) and every default check, with the repository's
schemathesis.toml. Two users of the stack's own pool are listed as peers in a Web Fuzzing
Commons auth document (`user = "alice"` makes alice the caller throughout, as `-H` would),
so the object-level authorization check replays alice's reads as bob. Alice also has a
completed image with a delivered webhook and a failed one, so responses are checked in
every state, not only pending_upload. schemathesis.toml's hooks (schemathesis_hooks.py) bound
fileSize by the stage's own maxUploadBytes (its GET /config.json), and apply the two rules
of `renditions` a schema cannot say to the requests meant to be valid.

Another seed: THUMBGEN_SCHEMATHESIS_SEED=N (the seed is printed); more cases per operation:
THUMBGEN_SCHEMATHESIS_EXAMPLES=N (the default keeps this test near 40 s on 2 cores).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.imagegen import make_jpeg

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SEED = 20261129
DEFAULT_EXAMPLES = 30
PHASES = ("examples", "coverage", "fuzzing", "stateful")
PEERS = {"alice": "schemathesis-alice", "bob": "schemathesis-bob"}  # WFC name -> pool user
HOOKS_LINE = 'hooks = "tests/e2e/schemathesis_hooks.py"'


def _config(stack, directory: Path) -> Path:
    """The repository's schemathesis.toml plus the two peers' bearer tokens."""
    users = directory / "users.json"
    users.write_text(json.dumps({"auth": [
        {"name": name, "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {stack.token(user)}"}]}
        for name, user in PEERS.items()
    ]}))
    config = directory / "schemathesis.toml"
    repository = (ROOT / "schemathesis.toml").read_text()
    assert HOOKS_LINE in repository.splitlines(), "schemathesis.toml no longer names its hooks"
    # Run from `directory`: the hooks file by its full path.
    hooks = f"hooks = {json.dumps(str(ROOT / 'tests' / 'e2e' / 'schemathesis_hooks.py'))}"
    config.write_text(repository.replace(HOOKS_LINE, hooks) + (
        "\n[auth.wfc]\n"
        f"path = {json.dumps(str(users))}\n"
        'user = "alice"\n'
        f"peers = {json.dumps(list(PEERS))}\n"
    ))
    return config


def _final_images(stack, receiver) -> None:
    client = stack.client_for(PEERS["alice"])
    uploads = [client.upload(make_jpeg(64, 48), content_type="image/jpeg", filename="done.jpg",
                             webhook_url=receiver.url("/schemathesis")),
               client.upload(b"not an image", content_type="image/png", filename="broken.png")]
    deadline = time.monotonic() + 60
    for upload in uploads:
        while client.get(upload.id)["status"] not in ("completed", "failed"):
            assert time.monotonic() < deadline, f"{upload.id} did not finish"
            time.sleep(0.1)
    assert receiver.wait_for("/schemathesis", count=1, timeout=30), "the webhook did not arrive"


def test_the_api_does_what_openapi_yaml_says(stack, receiver, tmp_path):
    _final_images(stack, receiver)
    seed = int(os.environ.get("THUMBGEN_SCHEMATHESIS_SEED", DEFAULT_SEED))
    examples = int(os.environ.get("THUMBGEN_SCHEMATHESIS_EXAMPLES", DEFAULT_EXAMPLES))
    report = tmp_path / "report.json"
    command = [
        str(Path(sys.executable).with_name("st")), "--config-file", str(_config(stack, tmp_path)),
        "run", str(ROOT / "openapi.yaml"), "--url", stack.api_url,
        "--phases", ",".join(PHASES), "--seed", str(seed), "--max-examples", str(examples),
        "--generation-database", "none", "--no-color",
        "--report", "json", "--report-json-path", str(report),
    ]
    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if k != "SCHEMATHESIS_HOOKS"}  # the config's hooks only
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900, env=env)
    elapsed = time.monotonic() - started
    print(f"schemathesis: seed {seed}, {examples} examples per operation, {elapsed:.1f} s; "
          f"rerun with THUMBGEN_SCHEMATHESIS_SEED={seed}")
    output = "\n".join(run.stdout.splitlines()[-200:] + run.stderr.splitlines()[-50:])
    assert run.returncode == 0, f"seed {seed} (THUMBGEN_SCHEMATHESIS_SEED={seed} reruns it):\n{output}"
    summary = json.loads(report.read_text())
    print(f"schemathesis: {summary['test_cases']['generated']} test cases, no failure")
    assert {phase: summary["phases"][phase]["status"] for phase in PHASES} == dict.fromkeys(PHASES, "success")
    assert summary["failures"] == [] and summary["errors"] == []
    assert summary["operations"]["tested"] == summary["operations"]["total"]
