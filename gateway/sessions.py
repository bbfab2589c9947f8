"""Is a verified token still good? Its user may have been disabled, or his
tokens revoked (a new password, a new role or team) since it was signed.

Each gateway keeps the users' session state (active, token generation) for
SESSION_CHECK_SECONDS, asking accounts when it runs out; accounts' broadcast
`UserChanged` drops a user's entry on every gateway at once, and the gateway
that served the change drops it before answering. So a disabled user's next
request is refused, and a lost broadcast costs at most SESSION_CHECK_SECONDS.
"""

from __future__ import annotations

import threading
import time

from services.common import config
from services.common.errors import Unauthenticated
from services.common.principal import Principal


class Sessions:
    def __init__(self):
        self._lock = threading.Lock()
        self._state: dict[str, tuple[dict, float]] = {}

    def forget(self, user_id: str) -> None:
        with self._lock:
            self._state.pop(user_id, None)

    def state(self, accounts, user_id: str) -> dict | None:
        ttl = float(config.setting("SESSION_CHECK_SECONDS", 5))
        now = time.monotonic()
        with self._lock:
            got = self._state.get(user_id)
        if got and got[1] > now:
            return got[0]
        state = accounts.session_state([user_id]).get(user_id)
        if state is not None:
            with self._lock:
                self._state[user_id] = (state, now + ttl)
        return state

    def check(self, accounts, user: Principal) -> None:
        """401 unless the user exists, is active, and the token is of his
        current generation."""
        state = self.state(accounts, user.id)
        if state is None:
            raise Unauthenticated("invalid_token", "this user no longer exists")
        if not state["active"]:
            raise Unauthenticated("account_disabled", "this account is disabled")
        if user.generation < state["generation"]:
            raise Unauthenticated("session_revoked",
                                  "this session has ended (a new password or new rights): "
                                  "sign in again")


SESSIONS = Sessions()
