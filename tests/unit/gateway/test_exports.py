"""The export's file, without the stack: who and when on top, Chinese
headers, text that a spreadsheet never runs as a formula."""

import csv
import io
from datetime import UTC, datetime
from urllib.parse import unquote

from openpyxl import load_workbook

from gateway import exports

AT = datetime(2026, 12, 7, 10, 30, 12, tzinfo=UTC)  # 18:30 in Shanghai
CUSTOMER = {
    "id": "c1", "company_name": "深圳市华强电子有限公司", "credit_code": None,
    "phones": ["+8613812345678", "+8675588887777"], "emails": ["zhangwei@huaqiang.cn"],
    "address": "深圳市福田区华强北路", "industry": "电子元器件",
    "contacts": [{"name": "陈志强", "title": "采购总监", "phone": "+8613900001111",
                  "decision_level": 4}],
    "birthday": "08-18", "birthday_label": "陈总生日", "referred_by": None,
    "expected_value": 350000.8, "stage": 25, "status": "active",
    "owner": {"id": "u1", "name": "张伟"}, "created_at": "2026-03-02T01:00:00+00:00"}


def test_the_csv_says_who_exported_it_and_when_then_the_chinese_headers():
    out = exports.writer("csv", "王经理", "manager_x", AT, "Asia/Shanghai")
    out.add(CUSTOMER)
    data = out.finish()
    assert data.startswith("\ufeff".encode())  # Excel reads UTF-8 by its BOM
    lines = data.decode("utf-8-sig").splitlines()
    assert lines[0] == "# 导出人：王经理（manager_x） 导出时间：2026-12-07 18:30（Asia/Shanghai）"
    rows = list(csv.reader(io.StringIO("\n".join(lines[1:]))))
    assert rows[0][:4] == ["客户编号", "公司名称", "统一社会信用代码", "电话"]
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["电话"] == "138 1234 5678；0755 8888 7777"
    assert row["联系人"] == "陈志强（采购总监，决策权4） 139 0000 1111"
    assert row["预计金额（元）"] == "350000.80" and row["状态"] == "跟进中"
    assert row["录入时间"] == "2026-03-02 09:00" and row["归属业务员"] == "张伟"


def test_a_value_that_looks_like_a_formula_is_written_as_text():
    evil = {**CUSTOMER, "company_name": "=HYPERLINK(\"http://x\",\"点我\")",
            "address": "@SUM(A1)", "phones": ["+14155550123"]}
    out = exports.writer("csv", "王经理", "manager_x", AT, None)
    out.add(evil)
    rows = list(csv.reader(io.StringIO(out.finish().decode("utf-8-sig"))))
    assert rows[2][1].startswith("'=") and rows[2][5] == "'@SUM(A1)"
    assert rows[2][3] == "'+1 415-555-0123"
    book = exports.writer("xlsx", "王经理", "manager_x", AT, None)
    book.add(evil)
    sheet = load_workbook(io.BytesIO(book.finish())).active
    assert sheet.cell(3, 2).value == evil["company_name"]
    assert sheet.cell(3, 2).data_type == "s"


def test_the_workbook_carries_who_and_when_in_its_first_row_and_its_properties():
    out = exports.writer("xlsx", "王经理", "manager_x", AT, "Asia/Shanghai")
    out.add(CUSTOMER)
    book = load_workbook(io.BytesIO(out.finish()))
    sheet = book.active
    assert sheet.title == "客户导出"
    assert sheet.cell(1, 1).value == ("# 导出人：王经理（manager_x） "
                                      "导出时间：2026-12-07 18:30（Asia/Shanghai）")
    assert sheet.cell(2, 2).value == "公司名称" and sheet.cell(3, 2).value == "深圳市华强电子有限公司"
    assert sheet.cell(3, 9).value == 25 and sheet.cell(3, 10).value == 350000.8
    assert book.properties.creator == "王经理（manager_x）"
    assert book.properties.title == "客户导出"
    assert book.properties.created == datetime(2026, 12, 7, 10, 30, 12)  # UTC


def test_the_file_name_is_chinese_with_an_ascii_fallback():
    name = exports.filename("xlsx", AT, "Asia/Shanghai")
    assert name == "客户导出-20261207-1830.xlsx"
    header = exports.content_disposition(name)
    assert header.startswith('attachment; filename="customers-20261207-1830.xlsx"; ')
    assert unquote(header.split("filename*=UTF-8''")[1]) == name
