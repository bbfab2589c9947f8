"""SMS providers of the notify service and their retry policy: `attempts`
(the Attempt record, the provider protocol, one try, the retry delays),
`phones` (numbers as each vendor wants them), `providers` (log, webhook),
`aliyun` (dysmsapi SendSms) and `config` (the provider that CRM_SMS_PROVIDER
names, built from the loaded configuration).

Every `send(to, text)` returns an Attempt and never raises for a delivery
failure; it raises only for configuration errors (SmsConfigError) and an
empty number or text (ValueError).
"""

from __future__ import annotations

from services.notify.sms.aliyun import (  # noqa: F401
    ALIYUN_DEFAULT_ENDPOINT,
    AliyunSmsProvider,
    aliyun_canonical_query,
    aliyun_percent_encode,
    aliyun_sign,
    aliyun_string_to_sign,
)
from services.notify.sms.attempts import (  # noqa: F401
    DEFAULT_BASE_DELAY,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TIMEOUT,
    FAILED,
    SENT,
    Attempt,
    SmsConfigError,
    SmsProvider,
    attempt,
    log,
    retry_delay,
)
from services.notify.sms.config import (  # noqa: F401
    PROVIDERS,
    provider_from_config,
)
from services.notify.sms.phones import (  # noqa: F401
    aliyun_phone_number,
    e164_phone,
)
from services.notify.sms.providers import (  # noqa: F401
    LogProvider,
    WebhookProvider,
)
