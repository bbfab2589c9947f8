"""The password policy, as a pure function: what a new password must be.

Long enough (characters, not bytes: a Chinese phrase counts what it shows),
not absurdly long, not built on the username, and not a password that
leaked-password lists and simple patterns make easy to guess. The last is
zxcvbn's estimate (its frequency lists come from leaked passwords and common
words and names), told the username and the person's name as well.

zxcvbn's matching grows faster than linearly with the input (and zxcvbn 4.5
refuses more than 72 characters outright): it sees the first
CHECKED_CHARACTERS only (a strong prefix makes a strong password), and the
service runs it off the eventlet hub (see service._check_password).
"""

from __future__ import annotations

from zxcvbn import zxcvbn

from services.common.errors import Invalid

MIN_LENGTH = 10
MAX_LENGTH = 128
# zxcvbn's score: 0 too guessable ... 4 very unguessable; 3 is "safely
# unguessable: moderate protection from offline slow-hash scenario".
MIN_SCORE = 3
CHECKED_CHARACTERS = 64

TOO_SHORT = f"must be at least {MIN_LENGTH} characters"
TOO_LONG = f"must be at most {MAX_LENGTH} characters"
HAS_USERNAME = "must not contain the username"
TOO_EASY = "is too easy to guess (a common or leaked password, or a simple pattern)"


def password_problem(password: str, username: str = "", name: str = "") -> str | None:
    """Why `password` is not acceptable for this user, in English; None if it is."""
    if len(password) < MIN_LENGTH:
        return TOO_SHORT
    if len(password) > MAX_LENGTH:
        return TOO_LONG
    if username and username.casefold() in password.casefold():
        return HAS_USERNAME
    inputs = [s for s in (username, name) if s]
    result = zxcvbn(password[:CHECKED_CHARACTERS], user_inputs=inputs)
    if result["score"] < MIN_SCORE:
        warning = (result.get("feedback") or {}).get("warning") or ""
        return f"{TOO_EASY}: {warning}" if warning else TOO_EASY
    return None


def check_password(password: str, username: str = "", name: str = "",
                   field: str = "password") -> None:
    """Raise Invalid (422, `fields: {<field>: why}`) unless `password` is acceptable."""
    problem = password_problem(password, username, name)
    if problem:
        raise Invalid.fields({field: problem}, "the password is not acceptable")
