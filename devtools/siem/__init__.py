"""Stand-ins for a SIEM's two doors, for the audit stream's tests, bench and demo.

* ``HttpReceiver``: an HTTP(S) endpoint taking POSTed JSON Lines (``application/x-ndjson``)
  with a bearer token, as Splunk's HEC raw endpoint, Logstash's http input or an Elastic
  HTTP endpoint do;
* ``SyslogReceiver``: a TCP (optionally TLS) syslog listener that parses RFC 6587
  octet-counting frames and RFC 5424 headers, as rsyslog's ``imtcp`` does, and closes a
  connection once the sender closed its side and everything was read.

Written from those published contracts (RFC 5424, RFC 6587, HTTP), never from the portal's
sender: they share no code with the portal (import-linter forbids it). Where a contract is
silent they take the strictest reading (a frame whose length is not a positive decimal
without leading zeros, a message that is not RFC 5424, a body line that is not a JSON
object: refused and recorded in ``errors``).

Both keep what they received in arrival order (``received``: repeats included) and offer
``unique_lines()`` (one line per ``seq``, in ``seq`` order: what a receiver that drops
duplicates keeps) and ``write_jsonl(path)``. Faults: ``down()``/``up()`` (the port refuses
connections, and open connections are reset: a crash), and on the HTTP side ``status`` (an
answer to give instead of 200), ``drop_answers`` (process a batch, then reset the
connection without answering: a lost acknowledgement) and ``delay``.
"""

from devtools.siem.http import HttpReceiver
from devtools.siem.syslog import SyslogMessage, SyslogReceiver

__all__ = ["HttpReceiver", "SyslogMessage", "SyslogReceiver"]
