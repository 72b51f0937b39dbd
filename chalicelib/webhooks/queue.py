"""SQS adapter for webhook delivery tasks: delays beyond SQS's 900 s cap are chained."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping

SQS_MAX_DELAY = 900


@dataclass(frozen=True)
class DeliveryTask:
    """One planned attempt: which image's event, which round of delivery, which attempt.

    `dead_lettered` marks the task the sender put in the dead-letter queue when that round
    ended failed: replayed into the webhook queue, it starts a new round (docs/webhooks.md).
    A live task never carries it, so a late duplicate of one cannot restart a delivery."""

    image_id: str
    webhook_id: str
    round: int
    attempt: int
    not_before: float = 0.0  # epoch seconds; a message that arrives early is re-queued
    dead_lettered: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "DeliveryTask":
        """Parse an untrusted queue body; ValueError for anything malformed."""
        data = json.loads(text)
        if not isinstance(data, Mapping):
            raise ValueError("delivery task must be a JSON object")
        try:
            task = cls(
                image_id=str(data["image_id"]),
                webhook_id=str(data["webhook_id"]),
                round=int(data["round"]),
                attempt=int(data["attempt"]),
                not_before=float(data.get("not_before", 0.0)),
                dead_lettered=data.get("dead_lettered", False) is True,
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"delivery task is missing a field: {exc}") from exc
        if task.attempt < 1 or task.round < 1:
            raise ValueError("delivery task attempt and round start at 1")
        return task


class DeliveryQueue:
    def __init__(self, sqs_client: Any, queue_url: str, dead_letter_url: str):
        self._sqs = sqs_client
        self._url = queue_url
        self._dlq = dead_letter_url

    def enqueue(self, task: DeliveryTask, delay: float = 0) -> None:
        self._sqs.send_message(
            QueueUrl=self._url,
            MessageBody=task.to_json(),
            DelaySeconds=max(0, min(SQS_MAX_DELAY, int(delay))),
        )

    def dead_letter(self, task: DeliveryTask, outcome: Mapping[str, Any]) -> None:
        """Keep the task of a delivery that ended failed where an operator can find and
        replay it: the body is the task itself, marked dead-lettered (a replay starts a new
        round); the reason is in message attributes."""
        attributes = {
            f"thumbgen-{name}": {"DataType": "String", "StringValue": str(value)[:256]}
            for name, value in outcome.items() if value is not None and str(value)
        }
        body = replace(task, not_before=0.0, dead_lettered=True).to_json()
        self._sqs.send_message(QueueUrl=self._dlq, MessageBody=body, MessageAttributes=attributes)
