"""What a notice says: email parts from templates, Slack messages, and links to the portal.

Email templates live in ``templates/notifications/<name>.subject.txt``, ``<name>.txt`` and
``<name>.html``; they are rendered once per recipient, in the recipient's time zone.
Slack messages are built here (Block Kit JSON) in UTC. Every link is absolute, from
``PORTAL_URL``; decisions happen on the linked portal pages, never in a mail or in Slack.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from apps.accounts.timezones import zone_of
from apps.kit.text import reveal

from .models import Channel

if TYPE_CHECKING:
    from apps.access.models import AccessRequest, Grant, Resource
    from apps.accounts.models import User

SLACK_TEXT_LIMIT = 2900  # a section block takes at most 3000 characters


@dataclass(frozen=True)
class Message:
    """One rendered notice to one recipient, not yet stored."""

    event: str
    channel: str
    recipient: str
    subject: str
    body: str
    body_html: str = ""
    payload: dict[str, Any] | None = None
    request_id: int | None = None
    grant_id: int | None = None
    # Distinguishes repeated occasions of one event (a reminder per grant end).
    occasion: str = ""

    @property
    def dedup_key(self) -> str:
        parts = (
            self.event,
            str(self.request_id or ""),
            str(self.grant_id or ""),
            self.channel,
            self.recipient.lower(),
            self.occasion,
        )
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


# --- Links ---------------------------------------------------------------------------------


def absolute(path: str) -> str:
    return f"{settings.PORTAL_URL}{path}"


def admin_request_url(req: AccessRequest) -> str:
    """Where an approver decides: the request's admin change page."""
    return absolute(reverse("admin:access_accessrequest_change", args=[req.pk]))


def admin_grant_url(grant: Grant) -> str:
    return absolute(reverse("admin:access_grant_change", args=[grant.pk]))


def request_url(req: AccessRequest) -> str:
    """The requester's own page for the request."""
    return absolute(reverse("request_detail", args=[req.pk]))


def extension_url(resource: Resource) -> str:
    """One click to the request form for the resource; with a live grant it asks for more time."""
    return absolute(reverse("request_new") + "?" + urlencode({"resource": resource.slug}))


def preferences_url() -> str:
    return absolute(reverse("preferences"))


# --- Formatting ----------------------------------------------------------------------------


def utc_label(moment: datetime) -> str:
    return timezone.localtime(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")


def person(user: User | None) -> str:
    """A person as messages name them (``User.label``); no person is the portal itself."""
    return "the portal" if user is None else user.label


# --- Email ---------------------------------------------------------------------------------


def email(
    user: User,
    *,
    event: str,
    template: str,
    context: dict[str, Any],
    request_id: int | None = None,
    grant_id: int | None = None,
    occasion: str = "",
) -> Message:
    """Render ``template`` for ``user`` (in their time zone) into an email message."""
    ctx = {
        "recipient": user,
        "portal_url": settings.PORTAL_URL,
        "preferences_url": preferences_url(),
        **context,
    }
    with timezone.override(zone_of(user)):
        raw_subject = render_to_string(f"notifications/{template}.subject.txt", ctx)
        text = render_to_string(f"notifications/{template}.txt", ctx)
        html = render_to_string(f"notifications/{template}.html", ctx)
    # Text already stored or from the identity provider may carry hidden characters: every
    # part shows them escaped (apps.kit.text), as the pages do.
    subject_text, body_text, body_html = reveal(raw_subject), reveal(text), reveal(html)
    # A header may not contain a line break; templates may wrap for readability.
    subject = " ".join(subject_text.split())[:255]
    return Message(
        event=event,
        channel=Channel.EMAIL,
        recipient=user.email.lower(),
        subject=subject,
        # Optional template lines leave blank runs behind; one blank line is enough.
        body=re.sub(r"\n{3,}", "\n\n", body_text.strip()) + "\n",
        body_html=body_html,
        request_id=request_id,
        grant_id=grant_id,
        occasion=occasion,
    )


# --- Slack ---------------------------------------------------------------------------------


def slack_escape(text: str) -> str:
    """Slack's mrkdwn treats &, < and > as markup; user text must not make links or mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def quote(text: str, limit: int = 500) -> str:
    """User text for Slack: one line, at most ``limit`` characters, escaped. Hidden
    characters are shown first, so line separators and the like become visible, not spaces."""
    text = " ".join(reveal(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return slack_escape(text)


def slack(
    resource: Resource,
    *,
    event: str,
    summary: str,
    details: list[str],
    link: str,
    link_label: str,
    request_id: int | None = None,
    grant_id: int | None = None,
    occasion: str = "",
) -> Message:
    """A Slack message: ``summary`` (plain, also the notification text), details, one button.

    ``summary`` and ``details`` must already be escaped with ``slack_escape`` where they
    carry user text. Hidden characters in either are shown escaped (``apps.kit.text``).
    """
    summary, details = reveal(summary), [reveal(line) for line in details]
    section = "\n".join([f"*{summary}*", *details])[:SLACK_TEXT_LIMIT]
    payload: dict[str, Any] = {
        "text": f"{summary} {link}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": section}},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": link_label},
                        "url": link,
                    }
                ],
            },
        ],
    }
    return Message(
        event=event,
        channel=Channel.SLACK,
        recipient=f"slack:{resource.slug}",
        subject=summary[:255],
        body=section,
        payload=payload,
        request_id=request_id,
        grant_id=grant_id,
        occasion=occasion,
    )
