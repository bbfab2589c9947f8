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
    """Validate already-decoded JSON data with JSON semantics (as the gateway
    does on the raw body), so RPC callers and HTTP clients meet one rule set."""
    try:
        if isinstance(data, (bytes, str)):
            return model.model_validate_json(data)
        return model.model_validate_json(json.dumps(data, ensure_ascii=False))
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise BadRequest("malformed_json", "the body is not valid JSON") from None
        raise Invalid.fields(field_errors(exc)) from None
