"""The API's error type: one JSON shape, {"error": {"code", "message"}}, for every refusal."""
from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}
