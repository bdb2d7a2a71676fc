"""Resource definitions (the bootstrap file's ``resources:``) at their edges: each malformed
entry or level is refused with its place, and nothing is written (all or nothing); a level
still used by a grant is kept, saying so."""

from __future__ import annotations

from typing import Any

import pytest

from apps.access.models import AccessLevel, Resource
from apps.access.services.resources import DefinitionError, apply_definitions
from tests.factories import GrantFactory

pytestmark = pytest.mark.django_db

GOOD = {"slug": "wiki", "name": "Wiki", "approver_groups": ["approvers"]}


@pytest.mark.parametrize(
    ("definitions", "message"),
    [
        ({"slug": "wiki"}, "'resources' must be a list."),
        ([GOOD, "lab"], "resources[1]: each resource must be a mapping of settings."),
        ([{**GOOD, "levels": "read"}], "resources[0] (wiki): 'levels' must be a list."),
        (
            [{**GOOD, "levels": ["read"]}],
            "resources[0] (wiki) levels[0]: each level must be a mapping.",
        ),
        (
            [{**GOOD, "levels": [{"slug": "read", "colour": "red"}]}],
            "resources[0] (wiki) levels[0]: unknown setting(s) colour.",
        ),
        (
            [{**GOOD, "levels": [{"name": "Read"}]}],
            "resources[0] (wiki) levels[0]: 'slug' is required.",
        ),
        ([GOOD, {**GOOD, "name": "Again"}], "resources[1]: slug 'wiki' appears twice."),
    ],
)
def test_a_malformed_definition_is_refused_and_nothing_is_written(
    definitions: Any, message: str
) -> None:
    with pytest.raises(DefinitionError) as caught:
        apply_definitions(definitions)
    assert str(caught.value) == message
    assert not Resource.objects.exists()
    assert not AccessLevel.objects.exists()


def test_a_level_still_used_by_a_grant_stays_and_the_file_is_refused() -> None:
    levels = [
        {"slug": "read", "name": "Read", "rank": 0},
        {"slug": "full", "name": "Full", "rank": 1},
    ]
    apply_definitions([{**GOOD, "levels": levels}])
    wiki = Resource.objects.get(slug="wiki")
    GrantFactory(request__resource=wiki, level=wiki.levels.get(slug="full"))

    with pytest.raises(DefinitionError) as caught:
        apply_definitions([{**GOOD, "name": "Wiki 2", "levels": levels[:1]}])

    assert str(caught.value) == (
        "wiki: level(s) full are used by requests or grants and stay; keep them in the file."
    )
    wiki.refresh_from_db()
    assert wiki.name == "Wiki"  # all or nothing: the rename did not happen either
    assert sorted(wiki.levels.values_list("slug", flat=True)) == ["full", "read"]


def test_a_definition_names_the_routes_its_policy_protects_on_a_target_that_attaches(
    settings: Any,
) -> None:
    from apps.access.pomerium_targets import Target

    settings.CLUSTER_ID = "c-default"  # the Zero cluster "default", beside a Core "edge"
    settings.POMERIUM_SHARED_SECRET = "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s="
    settings.POMERIUM_TARGETS = {"edge": Target("edge", "core", "http://edge.test:5443")}
    apply_definitions([{**GOOD, "cluster": "edge", "routes": ["r-wiki"]}])
    assert Resource.objects.get(slug="wiki").routes == ["r-wiki"]

    # A Zero cluster's v0 API cannot attach routes: refused with its place, nothing written.
    with pytest.raises(DefinitionError) as caught:
        apply_definitions([{**GOOD, "slug": "lab", "routes": ["r-lab"]}])
    assert str(caught.value).startswith("resources[0] (lab): ")
    assert "routes" in str(caught.value)
    assert not Resource.objects.filter(slug="lab").exists()
