"""``check_connectivity``'s line per destination: prove the destination takes an entry.

The proof is an entry the destination already has (the one at its cursor; entry #1 when
nothing was acknowledged yet), sent once more: the same line with the same ``seq``, which
receivers drop as a repeat. So the check exercises the whole path (connection, TLS with the
configured CA, the token, the receiver's acknowledgement) without adding anything to the
SIEM or moving the cursor. With an empty trail there is nothing to send, and the check
only connects (and, for TLS, verifies the certificate).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from functools import partial

from ..models import StreamDestination
from . import config
from .sender import head_seq, read_batch
from .transports import DeliveryError, tls_context, transport_for


def checks() -> list[tuple[str, Callable[[], str]]]:
    """(name, check) per configured destination; a check returns a line or raises."""
    return [(f"Audit stream {d.name}", partial(prove, d)) for d in config.destinations()]


def prove(destination: config.Destination) -> str:
    cfg = config.current()
    head = head_seq()
    cursor = (
        StreamDestination.objects.filter(name=destination.name)
        .values_list("cursor", flat=True)
        .first()
        or 0
    )
    behind = f"cursor #{cursor}, {head - cursor} entries behind"
    if head == 0:
        _connect_only(destination, cfg)
        return f"reachable; the trail is empty, so nothing was sent ({behind})"
    seq = max(cursor, 1)
    batch = read_batch(seq - 1, limit=1, max_bytes=cfg.batch_bytes)
    assert batch is not None  # seq <= head
    transport = transport_for(destination, cfg)
    try:
        transport.send(batch)
    except DeliveryError as exc:
        raise RuntimeError(str(exc)) from None
    finally:
        transport.close()
    return f"took entry #{seq} again (a repeat, dropped by seq); {behind}"


def _connect_only(destination: config.Destination, cfg: config.Settings) -> None:
    with socket.create_connection(
        (destination.host, destination.port), timeout=cfg.timeout
    ) as sock:
        if destination.is_tls:
            tls_context(cfg).wrap_socket(sock, server_hostname=destination.host).close()
