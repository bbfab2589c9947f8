"""The provider is chosen by ``CRM_SMS_PROVIDER`` through
:func:`provider_from_config`, which takes the already-loaded configuration
as a dict (this module never reads the environment):

==========  ===============================================================
provider    configuration keys
==========  ===============================================================
``log``     none (the default): the message goes to the ``crm.notify.sms``
            logger
``webhook`` ``webhook_url`` (required; ``url`` is accepted as an alias),
            ``webhook_timeout`` (seconds, default 5)
``aliyun``  ``aliyun_access_key_id``, ``aliyun_access_key_secret``,
            ``aliyun_sign_name``, ``aliyun_template_code`` (all required, no
            defaults), ``aliyun_endpoint`` (default
            ``https://dysmsapi.aliyuncs.com/``), ``aliyun_template_param``
            (the template variable that receives the text, default
            ``text``), ``aliyun_region_id`` (default ``cn-hangzhou``),
            ``aliyun_timeout`` (seconds, default 5)
==========  ===============================================================

Each key may also be given in its config.yml spelling, ``SMS_`` + upper
case (``SMS_PROVIDER``, ``SMS_WEBHOOK_URL``, ``SMS_ALIYUN_ACCESS_KEY_ID``,
...), so the service can pass ``nameko.config`` unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from services.notify.sms.aliyun import ALIYUN_DEFAULT_ENDPOINT, AliyunSmsProvider
from services.notify.sms.attempts import DEFAULT_TIMEOUT, SmsConfigError, SmsProvider
from services.notify.sms.providers import LogProvider, WebhookProvider

PROVIDERS = ("log", "webhook", "aliyun")


def _cfg_key(key: str) -> str:
    """The config.yml spelling of a key: ``webhook_url`` -> ``SMS_WEBHOOK_URL``."""
    return "SMS_" + key.upper()


def _cfg_str(cfg: Mapping[str, Any], *keys: str) -> str | None:
    """First non-blank value among ``keys``, each looked up as given and in
    its config.yml spelling (``${ENV:}`` gives "" for an unset variable,
    which counts as missing)."""
    for key in keys:
        for spelling in (key, _cfg_key(key)):
            value = cfg.get(spelling)
            if value is None:
                continue
            value = str(value).strip()
            if value:
                return value
    return None


def provider_from_config(
    cfg: Mapping[str, Any] | None,
    *,
    session: Any = None,
    clock: Callable[[], datetime] | None = None,
    logger: logging.Logger | None = None,
) -> SmsProvider:
    """Build the provider named by ``provider`` (``CRM_SMS_PROVIDER``; ``log``
    when absent or blank). Raises :class:`SmsConfigError` for an unknown
    name or a missing/invalid setting.

    Keys are read as written in the module docstring (``webhook_url``) or in
    their config.yml spelling (``SMS_PROVIDER``, ``SMS_WEBHOOK_URL``,
    ``SMS_ALIYUN_ACCESS_KEY_ID``, ...), so ``nameko.config`` can be passed
    as it is.
    """
    cfg = {} if cfg is None else cfg
    if not isinstance(cfg, Mapping):
        raise SmsConfigError("SMS configuration must be a mapping")
    name = (_cfg_str(cfg, "provider") or "log").lower()
    if name == "log":
        return LogProvider(logger=logger, clock=clock)
    if name == "webhook":
        url = _cfg_str(cfg, "webhook_url", "url")
        if url is None:
            raise SmsConfigError(
                "CRM_SMS_PROVIDER=webhook needs webhook_url "
                "(SMS_WEBHOOK_URL in config.yml, from CRM_SMS_WEBHOOK_URL)"
            )
        timeout = _cfg_str(cfg, "webhook_timeout", "timeout") or DEFAULT_TIMEOUT
        return WebhookProvider(url, timeout, session=session, clock=clock)
    if name == "aliyun":
        required = (
            "aliyun_access_key_id",
            "aliyun_access_key_secret",
            "aliyun_sign_name",
            "aliyun_template_code",
        )
        values = {key: _cfg_str(cfg, key) for key in required}
        missing = [key for key, value in values.items() if value is None]
        if missing:
            raise SmsConfigError(
                "CRM_SMS_PROVIDER=aliyun needs "
                + ", ".join(f"{key} ({_cfg_key(key)})" for key in missing)
            )
        return AliyunSmsProvider(
            values["aliyun_access_key_id"],  # type: ignore[arg-type]
            values["aliyun_access_key_secret"],  # type: ignore[arg-type]
            values["aliyun_sign_name"],  # type: ignore[arg-type]
            values["aliyun_template_code"],  # type: ignore[arg-type]
            _cfg_str(cfg, "aliyun_endpoint") or ALIYUN_DEFAULT_ENDPOINT,
            template_param=_cfg_str(cfg, "aliyun_template_param") or "text",
            region_id=_cfg_str(cfg, "aliyun_region_id") or "cn-hangzhou",
            timeout=_cfg_str(cfg, "aliyun_timeout", "timeout") or DEFAULT_TIMEOUT,
            session=session,
            clock=clock,
        )
    raise SmsConfigError(f"unknown CRM_SMS_PROVIDER {name!r}; one of {', '.join(PROVIDERS)}")
