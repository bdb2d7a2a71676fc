"""How a duration reads, everywhere: pages, the admin, mail and Slack say the same words."""

from __future__ import annotations


def duration_label(minutes: int) -> str:
    """60 → "1 hour", 90 → "1 hour 30 minutes", 2880 → "2 days", 0 → "0 minutes"."""
    days, rest = divmod(max(minutes, 0), 1440)
    hours, mins = divmod(rest, 60)
    parts = [
        f"{value} {unit}{'' if value == 1 else 's'}"
        for value, unit in ((days, "day"), (hours, "hour"), (mins, "minute"))
        if value
    ]
    return " ".join(parts) or "0 minutes"
