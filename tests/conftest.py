# eventlet must patch before anything imports socket or threading.
import eventlet

eventlet.monkey_patch()

import os  # noqa: E402
import uuid  # noqa: E402
from urllib.parse import urljoin  # noqa: E402

import nameko  # noqa: E402
import pytest  # noqa: E402

from services.common import config as crm_config  # noqa: E402
from services.common import rpc as _crm_rpc  # noqa: E402, F401 (typed errors cross RPC)

# The stack and its users (loaded here so tests/e2e and tests/web share one).
pytest_plugins = ["tests.stack_fixtures"]

RUN_ID = uuid.uuid4().hex[:8]
TEST_SECRET = "test-secret-of-this-run-" + RUN_ID + "-" + uuid.uuid4().hex
DB_PREFIX = f"t{RUN_ID}_"


@pytest.fixture(scope="session", autouse=True)
def crm_base_config():
    """config.yml, as the services read it, with a database prefix of this
    run's own so tests never touch a developer's data."""
    base = crm_config.load()
    base.update({
        "MONGO_DB_PREFIX": DB_PREFIX,
        "JWT_SECRET": TEST_SECRET,
        "ADMIN_PASSWORD": "总部-钥匙-" + RUN_ID,
        "LOGGING": None,
    })
    base.pop("LOGGING")
    nameko.config.setup(base)
    yield base
    if os.environ.get("CRM_KEEP_TEST_DB") != "1":
        from services.common.mongo import make_client

        client = make_client(base["MONGO_URI"])
        try:
            for name in client.list_database_names():
                if name.startswith(DB_PREFIX):
                    client.drop_database(name)
        except Exception:  # noqa: BLE001 - unit-only runs have no database
            pass
        finally:
            client.close()


@pytest.fixture
def web_session(web_config_port):
    """nameko's fixture imports werkzeug.urls.url_join, gone in werkzeug 3."""
    from requests import Session

    class WebSession(Session):
        def request(self, method, url, *args, **kwargs):
            url = urljoin(f"http://127.0.0.1:{web_config_port}/", url)
            return Session.request(self, method, url, *args, **kwargs)

    sess = WebSession()
    with sess:
        yield sess
