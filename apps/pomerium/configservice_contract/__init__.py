"""Pomerium's unified configuration API (``pomerium.config.ConfigService``, Connect
unary JSON) as JSON Schema (draft 2020-12): the messages the portal sends and reads.

Our own subset of Pomerium's published OpenAPI document for ConfigService (kept outside
this repository and never copied into it); ``tests/zero/test_configservice_schemas.py``
checks every field
declared here against Pomerium's document, so the two cannot drift apart. Both sides use
it: the Core stand-in (``devtools/coresim``) refuses requests that do not validate and
checks its own answers; the client can check what it sends and reads.

    errors("CreatePolicyRequest", body)   # [] or readable messages
    validate("Policy", answer)            # raises ContractError

Requests are closed (unknown keys refused), as Pomerium's are; so is ``Policy``, whose
fields are all declared. ``Route`` is open for reading (Pomerium's route has dozens of
keys the portal never reads) but closed inside ``UpdateRouteRequest``. Field names are
proto-JSON lowerCamelCase; 64-bit integers are integers or decimal strings.

No network: ``$ref``s resolve only against these files.
"""

from __future__ import annotations

import re
from datetime import datetime

from apps.pomerium.contract.checker import ContractError, SchemaSet

__all__ = ["METHODS", "SCHEMA_NAMES", "ContractError", "errors", "schema", "validate"]

# ConfigService methods the portal calls; each has <Method>Request and <Method>Response.
METHODS = (
    "GetServerInfo",
    "ListPolicies",
    "GetPolicy",
    "CreatePolicy",
    "UpdatePolicy",
    "DeletePolicy",
    "ListRoutes",
    "GetRoute",
    "UpdateRoute",
)
SCHEMA_NAMES = (
    *(f"{method}{kind}" for method in METHODS for kind in ("Request", "Response")),
    "Policy",
    "Route",
    "EntityInfo",
    "ConnectError",
)
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$", re.ASCII
)


def _date_time(value: str) -> bool:
    if not _RFC3339.match(value):
        return False
    # Python reads at most 6 fraction digits; the date itself is what is checked here.
    head, _, _rest = value.partition(".")
    datetime.fromisoformat(head[:19])
    return True


_SET = SchemaSet(__name__, SCHEMA_NAMES, kind="ConfigService", date_time=_date_time)
schema = _SET.schema
errors = _SET.errors
validate = _SET.validate
