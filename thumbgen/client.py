"""A small client of the HTTP API: register, PUT to the presigned URL, poll."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests


@dataclass(frozen=True)
class Upload:
    id: str
    created: dict[str, Any]
    put_status: int
    put_finished_at: float  # time.time() when the PUT's response arrived


class ThumbgenClient:
    def __init__(self, api_url: str, token: str | None = None):
        self.api_url = api_url.rstrip("/")
        self.http = requests.Session()
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def create(self, *, filename: str, content_type: str, file_size: int,
               webhook_url: str | None = None) -> requests.Response:
        body: dict[str, Any] = {"filename": filename, "contentType": content_type, "fileSize": file_size}
        if webhook_url is not None:
            body["webhookUrl"] = webhook_url
        return self.http.post(f"{self.api_url}/images", json=body, timeout=10)

    def upload(self, data: bytes, *, content_type: str, filename: str = "image",
               webhook_url: str | None = None, declared_size: int | None = None,
               complete: bool = True) -> Upload:
        response = self.create(filename=filename, content_type=content_type,
                               file_size=declared_size or len(data), webhook_url=webhook_url)
        response.raise_for_status()
        return self.put_and_complete(response.json(), data, complete=complete)

    def put_and_complete(self, created: dict[str, Any], data: bytes, complete: bool = True) -> Upload:
        """PUT the bytes to a created image's presigned URL, then say so (complete)."""
        upload = created["upload"]
        headers = dict(upload["headers"])
        headers.pop("Content-Length", None)  # requests sets the real one from the body
        put = requests.put(upload["url"], data=data, headers=headers, timeout=30)
        finished = time.time()
        if complete and put.status_code == 200:
            self.http.post(f"{self.api_url}/images/{created['id']}/complete", timeout=10)
        return Upload(created["id"], created, put.status_code, finished)

    def get(self, image_id: str) -> requests.Response:
        return self.http.get(f"{self.api_url}/images/{image_id}", timeout=10)
