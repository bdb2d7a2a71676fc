"""Forms of the requester pages and of the admin's intermediate action pages.

Forms validate shape (choices, lengths, dates) and the resource's rules so the person sees
the error next to the right field; the services check every rule again and stay the
authority. Times typed into a ``datetime-local`` input are wall-clock times in the
person's zone (``apps.accounts.timezones.zone_for``); they are converted to UTC here, never
in templates.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.http import QueryDict
from django.utils import timezone

from apps.accounts.timezones import stamp, valid_zone, zone_label, zone_names, zone_of
from apps.kit.text import refuse_hidden
from apps.kit.widgets import MemoizedSelect

from . import schedules
from .durations import duration_label
from .models import Resource
from .services import MAX_TEXT
from .states import OutsideWindow

if TYPE_CHECKING:
    from apps.accounts.models import User

DATETIME_LOCAL_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M")


# --- Wall-clock times --------------------------------------------------------------------


def _ambiguous_or_imaginary(naive: datetime, zone: tzinfo) -> bool:
    # PEP 495: a wall time that is skipped or repeated has a different offset per fold.
    try:
        return (
            naive.replace(tzinfo=zone, fold=0).utcoffset()
            != naive.replace(tzinfo=zone, fold=1).utcoffset()
        )
    except (OverflowError, ValueError):
        return False


def local_to_utc(naive: datetime, zone: tzinfo) -> datetime:
    """Attach ``zone`` to a wall-clock time and convert it to UTC.

    Raises ``ValidationError`` for times the zone skips or repeats (DST changes) and for
    dates so close to the calendar's edge that the conversion overflows.
    """
    if _ambiguous_or_imaginary(naive, zone):
        raise forms.ValidationError(
            "That time does not exist or occurs twice in %(zone)s (a daylight-saving change); "
            "pick another.",
            params={"zone": zone_label(zone)},
        )
    try:
        return naive.replace(tzinfo=zone).astimezone(UTC)
    except (OverflowError, ValueError):
        raise forms.ValidationError("That date is out of range.") from None


class LocalDateTimeField(forms.Field):
    """A ``datetime-local`` input returning a *naive* wall-clock time.

    Django's DateTimeField would attach the active zone while cleaning, before the form
    knows which zone the browser reported; ``local_to_utc`` does it afterwards instead.
    """

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    default_error_messages = {"invalid": "Enter a date and time like 2030-01-31 14:30."}

    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        if isinstance(value, datetime):
            return value.replace(tzinfo=None)
        text = str(value).strip()
        if len(text) > 32:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        for fmt in DATETIME_LOCAL_FORMATS:
            try:
                return datetime.strptime(text, fmt)  # noqa: DTZ007 - zone attached later
            except ValueError:
                continue
        raise forms.ValidationError(self.error_messages["invalid"], code="invalid")


# --- Requester forms -----------------------------------------------------------------------


class RequestForm(forms.Form):
    """New access (or an extension, when an open grant exists) for one resource."""

    START_NOW = "now"
    START_LATER = "later"

    resource = forms.ChoiceField(
        label="Resource",
        error_messages={"invalid_choice": "Choose a resource you may request from the list."},
        # One option per requestable resource (hundreds in a large team): rendered once per
        # set of choices and value rather than through the form templates on every view.
        widget=MemoizedSelect,
    )
    level = forms.ChoiceField(
        label="Access level",
        required=False,
        error_messages={"invalid_choice": "Choose one of the access levels offered."},
    )
    duration = forms.TypedChoiceField(
        label="For how long",
        coerce=int,
        error_messages={"invalid_choice": "Choose one of the durations offered."},
    )
    justification = forms.CharField(
        label="Why do you need access?",
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        max_length=MAX_TEXT,
        validators=[refuse_hidden],
    )
    ticket = forms.CharField(
        label="Ticket reference",
        required=False,
        max_length=120,
        help_text="e.g. INC-1234",
        validators=[refuse_hidden],
    )
    start = forms.ChoiceField(
        label="Start",
        choices=[(START_NOW, "As soon as it is approved"), (START_LATER, "At a chosen time")],
        widget=forms.RadioSelect,
        initial=START_NOW,
    )
    start_at = LocalDateTimeField(label="Start at", required=False)
    # Filled by JavaScript with the browser's zone; ignored when the person set a preference.
    tz = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)

    def __init__(
        self,
        *args: Any,
        user: User,
        resources: list[Resource],
        zone: tzinfo | None = None,
        groups: set[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.resources = {r.slug: r for r in resources}
        # The zone the person sees (``zone_for``): a typed start is a time in it.
        self.zone: tzinfo = zone or zone_of(user)
        cast(forms.ChoiceField, self.fields["resource"]).choices = [("", "Choose…")] + [
            (r.slug, r.name) for r in resources
        ]
        # Offer the chosen resource's durations (a bound form narrows to the posted
        # resource, so another resource's duration is refused); before a choice, all.
        chosen = self.resources.get(
            str(self.data.get("resource") or self.initial.get("resource") or "")
        )
        minutes = (
            sorted(set(chosen.duration_choices))
            if chosen
            else sorted({m for r in resources for m in r.duration_choices})
        )
        self.chosen = chosen
        self.levels = {lv.slug: lv for lv in (chosen.levels.all() if chosen else [])}
        level_field = cast(forms.ChoiceField, self.fields["level"])
        level_field.choices = (
            level_choices(chosen, user.group_names() if groups is None else groups)
            if chosen
            else []
        )
        if chosen and self.levels:
            level_field.error_messages["invalid_choice"] = (
                f"Choose one of the access levels of {chosen.name}: "
                + ", ".join(lv.name for lv in self.levels.values())
                + "."
            )
        duration = cast(forms.ChoiceField, self.fields["duration"])
        duration.choices = [(m, duration_label(m)) for m in minutes]
        # Marked "required" on the page; the script follows the chosen resource.
        self.required_now = {"resource", "duration"}
        if self.levels:
            self.required_now.add("level")
        if chosen and chosen.justification_required:
            self.required_now.add("justification")
        if chosen and chosen.ticket_required:
            self.required_now.add("ticket")
        if str(self.data.get("start") or self.initial.get("start") or "") == self.START_LATER:
            self.required_now.add("start_at")
        if chosen:
            duration.error_messages["invalid_choice"] = (
                f"Choose one of the durations offered for {chosen.name}: "
                + ", ".join(duration_label(m) for m in minutes)
                + "."
            )

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        resource = self.resources.get(data.get("resource") or "")
        if resource is None:
            return data
        data["resource_obj"] = resource
        data["level_obj"] = self.levels.get(data.get("level") or "") if self.levels else None
        if self.levels and "level" not in self.errors and data["level_obj"] is None:
            self.add_error("level", f"Choose an access level for {resource.name}.")
        if not self.user.time_zone:
            # The page's script fills ``tz`` with the browser's zone, as it sets the cookie
            # ``zone_for`` reads: the same zone, also where cookies are off.
            self.zone = valid_zone(data.get("tz")) or self.zone
        justification = (data.get("justification") or "").strip()
        needed = resource.justification_min_length if resource.justification_required else 0
        # A field that already failed (too long, NUL byte) keeps that one clear message.
        if "justification" not in self.errors and len(justification) < needed:
            self.add_error(
                "justification", f"Say why you need access (at least {needed} characters)."
            )
        if (
            resource.ticket_required
            and "ticket" not in self.errors
            and not (data.get("ticket") or "").strip()
        ):
            self.add_error("ticket", f"{resource.name} needs a ticket reference.")
        data["start_at_utc"] = None
        if data.get("start") == self.START_LATER:
            self._clean_start(resource, data)
        return data

    @property
    def start_later(self) -> bool:
        """Is "At a chosen time" selected (the "Start at" field is shown only then)?"""
        return "start_at" in self.required_now

    def offer_start(self, refusal: OutsideWindow) -> None:
        """The service refused "now" outside the resource's window: say so at the start,
        in the person's zone, and fill in its next opening to send again."""
        resource = self.chosen
        schedule = resource.parsed_schedule() if resource else None
        if resource is None or schedule is None:  # pragma: no cover - the service checked
            self.add_error(None, str(refusal))
            return
        offered = resource.allow_scheduled
        self.add_error(
            "start",
            f"{resource.name} is open only {schedules.describe(schedule)}, and no window is "
            f"open now. Its next window opens {stamp(refusal.opens_at, self.zone)}. "
            + (
                "That start is filled in below: send the request again to ask for it."
                if offered
                else "Ask again then."
            ),
        )
        if not offered:
            return
        data = QueryDict(mutable=True)
        data.update(self.data)
        data["start"] = self.START_LATER
        data["start_at"] = refusal.opens_at.astimezone(self.zone).strftime("%Y-%m-%dT%H:%M")
        if not self.user.time_zone:
            data["tz"] = zone_label(self.zone)
        self.data = data
        self.required_now.add("start_at")

    def _clean_start(self, resource: Resource, data: dict[str, Any]) -> None:
        if not resource.allow_scheduled:
            self.add_error("start", f"{resource.name} only grants access starting now.")
            return
        naive = data.get("start_at")
        if naive is None:
            if "start_at" not in self.errors:
                self.add_error("start_at", "Choose when access should start.")
            return
        try:
            start = local_to_utc(naive, self.zone)
        except forms.ValidationError as exc:
            self.add_error("start_at", exc)
            return
        now = timezone.now()
        if start <= now:
            self.add_error("start_at", "A scheduled start must be in the future.")
        elif start > now + timedelta(days=resource.max_schedule_ahead_days):
            self.add_error(
                "start_at",
                f"A start can be at most {resource.max_schedule_ahead_days} days ahead.",
            )
        else:
            data["start_at_utc"] = start


def approved_at_once(resource: Resource, groups: set[str]) -> set[str]:
    """The slugs of the levels an auto-approval rule grants this person at once (for the
    shortest duration offered): the form offers the lowest of them first."""
    shortest = min(resource.duration_choices, default=0)
    return {
        lv.slug
        for lv in resource.levels.all()
        if resource.auto_approve_rule_for(groups, shortest, lv) is not None
    }


def level_choices(resource: Resource, groups: set[str]) -> list[tuple[str, str]]:
    """A resource's levels, lowest first, each saying whether this person gets it at once."""
    at_once = approved_at_once(resource, groups)
    return [
        (lv.slug, f"{lv.name} (approved at once for you)" if lv.slug in at_once else lv.name)
        for lv in resource.levels.all()
    ]


class BreakGlassForm(forms.Form):
    duration = forms.TypedChoiceField(
        label="For how long",
        coerce=int,
        error_messages={"invalid_choice": "Choose one of the durations offered."},
    )
    justification = forms.CharField(
        label="What is on fire?",
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=MAX_TEXT,
        help_text="Every approver is told at once, and the activation is reviewed afterwards.",
        validators=[refuse_hidden],
    )

    def __init__(self, *args: Any, resource: Resource, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cap = resource.break_glass_max_minutes
        minutes = sorted({m for m in resource.duration_choices if m <= cap} | {cap})
        cast(forms.ChoiceField, self.fields["duration"]).choices = [
            (m, duration_label(m)) for m in minutes
        ]
        self.fields["duration"].initial = minutes[0]


class PreferencesForm(forms.Form):
    time_zone = forms.ChoiceField(
        label="Time zone",
        required=False,
        help_text="Times on these pages are shown in this zone.",
        error_messages={"invalid_choice": "Choose a time zone from the list."},
        # About 600 options: through the form templates they were most of the page's CPU.
        widget=MemoizedSelect,
    )
    notify_expiry = forms.BooleanField(
        label="Email me before one of my grants ends", required=False
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["time_zone"]).choices = [
            ("", "My browser's time zone")
        ] + [(name, name) for name in zone_names()]


# --- Admin intermediate pages --------------------------------------------------------------


# Shorter durations the approve page offers, with the resource's own choices.
SHORTER_MINUTES = (15, 30, 60, 120, 240, 480, 720, 1440)


class ApproveForm(forms.Form):
    """The approve page: optionally shorten the duration and lower the level, and a note.

    Both offer only what lowers: durations below the longest one asked for in the selection
    (a request asking for less keeps its own), and the resource's levels below the highest
    one asked for, when every selected request is on one resource (a level belongs to one
    resource). ``cleaned_data["duration_minutes"]`` is the cap chosen or typed, or None;
    ``cleaned_data["level"]`` a level's slug, or "".
    """

    duration_choice = forms.TypedChoiceField(
        label="Shorten to",
        required=False,
        coerce=int,
        empty_value=None,
        error_messages={"invalid_choice": "Choose one of the durations offered."},
    )
    duration_minutes = forms.IntegerField(
        label="or at most (minutes)",
        required=False,
        min_value=1,
        max_value=100_000,
        help_text="Optional. Requests asking for less keep what they asked for.",
    )
    level = forms.ChoiceField(
        label="Lower to the access level",
        required=False,
        error_messages={"invalid_choice": "Choose one of the lower levels offered."},
    )
    note = forms.CharField(
        label="Note",
        required=False,
        max_length=MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": 3}),
        validators=[refuse_hidden],
    )

    def __init__(
        self,
        *args: Any,
        longest: int | None = None,
        durations: tuple[int, ...] = (),
        levels: tuple[tuple[str, str], ...] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.longest = longest
        shorter = sorted(
            {m for m in (*SHORTER_MINUTES, *durations) if longest is None or m < longest}
        )
        cast(forms.ChoiceField, self.fields["duration_choice"]).choices = [
            ("", "Keep what was asked")
        ] + [(m, duration_label(m)) for m in shorter]
        if longest is not None:
            self.fields["duration_minutes"].help_text = (
                f"Optional, below {longest} minutes ({duration_label(longest)}, the longest "
                "asked). Requests asking for less keep what they asked for."
            )
        if levels:
            level = cast(forms.ChoiceField, self.fields["level"])
            level.choices = [("", "Keep the level asked"), *levels]
        else:
            del self.fields["level"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        chosen, typed = data.get("duration_choice"), data.get("duration_minutes")
        if chosen and typed and chosen != typed:
            self.add_error("duration_minutes", "Choose a duration or type one, not both.")
            return data
        cap = typed or chosen
        if cap and self.longest is not None and cap >= self.longest:
            self.add_error(
                "duration_minutes" if typed else "duration_choice",
                f"That shortens nothing: the longest request asks for {self.longest} "
                f"minutes ({duration_label(self.longest)}). Leave it empty to keep them.",
            )
        data["duration_minutes"] = cap
        data.setdefault("level", "")
        return data


class RejectForm(forms.Form):
    reason = forms.CharField(
        label="Reason (shown to the requester)",
        max_length=MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": 3}),
        validators=[refuse_hidden],
    )


class RevokeForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": 3}),
        validators=[refuse_hidden],
    )


class ExtendForm(forms.Form):
    new_end = LocalDateTimeField(label="New end")
    reason = forms.CharField(
        label="Reason",
        max_length=MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": 3}),
        validators=[refuse_hidden],
    )
    override = forms.BooleanField(
        label="Override the resource's maximum duration",
        required=False,
        help_text="Only with a reason that justifies going past the maximum.",
    )

    def __init__(self, *args: Any, zone: tzinfo = UTC, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.zone = zone
        self.fields["new_end"].label = f"New end ({zone_label(zone)})"

    def clean_new_end(self) -> datetime:
        naive = self.cleaned_data["new_end"]
        return local_to_utc(naive, self.zone)


class ReviewForm(forms.Form):
    note = forms.CharField(
        label="What did the review find?",
        max_length=MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": 3}),
        validators=[refuse_hidden],
    )
