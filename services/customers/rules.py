"""The rules of a customer record after it was entered (problem 4: 假报表),
as pure functions: no database, no broker, no clock.

- Records are immutable for reps: a rep never PATCHes or deletes; he asks for
  an amendment that his manager approves. Managers and admins PATCH with a
  reason. Nobody deletes.
- A rep cannot drop a customer on his own: he raises a difficulty alarm
  (困难报警); his manager resolves it with `continue`, `reassign` or
  `abandon`; only the customer's latest alarm, resolved with `abandon`,
  raised by him while he owns it and not yet used, lets him abandon the
  customer to the public pool (公海).
- Any rep may claim a pool customer; the storage makes the claim atomic.
- A dispute (争单) goes to the rep whose contact has more decision power.

Every check takes a `Principal` and plain documents, and raises the typed
errors of services.customers.errors (the entrypoints map them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from services.common.principal import Principal
from services.customers import domain
from services.customers import normalize as norm
from services.customers.errors import InvalidFields, NotAllowed, NotVisible, Refused

ACTIVE = "active"
POOL = "pool"

# What an amendment or a PATCH may change (storage names). Stage, owner and
# status have their own audited paths (stage change, alarm, claim, dispute).
EDITABLE_FIELDS = (
    "company_name", "credit_code", "phones", "emails", "address", "industry", "contacts",
    "birthday", "birthday_label", "birthday_kind", "expected_value_fen", "referred_by",
)
# The fields the duplicate guard keys on: changing one re-runs the guard.
KEY_FIELDS = ("company_name", "phones", "credit_code", "emails")

# The fields of CustomerCreated repeated in CustomerAmended and OwnerChanged.
SNAPSHOT_FIELDS = ("company_name", "owner_id", "team_id", "stage", "expected_value_fen",
                   "status", "birthday", "birthday_label", "birthday_kind")

ALARM_OPEN = "open"
ALARM_RESOLVED = "resolved"
ALARM_VOID = "void"  # the customer changed hands before anyone resolved it
DECISIONS = ("continue", "reassign", "abandon")
VERIFIED = ("real", "fake", "unchecked")

AMENDMENT_PENDING = "pending"
AMENDMENT_APPLYING = "applying"
AMENDMENT_APPROVED = "approved"
AMENDMENT_REJECTED = "rejected"

DISPUTE_OPEN = "open"
DISPUTE_RESOLVED = "resolved"
DISPUTE_VOID = "void"  # the customer changed hands before anyone settled it


# ---------------------------------------------------------------- visibility

is_owner, may_see, check_visible = domain.is_owner, domain.may_see, domain.check_visible


def is_team_manager(actor: Principal, team_id: str | None) -> bool:
    return actor.role == "manager" and team_id is not None and actor.team_id == team_id


def may_supervise(actor: Principal, team_id: str | None) -> bool:
    """The owner's manager, or an admin."""
    return actor.role == "admin" or is_team_manager(actor, team_id)


# ------------------------------------------------------ immutability, PATCH

def check_may_patch(actor: Principal, customer: Mapping | None) -> Mapping:
    if actor.role == "rep":
        raise NotAllowed("records_are_immutable",
                        "a rep cannot change a customer record; ask for an amendment")
    check_visible(actor, customer)
    if not may_supervise(actor, customer.get("team_id")):
        raise NotAllowed("forbidden", "only the owner's manager or an admin changes this customer")
    return customer


def refuse_delete(actor: Principal) -> None:
    """Nothing is ever deleted: a customer is abandoned to the pool instead."""
    raise NotAllowed("records_are_immutable",
                    "customers are never deleted; raise a difficulty alarm to give one up")


def check_may_amend(actor: Principal, customer: Mapping | None) -> Mapping:
    check_visible(actor, customer)
    if not is_owner(actor, customer):
        if actor.role in ("manager", "admin"):
            raise NotAllowed("forbidden", "only the owner asks for an amendment; "
                                         "a manager or an admin changes the record directly")
        raise NotAllowed("forbidden", "only the owner asks for an amendment")
    return customer


def check_may_decide_amendment(actor: Principal, customer: Mapping | None) -> Mapping:
    """The owner's manager or an admin approves or rejects."""
    if actor.role == "rep":
        raise NotAllowed("forbidden", "only the owner's manager or an admin decides an amendment")
    if customer is None or not may_supervise(actor, customer.get("team_id")):
        raise NotAllowed("forbidden", "only the owner's manager or an admin decides this amendment")
    return customer


def check_amendment_current(amendment: Mapping, customer: Mapping) -> None:
    """An amendment speaks for the ownership it was asked in. Once the
    customer changed hands (the pool, a claim, a reassignment, a dispute;
    even back to the same rep) the record is the new owner's to answer for:
    the old request is refused, and he asks again if he wants the change."""
    if not held_since(customer, amendment.get("owner_id"), amendment.get("requested_at")):
        raise Refused("amendment_stale",
                       "the customer has changed owner since this amendment was asked for; "
                       "the current owner can ask again")


def check_amendment_pending(amendment: Mapping) -> None:
    if amendment["status"] != AMENDMENT_PENDING:
        raise Refused("amendment_not_pending",
                       f"the amendment is already {amendment['status']}",
                       {"status": amendment["status"]})


def normalize_changes(raw: Mapping) -> dict:
    """Validated request changes (POST /api/customers field names) -> the
    stored fields, normalized as create normalizes them; a value that does
    not normalize is a 422 naming `changes.<field>`."""
    out: dict = {}
    try:
        if "company_name" in raw:
            name = raw["company_name"]
            if name is None or not name.strip():
                raise InvalidFields.fields({"changes.company_name": "a customer keeps a name"})
            domain.normalize_keys_input({"company_name": name})
            out["company_name"] = name.strip()
        keys = domain.normalize_keys_input({k: raw.get(k) for k in ("phones", "credit_code",
                                                                    "emails")})
        for field in ("phones", "credit_code", "emails"):
            if field in raw:
                out[field] = keys[field]
        if "contacts" in raw:
            out["contacts"] = domain.normalize_contacts(raw["contacts"] or [])
        if "birthday" in raw:
            out["birthday"] = domain.valid_month_day(raw["birthday"], "changes.birthday")
        if "birthday_kind" in raw and raw["birthday_kind"] is not None:
            out["birthday_kind"] = raw["birthday_kind"]
        elif "birthday_label" in raw:
            out["birthday_kind"] = domain.birthday_kind(raw["birthday_label"], None)
        if "expected_value" in raw:
            out["expected_value_fen"] = domain.money_to_fen(raw["expected_value"],
                                                            "changes.expected_value")
        for field in ("address", "industry", "birthday_label", "referred_by"):
            if field in raw:
                out[field] = raw[field]
    except InvalidFields as exc:
        fields = exc.details.get("fields", {})
        raise InvalidFields.fields({(k if k.startswith("changes.") else f"changes.{k}"): v
                              for k, v in fields.items()}) from None
    return out


def name_fields(company_name: str) -> dict:
    """The search fields stored beside a name (as create stores them)."""
    key = norm.normalize_company_name(company_name)
    return {"name_core": key.core, "name_region": key.region_key,
            "name_grams": domain.name_terms(key.core)}


def _same(a, b) -> bool:
    return a == b


def diff(customer: Mapping, changes: Mapping) -> dict:
    """{field: {before, after}} for each change that really changes the
    record (a field set to its current value is no change)."""
    out = {}
    for name, value in changes.items():
        if name not in EDITABLE_FIELDS:
            raise InvalidFields.fields({f"changes.{name}": "cannot be changed here"})
        before = customer.get(name)
        if not _same(before, value):
            out[name] = {"before": before, "after": value}
    return out


def require_changes(changes: Mapping) -> None:
    if not changes:
        raise InvalidFields.fields({"changes": "nothing would change"})


def touches_keys(changes: Mapping) -> bool:
    return any(name in KEY_FIELDS for name in changes)


def apply_changes(customer: Mapping, changes: Mapping) -> dict:
    """The record after the changes (a new dict)."""
    return {**customer, **{k: v["after"] for k, v in changes.items()}}


def before_after(changes: Mapping) -> tuple[dict, dict]:
    """The audit entry's before and after of a diff."""
    return ({k: v["before"] for k, v in changes.items()},
            {k: v["after"] for k, v in changes.items()})


def snapshot(customer: Mapping) -> dict:
    return {k: customer.get(k) for k in SNAPSHOT_FIELDS}


# ----------------------------------------------------------------- stages

def check_owner_of_active(actor: Principal, customer: Mapping | None, only: str) -> Mapping:
    """The customer, when the actor owns it and it is not in the pool."""
    check_visible(actor, customer)
    if not is_owner(actor, customer):
        raise NotAllowed("forbidden", f"only the owner {only}")
    check_active(customer)
    return customer


def check_may_change_stage(actor: Principal, customer: Mapping | None) -> Mapping:
    return check_owner_of_active(actor, customer, "moves a customer through the stages")


def check_active(customer: Mapping) -> None:
    if customer.get("status") != ACTIVE:
        raise Refused("not_active", "the customer is in the public pool; claim it first")


# ------------------------------------------------------------------ alarms

def check_may_raise_alarm(actor: Principal, customer: Mapping | None) -> Mapping:
    return check_owner_of_active(actor, customer, "raises a difficulty alarm")


def check_may_resolve_alarm(actor: Principal, alarm: Mapping | None) -> Mapping:
    if alarm is None:
        raise NotVisible("not_found", "alarm not found")
    if not may_supervise(actor, alarm.get("team_id")):
        if actor.role == "rep":
            raise NotAllowed("forbidden", "only the owner's manager or an admin resolves an alarm")
        raise NotAllowed("forbidden", "this alarm belongs to another team")
    if alarm["status"] != ALARM_OPEN:
        raise Refused("alarm_not_open", "the alarm is already resolved")
    return alarm


def alarm_overtaken(alarm: Mapping, customer: Mapping | None) -> bool:
    """An alarm speaks for the ownership it was raised in. After the customer
    changed hands (a dispute, a reassignment, the pool) nothing is left to
    decide on it, and left open it would keep the new owner from raising his."""
    return customer is None or customer.get("status") != ACTIVE \
        or not held_since(customer, alarm.get("owner_id"), alarm.get("raised_at"))


def check_alarm_resolution(actor: Principal, alarm: Mapping, decision: str, verified: str,
                           new_owner_id: str | None, new_owner: Mapping | None) -> None:
    """`new_owner` is the user record of `new_owner_id` (None if unknown)."""
    if decision not in DECISIONS:
        raise InvalidFields.fields({"decision": f"must be one of {', '.join(DECISIONS)}"})
    if verified not in VERIFIED:
        raise InvalidFields.fields({"verified": f"must be one of {', '.join(VERIFIED)}"})
    if decision != "reassign":
        if new_owner_id is not None:
            raise InvalidFields.fields({"new_owner_id": "only a reassignment names a new owner"})
        return
    if new_owner_id is None:
        raise InvalidFields.fields({"new_owner_id": "a reassignment names the rep who takes over"})
    if new_owner is None:
        raise InvalidFields.fields({"new_owner_id": "no such user"})
    if new_owner.get("role") != "rep":
        raise InvalidFields.fields({"new_owner_id": "a customer is reassigned to a rep"})
    if new_owner_id == alarm.get("owner_id"):
        raise InvalidFields.fields({"new_owner_id": "is already the owner"})
    if actor.role != "admin" and new_owner.get("team_id") != actor.team_id:
        raise InvalidFields.fields({"new_owner_id": "a manager reassigns to a rep of his own team"})


def check_may_abandon(actor: Principal, customer: Mapping | None,
                      usable_alarm: Mapping | None) -> Mapping:
    """Only the owner, and only with an alarm resolved `abandon` for him."""
    check_visible(actor, customer)
    if not is_owner(actor, customer):
        raise NotAllowed("forbidden", "only the owner abandons a customer")
    check_active(customer)
    if usable_alarm is None:
        raise Refused("alarm_required",
                       "raise a difficulty alarm first; a customer is abandoned only after "
                       "the manager resolved it with \"abandon\"")
    return customer


def owner_since(customer: Mapping):
    """When the current owner got the customer (records from before
    `owner_since` was kept: the last claim from the pool, else creation)."""
    return customer.get("owner_since") or customer.get("claimed_at") or customer.get("created_at")


def held_since(customer: Mapping, owner_id: str | None, at) -> bool:
    """`owner_id` owns the customer now and has owned it without a break
    since `at` (an alarm raised, an amendment asked): the thing done at `at`
    was done in the current ownership."""
    since = owner_since(customer)
    return customer.get("owner_id") == owner_id and (
        since is None or (at is not None and at >= since))


def abandon_alarm(customer: Mapping, actor: Principal, latest: Mapping | None,
                  spending: str | None = None) -> Mapping | None:
    """The alarm that entitles `actor` to abandon `customer`, or None.

    `latest` is the customer's most recent alarm: a manager's later word
    (`continue`, `reassign`, or an alarm still open) replaces an earlier
    `abandon`, so an older resolution never counts. It must be resolved
    `abandon`, raised by `actor` while he owns the customer now (a customer
    that left him and came back does not carry an old licence with it),
    and unused, unless it is `spending`: the alarm this very abandonment
    has just spent (the re-check on a fresh record)."""
    if latest is None or not is_owner(actor, customer):
        return None
    if latest.get("status") != ALARM_RESOLVED or latest.get("decision") != "abandon":
        return None
    if latest.get("used_at") is not None and latest.get("_id") != spending:
        return None
    if latest.get("owner_id") != actor.id or not held_since(customer, actor.id,
                                                            latest.get("raised_at")):
        return None
    return latest


def spend_alarm_filter(alarm: Mapping) -> dict:
    """The conditional write that spends an abandon resolution once."""
    return {"_id": alarm["_id"], "status": ALARM_RESOLVED, "decision": "abandon",
            "used_at": None}


# -------------------------------------------------------------------- pool

def check_may_claim(actor: Principal, customer: Mapping | None) -> Mapping:
    if actor.role != "rep":
        raise NotAllowed("forbidden", "reps claim customers from the public pool")
    if customer is None:
        raise NotVisible("not_found", "customer not found")
    if customer.get("status") != POOL:
        raise Refused("not_in_pool", "the customer is not in the public pool")
    return customer


# ---------------------------------------------------------------- disputes

def check_may_file_dispute(actor: Principal, customer: Mapping | None) -> Mapping:
    if actor.role != "rep":
        raise NotAllowed("forbidden", "a rep who lost a claim files a dispute")
    if customer is None:
        raise NotVisible("not_found", "customer not found")
    if customer.get("status") == POOL:
        raise Refused("in_pool", "the customer is in the public pool; claim it instead")
    if is_owner(actor, customer):
        raise Refused("already_owner", "you already own this customer")
    return customer


def check_may_resolve_dispute(actor: Principal, dispute: Mapping | None) -> Mapping:
    """The manager of both reps, or an admin: a dispute between two teams
    is not one team's manager's to settle."""
    if dispute is None:
        raise NotVisible("not_found", "dispute not found")
    if actor.role == "rep":
        raise NotAllowed("forbidden", "a manager or an admin resolves a dispute")
    if actor.role == "manager":
        teams = {dispute.get("team_id"), dispute.get("claimant_team_id")}
        if teams != {actor.team_id}:
            raise NotAllowed("forbidden", "a dispute between two teams (or another team's) "
                                         "is resolved by an admin")
    if dispute["status"] != DISPUTE_OPEN:
        raise Refused("dispute_not_open", f"the dispute is already {dispute['status']}",
                       {"status": dispute["status"]})
    return dispute


def is_dispute_stale(dispute: Mapping, customer: Mapping | None) -> bool:
    """The customer is no longer the owner's the dispute was filed against:
    settling it would take the customer from someone it was never about."""
    return customer is None or customer.get("owner_id") != dispute["owner_id"]


def best_decision_level(contacts: Iterable[Mapping] | None) -> int:
    """The owner's strongest contact in the record (0: he named none)."""
    levels = [c.get("decision_level") or 0 for c in (contacts or [])]
    return max(levels, default=0)


def dispute_rule_winner(claimant_level: int, owner_level: int) -> str | None:
    """The brief's rule: the rep whose contact has more decision power wins;
    a tie is the manager's call (None)."""
    if claimant_level > owner_level:
        return "claimant"
    if owner_level > claimant_level:
        return "owner"
    return None


def check_dispute_decision(dispute: Mapping, owner_level: int, claimant_level: int,
                           winner_id: str) -> str:
    """-> "claimant" or "owner". The manager may correct the levels he
    verified, not overrule the rule that runs on them."""
    sides = {dispute["claimant_id"]: "claimant", dispute["owner_id"]: "owner"}
    side = sides.get(winner_id)
    if side is None:
        raise InvalidFields.fields({"winner_id": "must be the claimant or the owner"})
    rule = dispute_rule_winner(claimant_level, owner_level)
    if rule is not None and rule != side:
        raise InvalidFields.fields({"winner_id": (
            f"the {rule} wins: his contact has more decision power "
            f"(claimant {claimant_level}, owner {owner_level})")})
    return side


# ---------------------------------------------------------- integrity report

def integrity_rows(reps: Iterable[Mapping], counts: Mapping[str, Mapping[str, int]]) -> list[dict]:
    """One row per rep: `{rep {id, name}, customers, alarms, abandoned,
    verified_fake}` (and `created`: how many he entered). `counts` maps a
    user id to the figures found; a rep with none shows zeros, and a user
    with figures but not in `reps` (moved away) still shows."""
    names = {r["id"]: r.get("name") for r in reps}
    ids = list(names) + sorted(i for i in counts if i not in names and i is not None)
    rows = []
    for uid in ids:
        c = counts.get(uid, {})
        rows.append({
            "rep": {"id": uid, "name": names.get(uid)},
            "customers": c.get("customers", 0),
            "created": c.get("created", 0),
            "alarms": c.get("alarms", 0),
            "abandoned": c.get("abandoned", 0),
            "verified_fake": c.get("verified_fake", 0),
        })
    # the most suspicious first: that is what a manager opens the report for
    rows.sort(key=lambda r: (-r["verified_fake"], -r["abandoned"], r["rep"]["name"] is None,
                             r["rep"]["name"] or "", r["rep"]["id"]))
    return rows


def report_scope(actor: Principal) -> str | None:
    """The team a report covers (None: all teams)."""
    if actor.role == "admin":
        return None
    if actor.role == "manager":
        return actor.team_id
    raise NotAllowed("forbidden", "the integrity report is for managers and admins")


# ------------------------------------------------------- records that moved

def moved(exc: Exception) -> bool:
    """An owner change refused because the customer changed hands meanwhile."""
    return isinstance(exc, Refused) and exc.code == "owner_changed"


def dispute_stale() -> Refused:
    return Refused("dispute_stale", "the customer changed hands since the dispute was "
                                     "filed; it no longer applies and is closed")


def alarm_stale() -> Refused:
    return Refused("alarm_stale", "the customer changed hands since the alarm was raised; "
                                   "the alarm is closed and the current owner can raise his own")


def check_still_owned_by(customer: dict, owner_id: str) -> None:
    if customer.get("owner_id") != owner_id or customer.get("status") != ACTIVE:
        raise Refused("owner_changed", "the customer changed hands meanwhile")
