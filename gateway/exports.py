"""The customer export's file (GET /api/customers/export): CSV or XLSX with
Chinese column headers, carrying who exported it and when.

- CSV: UTF-8 with a BOM (Excel then reads the Chinese right), a first line
  `# 导出人：王经理（wangjl） 导出时间：2026-12-07 18:30（Asia/Shanghai）`, then
  the headers and one row per customer.
- XLSX (openpyxl, write-only: the rows are streamed into the zip, not held
  as cells): the same line as the first row, the headers, the rows; the
  workbook's creator, created time, title and description say the same.

A cell that a spreadsheet would run as a formula (= + - @ first) is written
as text: a company name such as `=HYPERLINK(...)` stays a name. Phones are
written for people (`138 1234 5678`, `0755 8888 8888`, `+1 415-555-0123`).
Pure: the records come in, the bytes go out.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

import phonenumbers
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from services.common.timezones import DEFAULT_TIMEZONE

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TITLE = "客户导出"

COLUMNS = (
    ("id", "客户编号"), ("company_name", "公司名称"), ("credit_code", "统一社会信用代码"),
    ("phones", "电话"), ("emails", "邮箱"), ("address", "地址"), ("industry", "行业"),
    ("contacts", "联系人"), ("stage", "阶段（%）"), ("expected_value", "预计金额（元）"),
    ("status", "状态"), ("owner", "归属业务员"), ("birthday", "生日/纪念日"),
    ("referred_by", "转介绍来源（客户编号）"), ("created_at", "录入时间"),
)
STATUS = {"active": "跟进中", "pool": "公海"}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMERIC = frozenset(i for i, (key, _) in enumerate(COLUMNS) if key in ("stage", "expected_value"))


def _zone(tz: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz or DEFAULT_TIMEZONE)
    except (ValueError, KeyError, OSError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def local_minute(at: datetime, tz: str | None) -> str:
    return at.astimezone(_zone(tz)).strftime("%Y-%m-%d %H:%M")


def banner(name: str, username: str, at: datetime, tz: str | None) -> str:
    """Who exported, and when, in his time zone."""
    zone = _zone(tz).key
    return f"# 导出人：{name}（{username}） 导出时间：{local_minute(at, zone)}（{zone}）"


def filename(fmt: str, at: datetime, tz: str | None) -> str:
    return f"{TITLE}-{at.astimezone(_zone(tz)).strftime('%Y%m%d-%H%M')}.{fmt}"


def content_disposition(name: str) -> str:
    """An ASCII fallback and the UTF-8 name (RFC 6266 / 5987)."""
    fallback = "customers-" + name.split("-", 1)[1]
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"


def human_phone(e164: str | None) -> str:
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, "CN")
    except phonenumbers.NumberParseException:
        return e164
    style = (phonenumbers.PhoneNumberFormat.NATIONAL if number.country_code == 86
             else phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return phonenumbers.format_number(number, style)


def _contact(c: Mapping) -> str:
    detail = "，".join(x for x in (c.get("title") or "",
                                   f"决策权{c['decision_level']}" if c.get("decision_level")
                                   else "") if x)
    text = c.get("name") or ""
    if detail:
        text += f"（{detail}）"
    if c.get("phone"):
        text += " " + human_phone(c["phone"])
    return text


def _money(value) -> str:
    if value is None:
        return ""
    return f"{value:.2f}" if isinstance(value, float) and not float(value).is_integer() \
        else str(int(value))


def row(customer: Mapping, tz: str | None) -> list[str]:
    """One customer (the API's `customer` shape, whole) as the columns' text."""
    created = customer.get("created_at")
    birthday = customer.get("birthday") or ""
    if birthday and customer.get("birthday_label"):
        birthday += f"（{customer['birthday_label']}）"
    values = {
        "id": customer.get("id"),
        "company_name": customer.get("company_name"),
        "credit_code": customer.get("credit_code"),
        "phones": "；".join(human_phone(p) for p in customer.get("phones") or []),
        "emails": "；".join(customer.get("emails") or []),
        "address": customer.get("address"),
        "industry": customer.get("industry"),
        "contacts": "；".join(_contact(c) for c in customer.get("contacts") or []),
        "stage": customer.get("stage"),
        "expected_value": _money(customer.get("expected_value")),
        "status": STATUS.get(customer.get("status"), customer.get("status")),
        "owner": (customer.get("owner") or {}).get("name") or "",
        "birthday": birthday,
        "referred_by": customer.get("referred_by"),
        "created_at": local_minute(datetime.fromisoformat(created), tz) if created else "",
    }
    return ["" if values[key] is None else str(values[key]) for key, _ in COLUMNS]


def safe_text(value: str) -> str:
    """Text a spreadsheet shows as it is, never runs (CSV)."""
    return "'" + value if value.startswith(FORMULA_START) else value


class CsvExport:
    content_type = CSV_TYPE

    def __init__(self, line: str, tz: str | None):
        self.tz = tz
        self.buffer = io.StringIO()
        self.buffer.write("\ufeff")
        self.writer = csv.writer(self.buffer, lineterminator="\r\n")
        self.buffer.write(line + "\r\n")
        self.writer.writerow([title for _, title in COLUMNS])
        self.count = 0

    def add(self, customer: Mapping) -> None:
        self.writer.writerow([safe_text(v) for v in row(customer, self.tz)])
        self.count += 1

    def finish(self) -> bytes:
        return self.buffer.getvalue().encode("utf-8")


class XlsxExport:
    content_type = XLSX_TYPE

    def __init__(self, line: str, tz: str | None, creator: str, at: datetime):
        self.tz = tz
        self.book = Workbook(write_only=True)
        props = self.book.properties
        props.creator = creator
        props.lastModifiedBy = creator
        props.title = TITLE
        props.description = line.lstrip("# ")
        # openpyxl writes the time as UTC (W3CDTF with Z): it wants it naive
        props.created = props.modified = at.astimezone(UTC).replace(tzinfo=None, microsecond=0)
        self.sheet = self.book.create_sheet(TITLE)
        self.sheet.append([self._cell(line)])
        self.sheet.append([self._cell(title) for _, title in COLUMNS])
        self.count = 0

    def _cell(self, value: str) -> WriteOnlyCell:
        cell = WriteOnlyCell(self.sheet, ILLEGAL_CHARACTERS_RE.sub("", value))
        cell.data_type = "s"  # text, even "=..." (openpyxl would store a formula)
        return cell

    def add(self, customer: Mapping) -> None:
        self.sheet.append([self._number(v) if i in NUMERIC and v else self._cell(v)
                           for i, v in enumerate(row(customer, self.tz))])
        self.count += 1

    def _number(self, value: str):
        try:
            return int(value)
        except ValueError:
            return float(value)

    def finish(self) -> bytes:
        out = io.BytesIO()
        self.book.save(out)
        return out.getvalue()


def writer(fmt: str, name: str, username: str, at: datetime, tz: str | None):
    line = banner(name, username, at, tz)
    if fmt == "csv":
        return CsvExport(line, tz)
    return XlsxExport(line, tz, f"{name}（{username}）", at)
