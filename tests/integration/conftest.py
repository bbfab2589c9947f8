import uuid

import pytest

from services.common.mongo import make_client
from tests.conftest import DB_PREFIX
from tests.integration import query_plans  # noqa: F401 - its listener must precede every client


@pytest.fixture
def service_config(rabbit_uri, crm_base_config):
    """Real RabbitMQ (a vhost of this test's own) and real FerretDB (a
    database prefix of this test's own)."""
    prefix = f"{DB_PREFIX}{uuid.uuid4().hex[:6]}_"
    return {**crm_base_config, "AMQP_URI": rabbit_uri, "MONGO_DB_PREFIX": prefix}


@pytest.fixture
def mongo_client(crm_base_config):
    client = make_client(crm_base_config["MONGO_URI"])
    yield client
    client.close()


@pytest.fixture
def db_of(service_config, mongo_client):
    def db(service_name):
        return mongo_client[service_config["MONGO_DB_PREFIX"] + service_name]

    return db
