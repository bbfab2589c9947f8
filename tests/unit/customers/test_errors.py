"""The customers domain's errors and their mapping at the entrypoint."""

import inspect

import pytest

from services.common import errors as rpc_errors
from services.common.credentials import Caller
from services.common.service import rpc_mapping
from services.customers.errors import (
    CustomerError,
    InvalidFields,
    NotAllowed,
    NotVisible,
    Refused,
    Throttled,
    to_rpc,
)


@pytest.mark.parametrize(("domain_error", "status", "rpc_error"), [
    (NotVisible, 404, rpc_errors.NotFound), (NotAllowed, 403, rpc_errors.Forbidden),
    (Refused, 409, rpc_errors.Conflict), (InvalidFields, 422, rpc_errors.Invalid),
    (Throttled, 429, rpc_errors.TooManyRequests)])
def test_each_domain_error_maps_to_one_rpc_error(domain_error, status, rpc_error):
    answer = to_rpc(domain_error("some_code", "why", {"matches": [1]}))
    assert type(answer) is rpc_error and answer.status == status
    assert answer.body() == {"error": "some_code", "message": "why", "matches": [1]}


def test_invalid_fields_name_their_fields():
    answer = to_rpc(InvalidFields.fields({"phones": "#2 is not a phone number"}))
    assert answer.body()["fields"] == {"phones": "#2 is not a phone number"}


class _Service:
    """A service worker whose caller is a verified service."""

    class caller:  # noqa: N801
        address = None

        @staticmethod
        def verify():
            return Caller("service", service="tests")


def test_an_entrypoint_raises_the_mapped_error_and_keeps_its_signature():
    def change(self, customer_id, body=None):
        raise Refused("busy", "try again")

    entrypoint = rpc_mapping(CustomerError, to_rpc)(change)
    with pytest.raises(rpc_errors.Conflict) as refused:
        entrypoint(_Service(), "c1")
    assert refused.value.code == "busy"
    with pytest.raises(TypeError):  # nameko's signature check still sees the real one
        inspect.getcallargs(entrypoint, None, "c1", {}, "extra")
