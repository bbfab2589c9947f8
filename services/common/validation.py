"""Turning input into schema objects, with errors a client can act on."""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from services.common.errors import BadRequest, Invalid

M = TypeVar("M", bound=BaseModel)


def field_errors(exc: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        fields.setdefault(loc, msg)
    return fields


def parse(model: type[M], data) -> M:
    """Validate a JSON body (str or bytes, as it came over HTTP) or already
    decoded JSON data, with JSON semantics, so RPC callers and HTTP clients
    meet one rule set: 400 malformed_json for what is not a JSON object, 422
    naming the fields for what breaks the schema."""
    if isinstance(data, (bytes, str)):
        if not data.strip():
            raise BadRequest("malformed_json", "a JSON body is required")
        raw = data
    else:
        raw = json.dumps(data, ensure_ascii=False)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if any(e["type"] == "json_invalid" for e in errors):
            raise BadRequest("malformed_json", "the body is not valid JSON") from None
        if any(e["type"] == "model_type" and not e["loc"] for e in errors):
            raise BadRequest("malformed_json", "the body must be a JSON object") from None
        raise Invalid.fields(field_errors(exc)) from None
