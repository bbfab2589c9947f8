"""Why a customer rule refuses: the customers domain's own errors, pure. The
entrypoints map them to the typed RPC errors the gateway turns into HTTP
(`to_rpc`, applied by `entrypoints.base.rpc`), so rules say what went wrong,
not which status code a client sees."""

from __future__ import annotations

from services.common import errors as rpc_errors


class CustomerError(Exception):
    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.details = details or {}


class NotVisible(CustomerError):
    """The caller may not see it, or it does not exist (the same answer)."""


class NotAllowed(CustomerError):
    """The caller sees it but may not do this."""


class Refused(CustomerError):
    """The record's state refuses it now: a key taken, busy, stale, decided."""


class Throttled(CustomerError):
    """Too much of it in too short a time (the bulk-read guard);
    `details["retry_after_seconds"]` says when it is allowed again."""


class InvalidFields(CustomerError):
    """Fields that break a rule; `details["fields"]` says why per field."""

    @classmethod
    def fields(cls, fields: dict[str, str], message: str = "some fields are invalid"):
        return cls("invalid_fields", message, {"fields": fields})


_RPC = ((NotVisible, rpc_errors.NotFound), (NotAllowed, rpc_errors.Forbidden),
        (Refused, rpc_errors.Conflict), (InvalidFields, rpc_errors.Invalid),
        (Throttled, rpc_errors.TooManyRequests))


def to_rpc(exc: CustomerError) -> rpc_errors.CrmError:
    for domain_error, rpc_error in _RPC:
        if isinstance(exc, domain_error):
            return rpc_error(exc.code, exc.message, exc.details)
    raise TypeError(f"no RPC error for {type(exc).__name__}")
