"""E-mail addresses as keys; free-mail domains say nothing about the company."""

from __future__ import annotations

import re
from collections.abc import Iterable

from services.customers.normalize.text import InvalidField, _visible, normalize_each

# --------------------------------------------------------------------------
# E-mail
# --------------------------------------------------------------------------

FREE_MAIL_DOMAINS = frozenset(
    {
        "qq.com", "vip.qq.com", "foxmail.com", "163.com", "126.com", "yeah.net", "188.com",
        "vip.163.com", "vip.126.com", "sina.com", "sina.cn", "vip.sina.com", "sohu.com",
        "vip.sohu.com", "139.com", "189.cn", "wo.cn", "aliyun.com", "tom.com", "21cn.com",
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com",
        "yahoo.com", "yahoo.com.cn", "ymail.com", "icloud.com", "me.com", "mac.com",
        "aol.com", "proton.me", "protonmail.com", "mail.com", "gmx.com", "yandex.com",
        "hotmail.com.cn", "outlook.com.cn", "live.cn",
    }
)  # fmt: skip
_EMAIL = re.compile(
    r"^(?=.{3,254}$)(?=[^@]{1,64}@)"
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$"
)


def normalize_email(raw: str | None, field: str = "email") -> str | None:
    """The e-mail address as a key: trimmed, lower case; None when blank.

    Full-width characters and a Chinese full stop (。) in the domain are
    tolerated, a 'mailto:' prefix and <angle brackets> removed, an
    internationalized domain turned into its xn-- form. Only the basic shape
    is checked (one @, a dotted domain with a real TLD); no DNS.
    Provider tricks (gmail dots, +tags) are deliberately not folded.
    """
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidField(field, "must be a string")
    text = _visible(raw).strip().strip("<>").strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    if not text:
        return None
    local, sep, domain = text.rpartition("@")
    if not sep:
        raise InvalidField(field, "is not an e-mail address")
    domain = domain.replace("。", ".").replace("．", ".").rstrip(".")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidField(field, "has an invalid domain") from None
    address = f"{local}@{domain}".lower()
    if not _EMAIL.match(address):
        raise InvalidField(field, "is not an e-mail address")
    return address


def normalize_emails(raws: Iterable[str | None] | None, field: str = "emails") -> list[str]:
    """Normalize a list of e-mails: blanks skipped, duplicates merged, order kept."""
    return normalize_each(raws, normalize_email, field)


def is_free_mail_domain(domain: str) -> bool:
    return domain.lower() in FREE_MAIL_DOMAINS


def email_keys(email: str | None) -> list[str]:
    """Plain unique claim keys of an e-mail: the full address only.

    API.md: companies are the same when they share "an e-mail address", and a
    free-mail domain alone never makes them the same. A company domain is not
    a key either: group companies and their subsidiaries share one
    (huawei.com), so it would refuse legitimate customers; it is a
    ``similar`` hint instead (:func:`email_domain_hint`).
    """
    address = normalize_email(email)
    return ["email:" + address] if address else []


def email_domain_hint(email: str | None) -> str | None:
    """The company domain of an address for ``similar`` hints; None for free mail."""
    address = normalize_email(email)
    if not address:
        return None
    domain = address.rpartition("@")[2]
    return None if is_free_mail_domain(domain) else domain


def matched_on_for_key(key: str) -> str:
    """The ``matched_on`` label of a claim key ('phone:+86…' -> 'phone')."""
    kind = key.partition(":")[0]
    return {"name": "company_name", "phone": "phone", "credit": "credit_code", "email": "email"}[
        kind
    ]
