"""Keys of the duplicate guard (撞单): company name, phone, credit code, e-mail.

Pure functions, one module per key: `regions` (China's administrative
divisions), `names` (company names), `name_claims` (the append-only claim log
per name), `near_matches` (similar names), `phones`, `credit_codes`, `emails`;
`text` holds the error type and the text cleaning they share. The decisions
(what makes two names the same company) are documented in `names`.
"""

from __future__ import annotations

from services.customers.normalize.credit_codes import (  # noqa: F401
    credit_code_check_char,
    credit_code_key,
    normalize_credit_code,
)
from services.customers.normalize.emails import (  # noqa: F401
    FREE_MAIL_DOMAINS,
    email_domain_hint,
    email_keys,
    is_free_mail_domain,
    matched_on_for_key,
    normalize_email,
    normalize_emails,
)
from services.customers.normalize.name_claims import (  # noqa: F401
    NAME_CLAIM_PREFIX,
    NameClaimDecision,
    name_claim_decision,
    name_claim_entry,
    name_release_entry,
)
from services.customers.normalize.names import (  # noqa: F401
    NameKey,
    names_match,
    normalize_company_name,
    same_company_name,
)
from services.customers.normalize.near_matches import (  # noqa: F401
    SIMILAR_THRESHOLD,
    name_search_grams,
    similarity,
)
from services.customers.normalize.phones import (  # noqa: F401
    normalize_phone,
    normalize_phones,
    phone_key,
)
from services.customers.normalize.regions import (  # noqa: F401
    region_key,
    regions_compatible,
)
from services.customers.normalize.text import (  # noqa: F401
    InvalidField,
)

__all__ = [
    "FREE_MAIL_DOMAINS",
    "NAME_CLAIM_PREFIX",
    "SIMILAR_THRESHOLD",
    "InvalidField",
    "NameClaimDecision",
    "NameKey",
    "credit_code_check_char",
    "credit_code_key",
    "email_domain_hint",
    "email_keys",
    "is_free_mail_domain",
    "matched_on_for_key",
    "name_claim_decision",
    "name_claim_entry",
    "name_release_entry",
    "name_search_grams",
    "names_match",
    "normalize_company_name",
    "normalize_credit_code",
    "normalize_email",
    "normalize_emails",
    "normalize_phone",
    "normalize_phones",
    "phone_key",
    "region_key",
    "regions_compatible",
    "same_company_name",
    "similarity",
]
