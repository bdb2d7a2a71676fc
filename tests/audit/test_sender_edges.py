"""The audit stream's sender at its edges: batches hold whole lines within the byte budget
(a longer line goes alone), backoff honours Retry-After within the cap, and a cursor move
while a sender holds the lease is refused and changes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent, StreamDestination
from apps.audit.stream import sender
from apps.audit.stream.actions import StreamAction
from apps.audit.stream.transports import Batch
from devtools.siem import HttpReceiver
from tests.audit.conftest import add_entries

pytestmark = pytest.mark.django_db


def seqs(batch: Batch) -> list[int]:
    return [int(line.split(b",", 1)[0].removeprefix(b'{"seq":')) for line in batch.lines]


def test_a_batch_holds_whole_lines_up_to_the_byte_budget_and_at_least_one() -> None:
    add_entries(6)
    whole = sender.read_batch(0, limit=6, max_bytes=1 << 20)
    assert whole is not None and whole.count == 6
    sizes = [len(line) for line in whole.lines]

    one = sender.read_batch(0, limit=6, max_bytes=1)  # every line is longer than that
    assert one is not None and (one.first_seq, one.count) == (1, 1)
    assert one.data == whole.lines[0]

    budget = sizes[0] + sizes[1] + sizes[2] // 2  # two and a half lines
    two = sender.read_batch(0, limit=6, max_bytes=budget)
    assert two is not None and seqs(two) == [1, 2]
    assert two.data.endswith(b"\n")

    after = sender.read_batch(2, limit=6, max_bytes=1 << 20)
    assert after is not None and seqs(after) == [3, 4, 5, 6]
    assert sender.read_batch(6, limit=6, max_bytes=1 << 20) is None


def test_split_cuts_by_count_and_bytes_and_sends_a_long_line_alone() -> None:
    lines = [b"a" * 9 + b"\n", b"b" * 30 + b"\n", b"c" * 4 + b"\n", b"d" * 4 + b"\n"]
    window = Batch(first_seq=11, count=4, data=b"".join(lines))

    batches = sender.split(window, limit=3, max_bytes=20)

    assert [(b.first_seq, b.count) for b in batches] == [(11, 1), (12, 1), (13, 2)]
    assert [b.data for b in batches] == [lines[0], lines[1], lines[2] + lines[3]]
    assert [(b.first_seq, b.count) for b in sender.split(window, limit=1, max_bytes=999)] == [
        (11, 1),
        (12, 1),
        (13, 1),
        (14, 1),
    ]


def test_backoff_takes_retry_after_within_the_cap(stream_to: Any, http_receiver: Any) -> None:
    stream_to(http_receiver)  # base 1 s, cap 60 s
    assert sender.backoff_seconds(1, refused=False, retry_after=30.0) == 30.0
    assert sender.backoff_seconds(3, refused=False, retry_after=2.0) == 4.0  # backoff is longer
    assert sender.backoff_seconds(1, refused=False, retry_after=3600.0) == 60.0
    assert sender.backoff_seconds(1, refused=True, retry_after=1.0) == 60.0


def test_a_cursor_move_while_a_sender_holds_the_lease_is_refused(
    http_receiver: HttpReceiver, stream_to: Any
) -> None:
    stream_to(http_receiver)
    add_entries(3)
    sender.pump(http_receiver.url)
    now = timezone.now()
    StreamDestination.objects.filter(name=http_receiver.url).update(
        leased_until=now + timedelta(minutes=1), lease_owner="another-worker"
    )

    with pytest.raises(sender.Busy, match="a sender is working on"):
        sender.move_cursor(http_receiver.url, to=1, details={}, now=now)

    row = StreamDestination.objects.get(name=http_receiver.url)
    assert (row.cursor, row.lease_owner) == (3, "another-worker")
    assert not AuditEvent.objects.filter(action=StreamAction.CURSOR_MOVED).exists()
    assert sender.pump(http_receiver.url).outcome == "busy"
