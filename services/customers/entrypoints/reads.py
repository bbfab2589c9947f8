"""Reads are records too (防止资料外泄): opening a customer (counted by the
bulk-read guard and logged), the read settings, the export a page at a time,
and the reads report. The rules are in `reads` and `masking`."""

from __future__ import annotations

import contextlib
import time

import eventlet

from services.common import config
from services.common.events import event
from services.common.ids import new_id
from services.common.principal import Principal, require_admin
from services.common.validation import parse
from services.customers import domain, masking, reads, rules, schemas, storage, views
from services.customers.entrypoints.base import RecordRpc, rpc
from services.customers.errors import CustomerError, InvalidFields, NotAllowed, NotVisible

# The audit chain of what concerns the company's data as a whole (exports,
# the read settings), beside the customers' own chains.
COMPANY_CHAIN = "company"
EXPORT_PAGE_MAX = 500
SETTINGS_TTL_SECONDS = 1.0
_settings_cache: dict[str, tuple[float, dict]] = {}  # by database: (until, limits)


def recording() -> bool:
    """READ_LOG=off turns the read log and the bulk-read guard off: for the
    benchmark that measures what they cost (bench/bench_reads.py), never for
    a company's data."""
    value = config.get("READ_LOG", "on")  # YAML reads a bare on/off as a bool
    return str(value).strip().lower() not in ("off", "false", "0", "no")


def address_of(actor: dict) -> str | None:
    """The client's address the gateway adds to the actor (gateway/addresses.py)."""
    address = actor.get("address") if isinstance(actor, dict) else None
    return str(address)[:64] if address else None


class ReadRpc(RecordRpc):
    # ---------------------------------------------------------- the log

    def _log(self, actor: Principal, address: str | None, kind: str, ids: list[str],
             export_id: str | None = None) -> None:
        if ids and recording():
            storage.insert_read(self.db, reads.read_entry(
                new_id(), actor, address, kind, ids, self.clock.now(), export_id))

    def _view(self, actor: Principal, doc: dict) -> dict:
        """A visible customer as `actor` may see it: a rep sees a pool
        customer's phones and e-mails masked."""
        out = domain.public_customer(doc)
        return out if reads.sees_contacts(actor, doc) else masking.masked(out)

    # ---------------------------------------------------------- opening one

    def read_settings(self) -> dict:
        """The company's read limits, kept SETTINGS_TTL_SECONDS in this
        process (every rep's open needs them); a PUT here replaces them at
        once, another instance of the service reads it within the TTL."""
        held = _settings_cache.get(self.db.name)
        if held is not None and time.monotonic() < held[0]:
            return held[1]
        value = reads.settings(storage.get_settings(self.db, reads.SETTINGS_ID))
        _settings_cache[self.db.name] = (time.monotonic() + SETTINGS_TTL_SECONDS, value)
        return value

    def _count_open(self, actor: Principal, address: str | None, customer_id: str) -> None:
        """The bulk-read guard: 429 `read_limit` past the hour's limit of
        distinct customers; the hour's first refusal tells his managers."""
        if not recording() or not reads.limited(actor):
            return  # an admin's opens are logged, not counted: no settings to read
        limit = reads.hourly_limit(actor, self.read_settings())
        if limit is None:
            return
        now = self.clock.now()
        quota = reads.new_quota(actor, customer_id, now)
        allowed, _ = storage.open_in_quota(self.db, quota, customer_id, limit)
        if allowed:
            return
        first = storage.mark_alerted(self.db, quota["_id"], limit, address, now)
        if first is not None:
            self.dispatch("ReadLimitReached", event(
                **reads.alert_event(first, limit, customer_id, address, now)))
        raise reads.read_limit_reached(limit, now)

    def _logged_open(self, actor: Principal, address: str | None, customer_id: str, read):
        """`read()` (the customer read, its visibility, the guard's count)
        while its read-log entry is written: a read and a write at once,
        so the log adds the longer of the two to an open, not the sum. The
        entry is written before anything is answered; an open refused
        (not_found, read_limit) leaves it marked `refused`, so attempts
        show in the report too."""
        if not recording():
            return read()
        entry = reads.read_entry(new_id(), actor, address, reads.DETAIL, [customer_id[:64]],
                                 self.clock.now())
        writing = eventlet.spawn(storage.insert_read, self.db, entry)
        refused = None
        try:
            return read()
        except CustomerError as exc:
            refused = exc.code
            raise
        finally:
            writing.wait()
            if refused:
                storage.mark_refused(self.db, entry["_id"], refused)

    @rpc
    def open_customer(self, actor, customer_id):
        """GET /api/customers/{id}: one customer, whole, counted by the
        bulk-read guard and logged. A pool customer also shows its stage
        history and why it was abandoned; a rep sees its phones and e-mails
        masked until he claims it."""
        address = address_of(actor)
        actor = Principal.of(actor)
        customer_id = str(customer_id)

        def read() -> dict:
            # The guard counts while the record is read: an open costs the
            # longer of the two, not their sum. An id he may not see counts
            # too (probing for customers is reading them).
            counting = eventlet.spawn(self._count_open, actor, address, customer_id[:64])
            try:
                doc = rules.check_visible(actor, self._customer(customer_id))
            except Exception:
                with contextlib.suppress(Exception):
                    counting.wait()
                raise
            counting.wait()
            return doc

        doc = self._logged_open(actor, address, customer_id, read)
        out = self._view(actor, doc)
        if doc.get("status") == domain.POOL:
            changes = storage.stage_changes_of(self.db, [doc["_id"]]).get(doc["_id"], [])
            alarm = None if doc.get("abandoned") else storage.latest_alarm(self.db, doc["_id"])
            out["stage_history"] = views.stage_history(doc, changes)
            out["abandoned"] = reads.abandoned_out(doc, alarm)
        return out

    # ---------------------------------------------------------- settings

    @rpc
    def get_read_settings(self, actor):
        actor = Principal.of(actor)
        if actor.role not in ("manager", "admin"):
            raise NotAllowed("forbidden", "the read limits are for managers and admins")
        return self.read_settings()

    @rpc
    def put_read_settings(self, actor, body):
        """The company's hourly limits; the next open counts against them."""
        actor = Principal.of(actor)
        require_admin(actor, "sets the read limits")
        data = parse(schemas.ReadSettings, body).model_dump()
        before = self.read_settings()
        now = self.clock.now()
        stored = storage.put_settings(self.db, reads.SETTINGS_ID, data,
                                      {"id": actor.id, "name": actor.name}, now)
        after = reads.settings(stored)
        _settings_cache[self.db.name] = (time.monotonic() + SETTINGS_TTL_SECONDS, after)
        if after != before:
            self._audit(COMPANY_CHAIN, actor, "read_settings", before, after, now)
        return after

    # ---------------------------------------------------------- export

    @rpc
    def start_export(self, actor, fmt):
        """An export of the caller's scope (a manager his team's customers,
        an admin all): its id, for `export_page` and `finish_export`."""
        address = address_of(actor)
        actor = Principal.of(actor)
        team_id = reads.export_scope(actor)
        if fmt not in reads.EXPORT_FORMATS:
            raise InvalidFields.fields({"format": "must be xlsx or csv"})
        now = self.clock.now()
        doc = {"_id": new_id(), "user": {"id": actor.id, "name": actor.name,
                                         "username": actor.username, "role": actor.role},
               "team_id": team_id, "address": address, "format": fmt, "status": "running",
               "started_at": now, "count": 0}
        storage.insert_export(self.db, doc)
        return reads.export_out(doc)

    def _export_of(self, actor: Principal, export_id: str) -> dict:
        doc = storage.find_export(self.db, str(export_id))
        if doc is None or doc["user"]["id"] != actor.id:
            raise NotVisible("not_found", "no such export")
        return doc

    @rpc
    def export_page(self, actor, export_id, after=None, limit=EXPORT_PAGE_MAX):
        """The next page of an export, whole records, newest first (after
        the customer id `after`); logged as an "export" read."""
        address = address_of(actor)
        actor = Principal.of(actor)
        export = self._export_of(actor, export_id)
        if export["status"] != "running":
            raise InvalidFields.fields({"export_id": "this export is finished"})
        limit = max(1, min(int(limit or EXPORT_PAGE_MAX), EXPORT_PAGE_MAX))
        flt = {"team_id": export["team_id"]} if export["team_id"] else {}
        docs, more = storage.customers_page(self.db, flt, after, limit)
        ids = [d["_id"] for d in docs]
        self._log(actor, address, reads.EXPORT, ids, export["_id"])
        storage.count_exported(self.db, export["_id"], len(ids))
        return {"items": [domain.public_customer(d) for d in docs],
                "next": ids[-1] if more else None}

    @rpc
    def finish_export(self, actor, export_id):
        """Close an export: how many customers it wrote goes to the company's
        audit chain (who, how many, when, from where)."""
        actor = Principal.of(actor)
        export = self._export_of(actor, export_id)
        now = self.clock.now()
        done = storage.finish_export(self.db, export["_id"], {"finished_at": now})
        if done is None:
            return reads.export_out(storage.find_export(self.db, export["_id"]))
        self._audit(COMPANY_CHAIN, actor, "export", None, {
            "export_id": done["_id"], "format": done["format"], "count": done["count"],
            "team_id": done["team_id"], "address": done.get("address"),
            "started_at": done["started_at"]}, now)
        return reads.export_out(done)

    # ---------------------------------------------------------- the report

    @rpc
    def read_report(self, actor, query=None):
        """The read log for a manager (his team's) or an admin, newest first,
        with the bulk-read alerts of the same people and window."""
        actor = Principal.of(actor)
        q = parse(schemas.ReadReportQuery, query or {})
        user = None
        if q.user_id is not None and actor.role == "manager":
            user = self.accounts.get_users([q.user_id]).get(q.user_id)
        flt = reads.report_filter(actor, q.user_id, user, q.from_, q.to)
        last = None
        if q.after is not None:
            last = storage.find_read(self.db, q.after)
            if last is None:
                raise InvalidFields.fields({"after": "not an entry of this report"})
        docs, total, more = storage.list_reads(self.db, flt, q.skip, q.page_size, last)
        alerts = storage.list_alerts(
            self.db, reads.report_filter(actor, q.user_id, user, q.from_, q.to, "alerted_at"),
            reads.ALERTS_SHOWN)
        return {"items": [reads.entry_out(d) for d in docs], "total": total,
                "next": docs[-1]["_id"] if more else None,
                "alerts": [reads.alert_out(a) for a in alerts]}
