"""scheduler: reminders and the firing loop that emits `ReminderDue`.

Firing is safe with any number of instances and across crashes:
- each reminder is fired under a lock taken by inserting `locks/{_id}`
  (exactly one inserter wins), with a lease;
- the event is dispatched (broker-confirmed) *before* the reminder is marked
  fired, so a crash in between leaves a pending reminder whose lock lease
  runs out and which is then fired again: at least once, never lost;
- notify keys its notification by reminder id, so the rare second dispatch
  never shows twice.
The queue is keyed by due time (storage.py says why): a tick reads what is
due as one range, fires it, and deletes the entries it is done with.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import random
import socket
import time
import uuid
from datetime import timedelta

import eventlet

from services.common import config
from services.common.errors import Conflict, Invalid, NotFound
from services.common.escalation import DEFAULT_ESCALATE_AFTER_MINUTES
from services.common.events import event, handles
from services.common.ids import new_id
from services.common.mongo import Mongo
from services.common.principal import Principal
from services.common.rpc import Rpc
from services.common.service import ServiceBase, rpc
from services.common.timers import ConfigTimer
from services.common.timezones import DEFAULT_TIMEZONE
from services.common.validation import parse
from services.scheduler import domain, rules, schemas, storage

log = logging.getLogger(__name__)

INSTANCE = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
DEFAULT_SETTINGS = {"escalate_after_minutes": DEFAULT_ESCALATE_AFTER_MINUTES,
                    "birthday_lead_days": rules.DEFAULT_BIRTHDAY_LEAD_DAYS,
                    "timezone": DEFAULT_TIMEZONE}
# A queue entry whose reminder never appeared (a crash between the two
# inserts) is dropped once it is this far past due.
ORPHAN_AGE = timedelta(minutes=10)
LOCK_TRIES = 25
LOCK_RETRY_SECONDS = 0.02


class SchedulerService(ServiceBase):
    name = "scheduler"

    db = Mongo(storage.ensure_indexes)
    accounts = Rpc("accounts")
    customers = Rpc("customers")

    # Housekeeping (breaking dead processes' locks) is not business time: the
    # wall clock paces it.
    _last_recovery = {"at": 0.0}

    # ------------------------------------------------------------------
    # reminders over the API

    @rpc
    def create_reminder(self, actor, body):
        actor = Principal.of(actor)
        data = parse(schemas.ReminderIn, body).model_dump()
        now = self.clock.now()
        domain.check_due_at(data["due_at"], now)
        if data.get("customer_id"):
            try:
                customer = self.customers.get_customer(actor.as_dict(), data["customer_id"])
            except NotFound:
                raise Invalid.fields({"customer_id": "no such customer"}) from None
            data["owner_version"] = domain.owner_version_of(customer, actor.id)
        doc = domain.new_reminder(new_id(), actor.id, "event", data, now)
        self._insert_about_customer(doc)
        return domain.view(doc)

    @rpc
    def create_revisit(self, actor, customer_id, body):
        actor = Principal.of(actor)
        data = parse(schemas.RevisitIn, body).model_dump()
        now = self.clock.now()
        domain.check_due_at(data["at"], now, "at")
        # NotFound (not visible) crosses back to the caller as a 404.
        customer = self.customers.get_customer(actor.as_dict(), customer_id)
        doc = domain.revisit_reminder(new_id(), actor.id, customer, data, now)
        self._insert_about_customer(doc)
        return domain.view(doc)

    def _insert_about_customer(self, doc):
        """An owner's reminder is stored under its customer's lock, checked
        against the owner changes heard of since the customer was read: an
        owner change is then either applied after it (and moves it) or
        before it (and refuses it), never in between, which would leave it
        with the old owner."""
        if doc.get("owner_version") is None:
            storage.insert_reminder(self.db, doc)
            return
        with self._locked(domain.customer_lock(doc["customer_id"])):
            domain.check_still_owner(doc, storage.find_series(self.db, doc["customer_id"]))
            storage.insert_reminder(self.db, doc)

    @rpc
    def get_reminder(self, actor, reminder_id):
        doc = self._current(reminder_id)
        if doc is None or doc["user_id"] != actor["id"] or doc["kind"] not in domain.USER_KINDS:
            raise NotFound("not_found", "no such reminder")
        return domain.view(doc)

    def _current(self, rid):
        doc = storage.find_reminder(self.db, rid)
        if doc is None or doc["status"] != rules.PENDING:
            return doc
        return domain.with_firing(doc, storage.find_firing(self.db, rid))

    @rpc
    def list_reminders(self, actor, query=None):
        q = schemas.ReminderQuery.model_validate(query or {})
        flt = domain.list_filter(actor["id"], q.model_dump(by_alias=True))
        if flt.get("status") in (rules.PENDING, rules.FIRED):
            # which pending ones fired is in `firings`: filter after merging
            wanted = flt.pop("status")
            flt["status"] = rules.PENDING
            docs = self._merged(self._reminders(flt, 0, 0, None)[0])
            docs = [d for d in docs if d["status"] == wanted]
            start = (q.page - 1) * q.page_size
            if q.after is not None:
                ids = [d["_id"] for d in docs]
                if q.after not in ids:
                    raise Invalid.fields({"after": f"not one of your {wanted} reminders"})
                start = ids.index(q.after) + 1
            shown = docs[start:start + q.page_size]
            more = len(docs) > start + q.page_size
            return {"items": [domain.view(d) for d in shown], "total": len(docs),
                    "next": shown[-1]["_id"] if more else None}
        docs, total, more = self._reminders(flt, (q.page - 1) * q.page_size, q.page_size, q.after)
        return {"items": [domain.view(d) for d in self._merged(docs)], "total": total,
                "next": docs[-1]["_id"] if more else None}

    def _merged(self, docs):
        """The page as people see it (domain.with_firing): the firing
        records of its pending reminders in one $in, not one query each."""
        pending = [d["_id"] for d in docs if d["status"] == rules.PENDING]
        firings = storage.find_firings(self.db, pending) if pending else {}
        return [domain.with_firing(d, firings.get(d["_id"])) if d["status"] == rules.PENDING
                else d for d in docs]

    def _reminders(self, flt, skip, limit, after):
        try:
            return storage.list_reminders(self.db, flt, skip, limit, after)
        except storage.UnknownCursor:
            raise Invalid.fields({"after": "not one of your reminders"}) from None

    @rpc
    def update_reminder(self, actor, reminder_id, body):
        data = parse(schemas.ReminderPatch, body)
        changes = data.model_dump(include=data.model_fields_set)
        with self._locked(reminder_id):
            doc = domain.check_editable(self._current(reminder_id), actor["id"])
            new = domain.apply_patch(doc, changes, self.clock.now())
            moved = new["due_at"] != doc["due_at"]
            if moved:
                # the new entry first: a crash before the save leaves an extra
                # entry (found stale and dropped), never a reminder without one
                storage.enqueue(self.db, reminder_id, new["due_at"])
            storage.save_reminder(self.db, new)
            if moved:
                storage.dequeue(self.db, reminder_id, doc["due_at"])
        return domain.view(new)

    @rpc
    def cancel_reminder(self, actor, reminder_id):
        now = self.clock.now()
        with self._locked(reminder_id):
            doc = domain.check_editable(self._current(reminder_id), actor["id"])
            new = domain.cancelled(doc, now)
            storage.save_reminder(self.db, new)
            storage.dequeue(self.db, reminder_id, doc["due_at"])
        if new["kind"] in domain.BIRTHDAY_KINDS and new.get("series"):
            # skipping this year's greeting keeps the following years
            self._put_next_birthday(new, now)
        return domain.view(new)

    # ------------------------------------------------------------------
    # escalation checks, asked for by notify

    @rpc
    def schedule_escalation(self, body):
        """Idempotent: one check per notification, however often asked."""
        data = schemas.EscalationIn.model_validate(body).model_dump()
        doc = domain.escalation_reminder(data, self.clock.now())
        try:
            storage.insert_reminder(self.db, doc)
        except storage.AlreadyExists:
            doc = storage.find_reminder(self.db, doc["_id"])
        return {"id": doc["_id"], "due_at": doc["due_at"].isoformat(), "status": doc["status"]}

    @handles("notify", "NotificationAcknowledged")
    def on_notification_acknowledged(self, payload):
        now = self.clock.now()
        rid = payload.get("reminder_id")
        if rid:
            with self._locked(rid):
                doc = self._current(rid)
                new = domain.acknowledged(doc, now) if doc else None
                if new:
                    storage.save_reminder(self.db, new)
        esc = domain.escalation_id(payload["notification_id"])
        with self._locked(esc):
            doc = self._current(esc)
            if doc and doc["status"] == rules.PENDING:
                storage.save_reminder(self.db, domain.cancelled(doc, now))
                storage.dequeue(self.db, esc, doc["due_at"])

    # ------------------------------------------------------------------
    # the firing loop

    @ConfigTimer.decorator("SCHEDULER_TICK_SECONDS", 0.5, eager=True)
    def tick(self):
        self.fire_due()

    def fire_due(self) -> int:
        """Fire every reminder that is due now; returns how many this
        instance fired."""
        now = self.clock.now()  # what is due; each firing reads the clock again
        lease = timedelta(seconds=float(config.setting("SCHEDULER_LEASE_SECONDS", 30)))
        late_after = float(config.setting("SCHEDULER_LATE_SECONDS", 60))
        batch = int(float(config.setting("SCHEDULER_BATCH", 500)))
        self._recover(now)
        # A bounded read: after a long stop, a backlog of millions is taken a
        # few batches a tick (earliest first: the index's order), not at once.
        entries = storage.due_entries(self.db, now, limit=4 * batch)
        # Another instance reads the same entries: starting from a different
        # end makes them collide on fewer locks.
        random.shuffle(entries)
        return sum(self._fire_batch(entries[start:start + batch], lease, late_after)
                   for start in range(0, len(entries), batch))

    def _fire_batch(self, entries, lease, late_after) -> int:
        """Lock, read and fire a batch of due entries with a few queries for
        all of them (one per reminder would cost a round trip each, and the
        database is shared by every instance); only the firing record is
        written per reminder, right after its event, so a crash repeats no
        more than the firings in flight."""
        db = self.db
        owner = f"{INSTANCE}:{uuid.uuid4().hex[:8]}"
        rids = list(dict.fromkeys(e["reminder_id"] for e in entries))
        until = self.clock.now() + lease
        locked = storage.try_lock_many(db, rids, owner, until)
        mine = set(locked)
        try:
            fired = storage.fired_among(db, locked)
            docs = storage.find_reminders(db, [r for r in locked if r not in fired])
            now = self.clock.now()
            done, to_fire = [], {}
            for entry in entries:
                rid = entry["reminder_id"]
                if rid not in mine:
                    continue  # another instance has it (or a user is editing it)
                outcome = domain.entry_outcome(entry, docs.get(rid), rid in fired, now,
                                               ORPHAN_AGE)
                if outcome == domain.DONE:
                    done.append(entry["_id"])
                elif outcome == domain.FIRE:
                    to_fire[rid] = entry
            pool = eventlet.GreenPool(max(1, int(float(config.setting("SCHEDULER_CONCURRENCY", 16)))))
            results = pool.imap(self._fire_one, [docs[r] for r in to_fire],
                                itertools.repeat(owner), itertools.repeat(until),
                                itertools.repeat(lease), itertools.repeat(late_after))
            count = 0
            for rid, outcome in zip(to_fire, results, strict=True):
                if outcome != domain.KEEP:
                    done.append(to_fire[rid]["_id"])
                count += outcome == domain.FIRE
        finally:
            storage.unlock_many(db, locked, owner)
        storage.remove_entries(db, done)
        return count

    def _fire_one(self, doc, owner, until, lease, late_after) -> str:
        """FIRE (sent), DONE (a stale birthday, cancelled) or KEEP (for the
        next tick: the lease is running out, or sending failed)."""
        rid = doc["_id"]
        # A batch through a big backlog takes a while: fired_at and `late`
        # are each firing's own time, not the tick's start.
        now = self.clock.now()
        if not domain.lease_left(until, now, lease):
            return domain.KEEP  # locked again, with a fresh lease, next tick
        try:
            if doc["kind"] in domain.BIRTHDAY_KINDS and not domain.still_current(
                    doc, storage.find_series(self.db, doc["customer_id"])):
                storage.save_reminder(self.db, domain.cancelled(doc, now))
                return domain.DONE
            doc = domain.fired(doc, now, late_after)
            # dispatched (broker-confirmed) before it is recorded: a crash in
            # between fires it again after the lease, never loses it
            self.dispatch("ReminderDue", event(**domain.due_event(doc)))
            storage.record_firing(self.db, domain.firing(doc, owner.rsplit(":", 1)[0]))
            if doc["kind"] in domain.BIRTHDAY_KINDS:
                self._put_next_birthday(doc, now)
            return domain.FIRE
        except Exception:  # noqa: BLE001 - one bad reminder must not stop the others
            log.exception("firing reminder %s failed; it stays pending and is retried", rid)
            return domain.KEEP

    def _recover(self, now):
        """Locks whose lease ran out belong to a process that died: break
        them, and the reminder they guarded (still queued, not recorded as
        fired) fires on this pass. Now and then: finding them is a scan on
        FerretDB, and a lease lasts many ticks."""
        every = float(config.setting("SCHEDULER_RECOVER_SECONDS", 2))
        if time.monotonic() - self._last_recovery["at"] < every:
            return
        self._last_recovery["at"] = time.monotonic()
        for lock in storage.expired_locks(self.db, now):
            if storage.break_lock(self.db, lock["_id"], now):
                log.warning("broke the expired lock %s of %s", lock["_id"], lock.get("owner"))

    @contextlib.contextmanager
    def _locked(self, key):
        owner = "edit:" + uuid.uuid4().hex
        lease = timedelta(seconds=float(config.setting("SCHEDULER_LEASE_SECONDS", 30)))
        for _ in range(LOCK_TRIES):
            if storage.try_lock(self.db, key, owner, self.clock.now() + lease):
                break
            eventlet.sleep(LOCK_RETRY_SECONDS)
        else:
            # A plain Conflict: only the classes in services.common.errors are
            # registered wherever the answer is read (the gateway imports no
            # service module), and any other class arrives as a RemoteError, a 500.
            raise Conflict("busy", "the reminder is being fired or changed right now; try again")
        try:
            yield
        finally:
            storage.unlock(self.db, key, owner)

    # ------------------------------------------------------------------
    # birthdays and anniversaries

    @handles("customers", "CustomerCreated")
    def on_customer_created(self, payload):
        self._apply_series("CustomerCreated", payload)

    @handles("customers", "CustomerAmended")
    def on_customer_amended(self, payload):
        self._apply_series("CustomerAmended", payload)

    @handles("customers", "OwnerChanged")
    def on_owner_changed(self, payload):
        self._apply_series("OwnerChanged", payload)

    @handles("customers", "CustomerAbandoned")
    def on_customer_abandoned(self, payload):
        self._apply_series("CustomerAbandoned", payload)

    def _apply_series(self, event_type, payload):
        """The customer as last heard of (`series`): its birthday reminders,
        and the reminders that follow its owner."""
        series = domain.series_from_event(event_type, payload)
        if domain.nothing_to_schedule(event_type, series):
            return
        cid = series["_id"]
        now = self.clock.now()
        # One customer's events are applied one at a time, in version order;
        # a busy lock raises and the event comes back a moment later.
        with self._locked(domain.customer_lock(cid)):
            stored = storage.find_series(self.db, cid)
            if not domain.is_newer(series, stored):
                return  # a repeated or out-of-date event
            # Every newer event, not only those whose owner differs from the
            # stored one: the changes in between may still be on their way
            # (pool at v4, 李娜's claim at v5 unheard of, back to the pool
            # at v6: 李娜's revisit must go). Before the series is saved: a
            # crash in between redoes it all.
            self._follow_owner(cid, series["owner_id"], series["version"],
                               domain.former_owner(event_type, payload, stored), now)
            if not domain.same_schedule(series, stored):
                for doc in storage.pending_of_customer(self.db, cid, domain.BIRTHDAY_KINDS):
                    self._cancel_quietly(doc["_id"], now)
                if series["active"]:
                    settings = self._settings(series["owner_id"])
                    self._put_birthday(domain.birthday_reminder(
                        series, int(settings["birthday_lead_days"]), settings["timezone"], now))
            storage.save_series(self.db, series)

    def _follow_owner(self, cid, owner_id, version, former, now):
        """The customer's pending owner's reminders go to its owner at
        `version`, or are cancelled when it went to the pool."""
        for doc in storage.pending_of_customer(self.db, cid, domain.FOLLOWING_KINDS):
            if domain.owner_change_outcome(doc, owner_id, version, former)[0] == domain.STAY:
                continue
            with self._locked(doc["_id"]):
                # again on the fresh document, merged with its firing record:
                # one the firing loop sent meanwhile stays its user's
                current = self._current(doc["_id"])
                if current is None:
                    continue
                action, reason = domain.owner_change_outcome(current, owner_id, version, former)
                if action == domain.MOVE:
                    storage.save_reminder(self.db, domain.moved(current, owner_id, version, now))
                elif action == domain.CANCEL:
                    storage.save_reminder(self.db, domain.cancelled(current, now, reason))
                    storage.dequeue(self.db, current["_id"], current["due_at"])

    def _cancel_quietly(self, rid, now):
        with self._locked(rid):
            # merged with its firing record: one that already fired (stored
            # pending) stays in its owner's list as fired, and his ack counts
            doc = self._current(rid)
            if doc and doc["status"] == rules.PENDING:
                storage.save_reminder(self.db, domain.cancelled(doc, now))
                storage.dequeue(self.db, rid, doc["due_at"])

    def _put_next_birthday(self, doc, now):
        """Next year's reminder of a series, with its owner's settings as they
        are now (a changed lead time or time zone applies from there on)."""
        s = doc["series"]
        try:
            settings = self._settings(s["owner_id"])
            lead_days, tz = int(settings["birthday_lead_days"]), settings["timezone"]
        except Exception:  # noqa: BLE001 - accounts away must not end the series
            log.warning("settings of %s unavailable; next birthday reminder with the last ones",
                        s["owner_id"], exc_info=True)
            lead_days, tz = s["lead_days"], s["tz"]
        self._put_birthday(domain.next_in_series(doc, lead_days, tz, now))

    def _put_birthday(self, doc):
        """Insert a birthday reminder; the same one again (a redelivered
        event, a redone step) revives it if it had been cancelled."""
        try:
            storage.insert_reminder(self.db, doc)
            return
        except storage.AlreadyExists:
            pass
        with self._locked(doc["_id"]):
            existing = storage.find_reminder(self.db, doc["_id"])
            if existing and existing["status"] == rules.CANCELLED:
                # queued first: a crash before the save leaves an entry of a
                # cancelled reminder (dropped), never a pending one without one
                storage.enqueue(self.db, doc["_id"], doc["due_at"])
                storage.save_reminder(self.db, {**doc, "created_at": existing["created_at"]})

    def _settings(self, user_id) -> dict:
        users = self.accounts.get_users([user_id])
        user = users.get(user_id) or {}
        return {**DEFAULT_SETTINGS, **(user.get("settings") or {})}
