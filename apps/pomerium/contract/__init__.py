"""The Pomerium Zero wire contract as JSON Schema (draft 2020-12), and its checker.

One JSON file per body the portal sends or reads sits next to this module;
``docs/zero-api.md`` says in words what each means and how the unspecified
parts are read. Both sides use it: tests check the client's outgoing bodies
and the simulator's answers, and the simulator refuses any incoming body that
does not validate.

    errors("PolicyProperties", body)   # [] or readable messages
    validate("Policy", answer)         # raises ContractError

Request bodies are closed (unknown keys refused). Answers whose model the spec
gives in full (Policy, Changeset, ActivityLog, TokenResponse) are closed too,
so a stand-in cannot invent keys; Cluster, Settings, Route and Namespace are
open because the spec has many more keys than the portal reads. Formats are
asserted: ``date-time`` must be RFC 3339 with ``Z`` or an offset.

No network: ``$ref``s resolve only against these files.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from apps.pomerium.contract.checker import ContractError, SchemaSet

__all__ = ["SCHEMA_NAMES", "ContractError", "enum", "errors", "schema", "validate"]

BASE_URI = "https://jitportal.invalid/zero-contract/"

SCHEMA_NAMES = (
    "TokenRequest",
    "TokenResponse",
    "PPL",
    "PolicyProperties",
    "Policy",
    "PolicyList",
    "JsonPatch",
    "Cluster",
    "ClusterList",
    "Settings",
    "Changeset",
    "ChangesetList",
    "ActivityLog",
    "ActivityLogList",
    "Route",
    "RouteList",
    "Namespace",
    "NamespaceList",
)
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)


def _date_time(value: str) -> bool:
    if not _RFC3339.match(value):
        return False
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))  # ValueError: bad date
    return True


_SET = SchemaSet(__name__, SCHEMA_NAMES, kind="contract", date_time=_date_time, shared=("common",))
schema = _SET.schema
errors = _SET.errors
validate = _SET.validate


def enum(name: str) -> tuple[str, ...]:
    """The values of a shared enumeration: ChangesetStatus, ActivityType, EntityType."""
    values: Any = _SET.load("common")["$defs"][name]["enum"]
    return tuple(values)
