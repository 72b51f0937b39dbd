"""Webhook delivery end to end: receivers that fail, hang, vanish and recover.

The stack runs with WEBHOOK_RETRY_SCHEDULE=1,1,1 (4 attempts) and a 1.5 s read timeout.
"""
from __future__ import annotations

import json
import socket
import time
import uuid

from standardwebhooks import Webhook

from tests.imagegen import make_jpeg
from thumbgen.receiver import Reply


def start(stack, url: str) -> str:
    upload = stack.client.upload(make_jpeg(480, 360), content_type="image/jpeg", webhook_url=url)
    assert upload.put_status == 200
    return upload.id


def wait_webhook_state(stack, image_id: str, status: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = stack.client.get(image_id).get("webhook") or {}
        if state.get("status") == status or time.monotonic() > deadline:
            return state
        time.sleep(0.1)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket closes


def test_receiver_that_fails_twice_gets_it_on_the_third_attempt(stack, receiver):
    path = f"/flaky/{uuid.uuid4().hex}"
    receiver.script(path, [Reply(500), Reply(500), Reply(204)])
    image_id = start(stack, receiver.url(path))
    got = receiver.wait_for(path, count=3, timeout=20)
    assert len(got) == 3
    assert {r.headers["webhook-id"] for r in got} == {f"msg_{image_id}_completed"}
    for r in got:
        Webhook(stack.secret()).verify(r.body, r.headers)  # fresh timestamp, valid signature each time
    state = wait_webhook_state(stack, image_id, "delivered")
    assert state["status"] == "delivered" and state["attempts"] == 3 and state["lastStatusCode"] == 204
    time.sleep(1.5)
    assert len(receiver.received(path)) == 3  # nothing after success


def test_receiver_down_throughout_ends_failed_with_every_attempt_recorded(stack):
    image_id = start(stack, f"http://127.0.0.1:{closed_port()}/hook")
    state = wait_webhook_state(stack, image_id, "failed", timeout=30)
    assert state["status"] == "failed"
    assert state["attempts"] == 4  # now + the three retries of the schedule
    assert state["lastError"] == "connection error" and state["nextAttemptAt"] is None
    dlq = stack.boto("sqs").get_queue_url(QueueName="thumbgen-webhooks-dlq")["QueueUrl"]
    sqs, dead = stack.boto("sqs"), []
    while got := sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages"):
        dead += got  # every message: other tests' failures are there too
    assert any(json.loads(m["Body"])["image_id"] == image_id for m in dead)  # the task itself


def test_hanging_receiver_is_timed_out_and_retried(stack, receiver):
    path = f"/hang/{uuid.uuid4().hex}"
    receiver.script(path, [Reply(204, delay=5)])
    image_id = start(stack, receiver.url(path))
    got = receiver.wait_for(path, count=2, timeout=20)
    assert len(got) == 2
    state = wait_webhook_state(stack, image_id, "delivered")
    assert state["attempts"] == 2 and state["status"] == "delivered"


def test_dripping_receiver_is_cut_off_and_retried(stack, receiver):
    """One status byte per 0.3 s never trips the 1.5 s read timeout; the total deadline does."""
    path = f"/drip/{uuid.uuid4().hex}"
    receiver.script(path, [Reply(204, drip=0.3)])
    image_id = start(stack, receiver.url(path))
    got = receiver.wait_for(path, count=2, timeout=20)
    assert len(got) == 2
    state = wait_webhook_state(stack, image_id, "delivered")
    assert state["attempts"] == 2 and state["status"] == "delivered" and state["lastStatusCode"] == 204


def test_410_gone_stops_retries(stack, receiver):
    path = f"/gone/{uuid.uuid4().hex}"
    receiver.script(path, [Reply(410)])
    image_id = start(stack, receiver.url(path))
    state = wait_webhook_state(stack, image_id, "failed")
    assert state["status"] == "failed" and state["lastStatusCode"] == 410 and state["attempts"] == 1
    time.sleep(2)
    assert len(receiver.received(path)) == 1


def test_redirects_are_not_followed(stack, receiver):
    path, target = f"/moved/{uuid.uuid4().hex}", f"/target/{uuid.uuid4().hex}"
    receiver.script(path, [Reply(302, headers={"Location": receiver.url(target)})] * 4)
    image_id = start(stack, receiver.url(path))
    state = wait_webhook_state(stack, image_id, "failed", timeout=30)
    assert state["lastStatusCode"] == 302
    assert receiver.received(target) == []


def test_redeliver_sends_the_same_event_again(stack, receiver):
    path = f"/redeliver/{uuid.uuid4().hex}"
    image_id = start(stack, receiver.url(path))
    [first] = receiver.wait_for(path, timeout=20)
    wait_webhook_state(stack, image_id, "delivered", timeout=20)  # one round at a time
    response = stack.client.http.post(f"{stack.api_url}/images/{image_id}/webhook/redeliver", timeout=10)
    assert response.status_code == 202
    first, second = receiver.wait_for(path, count=2, timeout=20)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert json.loads(first.body)["data"]["id"] == json.loads(second.body)["data"]["id"]


def test_a_slow_receiver_does_not_delay_another_images_webhook(stack, receiver):
    slow, fast = f"/slow/{uuid.uuid4().hex}", f"/fast/{uuid.uuid4().hex}"
    receiver.script(slow, [Reply(204, delay=1.4)] * 2)
    start(stack, receiver.url(slow))
    receiver.wait_for(slow, timeout=20)  # the slow receiver is now holding its request
    began = time.time()
    start(stack, receiver.url(fast))
    [got] = receiver.wait_for(fast, timeout=20)
    assert got.at - began < 1.3, "the fast receiver waited for the slow one"


def test_a_duplicated_delivery_task_sends_nothing_twice(stack, receiver):
    path = f"/dup/{uuid.uuid4().hex}"
    image_id = start(stack, receiver.url(path))
    receiver.wait_for(path, timeout=20)
    wait_webhook_state(stack, image_id, "delivered")
    sqs = stack.boto("sqs")
    queue = sqs.get_queue_url(QueueName="thumbgen-webhooks")["QueueUrl"]
    task = {"image_id": image_id, "webhook_id": f"msg_{image_id}_completed", "round": 1, "attempt": 1}
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(task))
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(task))
    time.sleep(1.5)
    assert len(receiver.received(path)) == 1
