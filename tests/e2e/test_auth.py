"""Sign-in, ownership and limits on the embedded stack, with users of its own user pool."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
import requests

from tests.e2e.conftest import ROOT
from tests.imagegen import make_jpeg
from thumbgen.client import ApiError
from thumbgen.retry import NO_RETRY


def wait_final(client, image_id: str, timeout: float = 30) -> dict:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = client.get(image_id)
        if item["status"] in ("completed", "failed"):
            return item
        time.sleep(0.1)
    raise AssertionError(f"{image_id} did not finish")


def test_thumbgen_token_prints_a_token_the_api_accepts(stack):
    aws_port, api_port = stack.aws_url.rsplit(":", 1)[1], stack.api_url.rsplit(":", 1)[1]
    result = subprocess.run([sys.executable, "-m", "thumbgen.cli", "token", "--user", "e2e-carol"], cwd=ROOT,
                            env={**os.environ, "AWS_PORT": aws_port, "API_PORT": api_port},
                            capture_output=True, text=True, timeout=60, check=True)
    token = result.stdout.strip().splitlines()[-1]
    response = requests.get(f"{stack.api_url}/images", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200 and response.json() == {"images": [], "nextCursor": None}
    again = subprocess.run([sys.executable, "-m", "thumbgen.cli", "token", "--user", "e2e-carol"], cwd=ROOT,
                           env={**os.environ, "AWS_PORT": aws_port, "API_PORT": api_port},
                           capture_output=True, text=True, timeout=60, check=True)
    assert again.stdout.strip().splitlines()[-1].count(".") == 2  # the same user signs in again


def test_thumbgen_token_signs_in_from_the_api_url_alone_without_aws_credentials(stack, tmp_path):
    """As against a deployed stage: the pool is found from the API's config.json."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "THUMBGEN_"))}
    env.update({"AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                "THUMBGEN_PASSWORD": stack.demo_password, "AWS_PORT": "1", "API_PORT": "1"})  # no local stack
    result = subprocess.run([sys.executable, "-m", "thumbgen.cli", "token", "--api-url", f"{stack.api_url}/",
                             "--user", stack.demo_user], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    response = requests.get(f"{stack.api_url}/images", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200
    assert stack.demo_password not in result.stdout + result.stderr


def test_thumbgen_token_without_a_stack_says_so(stack):
    result = subprocess.run([sys.executable, "-m", "thumbgen.cli", "token"], cwd=ROOT,
                            env={**os.environ, "AWS_PORT": "1", "API_PORT": "1"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "make run" in result.stderr


def test_no_route_but_health_answers_without_a_token(stack):
    image_id = str(uuid.uuid4())
    for method, path in (("POST", "/images"), ("GET", "/images"), ("GET", f"/images/{image_id}"),
                         ("DELETE", f"/images/{image_id}"), ("POST", f"/images/{image_id}/webhook/redeliver")):
        for headers in ({}, {"Authorization": "Bearer x.y.z"}, {"Authorization": "Basic YTpi"}):
            response = requests.request(method, f"{stack.api_url}{path}", headers=headers, json={}, timeout=10)
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert response.json()["error"]["code"] == "unauthorized"
    assert requests.get(f"{stack.api_url}/health", timeout=10).status_code == 200


def test_two_users_cannot_see_or_touch_each_others_images(stack):
    alice, bob = stack.client_for("e2e-iso-alice"), stack.client_for("e2e-iso-bob")
    upload = alice.upload(make_jpeg(320, 240), content_type="image/jpeg")
    assert upload.put_status == 200
    wait_final(alice, upload.id)
    with pytest.raises(ApiError) as hidden:
        bob.get(upload.id)
    assert hidden.value.status == 404
    assert bob.http.delete(f"{stack.api_url}/images/{upload.id}", timeout=10).status_code == 404
    assert bob.http.post(f"{stack.api_url}/images/{upload.id}/webhook/redeliver", timeout=10).status_code == 404
    assert upload.id not in [i["id"] for i in bob.http.get(f"{stack.api_url}/images", timeout=10).json()["images"]]
    assert alice.get(upload.id)["status"] == "completed"


def test_list_pages_through_a_users_images(stack):
    client = stack.client_for("e2e-pager")
    made = []
    for n in range(5):
        made.append(client.create(filename=f"p{n}.jpg", content_type="image/jpeg", file_size=10)["id"])
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.http.get(f"{stack.api_url}/images", params=params, timeout=10).json()
        seen += [i["id"] for i in page["images"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert seen == list(reversed(made))
    assert [i["id"] for i in client.list(page_size=2)] == seen  # the client follows nextCursor


def test_delete_removes_the_objects_from_the_bucket(stack):
    client = stack.client_for("e2e-deleter")
    upload = client.upload(make_jpeg(640, 480), content_type="image/jpeg")
    item = wait_final(client, upload.id)
    links = [item["originalUrl"]] + [t["url"] for t in item["thumbnails"]]
    assert all(requests.get(url, timeout=10).status_code == 200 for url in links)
    s3 = stack.boto("s3")
    prefixes = (f"uploads/{upload.id}", f"thumbnails/{upload.id}/")
    assert sum(s3.list_objects_v2(Bucket="thumbgen-images", Prefix=p)["KeyCount"] for p in prefixes) == 4
    client.delete(upload.id)  # 204; an error would raise ApiError
    assert sum(s3.list_objects_v2(Bucket="thumbgen-images", Prefix=p)["KeyCount"] for p in prefixes) == 0
    assert all(requests.get(url, timeout=10).status_code == 404 for url in links)
    with pytest.raises(ApiError) as gone:
        client.get(upload.id)
    assert gone.value.status == 404
    assert client.http.delete(f"{stack.api_url}/images/{upload.id}", timeout=10).status_code == 404


def test_pending_uploads_are_limited_per_user(stack):
    greedy, other = stack.client_for("e2e-greedy", backoff=NO_RETRY), stack.client_for("e2e-other")
    for _ in range(20):
        greedy.create(filename="a.jpg", content_type="image/jpeg", file_size=10)
    with pytest.raises(ApiError) as refused:
        greedy.create(filename="a.jpg", content_type="image/jpeg", file_size=10)
    assert (refused.value.status, refused.value.code) == (429, "too_many_requests")
    assert 1 <= refused.value.retry_after <= 5  # a slot frees as soon as an upload arrives
    assert other.create(filename="a.jpg", content_type="image/jpeg", file_size=10)["status"] == "pending_upload"
