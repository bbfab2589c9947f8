"""Access to the one configuration (config.yml, filled from the environment).

Services read `nameko.config`, set by `nameko run --config config.yml`; tests and
scripts load the same file through `load()` so there is one source of truth.
"""

from __future__ import annotations

from pathlib import Path

import nameko
from nameko.cli.utils.config import load_config

ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILE = ROOT / "config.yml"


def load(path: Path | str = CONFIG_FILE) -> dict:
    with open(path, encoding="utf-8") as f:
        return load_config(f)


def get(key: str, default=None):
    return nameko.config.get(key, default)


def require(key: str) -> str:
    """A setting without which the service must not start (secrets)."""
    value = nameko.config.get(key)
    if value in (None, ""):
        raise RuntimeError(f"configuration {key} is not set; refusing to start without it")
    return value


def db_name(service_name: str) -> str:
    return f"{get('MONGO_DB_PREFIX') or ''}{service_name}"


def setting(key: str, default):
    """A tunable (interval, batch size, lease): `default` when unset or empty."""
    value = nameko.config.get(key, default)
    return default if value in (None, "") else value
