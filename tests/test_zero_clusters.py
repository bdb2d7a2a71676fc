"""ZERO_CLUSTERS: parsed and checked at start-up; a bad value is one readable refusal line."""

from __future__ import annotations

import pytest

from apps.access.zero_clusters import ClusterConfigError, cluster_set, parse
from tests.test_settings import PRODUCTION, manage


def test_pairs_are_parsed_in_order() -> None:
    assert parse(" staging = c-1 , production=c-2") == {"staging": "c-1", "production": "c-2"}
    assert parse("") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("staging", "entry 'staging' is not name=cluster_id"),
        ("staging=", "entry 'staging' has an empty cluster id"),
        ("Staging=c-1", "name 'Staging' is not valid"),
        ("1st=c-1", "name '1st' is not valid"),
        ("staging=c 1", "entry 'staging' has an invalid cluster id"),
        ("staging=c-1,staging=c-2", "names cluster 'staging' twice"),
        ("staging=c-1,,production=c-2", "has an empty entry"),
    ],
)
def test_bad_values_are_refused_readably(text: str, message: str) -> None:
    with pytest.raises(ClusterConfigError) as caught:
        parse(text)
    assert message in str(caught.value)


def test_cluster_id_is_the_default_cluster() -> None:
    assert cluster_set("c-0", {"prod": "c-1"}, "default") == {"default": "c-0", "prod": "c-1"}
    assert cluster_set("", {"prod": "c-1"}, "prod") == {"prod": "c-1"}
    assert cluster_set("", {}, "default") == {"default": ""}


@pytest.mark.parametrize(
    ("cluster_id", "extra", "default", "message"),
    [
        ("c-0", {"default": "c-9"}, "default", "which is CLUSTER_ID's cluster"),
        ("c-0", {"prod": "c-0"}, "default", "'default' and 'prod' have the same cluster id"),
        ("", {"a": "c-1", "b": "c-1"}, "a", "'a' and 'b' have the same cluster id"),
        ("", {"prod": "c-1"}, "default", "ZERO_DEFAULT_CLUSTER 'default' is not a configured"),
    ],
)
def test_conflicts_are_refused(
    cluster_id: str, extra: dict[str, str], default: str, message: str
) -> None:
    with pytest.raises(ClusterConfigError) as caught:
        cluster_set(cluster_id, extra, default)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("env", "shown"),
    [
        ({"ZERO_CLUSTERS": "staging=c-1,staging=c-2"}, "names cluster 'staging' twice"),
        ({"ZERO_CLUSTERS": "Bad Name=c-1"}, "name 'Bad Name' is not valid"),
        ({"ZERO_CLUSTERS": "staging="}, "entry 'staging' has an empty cluster id"),
        ({"ZERO_DEFAULT_CLUSTER": "prod"}, "ZERO_DEFAULT_CLUSTER 'prod' is not a configured"),
    ],
)
def test_a_bad_cluster_setting_refuses_to_start_in_one_line(env: dict[str, str], shown: str):
    result = manage("check", env={**PRODUCTION, **env})
    assert result.returncode != 0
    assert result.stderr.startswith("jitportal refuses to start: ")
    assert shown in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert PRODUCTION["API_USER_TOKEN"] not in result.stderr


def test_several_clusters_pass_check_deploy() -> None:
    env = {**PRODUCTION, "ZERO_CLUSTERS": "staging=c-1,production=c-2"}
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sync_without_any_cluster_is_a_check_error() -> None:
    env = {**PRODUCTION, "CLUSTER_ID": ""}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "jitportal.E001" in result.stderr and "CLUSTER_ID (or ZERO_CLUSTERS)" in result.stderr
