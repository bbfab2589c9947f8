"""Notify service: in-app notifications and SMS deliveries.

SMS providers and the retry policy live in :mod:`services.notify.sms`.
"""
