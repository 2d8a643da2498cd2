"""The local Dagster instance (``dagster.yaml`` at the repo root, what ``make dev`` runs): a
run killed while holding a pool slot does not block its pool forever, and ``make dev`` uses
the repository's current settings."""

from __future__ import annotations

import datetime
import logging
import types
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.test_utils import create_run_for_test, freeze_time
from dagster._daemon.monitoring import execute_concurrency_slots_iteration

from etl_platform.cli import local_dagster_home

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_CONFIG = REPO_ROOT / "dagster.yaml"
POOL = "dump_scrub/demo"  # an exclusive pool: the instance's default_limit of 1


@pytest.fixture
def local_instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    (tmp_path / "dagster.yaml").write_text(LOCAL_CONFIG.read_text())
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        yield instance


def _free_slots_after(instance: dg.DagsterInstance) -> int:
    """The instance's setting; 0 when unset (Dagster then never frees a finished run's slots)."""
    return instance.run_monitoring_settings.get("free_slots_after_run_end_seconds") or 0


def test_the_local_instance_frees_the_pool_slots_of_ended_runs(local_instance):
    configured = yaml.safe_load(LOCAL_CONFIG.read_text())["run_monitoring"]
    assert local_instance.run_monitoring_enabled
    assert _free_slots_after(local_instance) > 0
    assert _free_slots_after(local_instance) == configured.get("free_slots_after_run_end_seconds")


def test_a_slot_held_by_a_killed_run_is_freed_after_the_run_is_marked_failed(local_instance):
    storage = local_instance.event_log_storage
    # What a step's executor does before its first claim: the pool takes the default limit.
    assert storage.initialize_concurrency_limit_to_default(POOL)
    assert storage.get_concurrency_info(POOL).slot_count == 1
    killed = create_run_for_test(local_instance, job_name="scrub", status=DagsterRunStatus.STARTED)
    assert storage.claim_concurrency_slot(POOL, killed.run_id, "scrub").is_claimed
    # What run monitoring does once it finds the run's worker gone: the run is failed, but
    # its step never released the slot.
    local_instance.report_run_failed(killed, "run worker killed")
    assert local_instance.get_run_by_id(killed.run_id).status == DagsterRunStatus.FAILURE
    following = create_run_for_test(local_instance, job_name="scrub")
    assert not storage.claim_concurrency_slot(POOL, following.run_id, "scrub").is_claimed

    # The monitoring daemon's slot sweep, at a time the setting has passed since the run ended.
    after = _free_slots_after(local_instance)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=after + 5)
    daemon = types.SimpleNamespace(instance=local_instance)
    with freeze_time(later):
        list(execute_concurrency_slots_iteration(daemon, logging.getLogger(__name__)))  # type: ignore[arg-type]

    assert [s.run_id for s in storage.get_concurrency_info(POOL).claimed_slots] == []
    assert storage.claim_concurrency_slot(POOL, following.run_id, "scrub").is_claimed


def test_dev_refreshes_its_own_dagster_yaml_and_keeps_a_users(tmp_path):
    ours = tmp_path / "stack" / "dagster_home"
    ours.mkdir(parents=True)
    (ours / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # an older copy
    home = local_dagster_home(tmp_path / "stack", None)
    assert home == ours.resolve()
    assert (home / "dagster.yaml").read_text() == LOCAL_CONFIG.read_text()

    users = tmp_path / "mine"
    users.mkdir()
    (users / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    assert local_dagster_home(tmp_path / "stack", str(users)) == users.resolve()
    assert (users / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"

    fresh = tmp_path / "fresh"
    local_dagster_home(tmp_path / "stack", str(fresh))
    assert (fresh / "dagster.yaml").read_text() == LOCAL_CONFIG.read_text()
