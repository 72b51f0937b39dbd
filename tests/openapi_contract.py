"""openapi.yaml read as the tests read it: its operations, and each response's schema as a
JSON Schema validator (OpenAPI 3.0's `nullable` and `$ref`s resolved)."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Iterator

import jsonschema_rs
import yaml

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@functools.cache
def spec() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "openapi.yaml").read_text())


def resolve(node: Any) -> Any:
    """`node`, or what its `$ref` points at (followed until it is no reference)."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec()
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema (Draft 4): $refs inlined, `nullable` as an
    alternative null."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return json_schema(resolve(node))
    schema = {key: json_schema(value) for key, value in node.items() if key != "nullable"}
    return {"anyOf": [{"type": "null"}, schema]} if node.get("nullable") else schema


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(path, method, operation) for every operation, methods in lower case."""
    for path, item in spec()["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def methods_of(path: str) -> set[str]:
    """The methods openapi.yaml lists under `path`, upper case."""
    return {method.upper() for method in METHODS if method in spec()["paths"][path]}


def response(path: str, method: str, status: int | str) -> dict[str, Any]:
    return resolve(spec()["paths"][path][method.lower()]["responses"][str(status)])


def request_content_types(path: str, method: str) -> list[str]:
    """The Content-Types the operation's requestBody names (none without one)."""
    body = resolve(spec()["paths"][path][method.lower()].get("requestBody"))
    return list(body["content"]) if body else []


def validator(schema: dict[str, Any]) -> jsonschema_rs.Validator:
    return jsonschema_rs.Draft4Validator(json_schema(schema), validate_formats=True)


def response_validator(path: str, method: str, status: int | str,
                       media_type: str = "application/json") -> jsonschema_rs.Validator:
    return validator(response(path, method, status)["content"][media_type]["schema"])


def error_codes(answer: dict[str, Any]) -> set[str] | None:
    """The codes an error response names (`allOf: [Error, {… code: {enum}}]`); None when its
    schema is not the Error schema narrowed to its codes."""
    schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
    parts = schema.get("allOf", [])
    if len(parts) != 2 or parts[0] != {"$ref": "#/components/schemas/Error"}:
        return None
    narrowed = parts[1]
    if set(narrowed) != {"properties"} or set(narrowed["properties"]) != {"error"}:
        return None
    error = narrowed["properties"]["error"]
    if set(error) != {"properties"} or set(error["properties"]) != {"code"}:
        return None
    return set(error["properties"]["code"]["enum"])
