"""`make package`: every deployable artifact, built without AWS credentials.

    python -m infra.package OUTDIR [--stage dev]

Writes OUTDIR/deployment.zip (the Lambda code and its dependencies, the same zip
`chalice deploy` uploads) and OUTDIR/chalice.tf.json (Chalice's Terraform rendering of
the functions, the REST API and their triggers: the SQS queues, the table's stream and
the schedule), plus OUTDIR/thumbgen.yaml (the CloudFormation stack, which owns the
bucket's notifications to the uploads queue). `make deploy` itself uses `chalice deploy`.

The project is copied to a fresh temporary directory first, so nothing comes from
Chalice's zip cache: the artifact is always rebuilt from requirements.txt.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from infra.project import REPO, build_project, chalice_command, load_config, require_python312

# Chalice's packaging makes no AWS call; any attempt would go here and fail, never out.
NO_AWS = "http://127.0.0.1:9"


def package(outdir: Path, stage: str = "dev") -> Path:
    require_python312()
    outdir = outdir.resolve()
    if outdir.exists():
        shutil.rmtree(outdir)
    env = dict(os.environ)
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # Terraform output is region-free
    env["AWS_ENDPOINT_URL"] = NO_AWS
    with tempfile.TemporaryDirectory(prefix="thumbgen-package-") as tmp:
        project = build_project(Path(tmp) / "project", load_config())
        subprocess.run(
            [*chalice_command(), "package", "--pkg-format", "terraform", "--stage", stage,
             str(outdir)],
            cwd=project, env=env, check=True,
        )
    shutil.copy2(REPO / "infra" / "thumbgen.yaml", outdir / "thumbgen.yaml")
    return outdir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--stage", default="dev", choices=sorted(load_config()["stages"]))
    args = parser.parse_args(argv)
    out = package(args.outdir, args.stage)
    zip_path = out / "deployment.zip"
    print(f"packaged {args.stage}: {zip_path} ({zip_path.stat().st_size / 1e6:.1f} MB), "
          f"{out / 'chalice.tf.json'}, {out / 'thumbgen.yaml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
