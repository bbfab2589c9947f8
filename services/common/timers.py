"""A nameko timer whose interval is a setting, read when the service starts
(the class body is read before the configuration is loaded)."""

from __future__ import annotations

from nameko.timer import Timer

from services.common import config


class ConfigTimer(Timer):
    """`@ConfigTimer.decorator("KEY", default_seconds, eager=...)`; eager: the
    first tick runs at start, so what fell due while the service was down
    runs at once."""

    def __init__(self, key: str, default: float, **kwargs):
        super().__init__(interval=default, **kwargs)
        self.key = key
        self.default = default

    def setup(self):
        self.interval = float(config.setting(self.key, self.default))
        super().setup()
