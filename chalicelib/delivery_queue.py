"""SQS adapter for webhook delivery tasks: delays beyond SQS's 900 s cap are chained."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Mapping

SQS_MAX_DELAY = 900


@dataclass(frozen=True)
class DeliveryTask:
    """One planned attempt: which image's event, which round of delivery, which attempt."""

    image_id: str
    webhook_id: str
    round: int
    attempt: int
    not_before: float = 0.0  # epoch seconds; a message that arrives early is re-queued

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
        """Keep a task that could not be delivered where an operator can find and replay
        it: the body is the task itself (as when SQS moves a message there), the reason is
        in message attributes."""
        attributes = {
            f"thumbgen-{name}": {"DataType": "String", "StringValue": str(value)[:256]}
            for name, value in outcome.items() if value is not None and str(value)
        }
        self._sqs.send_message(QueueUrl=self._dlq, MessageBody=task.to_json(), MessageAttributes=attributes)
