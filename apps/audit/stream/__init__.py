"""The audit stream: the trail leaving the building, entry by entry (docs/audit-stream.md).

Every entry is sent to each destination of ``AUDIT_STREAM`` as exactly the line
``export_audit --format jsonl`` writes for it (the export's own writer makes it), so the
receiver's copy verifies with ``verify_audit --file``. Per destination: in ``seq`` order, at
least once, a cursor in the database (``StreamDestination``) advanced only when the
destination acknowledged a batch; a repeat carries the same ``seq``.

* ``config``: the destinations and settings, read at call time;
* ``transports``: HTTPS (JSON Lines POSTs) and syslog over TCP/TLS (RFC 5424 in RFC 6587
  octet-counting frames), each with what counts as an acknowledgement;
* ``sender``: the service that claims a destination (a lease), sends batches, moves the
  cursor, backs off, and alerts; ``nudge`` is the audit writer's commit hook;
* ``status``: cursor and lag per destination, for the admin and ``stream_audit --status``;
* ``probe``: the ``check_connectivity`` line per destination;
* ``checks``: the settings' system checks.
"""
