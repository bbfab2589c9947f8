"""The event contracts: every event that flows has a model, the published
catalogue is the one the models generate, and a payload that breaks its
contract is refused before it leaves the emitter."""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.common import contracts
from services.common.events import event

ROOT = Path(__file__).resolve().parents[2]


def test_every_subscribed_event_has_a_model_of_its_source():
    assert {name for _, name in contracts.SUBSCRIPTIONS} == set(contracts.EVENTS)
    for (source, name), _ in contracts.SUBSCRIPTIONS.items():
        assert contracts.EVENTS[name].source == source


def test_the_published_catalogue_is_generated_from_the_models():
    on_disk = json.loads((ROOT / "docs" / "events.json").read_text())
    assert on_disk == json.loads(json.dumps(contracts.catalogue())), (
        "regenerate: python -m services.common.contracts > docs/events.json")
    stage = on_disk["events"]["StageChanged"]
    assert (stage["exchange"], stage["routing_key"], stage["version"]) == (
        "customers.events", "StageChanged", 1)
    assert {"from", "to", "customer_id"} <= set(stage["payload"]["properties"])


def test_a_payload_that_breaks_its_contract_is_refused():
    good = event(notification_id="n1", user_id="u1", reminder_id=None)
    contracts.validate("NotificationAcknowledged", good)
    with pytest.raises(ValidationError):
        contracts.validate("NotificationAcknowledged", {**good, "surprise": 1})
    with pytest.raises(ValidationError):
        contracts.validate("NotificationAcknowledged", {k: v for k, v in good.items()
                                                        if k != "user_id"})
