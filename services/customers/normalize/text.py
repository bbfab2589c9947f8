"""What every normalizer shares: the 422 error naming a field, and the
cleaning of invisible characters."""

from __future__ import annotations

import re
import unicodedata


class InvalidField(ValueError):
    """A field that cannot be normalized; the service maps it to 422
    ``{"error": ..., "fields": {field: reason}}``.

    ``args`` are exactly ``(field, reason)`` so the exception pickles and
    survives nameko's (de)serialization of exception arguments.
    """

    def __init__(self, field: str, reason: str):
        super().__init__(field, reason)
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


# Unicode's Default_Ignorable_Code_Point set (DerivedCoreProperties.txt,
# Unicode 15.1): code points that render as nothing, so "恒通\u3164贸易" looks
# exactly like 恒通贸易. NFKC keeps them (U+3164 and U+FFA0 even become
# U+1160), and the Hangul fillers are letters to \w, so the punctuation pass
# would keep them inside a key; a zero-width space would split a region
# prefix (深\u200b圳市...) from the index. Listed here because the standard
# library does not expose the property.
_IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)


def _visible(text: str) -> str:
    """NFKC (full width -> half width) without the invisible code points."""
    return _IGNORABLE.sub("", unicodedata.normalize("NFKC", text))


def normalize_each(raws, normalize_one, field: str) -> list[str]:
    """A list through `normalize_one(raw, field)`: blanks skipped, duplicates
    merged, order kept; an invalid item is named by its place (#2 ...)."""
    out: list[str] = []
    for i, raw in enumerate(raws or ()):
        try:
            value = normalize_one(raw, field)
        except InvalidField as exc:
            raise InvalidField(field, f"#{i + 1} {exc.reason}") from None
        if value and value not in out:
            out.append(value)
    return out
