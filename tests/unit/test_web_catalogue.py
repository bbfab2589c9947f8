"""Every error code the API can answer has its message in the web app's
catalogues, so a rep reads it in his language, not the server's English."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RAISED = re.compile(
    r"\b(?:BadRequest|Unauthenticated|Forbidden|NotFound|Conflict|Invalid|TooManyRequests|"
    r"Unavailable|PayloadTooLarge)\(\s*\"([a-z_]+)\"")
ANSWERED = re.compile(r"error_response\(\s*\d+,\s*\"([a-z_]+)\"")


def codes() -> set[str]:
    found = set()
    for path in [*(ROOT / "services").rglob("*.py"), *(ROOT / "gateway").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        found |= set(RAISED.findall(text)) | set(ANSWERED.findall(text))
    return found


def catalogue(name: str) -> set[str]:
    text = (ROOT / "web" / "src" / "i18n" / name).read_text(encoding="utf-8")
    block = text[text.index("  errors: {"):]
    block = block[:block.index("\n  },")]
    return set(re.findall(r"^    ([a-z_]+):", block, re.M))


def test_every_error_code_has_a_message_in_both_languages():
    found = codes()
    assert {"duplicate_customer", "alarm_required", "invalid_credentials"} <= found
    for name in ("zh-CN.ts", "en.ts"):
        missing = found - catalogue(name)
        assert not missing, f"{name} has no message for {sorted(missing)}"
