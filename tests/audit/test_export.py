"""The export module: bounds, file names, filters, the column order, both writers."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from apps.access.actions import AccessAction
from apps.audit import chain, context, export
from apps.audit.models import AuditEvent
from tests.factories import UserFactory

from .conftest import T0, add_entry

DOCUMENTED_COLUMNS = (
    "seq,created_at,actor_id,actor_label,action,target_type,target_id,target_repr,"
    "resource_slug,request_id,ip,user_agent,assertion_jti,assertion_sid,details,prev_hash,hash,"
    "upstream_request_id"
)


class TestParseBound:
    def test_a_date_is_a_whole_day(self) -> None:
        assert export.parse_bound("2026-11-01", end=False) == datetime(2026, 11, 1, tzinfo=UTC)
        assert export.parse_bound("2026-11-23", end=True) == datetime(2026, 11, 24, tzinfo=UTC)

    def test_date_times_with_and_without_offset(self) -> None:
        assert export.parse_bound("2026-11-01T09:30:00Z", end=True) == datetime(
            2026, 11, 1, 9, 30, tzinfo=UTC
        )
        assert export.parse_bound("2026-11-01T10:30+01:00", end=False) == datetime(
            2026, 11, 1, 9, 30, tzinfo=UTC
        )
        assert export.parse_bound("2026-11-01 09:30", end=False) == datetime(
            2026, 11, 1, 9, 30, tzinfo=UTC
        )

    @pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "", "9999-12-31T25:00"])
    def test_bad_input_says_what_is_expected(self, text: str) -> None:
        with pytest.raises(ValueError, match="is not an ISO 8601 date or date-time"):
            export.parse_bound(text, end=False)

    def test_the_end_of_time_does_not_overflow(self) -> None:
        with pytest.raises(ValueError, match="ISO 8601"):
            export.parse_bound("9999-12-31", end=True)


class TestFilename:
    def test_whole_days(self) -> None:
        since = export.parse_bound("2026-11-01", end=False)
        until = export.parse_bound("2026-11-23", end=True)
        assert export.filename("csv", since, until) == "audit_2026-11-01_to_2026-11-23.csv"

    def test_instants_and_open_ends(self) -> None:
        now = datetime(2026, 11, 23, 10, 15, 0, tzinfo=UTC)
        since = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
        assert export.filename("jsonl", since, None, now=now) == (
            "audit_2026-11-01T093000Z_to_2026-11-23T101500Z.jsonl"
        )
        assert export.filename("csv", None, None, now=now) == (
            "audit_start_to_2026-11-23T101500Z.csv"
        )


class TestNeutralise:
    @pytest.mark.parametrize(
        ("raw", "cell"),
        [
            ("=1+1", "'=1+1"),
            ("+SUM(A1)", "'+SUM(A1)"),
            ("-2", "'-2"),
            ("@cmd", "'@cmd"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'quoted", "''quoted"),
            ("plain", "plain"),
            ("a=b", "a=b"),
            ("", ""),
        ],
    )
    def test_rule_and_its_reversal(self, raw: str, cell: str) -> None:
        assert export.neutralise(raw) == cell
        assert export.unneutralise(cell) == raw


def test_unknown_action_and_empty_range_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown action"):
        export.ExportFilters(action="grant.bogus")
    with pytest.raises(ValueError, match="until must be later than since"):
        export.ExportFilters(since=T0, until=T0)


def test_the_column_order_is_the_documented_one() -> None:
    assert ",".join(export.EXPORT_COLUMNS) == DOCUMENTED_COLUMNS


@pytest.mark.django_db
class TestFilters:
    @pytest.fixture
    def seqs(self) -> dict[str, int]:
        a = add_entry(
            AccessAction.GRANT_REVOKED, at=T0, actor_label="alice@example.com", resource_slug="db"
        )
        b = add_entry(
            AccessAction.GRANT_BREAK_GLASS,
            at=T0 + timedelta(days=1),
            actor_label="bob@example.com",
            resource_slug="db",
        )
        c = add_entry(
            AccessAction.GRANT_REVOKED,
            at=T0 + timedelta(days=2),
            actor_label="alice@example.com",
            resource_slug="web",
        )
        return {"a": a.seq, "b": b.seq, "c": c.seq}

    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            ({}, "abc"),
            ({"since": T0 + timedelta(days=1)}, "bc"),
            ({"until": T0 + timedelta(days=1)}, "a"),  # exclusive
            ({"since": T0, "until": T0 + timedelta(days=2)}, "ab"),
            ({"actor": "Alice@Example.com"}, "ac"),
            ({"resource": "db"}, "ab"),
            ({"action": AccessAction.GRANT_BREAK_GLASS}, "b"),
            ({"actor": "alice@example.com", "resource": "web"}, "c"),
        ],
    )
    def test_each_filter(
        self, seqs: dict[str, int], filters: dict[str, Any], expected: str
    ) -> None:
        rows = export.entries(export.ExportFilters(**filters).apply(AuditEvent.objects.all()))
        assert [row["seq"] for row in rows] == [seqs[k] for k in expected]

    def test_upto_seq_cuts_the_export(self, seqs: dict[str, int]) -> None:
        rows = export.entries(AuditEvent.objects.all(), upto_seq=seqs["b"])
        assert [row["seq"] for row in rows] == [seqs["a"], seqs["b"]]


@pytest.mark.django_db
class TestWriters:
    @pytest.fixture
    def events(self) -> list[AuditEvent]:
        return [
            add_entry(
                at=T0,
                actor_label="@evil",
                details={"note": "Zoë 🚀", "z": [1, "=x"]},
                resource_slug="db",
            ),
            add_entry(
                at=T0 + timedelta(microseconds=7),
                actor_label="zoë@example.com",
                details={"reason": "\tleading tab"},
            ),
        ]

    def rows(self) -> Any:
        return export.entries(AuditEvent.objects.all())

    def test_jsonl_is_raw_and_verifies_as_a_chain(self, events: list[AuditEvent]) -> None:
        text = "".join(export.jsonl_chunks(self.rows()))
        lines = [json.loads(line) for line in text.splitlines()]
        assert [tuple(line) for line in lines] == [export.EXPORT_COLUMNS] * 2
        first = lines[0]
        assert first["actor_label"] == "@evil"  # raw, not neutralised
        assert first["details"] == {"note": "Zoë 🚀", "z": [1, "=x"]}
        assert first["created_at"] == "2026-11-01T09:00:00.000000+00:00"
        assert lines[1]["created_at"] == "2026-11-01T09:00:00.000007+00:00"
        assert (first["actor_id"], first["ip"]) == (None, None)
        assert "Zoë 🚀" in text  # not \\u-escaped
        result = chain.verify(lines)
        assert (result.ok, result.count, result.head) == (True, 2, events[-1].hash)

    def test_csv_is_neutralised_canonical_and_reversible(self, events: list[AuditEvent]) -> None:
        text = "".join(export.csv_chunks(self.rows()))
        assert text.startswith("\ufeff" + DOCUMENTED_COLUMNS + "\r\n")
        cells = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
        first = dict(zip(export.EXPORT_COLUMNS, cells[1], strict=True))
        assert first["actor_label"] == "'@evil"
        assert first["details"] == '{"note":"Zoë 🚀","z":[1,"=x"]}'
        assert (first["actor_id"], first["ip"], first["hash"]) == ("", "", events[0].hash)
        assert first["seq"] == str(events[0].seq)
        assert cells[2][export.EXPORT_COLUMNS.index("actor_label")] == "zoë@example.com"
        parsed = list(export.read_csv(io.StringIO(text.removeprefix("\ufeff"), newline="")))
        assert parsed[0]["actor_label"] == "@evil"
        assert chain.verify(parsed).ok

    def test_fast_paths_match_the_canonical_values(self, events: list[AuditEvent]) -> None:
        user = UserFactory(email="=eve@example.com")
        token = context.activate(
            context.AuditContext(request_id="r-1", ip="2001:db8::1", user_agent="-ua")
        )
        try:
            add_entry(at=T0 + timedelta(seconds=1), actor=user, details={})
        finally:
            context.deactivate(token)
        rows = list(self.rows())
        assert rows[-1]["actor_id"] == user.pk and rows[-1]["ip"] == "2001:db8::1"
        for row in rows:
            values = export.export_values(row)
            assert tuple(values) == export.EXPORT_COLUMNS
            expected = {
                "upstream_request_id": "",
                **chain.canonical_values(row),
                "hash": row["hash"],
            }
            assert values == expected
            assert export.csv_cells(row) == [
                export.neutralise("" if v is None else chain.dumps(v) if k == "details" else str(v))
                for k, v in values.items()
            ]
        assert export.csv_cells(rows[-1])[2:4] == [str(user.pk), "'=eve@example.com"]

    def test_large_exports_come_in_pieces(
        self, events: list[AuditEvent], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(export, "BUFFER_BYTES", 10)
        assert len(list(export.csv_chunks(self.rows()))) == 3  # header piece + one per row
        assert len(list(export.jsonl_chunks(self.rows()))) == 2

    def test_entries_are_plain_dicts_fetched_lazily(
        self, events: list[AuditEvent], django_assert_num_queries: Any
    ) -> None:
        with django_assert_num_queries(0):
            rows = export.entries(AuditEvent.objects.all())
        with django_assert_num_queries(1):
            first = next(rows)
        assert type(first) is dict
        assert set(first) == {*export.EXPORT_COLUMNS, "details_text"}
        assert first["details_text"] == chain.dumps(first["details"])


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("not json", "line 1: invalid JSON"),
        ("[1]", "line 1: not a JSON object"),
        ('{"seq": 1}', "line 1: missing created_at"),
    ],
)
def test_unreadable_jsonl_lines_are_named(line: str, problem: str) -> None:
    with pytest.raises(export.ExportFileError, match=problem):
        list(export.read_jsonl([line]))


def test_csv_with_another_header_is_refused() -> None:
    with pytest.raises(export.ExportFileError, match="line 1: the header"):
        list(export.read_csv(io.StringIO("seq,hash\r\n1,x\r\n")))
