"""The audit actions the stream writes (registered by the audit app when it loads)."""

from __future__ import annotations

from django.db import models


class StreamAction(models.TextChoices):
    REFUSED = "audit.stream_refused", "Audit stream destination refused or unreachable (alerted)"
    RECOVERED = "audit.stream_recovered", "Audit stream destination delivering again"
    CURSOR_MOVED = "audit.stream_cursor_moved", "Audit stream cursor moved by an operator"
