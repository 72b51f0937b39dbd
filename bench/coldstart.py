"""Cold start: what `import app` costs each Lambda function, in a fresh Python 3.12.

    python -m bench.coldstart

Every function ships the same app.py; what differs is what its init phase loads. Only the
resize function loads the image libraries (Pillow, libvips); the API, the stream and the
webhook functions must stay light. Medians of 5 fresh processes per function.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ("api_handler", "resize_upload", "fail_dead_uploads", "on_image_change",
             "deliver_webhook", "sweep_stuck_images")
CHILD = """
import json, sys, time, resource
t0 = time.perf_counter()
import app
took = (time.perf_counter() - t0) * 1000
heavy = sorted(m for m in ("PIL", "pyvips", "PIL.Image") if m in sys.modules)
print(json.dumps({"ms": took, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "image_libraries": heavy}))
"""


def measure(function: str, runs: int = 5) -> dict:
    env = {"PATH": "/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_NAME": f"thumbgen-dev-{function}",
           "AWS_DEFAULT_REGION": "us-east-1"}
    if function == "api_handler":
        env["AWS_LAMBDA_FUNCTION_NAME"] = "thumbgen-dev"
    samples = [json.loads(subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, check=True,
                                         capture_output=True, text=True).stdout) for _ in range(runs)]
    return {"ms": statistics.median(s["ms"] for s in samples),
            "rss_mb": statistics.median(s["rss_mb"] for s in samples),
            "image_libraries": samples[0]["image_libraries"]}


def main() -> None:
    print("\nCold start, `import app` in a fresh Python per function (median of 5):")
    for function in FUNCTIONS:
        got = measure(function)
        libs = ", ".join(got["image_libraries"]) or "none"
        print(f"  {function:20s} {got['ms']:6.0f} ms  max RSS {got['rss_mb']:5.0f} MB  image libraries: {libs}")


if __name__ == "__main__":
    main()
