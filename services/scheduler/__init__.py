"""Scheduler service: reminders and the firing loop.

Pure scheduling rules (birthday dates, escalation times, status transitions)
live in :mod:`services.scheduler.rules`.
"""
