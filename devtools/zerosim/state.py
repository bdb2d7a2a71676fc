"""In-memory model behind the Zero simulator: policies, changesets, activity log, routes.

No HTTP here: ``handler`` maps requests onto these methods and
``simulator.ZeroSimulator`` owns the instance. Every public method takes the
state lock, so the model is safe under the threading HTTP server. Written from
the contract (``docs/zero-api.md``), never from the portal's client; where the
contract is silent it takes the strictest plausible reading.

Two views of a policy exist:

* the *latest* version is what the API returns (GET and list show a pending
  edit, as the Zero console shows an edited policy before it is deployed);
* the *effective* version is the newest write that has been applied, and is
  what the evaluator (the "proxy") enforces.

With ``auto_apply`` on, a write takes effect at once: its activity entry gets
``applied.at`` and, by default, no changeset (``record_auto_applied=True``
records an applied changeset per write instead). With it off, every write
(API writes and console hand edits alike) joins the namespace's ONE pending
changeset. Applying it answers ``applying`` and, ``apply_delay`` seconds later,
the changeset is ``applied`` (the newest applied one of a namespace reads
``current``) or, when ``apply_failure`` is set, ``failed``/``rejected`` with a
``failureMessage``; a failed changeset's writes never take effect.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import yaml

from apps.pomerium import contract
from devtools.zerosim import ppl as sim_ppl
from devtools.zerosim.changesets import ChangesetsMixin
from devtools.zerosim.model import (
    API_USER,
    POLICY_PROPERTIES,
    Changeset,
    PolicyVersion,
    console_user,
)
from devtools.zerosim.reads import ReadsMixin
from devtools.zerosim.views import POLICY_ORDER, SimError, apply_json_patch, order, timestamp

__all__ = [
    "API_USER",
    "POLICY_PROPERTIES",
    "Changeset",
    "SimError",
    "SimState",
    "console_user",
    "parse_console_ppl",
    "timestamp",
]


def parse_console_ppl(ppl: object) -> object:
    """A console edit may be typed as JSON or YAML text; the API only ever sees structure."""
    if not isinstance(ppl, str):
        return copy.deepcopy(ppl)
    try:
        parsed: object = json.loads(ppl)
    except ValueError:
        try:
            parsed = yaml.safe_load(ppl)
        except yaml.YAMLError:
            raise ValueError("console PPL is neither JSON nor YAML") from None
    return parsed


class SimState(ChangesetsMixin, ReadsMixin):
    """Everything the simulated organization holds; see the module docstring."""

    def __init__(
        self,
        organization_id: str,
        cluster_id: str,
        namespace_id: str,
        *,
        auto_apply: bool = True,
        clock: Callable[[], datetime] | None = None,
        max_page_size: int = 10,
        apply_delay: float = 0.2,
        allow_duplicate_names: bool = False,
        record_auto_applied: bool = False,
        ppl_as_array: bool = False,
    ) -> None:
        self.organization_id = organization_id
        self.cluster_id = cluster_id
        self.namespace_id = namespace_id
        self.auto_apply = auto_apply
        self.clock = clock or (lambda: datetime.now(UTC))
        self.max_page_size = max_page_size
        self.apply_delay = apply_delay
        self.allow_duplicate_names = allow_duplicate_names
        self.record_auto_applied = record_auto_applied
        self.ppl_as_array = ppl_as_array
        self.apply_failure: tuple[str, str] | None = None
        # Seconds before a change shows in the activity log. The contract does not say the
        # log is up to date when a write is answered; a lagging log is a plausible reading.
        self.activity_delay = 0.0
        # Fault: text whose presence in a policy's PPL makes the cluster refuse the write,
        # standing for a refusal the portal cannot foresee (a newer Pomerium's check).
        self.refused_ppl: tuple[str, ...] = ()
        self.api_user = dict(API_USER)
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Drop policies, routes, changesets and logs; zero the write counter."""
        with self.lock:
            self.versions: dict[str, list[PolicyVersion]] = {}
            self.changesets: dict[str, Changeset] = {}
            self.activity: list[dict[str, Any]] = []
            self.logged_at: dict[str, float] = {}
            self.routes: list[dict[str, Any]] = []
            self.write_count = 0
            self.apply_failure = None
            self._seq = 0

    # ----------------------------------------------------------- writes

    def _commit(
        self,
        policy_id: str,
        record: dict[str, Any] | None,
        activity_type: str,
        user: Mapping[str, str],
        previous: Mapping[str, Any] | None = None,
    ) -> PolicyVersion:
        now = self._now()
        namespace_id = (record or previous or {}).get("namespaceId", self.namespace_id)
        version = PolicyVersion(record=record, created_at=now, seq=self._next_seq())
        applied: dict[str, Any] = {"by": {}}
        if self.auto_apply:
            version.applied_at = now
            applied = {"at": timestamp(now), "by": dict(user)}
            if self.record_auto_applied:
                changeset = Changeset(str(uuid.uuid4()), namespace_id, "applied", now, now)
                changeset.applied_seq = version.seq
                self.changesets[changeset.id] = changeset
                version.changeset_id = changeset.id
                applied["changesetId"] = changeset.id
        else:
            changeset = self._pending(namespace_id)
            changeset.updated_at = now
            version.changeset_id = changeset.id
            applied["changesetId"] = changeset.id
        data = record if record is not None else previous
        version.activity = {
            "id": str(uuid.uuid4()),
            "activityType": activity_type,
            "createdAt": timestamp(now),
            "updatedAt": timestamp(now),
            "entity": {"id": policy_id, "type": "policy", "data": copy.deepcopy(dict(data or {}))},
            "user": dict(user),
            "namespace": {"id": namespace_id, "name": self.cluster_id},
            "applied": applied,
        }
        self.activity.append(version.activity)
        self.logged_at[version.activity["id"]] = time.monotonic()
        self.versions.setdefault(policy_id, []).append(version)
        return version

    def _properties(self, body: object) -> dict[str, Any]:
        """A PolicyProperties body checked against the contract and Pomerium's PPL rules."""
        problems = contract.errors("PolicyProperties", body)
        if problems:
            raise SimError(400, "body is not a valid PolicyProperties", problems)
        assert isinstance(body, dict)
        # The schema checked the PPL's structure; now what a schema cannot say.
        problems = [p.replace("$", "$.ppl", 1) for p in sim_ppl.semantic_errors(body["ppl"])]
        text = json.dumps(body["ppl"])
        problems += [
            f"the cluster refuses {needle!r}" for needle in self.refused_ppl if needle in text
        ]
        if problems:
            raise SimError(400, "invalid PPL", problems)
        if body["namespaceId"] != self.namespace_id:
            raise SimError(400, f"unknown namespaceId {body['namespaceId']!r}")
        return {key: copy.deepcopy(body[key]) for key in POLICY_PROPERTIES if key in body}

    def _check_unique(self, name: str, namespace_id: str, policy_id: str | None) -> None:
        if self.allow_duplicate_names:
            return
        for record in self._live():
            same = record["name"] == name and record["namespaceId"] == namespace_id
            if same and record["id"] != policy_id:
                raise SimError(409, f"a policy named {name!r} already exists in this namespace")

    def _require(self, policy_id: str) -> dict[str, Any]:
        record = self._latest(policy_id)
        if record is None:
            raise SimError(404, f"policy {policy_id} not found")
        return record

    def _update(
        self, policy_id: str, props: dict[str, Any], user: Mapping[str, str]
    ) -> dict[str, Any]:
        current = self._require(policy_id)
        if props["namespaceId"] != current["namespaceId"]:
            raise SimError(400, "namespaceId of a policy cannot change")
        self._check_unique(props["name"], props["namespaceId"], policy_id)
        record = {
            "id": policy_id,
            **props,
            "createdAt": current["createdAt"],
            "updatedAt": timestamp(self._now()),
        }
        self._commit(policy_id, record, "update", user)
        return self._view(record)

    # ------------------------------------------------------------- policies

    def list_policies(
        self,
        namespace_id: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        order_by: str | None = None,
    ) -> list[dict[str, Any]]:
        """The namespace's latest policies; all unless ``limit`` (HTTP caps ``limit``)."""
        with self.lock:
            self._advance()
            records = [r for r in self._live() if r["namespaceId"] == namespace_id]
            records = order(records, order_by or "id", POLICY_ORDER)
            return [self._view(r) for r in self._page(records, limit, offset)]

    def get_policy(self, policy_id: str) -> dict[str, Any]:
        with self.lock:
            self._advance()
            return self._view(self._require(policy_id))

    def create_policy(self, body: object, user: Mapping[str, str] | None = None) -> dict[str, Any]:
        with self.lock:
            self._advance()
            props = self._properties(body)
            self._check_unique(props["name"], props["namespaceId"], None)
            now = timestamp(self._now())
            policy_id = str(uuid.uuid4())
            record = {"id": policy_id, **props, "createdAt": now, "updatedAt": now}
            self._commit(policy_id, record, "create", user or self.api_user)
            self.write_count += 1
            return self._view(record)

    def replace_policy(
        self, policy_id: str, body: object, user: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        with self.lock:
            self._advance()
            self._require(policy_id)  # 404 before 400, as a real API would
            view = self._update(policy_id, self._properties(body), user or self.api_user)
            self.write_count += 1
            return view

    def patch_policy(
        self, policy_id: str, operations: object, user: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """RFC 6902 on the policy's properties; the result must be a valid PolicyProperties."""
        with self.lock:
            self._advance()
            current = self._require(policy_id)
            problems = contract.errors("JsonPatch", operations)
            if problems:
                raise SimError(400, "body is not a valid JSON Patch", problems)
            document = {key: current[key] for key in POLICY_PROPERTIES if key in current}
            assert isinstance(operations, list)
            patched = apply_json_patch(document, operations)
            view = self._update(policy_id, self._properties(patched), user or self.api_user)
            self.write_count += 1
            return view

    def delete_policy(self, policy_id: str, user: Mapping[str, str] | None = None) -> None:
        with self.lock:
            self._advance()
            current = self._require(policy_id)
            self._commit(policy_id, None, "delete", user or self.api_user, previous=current)
            self.write_count += 1

    def hand_edit(
        self, policy_name: str, ppl: object = None, by_email: str = "", **fields: Any
    ) -> dict[str, Any]:
        """A console edit by a human: logged and changeset-bound, not counted in write_count.

        ``ppl`` may be structure or JSON/YAML text (the console parses it); other
        PolicyProperties are given as keywords. KeyError if no such policy,
        ValueError if the result is not a valid policy (the console refuses it too).
        """
        with self.lock:
            self._advance()
            found = self._find(policy_name, effective=False)
            if not found:
                raise KeyError(policy_name)
            policy_id, version = found[0]
            assert version.record is not None
            props = {k: version.record[k] for k in POLICY_PROPERTIES if k in version.record}
            if ppl is not None:
                props["ppl"] = parse_console_ppl(ppl)
            props.update(fields)
            try:
                checked = self._properties(props)
            except SimError as exc:
                raise ValueError("; ".join([exc.message, *exc.details])) from None
            return self._update(policy_id, checked, console_user(by_email or "admin@example.com"))

    def hand_create(self, name: str, ppl: object, by_email: str) -> dict[str, Any]:
        """A policy created in the console by a human (not counted in write_count)."""
        with self.lock:
            self._advance()
            body = {
                "name": name,
                "description": "",
                "explanation": "",
                "remediation": "",
                "enforced": False,
                "namespaceId": self.namespace_id,
                "ppl": parse_console_ppl(ppl),
            }
            try:
                props = self._properties(body)
                self._check_unique(name, self.namespace_id, None)
            except SimError as exc:
                raise ValueError("; ".join([exc.message, *exc.details])) from None
            now = timestamp(self._now())
            policy_id = str(uuid.uuid4())
            record = {"id": policy_id, **props, "createdAt": now, "updatedAt": now}
            self._commit(policy_id, record, "create", console_user(by_email))
            return self._view(record)
