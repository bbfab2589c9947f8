"""Typed errors that cross RPC intact and that the gateway maps to HTTP.

`services.common.rpc` registers each with nameko's deserializer, so a
`Conflict` raised in the customers service arrives in the gateway as a
`Conflict`, not a RemoteError; this module stays pure (no nameko) so that
domains can raise them. Arguments stay JSON-serializable: (code, message, details).
"""

from __future__ import annotations

import json


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


class BadRequest(CrmError):
    status = 400


class Unauthenticated(CrmError):
    status = 401


class Forbidden(CrmError):
    status = 403


class NotFound(CrmError):
    status = 404


class Conflict(CrmError):
    status = 409


class Invalid(CrmError):
    """422: fields that parse but break a rule; `fields` says why per field."""

    status = 422

    def __init__(self, code: str = "invalid_fields", message: str = "", details=None):
        super().__init__(code, message or "some fields are invalid", details)

    @classmethod
    def fields(cls, fields: dict[str, str], message: str = "some fields are invalid"):
        return cls("invalid_fields", message, {"fields": fields})


class TooManyRequests(CrmError):
    status = 429


ERRORS = (BadRequest, Unauthenticated, Forbidden, NotFound, Conflict, Invalid, TooManyRequests)
