"""Reconcile step: failed micro-batch runs come back under a new run key.

A sensor never requests a run key twice, so a manifest whose run failed (its messages are
already deleted) would be lost to the sensor. This tick finds failed runs of the instance's
load job, and re-requests each manifest whose latest run failed, with the same partition and
run config and run key ``<manifest id>#<attempt>``, until ``max_attempts`` runs of it failed.
Re-executing the failed run from the UI is the manual alternative; both load the same files.
"""

from __future__ import annotations

import dagster as dg

from etl_platform.components.microbatch.sensor import ATTEMPT_TAG, INSTANCE_TAG, MANIFEST_TAG

_LOOKBACK_RUNS = 200


def reconcile_tick(
    context: dg.SensorEvaluationContext, instance_name: str, job_name: str, max_attempts: int
) -> dg.SensorResult:
    failed = context.instance.get_runs(
        filters=dg.RunsFilter(
            job_name=job_name,
            statuses=[dg.DagsterRunStatus.FAILURE],
            tags={INSTANCE_TAG: instance_name},
        ),
        limit=_LOOKBACK_RUNS,
    )
    requests: list[dg.RunRequest] = []
    for run in failed:
        manifest_id = run.tags.get(MANIFEST_TAG)
        if not manifest_id:
            continue  # a bulk load: re-run the day instead
        attempt = int(run.tags.get(ATTEMPT_TAG, "1"))
        later = context.instance.get_runs(
            filters=dg.RunsFilter(tags={MANIFEST_TAG: manifest_id}), limit=max_attempts + 5
        )
        if any(int(r.tags.get(ATTEMPT_TAG, "1")) > attempt for r in later):
            continue  # already re-requested
        if attempt >= max_attempts:
            context.log.warning(
                f"manifest {manifest_id} failed {attempt} times; not re-requested again "
                f"(last run {run.run_id})"
            )
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"{manifest_id}#{attempt + 1}",
                partition_key=run.tags.get("dagster/partition"),
                run_config=run.run_config,
                tags={
                    MANIFEST_TAG: manifest_id,
                    INSTANCE_TAG: instance_name,
                    ATTEMPT_TAG: str(attempt + 1),
                },
            )
        )
    if not requests:
        return dg.SensorResult(skip_reason="no failed manifests to re-request")
    return dg.SensorResult(run_requests=requests)
