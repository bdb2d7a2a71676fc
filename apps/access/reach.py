"""Can this person get in right now? The one answer every page, the admin, the API, the
emails and (through the API) ``jit status`` and ``jit wait`` give about a grant.

``access(grant, now=..., zone=...)`` reads the grant's window and schedule, what the
Pomerium holding its policy can enforce by itself (``targets.capabilities``), the sync's
confirmation and the clock, and answers with one of five states:

============ ==================================================================================
``allowed``  Pomerium lets the person in now, until ``until`` (the end of the grant or of the
             current recurring window). The only state with the green badge.
``opens``    Not yet: the grant starts later, or lies between two recurring windows;
             ``opens_at`` says when it next opens. Where the rule carries its own window
             (a ``date`` target) Pomerium has confirmed the rule already.
``waiting``  Written, not yet confirmed by Pomerium (or, on a target that cannot close a
             rule by itself, not yet confirmed for the current window).
``error``    Not enforced: the sync failed (``detail`` says why).
``ended``    Expired, revoked, released, or no window of its schedule is left.
============ ==================================================================================

An ended grant whose rule Pomerium has not confirmed gone (a revocation during a Zero
outage, say) may still let the person in: ``removal_unconfirmed`` says so, and the access
reports list that person as still having access ("revocation not yet enforced").

Requests get one line as well, ``outcome``: "Approved → revoked by bob@example.com at
14:02 CET", "Auto-approved", "Break-glass", "Waiting for approval (1 of 2)"... never
"0 of 1" for a request that needed no approval.

Everything here is read from the objects it is given: no query, so a page of rows costs
nothing more. Times in the words are in ``zone`` and carry its abbreviation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from apps.accounts.timezones import when

from . import schedules, targets
from .states import OPEN_GRANT_STATES, GrantState, RequestKind, RequestState, SyncStatus

__all__ = [
    "ALLOWED",
    "ENDED",
    "ERROR",
    "OPENS",
    "STATES",
    "WAITING",
    "Access",
    "access",
    "closing",
    "outcome",
]

ALLOWED = "allowed"
OPENS = "opens"
WAITING = "waiting"
ERROR = "error"
ENDED = "ended"
STATES = (ALLOWED, OPENS, WAITING, ERROR, ENDED)

WAITING_LABEL = "Waiting for Pomerium"
ERROR_LABEL = "Not enforced \N{EM DASH} sync error"
ENDED_LABEL = "Ended"
NOT_ENFORCED = "revocation not yet enforced"


@dataclass(frozen=True, slots=True)
class Access:
    """The answer about one grant at one moment, in one person's zone."""

    state: str
    label: str  # the words the pages show: "Allowed now, until 17:00 CET"
    until: datetime | None = None  # allowed: when this access stops
    opens_at: datetime | None = None  # opens: when it next opens
    detail: str | None = None  # waiting/error: why; ended: how it ended
    # Ended, but Pomerium has not confirmed the rule gone: the person may still get in.
    removal_unconfirmed: bool = False

    @property
    def allowed(self) -> bool:
        return self.state == ALLOWED

    def as_json(self) -> dict[str, Any]:
        """The API's ``access`` object (docs/api.md "Can I get in now?")."""
        return {
            "state": self.state,
            "label": self.label,
            "until": self.until,
            "opens_at": self.opens_at,
            "detail": self.detail,
        }


def _who(user: Any) -> str:
    return (getattr(user, "email", "") or getattr(user, "username", "")) if user else ""


def _how_it_ended(grant: Any, zone: tzinfo, now: datetime) -> str:
    """``Revoked by bob@example.com at 14:02 CET: reason``, ``Released ...``, ``Expired ...``."""
    if grant.state == GrantState.REVOKED and grant.revoked_at is not None:
        at = when(grant.revoked_at, zone, now)
        if grant.revoked_by_id is not None and grant.revoked_by_id == grant.user_id:
            return f"Released by its holder at {at}."
        who = _who(getattr(grant, "revoked_by", None))
        text = f"Revoked by {who} at {at}" if who else f"Revoked at {at}"
        reason = " ".join((grant.revoke_reason or "").split())
        return f"{text}: {reason}" if reason else f"{text}."
    return f"Expired at {when(grant.expires_at, zone, now)}."


def _first_opening(grant: Any, schedule: schedules.Schedule | None, after: datetime) -> Any:
    """When the grant next lets the person in at or after ``after``: ``(opens, closes)`` of
    the window, or None when no window is left before its end."""
    start = max(grant.not_before, after)
    if start >= grant.expires_at:
        return None
    if schedule is None:
        return start, grant.expires_at
    state = schedules.state_at(schedule, start, grant.not_before, grant.expires_at)
    if state is None:
        return None
    is_open, moment = state
    if is_open:
        return start, moment
    for opens, closes in schedules.windows(schedule, moment, grant.expires_at):
        return opens, closes
    return None  # pragma: no cover - state_at found this window


def _previous_close(grant: Any, schedule: schedules.Schedule | None, now: datetime) -> datetime:
    """The end of the last window before the current one (the grant's start without a
    schedule): a confirmation older than that is for an earlier window."""
    if schedule is None:
        return grant.not_before
    last = grant.not_before
    # ``windows`` cuts the current window at ``now``: only those that closed before count.
    for _opens, closes in schedules.windows(schedule, grant.not_before, now):
        if closes < now:
            last = closes
    return last


def _removal_unconfirmed(grant: Any, now: datetime, closes_by_itself: bool) -> bool:
    """Ended, and Pomerium may still let the person in: the rule's removal is not confirmed
    and, where the rule carries its own date window, that window has not closed. (A rule
    never confirmed may still have been written: only a confirmed removal counts.)"""
    if grant.sync_status == SyncStatus.REMOVED:
        return False
    if closes_by_itself:
        return bool(grant.not_before <= now < grant.expires_at)
    return True


def access(grant: Any, *, now: datetime, zone: tzinfo = UTC) -> Access:
    """Can the grant's holder get in at ``now``? One ``Access``; see the module docstring.

    ``grant`` is a ``Grant`` or a row with the same attributes (``state``, ``not_before``,
    ``expires_at``, ``schedule``, ``sync_status``, ``sync_error``, ``live_at``,
    ``enforced_at``, ``resource.cluster``, and for revoked grants ``revoked_at``,
    ``revoked_by``, ``revoked_by_id``, ``user_id``, ``revoke_reason``).
    """
    caps = targets.capabilities(grant.resource.cluster)
    closes_by_itself = targets.DATE in caps
    schedule = schedules.parse(grant.schedule) if grant.schedule else None

    # Ended: by a person, by the clock, or because no window of its schedule is left.
    if grant.state not in OPEN_GRANT_STATES or grant.expires_at <= now:
        unconfirmed = _removal_unconfirmed(grant, now, closes_by_itself)
        detail = _how_it_ended(grant, zone, now)
        if unconfirmed:
            detail += f" Pomerium has not confirmed the removal yet ({NOT_ENFORCED})."
        return Access(ENDED, ENDED_LABEL, detail=detail, removal_unconfirmed=unconfirmed)
    window = _first_opening(grant, schedule, now)
    if window is None:
        return Access(
            ENDED,
            ENDED_LABEL,
            detail=f"No window of its schedule is left before it ends at "
            f"{when(grant.expires_at, zone, now)}.",
        )
    opens, closes = window
    is_open = opens <= now

    if grant.sync_status == SyncStatus.ERROR:
        reason = (grant.sync_error or "").strip().splitlines()
        why = reason[0] if reason else "the sync failed"
        return Access(ERROR, ERROR_LABEL, detail=f"Pomerium does not enforce it: {why}")

    # A target without DATE gets the rule from the worker when a window opens: until then
    # there is nothing to confirm, and the grant simply opens later.
    worker_opens = not closes_by_itself or (schedule is not None and targets.RECURRING not in caps)
    if not is_open and worker_opens and grant.live_at is None:
        return _opens(opens, zone, now)

    confirmed = grant.is_live
    if confirmed and worker_opens and is_open:
        at = grant.enforced_at or grant.live_at
        confirmed = at is not None and at >= _previous_close(grant, schedule, now)
    if not confirmed:
        if grant.live_at is not None and not grant.is_live:
            why = "A change to this access is written; Pomerium has not confirmed it yet."
        else:
            why = "The rule is written; Pomerium has not confirmed it yet."
        if not is_open:
            why += f" It opens {when(opens, zone, now)}."
        return Access(WAITING, WAITING_LABEL, detail=why)
    if not is_open:
        return _opens(opens, zone, now)
    return Access(ALLOWED, f"Allowed now, until {when(closes, zone, now)}", until=closes)


def closing(grant: Any, *, now: datetime, zone: tzinfo = UTC) -> str:
    """Who ends the grant's access, and when, in one line: "Closes by itself in Pomerium at
    17:00 CET" where the rule carries its own window, "Closed by jitportal at 17:00 CET"
    where the worker must remove it (``targets.closes_by_itself``); "" once it has ended."""
    if grant.state not in OPEN_GRANT_STATES or grant.expires_at <= now:
        return ""
    caps = targets.capabilities(grant.resource.cluster)
    at = when(grant.expires_at, zone, now)
    recurring = bool(grant.schedule)
    if targets.DATE in caps:
        text = f"Closes by itself in Pomerium at {at}"
        if recurring and targets.RECURRING not in caps:
            text += "; jitportal opens and closes each recurring window"
        return text + "."
    text = (
        f"Closed by jitportal at {at}: this Pomerium cannot close a rule by itself, so "
        "jitportal's worker removes it then"
    )
    if recurring:
        text += ", and opens and closes each recurring window"
    return text + "."


def _opens(opens: datetime, zone: tzinfo, now: datetime) -> Access:
    return Access(OPENS, f"Opens {when(opens, zone, now)}", opens_at=opens)


# --- Requests ------------------------------------------------------------------------------


def _grant_end(grant: Any, zone: tzinfo, now: datetime) -> str:
    """`` → revoked by bob@example.com at 14:02 CET``, `` → released``, `` → expired``."""
    if grant is None:
        return ""
    if grant.state == GrantState.REVOKED:
        if grant.revoked_by_id is not None and grant.revoked_by_id == grant.user_id:
            return " \N{RIGHTWARDS ARROW} released"
        who = _who(getattr(grant, "revoked_by", None))
        at = when(grant.revoked_at, zone, now) if grant.revoked_at else ""
        by = f" by {who}" if who else ""
        return f" \N{RIGHTWARDS ARROW} revoked{by}" + (f" at {at}" if at else "")
    if grant.state == GrantState.EXPIRED or grant.expires_at <= now:
        return " \N{RIGHTWARDS ARROW} expired"
    return ""


def outcome(
    req: Any,
    grant: Any = None,
    *,
    now: datetime,
    zone: tzinfo = UTC,
    approvals: int = 0,
    required: int = 1,
) -> str:
    """What became of a request, in one line.

    ``grant`` is the grant it created (for an extension, the grant it extended) or None;
    ``approvals``/``required`` count the quorum of a pending request. ``req`` needs
    ``state``, ``kind``, ``auto_approved_rule`` and ``decided_by`` (a rejection names who).
    """
    state = req.state
    if state == RequestState.PENDING:
        if approvals <= 0:
            return "Waiting for approval" + (f" ({required} needed)" if required > 1 else "")
        return f"Waiting for approval ({approvals} of {required})"
    if state == RequestState.REJECTED:
        who = _who(getattr(req, "decided_by", None))
        return f"Rejected by {who}" if who else "Rejected"
    if state == RequestState.CANCELLED:
        return "Cancelled"
    if state == RequestState.EXPIRED:
        return "Expired undecided"
    if req.kind == RequestKind.BREAK_GLASS:
        head = "Break-glass"
    elif req.auto_approved_rule:
        head = "Auto-approved"
    else:
        head = "Approved"
    if req.kind == RequestKind.EXTENSION:
        # The extended grant's end is the grant's story, not this request's.
        return head
    return head + _grant_end(grant, zone, now)
