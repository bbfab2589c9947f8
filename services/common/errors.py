"""Typed errors that cross RPC intact and that the gateway maps to HTTP.

Each is registered with nameko's deserializer, so a `Conflict` raised in the
customers service arrives in the gateway as a `Conflict`, not a RemoteError.
Arguments stay JSON-serializable: (code, message, details).
"""

from __future__ import annotations

import json

from nameko.exceptions import deserialize_to_instance


class CrmError(Exception):
    status = 400

    def __init__(self, code: str, message: str, details: dict | str | None = None):
        # nameko stringifies every non-string argument it serializes (a score
        # 0.93 would arrive as "0.93"), so details travel as one JSON string.
        if isinstance(details, str):
            details = json.loads(details)
        details = details or {}
        super().__init__(code, message, json.dumps(details, ensure_ascii=False, default=str))
        self.code = code
        self.message = message
        self.details = details

    def body(self) -> dict:
        return {"error": self.code, "message": self.message, **self.details}


@deserialize_to_instance
class BadRequest(CrmError):
    status = 400


@deserialize_to_instance
class Unauthenticated(CrmError):
    status = 401


@deserialize_to_instance
class Forbidden(CrmError):
    status = 403


@deserialize_to_instance
class NotFound(CrmError):
    status = 404


@deserialize_to_instance
class Conflict(CrmError):
    status = 409


@deserialize_to_instance
class Invalid(CrmError):
    """422: fields that parse but break a rule; `fields` says why per field."""

    status = 422

    def __init__(self, code: str = "invalid_fields", message: str = "", details=None):
        super().__init__(code, message or "some fields are invalid", details)

    @classmethod
    def fields(cls, fields: dict[str, str], message: str = "some fields are invalid"):
        return cls("invalid_fields", message, {"fields": fields})


@deserialize_to_instance
class TooManyRequests(CrmError):
    status = 429
