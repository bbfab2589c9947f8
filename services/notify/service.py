"""notify: the in-app inbox, SMS escalation and its deliveries.

A `ReminderDue` becomes a notification; notify then asks the scheduler for
an escalation check at fired_at + N minutes. When that check fires
(`ReminderDue` of kind `escalation`) and the notification is still not
acknowledged, the SMS goes out exactly once: inserting the delivery document
(its `_id` is the notification id) is the claim. Failed attempts are retried
with exponential backoff by a timer, never by sleeping in an event worker.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

import eventlet
import nameko
from nameko.extensions import DependencyProvider

from services.common import clock as clock_module
from services.common import config
from services.common.errors import Invalid, NotFound
from services.common.events import event, handles
from services.common.mongo import Mongo
from services.common.rpc import Rpc
from services.common.service import ServiceBase, rpc
from services.common.timers import ConfigTimer
from services.common.validation import parse
from services.notify import domain, schemas, storage
from services.notify.sms import (
    DEFAULT_BASE_DELAY,
    DEFAULT_MAX_ATTEMPTS,
    attempt,
    provider_from_config,
)

log = logging.getLogger(__name__)

TERMINAL = (domain.SENT, domain.FAILED, domain.SKIPPED, domain.CANCELLED)


class SmsProvider(DependencyProvider):
    """The provider named by CRM_SMS_PROVIDER, built once at start: a
    misconfigured provider (aliyun without its keys) stops the service
    from starting instead of failing on the first SMS."""

    def setup(self):
        self.provider = provider_from_config(nameko.config, clock=clock_module.now)

    def get_dependency(self, worker_ctx):
        return self.provider


class Users:
    """Users from accounts (phone, settings), cached a few seconds: a burst
    of reminders for one rep asks accounts once, and a changed setting still
    applies within NOTIFY_USER_CACHE_SECONDS."""

    cache: dict[str, tuple[float, dict]] = {}

    @classmethod
    def get(cls, accounts, user_id: str) -> dict:
        ttl = float(config.get("NOTIFY_USER_CACHE_SECONDS", 5))
        hit = cls.cache.get(user_id)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        user = accounts.get_users([user_id]).get(user_id) or {}
        cls.cache[user_id] = (time.monotonic() + ttl, user)
        return user


class NotifyService(ServiceBase):
    name = "notify"

    db = Mongo(storage.ensure_indexes)
    accounts = Rpc("accounts")
    scheduler = Rpc("scheduler")
    sms = SmsProvider()

    # ------------------------------------------------------------------
    # the inbox over the API

    @rpc
    def list_notifications(self, actor, query=None):
        q = parse(schemas.NotificationQuery, query or {})
        try:
            docs, total, more = storage.list_notifications(self.db, actor["id"], q.unread, q.skip,
                                                           q.page_size, q.after)
        except storage.UnknownCursor:
            raise Invalid.fields({"after": "not one of your notifications"}) from None
        deliveries = storage.find_deliveries(
            self.db, [d["_id"] for d in docs if d.get("escalation")])
        return {"items": [domain.view(d, deliveries.get(d["_id"])) for d in docs],
                "total": total, "next": docs[-1]["_id"] if more else None}

    @rpc
    def get_notification(self, actor, notification_id):
        doc = self._own(actor, notification_id)
        return domain.view(doc, storage.find_delivery(self.db, doc["_id"]))

    @rpc
    def acknowledge(self, actor, notification_id):
        """Idempotent: a second ack answers the same and emits nothing."""
        doc = storage.acknowledge(self.db, notification_id, actor["id"], self.clock.now())
        if doc is None:
            doc = self._own(actor, notification_id)
        else:
            self.dispatch("NotificationAcknowledged", event(
                notification_id=doc["_id"], user_id=doc["user_id"],
                reminder_id=(doc.get("ref") or {}).get("reminder_id")))
        return domain.view(doc, storage.find_delivery(self.db, doc["_id"]))

    @rpc
    def mark_read(self, actor, notification_id):
        doc = storage.mark_read(self.db, notification_id, actor["id"])
        if doc is None:
            raise NotFound("not_found", "no such notification")
        return domain.view(doc, storage.find_delivery(self.db, doc["_id"]))

    @rpc
    def stream_resume(self, actor, last_event_id):
        """When the user's notification `last_event_id` was created (ISO), for
        a live stream that reconnects after it; None if it is not his."""
        user_id = actor["id"]
        doc = storage.find_notification(self.db, str(last_event_id))
        if doc is None or doc["user_id"] != user_id:
            return None
        return doc["created_at"].isoformat()

    @rpc
    def stream_poll(self, actor, last_seq, since):
        """For the live stream: the user's head, and when it moved past
        `last_seq`, the notifications created since `since` (ISO)."""
        user_id = actor["id"]
        seq = storage.head(self.db, user_id)
        if seq == last_seq:
            return {"seq": seq, "items": []}
        docs = storage.created_since(self.db, user_id, datetime.fromisoformat(since))
        return {"seq": seq, "items": [domain.view(d) for d in docs]}

    @rpc
    def sms_attempts(self, notification_id):
        """Every stored attempt of a notification's SMS (operators, tests)."""
        return [{**{k: v for k, v in a.items() if k not in ("_id", "at")},
                 "at": a["at"].isoformat()} for a in storage.attempts_of(self.db, notification_id)]

    def _own(self, actor, notification_id) -> dict:
        doc = storage.find_notification(self.db, notification_id)
        if doc is None or doc["user_id"] != actor["id"]:
            raise NotFound("not_found", "no such notification")
        return doc

    # ------------------------------------------------------------------
    # reminders and their escalation

    @handles("scheduler", "ReminderDue")
    def on_reminder_due(self, payload):
        if payload.get("kind") == "escalation":
            self._escalate(payload)
        else:
            self._show_reminder(payload)

    def _show_reminder(self, p):
        now = self.clock.now()
        settings = None
        if p.get("escalate_after_minutes") is None:
            settings = Users.get(self.accounts, p["user_id"]).get("settings")
        doc = domain.reminder_notification(p, now)
        doc["escalation"] = domain.escalation_plan(p, settings)
        if doc["escalation"] and self._withheld(doc):
            # fired just before its customer changed hands: shown to the
            # user it fired for, never escalated to his phone
            doc["escalation"] = None
        doc, new = storage.insert_notification(self.db, doc)
        storage.bump_head(self.db, doc["user_id"], now)
        if doc.get("escalation") and not doc["acknowledged"]:
            # Idempotent on the scheduler's side: a redelivered event asks again.
            self.scheduler.schedule_escalation({
                "notification_id": doc["_id"], "user_id": doc["user_id"],
                "reminder_id": p["reminder_id"], "title": doc["title"][:200],
                "due_at": doc["escalation"]["due_at"].isoformat(),
                "customer_id": p.get("customer_id"),
            })

    def _escalate(self, p):
        nid = p.get("escalation_of")
        doc = storage.find_notification(self.db, nid) if nid else None
        if doc is None:
            log.warning("escalation for unknown notification %s", nid)
            return
        if doc["acknowledged"]:
            return  # seen in time: no SMS
        now = self.clock.now()
        withheld = self._withheld(doc)
        if withheld:
            # recorded, so the inbox item says why no SMS came
            storage.claim_delivery(self.db, domain.stopped(
                domain.new_delivery(doc, None, "", now), now, withheld))
            return
        user = Users.get(self.accounts, doc["user_id"])
        tz = (user.get("settings") or {}).get("timezone") or user.get("timezone")
        delivery = domain.new_delivery(doc, user.get("phone"), domain.sms_text(doc, tz), now)
        # The delivery first, then its attempt entry: the retry loop must never
        # find an entry whose delivery is not there yet (it would take it for
        # a finished one and drop it). A worker that dies in between leaves a
        # delivery without an entry: the redelivered event finds the delivery
        # claimed and makes the entry.
        if not storage.claim_delivery(self.db, delivery):
            delivery = storage.find_delivery(self.db, nid)
            if delivery and delivery["status"] not in TERMINAL:
                storage.ensure_retry(self.db, nid, now)  # leaves a running attempt alone
            return  # this notification's SMS is already someone's
        if delivery["status"] == domain.SENDING:
            storage.ensure_retry(self.db, nid, now)
            self._attempt(nid)

    def _withheld(self, notification) -> str | None:
        """Why `notification` must not reach its user's phone (None: it may)."""
        if notification.get("owner_version") is None:
            return None  # not an owner's reminder: no look-up
        owner = storage.find_owner(self.db, (notification.get("ref") or {}).get("customer_id"))
        return domain.sms_withheld(notification, owner)

    @ConfigTimer.decorator("SMS_RETRY_TICK_SECONDS", 0.5, eager=True)
    def retry_due(self):
        now = self.clock.now()
        pool = eventlet.GreenPool(4)
        list(pool.imap(self._attempt, [r["_id"] for r in storage.due_retries(self.db, now)]))

    def _attempt(self, nid):
        """One attempt of a delivery, if it is due and this worker claims it."""
        now = self.clock.now()
        lease = timedelta(seconds=float(config.setting("SMS_LEASE_SECONDS", 60)))
        if not storage.claim_retry(self.db, nid, now, now + lease):
            return
        delivery = storage.find_delivery(self.db, nid)
        if delivery is None or delivery["status"] in TERMINAL:
            storage.drop_retry(self.db, nid)
            return
        notification = storage.find_notification(self.db, nid)
        if notification is None or notification["acknowledged"]:
            storage.save_delivery(self.db, domain.stopped(delivery, now))
            storage.drop_retry(self.db, nid)
            return
        withheld = self._withheld(notification)
        if withheld:  # a retry queued before the customer changed hands
            storage.save_delivery(self.db, domain.stopped(delivery, now, withheld))
            storage.drop_retry(self.db, nid)
            return
        tried = attempt(self.sms, delivery["to"], delivery["text"], clock=clock_module.now)
        storage.record_attempt(self.db, nid, {**tried.to_dict(),
                                              "n": len(delivery["attempts"]) + 1})
        delivery = domain.after_attempt(
            delivery, tried,
            int(float(config.setting("SMS_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))),
            float(config.setting("SMS_BASE_DELAY_SECONDS", DEFAULT_BASE_DELAY)),
            self.clock.now())
        storage.save_delivery(self.db, delivery)
        if delivery["status"] == domain.RETRYING:
            storage.schedule_retry(self.db, nid, delivery["next_attempt_at"])
        else:
            storage.drop_retry(self.db, nid)
            log.info("SMS for notification %s: %s after %d attempt(s)", nid,
                     delivery["status"], len(delivery["attempts"]))

    # ------------------------------------------------------------------
    # other services' events

    @handles("customers", "AlarmRaised")
    def on_alarm_raised(self, payload):
        managers = self._managers([payload.get("team_id")])
        self._store(domain.alarm_raised(payload, managers, self.clock.now()))

    @handles("customers", "AlarmResolved")
    def on_alarm_resolved(self, payload):
        self._store(domain.alarm_resolved(payload, self.clock.now()))

    @handles("customers", "DisputeFiled")
    def on_dispute_filed(self, payload):
        managers = self._managers([payload.get("team_id"), payload.get("claimant_team_id")])
        self._store(domain.dispute_filed(payload, managers, self.clock.now()))

    @handles("customers", "AmendmentRequested")
    def on_amendment_requested(self, payload):
        managers = self._managers([payload.get("team_id")])
        self._store(domain.amendment_requested(payload, managers, self.clock.now()))

    @handles("customers", "ReadLimitReached")
    def on_read_limit_reached(self, payload):
        managers = self._managers([payload.get("team_id")])
        self._store(domain.read_limit(payload, managers, self.clock.now()))

    @handles("customers", "OwnerChanged")
    def on_owner_changed(self, payload):
        self._note_owner("OwnerChanged", payload)
        self._store(domain.owner_changed(payload, self.clock.now()))

    @handles("customers", "CustomerAbandoned")
    def on_customer_abandoned(self, payload):
        self._note_owner("CustomerAbandoned", payload)

    def _note_owner(self, event_type, payload):
        """From here on, the SMS of the former owner's reminders about the
        customer stay unsent (`_withheld`), queued retries included."""
        owner_id, version = domain.owner_of_event(event_type, payload)
        storage.note_owner(self.db, payload["customer_id"], owner_id, version, self.clock.now())

    @handles("knowledge", "AnswerPosted")
    def on_answer_posted(self, payload):
        self._store(domain.answer_posted(payload, self.clock.now()))

    @handles("knowledge", "AnswerAccepted")
    def on_answer_accepted(self, payload):
        self._store(domain.answer_accepted(payload, self.clock.now()))

    def _store(self, docs):
        for doc in docs:
            doc, _ = storage.insert_notification(self.db, doc)
            storage.bump_head(self.db, doc["user_id"], self.clock.now())

    def _managers(self, team_ids) -> list[str]:
        return sorted(u["id"] for u in self.accounts.team_managers(list(team_ids)))
