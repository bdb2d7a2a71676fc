"""English date formats, with the zone on every time: the admin's lists and forms show
times in the reader's zone (``apps.accounts.timezones.TimeZoneMiddleware``) and say which.
``T`` is the zone's abbreviation (CET, EST, UTC) or its offset where it has none (+03)."""

DATETIME_FORMAT = "D j M Y H:i T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
TIME_FORMAT = "H:i T"
