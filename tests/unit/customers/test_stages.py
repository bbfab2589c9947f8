import pytest

from services.customers import stages
from services.customers.errors import InvalidFields


def test_default_stages_are_the_briefs_seven():
    got = stages.default_stages()
    assert [(s["stage"], s["label"]) for s in got] == [
        (0, "潜在客户"), (10, "意向客户"), (25, "愿意试样"), (50, "认可样品"),
        (75, "接受报价"), (90, "签订合同"), (100, "稳定客户")]
    assert [s["stage"] for s in got if s["active"]] == [25, 50, 75, 90]
    assert all(s["probability"] == s["stage"] for s in got)


def test_a_put_is_sorted_and_defaulted():
    out = stages.validate([
        {"stage": 60, "label": "商务谈判"},
        {"stage": 0, "label": "线索", "probability": 0, "active": False},
        {"stage": 30, "label": "方案演示", "probability": 20},
        {"stage": 100, "label": "成交", "active": False},
    ])
    assert out == [
        {"stage": 0, "label": "线索", "probability": 0, "active": False},
        {"stage": 30, "label": "方案演示", "probability": 20, "active": True},
        {"stage": 60, "label": "商务谈判", "probability": 60, "active": True},
        {"stage": 100, "label": "成交", "probability": 100, "active": False},
    ]


def test_a_stage_defined_twice_is_refused_naming_the_item():
    with pytest.raises(InvalidFields) as err:
        stages.validate([{"stage": 10, "label": "意向"}, {"stage": 10, "label": "有意向"}])
    assert err.value.details["fields"] == {"1.stage": "stage 10 is defined twice (also item 0)"}


def test_a_label_used_twice_and_an_empty_list_are_refused():
    with pytest.raises(InvalidFields) as err:
        stages.validate([{"stage": 10, "label": "意向"}, {"stage": 20, "label": "意向"}])
    assert "1.label" in err.value.details["fields"]
    with pytest.raises(InvalidFields) as err:
        stages.validate([])
    assert "stages" in err.value.details["fields"]
    with pytest.raises(InvalidFields):
        stages.validate([{"stage": i, "label": f"阶段{i}"} for i in range(21)])


def test_check_stage_names_the_list():
    default = stages.default_stages()
    stages.check_stage(default, 75)
    with pytest.raises(InvalidFields) as err:
        stages.check_stage(default, 30)
    assert err.value.details["fields"]["stage"] == (
        "30 is not in the stage list (0, 10, 25, 50, 75, 90, 100)")


def test_public_shape_drops_storage_fields():
    stored = [{"_id": "x", "stage": 0, "label": "潜在客户", "probability": 0, "active": False,
               "position": 0}]
    assert stages.public(stored) == [
        {"stage": 0, "label": "潜在客户", "probability": 0, "active": False}]
