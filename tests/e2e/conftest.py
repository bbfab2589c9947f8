"""Fixtures the e2e modules share beyond the stack's (tests/stack_fixtures.py)."""

import os

import pytest
from pymongo import MongoClient


@pytest.fixture(scope="module")
def db(stack):
    """The customers database of the running stack, read directly."""
    client = MongoClient(os.environ.get("CRM_MONGO_URI", "mongodb://127.0.0.1:27017/"),
                         tz_aware=True, serverSelectionTimeoutMS=3000)
    yield client[stack.prefix + "customers"]
    client.close()
