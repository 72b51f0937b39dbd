"""Per-user fairness: the attempts one user aims at one host in a clock hour are bounded;
those over the bound wait for the next hour -- deferred, not lost, not failures -- and
nobody else's attempts are held up (moto, a receiver on 127.0.0.1, a clock of our own)."""
from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from chalicelib.images.record import ImageRecord, ImageStatus, WebhookState, webhook_id
from chalicelib.images.store import RecordStore
from chalicelib.platform.config import Settings
from chalicelib.platform.storage import ImageStorage
from chalicelib.webhooks.budget import HostBudget, host_of
from chalicelib.webhooks.delivery import WebhookDelivery
from chalicelib.webhooks.queue import DeliveryTask
from chalicelib.webhooks.secrets import SecretStore, WebhookSecrets
from chalicelib.webhooks.sender import Sender
from chalicelib.webhooks.urls import UrlPolicy
from tests.clock import Clock
from tests.conftest import stage_environment
from tests.iam.plugin import running_as
from thumbgen.receiver import Reply

HOUR = 3600
START = 1_767_225_600 + 10 * HOUR + 600  # 2026-01-01 10:10 UTC


class Queue:
    """The webhook queue, as the delivery sees it: what was queued, with what delay."""

    def __init__(self):
        self.queued: list[tuple[DeliveryTask, float]] = []
        self.dead: list[DeliveryTask] = []

    def enqueue(self, task, delay=0):
        self.queued.append((task, delay))

    def dead_letter(self, task, outcome):
        self.dead.append(task)


@pytest.fixture
def world(aws):
    env = stage_environment(aws, WEBHOOK_ALLOW_PRIVATE_NETWORKS="true", WEBHOOK_HOURLY_ATTEMPTS_PER_HOST="2")
    settings = Settings.from_env(env)
    table = boto3.resource("dynamodb").Table(aws.table)
    clock, queue = Clock(START), Queue()
    delivery = WebhookDelivery(
        records=RecordStore(table), queue=queue,
        sender=Sender(UrlPolicy(allow_private_networks=True), 1, 2),
        storage=ImageStorage(boto3.client("s3", config=Config(signature_version="s3v4")), aws.bucket),
        settings=settings, secrets=WebhookSecrets(SecretStore(table), 86400),
        budget=HostBudget(table, settings.webhook_hourly_attempts_per_host), clock=clock,
    )
    yield Delivering(delivery, env), table, clock, queue


class Delivering:
    """The delivery function: each task handled as deliver_webhook, held to its role."""

    def __init__(self, delivery: WebhookDelivery, env: dict[str, str]):
        self._delivery, self._env = delivery, env

    def handle(self, task: DeliveryTask) -> str:
        with running_as("deliver_webhook", self._env):
            return self._delivery.handle(task)


def failed_once(table, image_id: str, owner: str, url: str) -> DeliveryTask:
    """A completed image whose first attempt failed: the task of its second attempt."""
    state = WebhookState(id=webhook_id(image_id, "completed"), url=url, attempts=1, last_status_code=500,
                         last_attempt_at="2026-01-01T10:09:00.000Z", next_attempt_at="2026-01-01T10:10:00.000Z")
    table.put_item(Item=ImageRecord(image_id, ImageStatus.COMPLETED, owner=owner, webhook_url=url,
                                    upload_key=f"uploads/{image_id}", completed_at="2026-01-01T10:09:00.000Z",
                                    webhook=state).to_item())
    return DeliveryTask(image_id, state.id, 1, 2)


def webhook_of(table, image_id: str) -> dict:
    return table.get_item(Key={"id": image_id})["Item"]["webhook"]


def test_attempts_over_the_bound_wait_for_the_next_hour_and_are_then_sent(world, receiver):
    delivery, table, clock, queue = world
    receiver.script("/a", [Reply(500)] * 2)
    tasks = [failed_once(table, f"img-{n}", "alice", receiver.url("/a")) for n in range(3)]
    assert [delivery.handle(task) for task in tasks] == ["retry", "retry", "deferred"]
    assert len(receiver.received("/a")) == 2

    deferred = webhook_of(table, "img-2")  # not claimed, not recorded, not a failure
    assert deferred["status"] == "pending" and deferred["attempts"] == 1 and deferred["lastStatusCode"] == 500
    assert "inFlight" not in deferred and deferred["nextAttemptAt"] == "2026-01-01T11:00:00.000Z"
    assert queue.dead == []
    again, delay = queue.queued[-1]
    assert again == DeliveryTask("img-2", tasks[2].webhook_id, 1, 2, not_before=START - 600 + HOUR)
    assert delay == 50 * 60

    assert delivery.handle(again) == "waiting"  # it arrives before its time: queued again
    clock.now = again.not_before  # the next hour
    assert delivery.handle(again) == "delivered"
    assert len(receiver.received("/a")) == 3
    assert webhook_of(table, "img-2")["attempts"] == 2


def test_the_bound_is_per_user_and_per_host(world, receiver):
    delivery, table, _, _ = world
    spent = [failed_once(table, f"a-{n}", "alice", receiver.url("/a")) for n in range(3)]
    assert [delivery.handle(task) for task in spent] == ["delivered", "delivered", "deferred"]
    bobs = failed_once(table, "b-1", "bob", receiver.url("/a"))  # the same host, another user
    other_host = failed_once(table, "a-9", "alice", f"http://localhost:{receiver.port}/a")
    assert delivery.handle(bobs) == "delivered"
    assert delivery.handle(other_host) == "delivered"
    assert host_of(receiver.url("/a")) == "127.0.0.1" and host_of("https://Hooks.Example.com:8443/x") == "hooks.example.com"


def test_tasks_with_nothing_to_send_take_nothing_from_the_budget(world, receiver):
    delivery, table, _, _ = world
    task = failed_once(table, "img-1", "alice", receiver.url("/a"))
    assert delivery.handle(task) == "delivered"
    for _ in range(3):  # duplicates of a task already sent: no attempt, so nothing counted
        assert delivery.handle(task) == "skipped"
    assert delivery.handle(failed_once(table, "img-2", "alice", receiver.url("/a"))) == "delivered"
    assert len(receiver.received("/a")) == 2


def test_a_replayed_dead_letter_counts_and_waits_like_any_attempt(world, receiver):
    delivery, table, clock, queue = world
    for n in range(2):
        assert delivery.handle(failed_once(table, f"img-{n}", "alice", receiver.url("/a"))) == "delivered"
    dead = failed_once(table, "img-dead", "alice", receiver.url("/a"))
    table.update_item(Key={"id": "img-dead"}, UpdateExpression="SET webhook.#s = :f",
                      ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":f": "failed"})
    letter = DeliveryTask(dead.image_id, dead.webhook_id, 1, 2, dead_lettered=True)
    assert delivery.handle(letter) == "deferred"
    assert webhook_of(table, "img-dead")["status"] == "failed"  # untouched until it is sent
    again, _ = queue.queued[-1]
    assert again.dead_lettered and again.not_before == START - 600 + HOUR
    clock.now = again.not_before
    assert delivery.handle(again) == "delivered"
    assert webhook_of(table, "img-dead")["round"] == 2
