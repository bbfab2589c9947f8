"""The deal read model: idempotent and order-safe event application.

A deal's state is a set of last-writer-wins registers (``stage``, ``value``,
``owner``, ``team``, ``status``), each stamped with the clock of the event
that wrote it: ``(version, occurred_at, event_id)``. An event writes only the
registers its payload speaks about, and only where its clock is newer.

- The clock compares by the per-customer ``version`` when both sides carry
  one (clocks of different machines may be skewed; the producer's counter is
  not), else by ``occurred_at``; ``event_id`` breaks ties so the order is
  total and does not depend on arrival. A producer should either always or
  never send ``version`` for a customer.
- A replayed or duplicated event has the same clock as what it wrote: nothing
  is newer, nothing changes, ``apply_deal_event`` returns ``None``.
- An older event arriving after a newer one does not roll anything back. It
  may still fill a register that no newer event wrote (a ``StageChanged`` v2
  delayed behind a ``CustomerAmended`` v3 that changed only the value still
  moves the stage). Dropping the whole late event instead would make the end
  state depend on arrival order and lose the stage change for good.
- The result is a join-semilattice: any order, any number of duplicates give
  the same state (the unit tests check this with random permutations).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from services.common.money import MoneyError, yuan_to_fen
from services.forecast.domain.errors import EventError, ForecastError, _check_fen, _parse_stage

# --------------------------------------------------------------------------
# the deal read model

DEAL_EVENTS = frozenset(
    {"CustomerCreated", "CustomerAmended", "StageChanged", "OwnerChanged", "CustomerAbandoned"}
)
_REGISTERS = ("stage", "value", "owner", "team", "status")
_MISSING = object()


def _to_utc(value: Any, field: str, err: type[ForecastError] = EventError) -> datetime:
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError:
            raise err("is not an ISO 8601 time", field) from None
    else:
        raise err("must be an ISO 8601 time", field)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def _iso_utc(dt: datetime) -> str:
    """Fixed width, so that text order is time order."""
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _event_type(event: Mapping[str, Any], event_type: str | None) -> Any:
    return event_type or event.get("type") or event.get("event_type")


def _require_id(event: Mapping[str, Any], field: str) -> str:
    value = event.get(field)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise EventError("is missing", field)
    return str(value)


def event_clock(event: Mapping[str, Any]) -> dict[str, Any]:
    """``{"version", "at", "event_id"}``: the order stamp of an event.

    ``at`` is ``occurred_at`` in fixed-width UTC text; ``version`` is the
    optional per-customer counter (non-negative integer or absent)."""
    event_id = _require_id(event, "event_id")
    if event.get("occurred_at") is None:
        raise EventError("is missing", "occurred_at")
    at = _iso_utc(_to_utc(event["occurred_at"], "occurred_at"))
    version = event.get("version")
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, int) or version < 0
    ):
        raise EventError("must be a non-negative integer", "version")
    return {"version": version, "at": at, "event_id": event_id}


def _is_newer(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    if old is None:
        return True
    nv, ov = new.get("version"), old.get("version")
    if nv is not None and ov is not None:
        return (nv, new["at"], new["event_id"]) > (ov, old["at"], old["event_id"])
    return (new["at"], new["event_id"]) > (old["at"], old["event_id"])


def new_deal_state(customer_id: str) -> dict[str, Any]:
    """An empty deal: no stage, value 0, no owner, active, nothing written."""
    return {
        "customer_id": customer_id,
        "stage": None,
        "value_fen": 0,
        "owner_id": None,
        "team_id": None,
        "status": "active",
        "version": None,
        "updated_at": None,
        "clock": {r: None for r in _REGISTERS},
    }


def _event_value(src: Mapping[str, Any]) -> Any:
    """Money in events: ``expected_value_fen`` (int fen), else ``expected_value``
    (yuan, as the API writes it)."""
    if src.get("expected_value_fen") is not None:
        return _check_fen(src["expected_value_fen"], "expected_value_fen", EventError)
    if src.get("expected_value") is not None:
        try:
            return yuan_to_fen(src["expected_value"], "expected_value")
        except MoneyError as e:
            raise EventError(e.message, e.field) from None
    return _MISSING


def _opt_id(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        value = value.get("id")
        if value is None:
            return None
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise EventError("must be an id", field)
    return str(value)


def _first(src: Mapping[str, Any], keys: Sequence[str]) -> tuple[str | None, Any]:
    for key in keys:
        if key in src:
            return key, src[key]
    return None, _MISSING


def _stage_write(src: Mapping[str, Any], keys: Sequence[str]) -> Any:
    key, value = _first(src, keys)
    if key is None or value is None:
        return _MISSING
    return _parse_stage(value, key, EventError)


def _owner_team_writes(
    src: Mapping[str, Any],
    owner_keys: Sequence[str],
    team_keys: Sequence[str],
    *,
    null_clears: bool,
) -> dict[str, dict[str, Any]]:
    """Owner/team registers from a payload. Where the owner is only context
    (created, amended, stage changed) a null means "not said", not "pool"."""
    writes: dict[str, dict[str, Any]] = {}
    key, raw = _first(src, owner_keys)
    if key is not None and (raw is not None or null_clears):
        writes["owner"] = {"owner_id": _opt_id(raw, key)}
        if isinstance(raw, Mapping) and raw.get("team_id") is not None:
            writes["team"] = {"team_id": _opt_id(raw["team_id"], f"{key}.team_id")}
    key, raw = _first(src, team_keys)
    if key is not None and (raw is not None or null_clears):
        writes["team"] = {"team_id": _opt_id(raw, key)}
    return writes


def _status(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise EventError("must be a status text", "status")
    return value


def _deal_writes(etype: str, event: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Which registers an event writes, with what."""
    writes: dict[str, dict[str, Any]] = {}
    if etype == "CustomerAbandoned":
        writes["owner"] = {"owner_id": None}
        writes["team"] = {"team_id": None}
        writes["status"] = {"status": _status(event.get("status") or "pool")}
        return writes
    if etype == "OwnerChanged":
        owner_keys = ("new_owner_id", "to_owner_id", "owner_id", "to", "owner")
        team_keys = ("new_team_id", "to_team_id", "team_id")
        writes = _owner_team_writes(event, owner_keys, team_keys, null_clears=True)
        if "owner" not in writes:
            raise EventError("is missing", "new_owner_id")
        owner = writes["owner"]["owner_id"]
        if owner is None:
            writes["team"] = {"team_id": None}
        writes["status"] = {
            "status": _status(event.get("status") or ("active" if owner else "pool"))
        }
        return writes

    if etype == "CustomerAmended":
        changes = event.get("changes")
        src = changes if isinstance(changes, Mapping) else event
        stage = _stage_write(src, ("stage",))
    elif etype == "StageChanged":
        src = event
        stage = _stage_write(src, ("to", "to_stage", "stage"))
        if stage is _MISSING:
            raise EventError("is missing", "to")
    else:  # CustomerCreated
        src = event
        stage = _stage_write(src, ("stage",))
    if stage is not _MISSING:
        writes["stage"] = {"stage": stage}
    value = _event_value(src)
    if value is not _MISSING:
        writes["value"] = {"value_fen": value}
    writes.update(_owner_team_writes(src, ("owner_id", "owner"), ("team_id",), null_clears=False))
    if etype == "CustomerCreated":
        writes["status"] = {"status": _status(event.get("status") or "active")}
    elif src.get("status") is not None:
        writes["status"] = {"status": _status(src["status"])}
    return writes


def _copy_state(state: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(state)
    clock = state.get("clock") or {}
    out["clock"] = {r: (dict(clock[r]) if clock.get(r) else None) for r in _REGISTERS}
    return out


def apply_deal_event(
    deal_state: Mapping[str, Any] | None,
    event: Mapping[str, Any],
    event_type: str | None = None,
) -> dict[str, Any] | None:
    """Apply one customer event to a deal's state; ``None`` means unchanged.

    ``deal_state``: a state from ``new_deal_state``/an earlier call, or ``None``
    for a customer not seen yet. ``event``: the payload with ``event_id``,
    ``occurred_at``, ``customer_id``, optional ``version``; its type is
    ``event_type`` or ``event["type"]``. Handles ``DEAL_EVENTS``; any other type
    returns ``None``. The state is ``{customer_id, stage, value_fen, owner_id,
    team_id, status, version, updated_at, clock}`` (``version``/``updated_at``
    are the newest written). Raises ``EventError`` for a malformed payload.

    Payloads: ``CustomerCreated {stage, expected_value_fen | expected_value
    (yuan), owner_id | owner {id}, team_id?, status?}``; ``CustomerAmended
    {changes: {stage?, expected_value_fen? | expected_value?, status?}}``;
    ``StageChanged {from, to, expected_value*, owner_id?, team_id?}``;
    ``OwnerChanged {new_owner_id | to_owner_id | owner_id | to (null = pool),
    new_team_id | team_id?, status?}`` (without a team the team is kept);
    ``CustomerAbandoned {}`` (pool: no owner, no team).
    """
    etype = _event_type(event, event_type)
    if etype not in DEAL_EVENTS:
        return None
    customer_id = _require_id(event, "customer_id")
    if deal_state is not None and str(deal_state.get("customer_id")) != customer_id:
        raise EventError("does not match the deal", "customer_id")
    key = event_clock(event)
    writes = _deal_writes(etype, event)
    state = _copy_state(deal_state) if deal_state is not None else new_deal_state(customer_id)
    changed = False
    for register, fields in writes.items():
        if _is_newer(key, state["clock"].get(register)):
            state["clock"][register] = dict(key)
            state.update(fields)
            changed = True
    if not changed:
        return None
    stamps = [c for c in state["clock"].values() if c]
    versions = [c["version"] for c in stamps if c["version"] is not None]
    state["version"] = max(versions) if versions else None
    state["updated_at"] = max(c["at"] for c in stamps)
    return state


