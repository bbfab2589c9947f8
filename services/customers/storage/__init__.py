"""MongoDB access of the customers service, one module per aggregate:
`customers` (the records, their list and name index, the pool, exports),
`claims` (the duplicate guard's keys and shared phones), `followups`,
`audit` (the hash-chained trail), `amendments`, `alarms` (and
abandonments), `disputes`, `stages` (the list and stage changes),
`referrals`, `locks` (short leases that serialize edits of one record),
`report`, and `reads` (the read log, the bulk-read guard's counters, the
read settings, the export runs). `indexes` creates every index at start.

Every state transition is one conditional write (`find_one_and_update` on a
status, a version or a `used_at`), so two racing requests get exactly one
winner; uniqueness that matters is a unique index, never a read-then-write.

Collections and document shapes
"""

from __future__ import annotations

from services.customers.storage.alarms import (  # noqa: F401
    AlarmOpen,
    find_alarm,
    insert_abandonment,
    insert_alarm,
    latest_alarm,
    list_alarms,
    open_alarm_of,
    release_alarm,
    reopen_alarm,
    resolve_alarm,
    use_alarm,
    void_alarm,
)
from services.customers.storage.amendments import (  # noqa: F401
    find_amendment,
    finish_amendment,
    insert_amendment,
    list_amendments,
    start_applying,
)
from services.customers.storage.audit import (  # noqa: F401
    AUDIT_APPEND_ATTEMPTS,
    append_audit,
    audit_entries,
    audit_trail,
    start_audit,
)
from services.customers.storage.claims import (  # noqa: F401
    MAX_STREAM_ENTRIES,
    NAME_CLAIM_ATTEMPTS,
    STREAM_READ_BATCH,
    claim_keys,
    claim_order,
    claim_record,
    holders,
    list_shared_phones,
    mark_shared_phone,
    read_stream,
    release_keys,
    release_quietly,
    shared_phones,
)
from services.customers.storage.customers import (  # noqa: F401
    NAME_TERM_SLOTS,
    NEWEST_FIRST,
    _slots,
    claim_from_pool,
    customer_exists,
    customers_after,
    customers_page,
    find_customer,
    find_customers,
    index_name,
    insert_customer,
    list_customers,
    log,
    term_postings,
    unindex_name,
    update_customer,
)
from services.customers.storage.disputes import (  # noqa: F401
    DisputeOpen,
    find_dispute,
    insert_dispute,
    list_disputes,
    reopen_dispute,
    resolve_dispute,
    void_dispute,
)
from services.customers.storage.followups import (  # noqa: F401
    insert_followup,
    list_followups,
)
from services.customers.storage.indexes import (  # noqa: F401
    CUSTOMER_INDEXES,
    OLD_CUSTOMER_INDEXES,
    OLD_TERM_SHARDS,
    ensure_indexes,
)
from services.customers.storage.locks import (  # noqa: F401
    Locked,
    acquire_lock,
    release_lock,
)
from services.customers.storage.paging import (  # noqa: F401
    IN_CHUNK,
    OLDEST_FIRST,
)
from services.customers.storage.reads import (  # noqa: F401
    count_exported,
    ensure_read_indexes,
    find_export,
    find_read,
    finish_export,
    get_settings,
    insert_export,
    insert_read,
    list_alerts,
    list_reads,
    mark_alerted,
    mark_refused,
    open_in_quota,
    put_settings,
)
from services.customers.storage.referrals import (  # noqa: F401
    NODE_FIELDS,
    referral_children,
    referral_counts,
    referral_parent,
)
from services.customers.storage.report import (  # noqa: F401
    integrity_counts,
)
from services.customers.storage.stages import (  # noqa: F401
    STAGES_ID,
    get_stages,
    insert_stage_change,
    put_stages,
    stage_changes_of,
)
