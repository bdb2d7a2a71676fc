"""Our ConfigService schemas (apps/pomerium/configservice_contract) against Pomerium's own
OpenAPI document, field by field, so the two cannot drift apart.

Pomerium's document is not in the repository (it is Pomerium's; we keep our own subset).
It lies at ``<repo>/../shared/specs/pomerium-config.openapi.yaml`` (or where
``POMERIUM_OPENAPI`` points); without it the comparison is skipped, except in CI
(``CI=true``), where a missing document fails.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from apps.pomerium import configservice_contract as contract

REPO = Path(__file__).resolve().parents[2]
SPEC_NAME = "shared/specs/pomerium-config.openapi.yaml"
OURS_TO_THEIRS = {name: f"pomerium.config.{name}" for name in contract.SCHEMA_NAMES}
OURS_TO_THEIRS["ConnectError"] = "connect.error"
# protojson writes these well-known types as plain JSON (a Timestamp is a string, a
# ListValue an array, ...); the OpenAPI document describes some as their proto messages.
WELL_KNOWN = {
    "google.protobuf.Timestamp": frozenset({"string"}),
    "google.protobuf.FieldMask": frozenset({"string"}),
    "google.protobuf.ListValue": frozenset({"array"}),
    "google.protobuf.Struct": frozenset({"object"}),
    "google.protobuf.Value": frozenset({"any"}),
}
MESSAGES = [n for n in contract.SCHEMA_NAMES if n.endswith(("Request", "Response"))]
REQUESTS = [n for n in MESSAGES if n.endswith("Request")]


def _spec_path() -> Path | None:
    candidates = [os.environ.get("POMERIUM_OPENAPI", "")]
    candidates += [str(REPO.parent / SPEC_NAME), str(REPO.parent.parent / SPEC_NAME)]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    path = _spec_path()
    if path is None:
        message = f"Pomerium's OpenAPI document is missing (<repo>/../{SPEC_NAME})"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI must have it")
        pytest.skip(message)
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


def _theirs(spec: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = spec["components"]["schemas"][name]
    return found


def _kind(schema: dict[str, Any], spec: dict[str, Any] | None) -> frozenset[str]:
    """The JSON types a property schema allows; a message is ``ref:<Name>``. ``spec`` is
    None for our schemas (refs are ``Name.json``), else Pomerium's document."""
    if "$ref" in schema:
        ref = schema["$ref"]
        if spec is None:
            return frozenset({"ref:" + ref.removesuffix(".json")})
        name = ref.rsplit("/", 1)[1]
        if name in WELL_KNOWN:
            return WELL_KNOWN[name]
        target = _theirs(spec, name)
        if name.startswith("pomerium.config.") and target.get("type") == "object":
            return frozenset({"ref:" + name.removeprefix("pomerium.config.")})
        return _kind(target, spec)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return frozenset().union(*(_kind(option, spec) for option in schema[key]))
    kind = schema.get("type")
    if kind is None:
        return frozenset({"any"})
    return frozenset([kind] if isinstance(kind, str) else kind)


def _enum(schema: dict[str, Any], spec: dict[str, Any] | None) -> list[str] | None:
    if "enum" in schema:
        return list(schema["enum"])
    if spec is not None and "$ref" in schema:
        return _enum(_theirs(spec, schema["$ref"].rsplit("/", 1)[1]), spec)
    return None


@pytest.mark.parametrize("name", contract.SCHEMA_NAMES)
def test_every_schema_is_valid_draft_2020_12(name: str) -> None:
    Draft202012Validator.check_schema(contract.schema(name))


@pytest.mark.parametrize("name", contract.SCHEMA_NAMES)
def test_every_field_we_declare_exists_in_pomeriums_with_the_same_type(
    spec: dict[str, Any], name: str
) -> None:
    ours = contract.schema(name)
    theirs = _theirs(spec, OURS_TO_THEIRS[name])
    their_props = theirs.get("properties", {})
    if not ours.get("properties"):
        assert not their_props, f"{name} declares none of Pomerium's fields"
    for field, our_field in ours.get("properties", {}).items():
        assert field in their_props, f"{name}.{field} is not in Pomerium's {OURS_TO_THEIRS[name]}"
        their_field = their_props[field]
        assert _kind(our_field, None) == _kind(their_field, spec), f"{name}.{field}"
        for part in ("items", "additionalProperties"):
            if isinstance(our_field.get(part), dict):
                assert isinstance(their_field.get(part), dict), f"{name}.{field}.{part}"
                assert _kind(our_field[part], None) == _kind(their_field[part], spec), (
                    f"{name}.{field}.{part}"
                )
        our_enum = _enum(our_field, None)
        if our_enum is not None:
            their_enum = _enum(their_field, spec)
            assert their_enum is not None and set(our_enum) <= set(their_enum), f"{name}.{field}"


@pytest.mark.parametrize("name", contract.SCHEMA_NAMES)
def test_required_fields_match(spec: dict[str, Any], name: str) -> None:
    theirs = _theirs(spec, OURS_TO_THEIRS[name])
    assert sorted(contract.schema(name).get("required", [])) == sorted(theirs.get("required", []))


@pytest.mark.parametrize("name", [*MESSAGES, "Policy", "EntityInfo"])
def test_closed_in_pomeriums_document_means_closed_here(spec: dict[str, Any], name: str) -> None:
    theirs = _theirs(spec, OURS_TO_THEIRS[name])
    assert theirs.get("additionalProperties") is False
    assert contract.schema(name).get("additionalProperties") is False


def test_every_request_is_closed_and_declares_all_of_pomeriums_fields(
    spec: dict[str, Any],
) -> None:
    """A request we send must never be refused for a field, nor lack one we may need."""
    for name in REQUESTS:
        theirs = _theirs(spec, OURS_TO_THEIRS[name])
        ours = contract.schema(name)
        assert set(ours.get("properties", {})) == set(theirs.get("properties", {})), name


def test_policy_declares_every_field_of_pomeriums_policy(spec: dict[str, Any]) -> None:
    theirs = set(_theirs(spec, "pomerium.config.Policy")["properties"])
    assert set(contract.schema("Policy")["properties"]) == theirs


def test_the_route_inside_update_route_is_closed() -> None:
    route = {"id": "r", "from": "https://a.example.com", "policyIds": ["p"]}
    assert contract.errors("UpdateRouteRequest", {"route": route, "updateMask": "policyIds"}) == []
    problems = contract.errors("UpdateRouteRequest", {"route": {**route, "policy_ids": []}})
    assert problems and "policy_ids" in problems[0]
    # Reading, the route stays open: Pomerium's has dozens of fields the portal ignores.
    assert contract.errors("Route", {**route, "tlsSkipVerify": True}) == []


@pytest.mark.parametrize("method", contract.METHODS)
def test_every_method_is_a_path_of_pomeriums_service_with_our_messages(
    spec: dict[str, Any], method: str
) -> None:
    operation = spec["paths"][f"/pomerium.config.ConfigService/{method}"]["post"]
    request = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    error = operation["responses"]["default"]["content"]["application/json"]["schema"]["$ref"]
    assert request.endswith(f"/pomerium.config.{method}Request")
    assert answer.endswith(f"/pomerium.config.{method}Response")
    assert error.endswith("/connect.error")
    headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
    assert headers["Connect-Protocol-Version"]["required"] is True


def test_connect_error_codes_are_pomeriums(spec: dict[str, Any]) -> None:
    ours = contract.schema("ConnectError")["properties"]["code"]["enum"]
    assert ours == _theirs(spec, "connect.error")["properties"]["code"]["enum"]


def test_the_comparison_notices_a_drifted_field(spec: dict[str, Any]) -> None:
    """The check above can fail: a wrong type and an invented field are both caught."""
    their_policy = _theirs(spec, "pomerium.config.Policy")["properties"]
    assert _kind({"type": "object"}, None) != _kind(their_policy["sourcePpl"], spec)
    assert "ppl" not in their_policy  # Zero's v0 name; ConfigService's is sourcePpl (text)


def test_messages_validate_and_refuse() -> None:
    policy = {"name": "jit", "sourcePpl": "allow:\n  or:\n    - email:\n        is: a@x.com\n"}
    assert contract.errors("CreatePolicyRequest", {"policy": policy}) == []
    assert contract.errors("CreatePolicyRequest", {"policy": {"ppl": {}}})
    assert contract.errors("CreatePolicyRequest", {"policy": {"sourcePpl": {"allow": {}}}})
    assert contract.errors("ListPoliciesRequest", {"limit": "20", "offset": 0}) == []
    assert contract.errors("ListPoliciesRequest", {"limit": "-1"})
    assert contract.errors("ListPoliciesResponse", {"totalCount": "12", "policies": []}) == []
    assert contract.errors("Policy", {"createdAt": "yesterday"})
    with pytest.raises(contract.ContractError):
        contract.validate("GetServerInfoResponse", {"serverType": "SERVER_TYPE_CLOUD"})
    with pytest.raises(KeyError):
        contract.schema("Nope")
