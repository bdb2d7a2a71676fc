"""The Zero simulator's ``/_sim/...`` controls: things the real API does not have.

* ``GET /_sim/evaluate?policy=&email=`` (optional ``at``, ``groups=a,b``, ``method``,
  ``path``, ``source_ip``, ``user``, ``cluster`` = a cluster id, default the first): the
  proxy's decision with the effective policy, ``{"allow": bool, "policy": …, "email": …}``;
  404 if none is applied;
* ``GET /_sim/state``: everything, for the demo and debugging (the first cluster at the
  top level, every cluster under ``clusters``);
* ``POST /_sim/faults``: ``error_rate``, ``latency``, ``faults_on_token``, ``seed``,
  ``lost_write_rate``, ``rate_limit_seconds``;
* ``POST /_sim/settings``: ``autoApplyChangesets``, ``maxPageSize``, ``applyDelay``,
  ``allowDuplicateNames``, ``recordAutoApplied``, ``pplAsArray``, ``clusterReadStatus``,
  ``clusterListStatus``, ``applyFailure`` (null or ``{"status": "failed"|"rejected",
  "message": …}``), ``activityDelay`` (seconds before a change shows in the activity
  log), ``refusedPpl`` (texts whose presence in a policy's PPL makes every write of it a
  400);
* ``POST /_sim/hand_edit`` ``{"policy": name or id, "ppl": …, "byEmail": …}``: a
  console edit;
* ``POST /_sim/changesets/{id}/fail`` ``{"status": "failed"|"rejected", "message": …}``;
* ``POST /_sim/changesets/{id}/apply`` ``{"byEmail": …}``: a human applies it in the
  console;
* ``POST /_sim/expire_tokens``: every issued ID token stops working;
* ``POST /_sim/reset``: forget everything (issued ID tokens stay valid).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from devtools.zerosim.views import SimError

if TYPE_CHECKING:
    from devtools.zerosim.simulator import ZeroSimulator

__all__ = ["handle"]

_ZONED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_SETTINGS = {
    "autoApplyChangesets": "auto_apply",
    "maxPageSize": "max_page_size",
    "applyDelay": "apply_delay",
    "allowDuplicateNames": "allow_duplicate_names",
    "recordAutoApplied": "record_auto_applied",
    "pplAsArray": "ppl_as_array",
    "clusterReadStatus": "cluster_read_status",
    "clusterListStatus": "cluster_list_status",
    "applyFailure": "apply_failure",
    "activityDelay": "activity_delay",
    "refusedPpl": "refused_ppl",
}
_CHANGESET = re.compile(r"^/_sim/changesets/(?P<id>[^/]+)/(?P<action>fail|apply)$")


def _object(body: object) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise SimError(400, "body must be a JSON object")
    return body


def _evaluate(sim: ZeroSimulator, query: dict[str, str]) -> dict[str, object]:
    policy, email = query.get("policy"), query.get("email")
    if not policy or email is None:
        raise SimError(400, "policy and email are required")
    if query.get("cluster") and query["cluster"] not in sim.states:
        raise SimError(404, f"no cluster {query['cluster']!r}")
    at: datetime | None = None
    if query.get("at"):
        if not _ZONED.match(query["at"]):
            raise SimError(400, "at must be an RFC 3339 timestamp with Z or an offset")
        at = datetime.fromisoformat(query["at"].replace("Z", "+00:00"))
    groups = [g for g in query.get("groups", "").split(",") if g]
    try:
        allowed = sim.evaluate(
            policy,
            email,
            at=at,
            groups=groups,
            method=query.get("method"),
            path=query.get("path"),
            source_ip=query.get("source_ip"),
            user=query.get("user"),
            cluster=query.get("cluster") or None,
        )
    except KeyError:
        raise SimError(404, f"no applied policy {policy!r}") from None
    except ValueError as exc:
        raise SimError(409, str(exc)) from None
    return {"allow": allowed, "policy": policy, "email": email}


def _settings(sim: ZeroSimulator, body: object) -> dict[str, Any]:
    changes = _object(body)
    unknown = sorted(set(changes) - set(_SETTINGS))
    if unknown:
        raise SimError(400, f"unknown setting {unknown[0]}; known: {', '.join(_SETTINGS)}")
    try:
        sim.configure(**{_SETTINGS[k]: v for k, v in changes.items()})
    except (TypeError, ValueError) as exc:
        raise SimError(400, str(exc)) from None
    return sim.sim_settings()


def _changeset(sim: ZeroSimulator, path: str, body: object) -> dict[str, Any]:
    match = _CHANGESET.match(path)
    assert match is not None
    data = _object(body)
    try:
        if match["action"] == "fail":
            return sim.fail_changeset(
                match["id"],
                status=str(data.get("status", "failed")),
                message=str(data.get("message", "rejected by the cluster")),
            )
        return sim.console_apply(match["id"], by_email=str(data.get("byEmail", "")))
    except KeyError:
        raise SimError(404, f"changeset {match['id']} not found") from None
    except ValueError as exc:
        raise SimError(409, str(exc)) from None


def handle(
    sim: ZeroSimulator, method: str, path: str, query: dict[str, str], body: object
) -> tuple[int, object]:
    """Run one control; SimError for bad input or an unknown control."""
    if (method, path) == ("GET", "/_sim/evaluate"):
        return 200, _evaluate(sim, query)
    if (method, path) == ("GET", "/_sim/state"):
        return 200, {
            **sim.state.dump(),
            "faults": sim.faults(),
            "settings": sim.sim_settings(),
            "clusters": [state.dump() for state in sim.states.values()],
            "outages": dict(sim.outages),
        }
    if (method, path) == ("POST", "/_sim/faults"):
        try:
            sim.set_faults(**_object(body))
        except (TypeError, ValueError) as exc:
            raise SimError(400, str(exc)) from None
        return 200, sim.faults()
    if (method, path) == ("POST", "/_sim/settings"):
        return 200, _settings(sim, body)
    if (method, path) == ("POST", "/_sim/hand_edit"):
        data = _object(body)
        try:
            edited = sim.hand_edit(
                str(data.get("policy", "")), data.get("ppl"), by_email=str(data.get("byEmail", ""))
            )
        except KeyError:
            raise SimError(404, f"no policy {data.get('policy')!r}") from None
        except ValueError as exc:
            raise SimError(400, str(exc)) from None
        return 200, edited
    if method == "POST" and _CHANGESET.match(path):
        return 200, _changeset(sim, path, body)
    if (method, path) == ("POST", "/_sim/expire_tokens"):
        sim.expire_tokens()
        return 204, None
    if (method, path) == ("POST", "/_sim/reset"):
        sim.reset()
        return 204, None
    raise SimError(404, f"no such simulator control {method} {path}")
