"""The live demo: one date of every demo pipeline materialized through the running instance.

Everything here is a request to the Dagster webserver's GraphQL API (the runs are launched and
executed by the instance's daemon and run workers, never in this process) or a file landing on
the local stack, the way data arrives in production:

* DynamoDB → warehouse and Postgres → lake: one asset backfill of the demo date over every
  materializable asset of the ``dynamodb_*`` and ``lake_*`` groups (the data-schemas, the date's
  segment extracts and staging loads, the publish; each lake table's day).
* Postgres dump → scrub → restore: the dump sensor is started and a ``raw_dump`` run takes a new
  dump; its manifest's S3 event reaches the queue and the sensor requests scrub + restore.
* S3 → micro-batch merge: each ``*_sqs_sensor`` is started and
  :func:`land_microbatch_demo_file` drops one CSV file on its landing prefix (the S3 event is the
  queue message the sensor turns into a run).

``etl-platform dev`` sends these once the UI is up (in a background thread); ``etl-platform demo
run`` sends them again on demand.
"""

from __future__ import annotations

import gzip
import json
import os
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3

from etl_platform.components.postgres_dump.dump import new_dump_key

BACKFILL_GROUP_PREFIXES = ("dynamodb_", "lake_")
DUMP_GROUP_PREFIX = "postgres_dump_"
DUMP_SENSOR_SUFFIX = "_dump_sensor"
MICROBATCH_SENSOR_SUFFIX = "_sqs_sensor"
MICROBATCH_LANDING = ("loader-landing", "orders/")  # the demo instance's source_bucket/prefix


class DemoRunError(RuntimeError):
    """A request the webserver refused, naming the request and the webserver's message."""


def demo_date(now: datetime | None = None) -> str:
    """The demo's date: the last complete UTC day (it is in every daily pipeline's partitions
    and the seeded source tables hold rows for it)."""
    today = (now or datetime.now(UTC)).date()
    return (today - timedelta(days=1)).isoformat()


class GraphQLClient:
    """POSTs queries to ``<url>/graphql``; raises :class:`DemoRunError` on a GraphQL error."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/server_info", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.ready():
            if time.monotonic() > deadline:
                raise DemoRunError(f"the Dagster webserver at {self.url} is not up")
            time.sleep(1)

    def query(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": text, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            reply = json.loads(response.read())
        if reply.get("errors"):
            raise DemoRunError(f"GraphQL error from {self.url}: {reply['errors'][0]['message']}")
        return reply["data"]


_REPOSITORY = """{ repositoriesOrError { ... on RepositoryConnection { nodes {
  name location { name } sensors { name sensorState { status } }
  assetNodes { assetKey { path } groupName isMaterializable
    partitionDefinition { type dimensionTypes { name type dynamicPartitionsDefinitionName } }
    partitionKeysByDimension { name partitionKeys } } } } } }"""

_START_SENSOR = """mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) {
  __typename ... on Error { message } } }"""

_ADD_PARTITION = """mutation($r: RepositorySelector!, $n: String!, $k: String!) {
  addDynamicPartition(repositorySelector: $r, partitionsDefName: $n, partitionKey: $k) {
  __typename ... on Error { message } } }"""

_LAUNCH_RUN = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message } } }"""

_LAUNCH_BACKFILL = """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(
  backfillParams: $p) { __typename ... on LaunchBackfillSuccess { backfillId }
  ... on Error { message } } }"""


@dataclass
class DemoRequests:
    """What one ``demo run`` asked the instance for (ids to follow in the UI)."""

    day: str
    backfill_id: str | None = None
    backfill_assets: list[str] = field(default_factory=list)
    dump_runs: dict[str, str] = field(default_factory=dict)  # dump key → run id
    started_sensors: list[str] = field(default_factory=list)
    landed_files: list[str] = field(default_factory=list)


def _checked(reply: dict[str, Any], what: str, ok: str) -> dict[str, Any]:
    if reply["__typename"] != ok:
        raise DemoRunError(f"{what}: {reply['__typename']}: {reply.get('message', '')}")
    return reply


class DemoWorldRuns:
    """The requests of one demo run, against one webserver's single code location."""

    def __init__(self, client: GraphQLClient, day: str | None = None) -> None:
        self.client = client
        self.day = day or demo_date()
        repo = client.query(_REPOSITORY)["repositoriesOrError"]["nodes"][0]
        self.repo = repo
        self.selector = {
            "repositoryName": repo["name"],
            "repositoryLocationName": repo["location"]["name"],
        }

    def start_sensor(self, name: str) -> None:
        selector = {**self.selector, "sensorName": name}
        reply = self.client.query(_START_SENSOR, {"s": selector})["startSensor"]
        # a sensor that is already running may answer with an error saying so: harmless
        if reply["__typename"] != "Sensor" and "already" not in reply.get("message", ""):
            raise DemoRunError(f"start sensor {name}: {reply.get('message', reply)}")

    def _sensors(self, suffix: str) -> list[str]:
        return [s["name"] for s in self.repo["sensors"] if s["name"].endswith(suffix)]

    def _partitions_for_day(self, node: dict[str, Any]) -> dict[str, Any] | None:
        """The asset's partitions of the demo day (``None``: unpartitioned)."""
        definition = node["partitionDefinition"]
        if definition is None:
            return None
        if definition["type"] == "TIME_WINDOW":
            return {"range": {"start": self.day, "end": self.day}}
        names = sorted(d["name"] for d in definition["dimensionTypes"])
        keys = {d["name"]: d["partitionKeys"] for d in node["partitionKeysByDimension"]}
        kinds = {d["name"]: d["type"] for d in definition["dimensionTypes"]}
        time_dim = next(n for n in names if kinds[n] == "TIME_WINDOW")
        other = next(n for n in names if n != time_dim)
        multi = [
            "|".join(self.day if n == time_dim else value for n in names) for value in keys[other]
        ]
        return {"ranges": [{"start": key, "end": key} for key in multi]}

    def backfill_day(self, requests: DemoRequests) -> None:
        """One asset backfill of the demo day over the DynamoDB and lake pipelines."""
        by_asset = []
        for node in self.repo["assetNodes"]:
            group = node["groupName"] or ""
            if node["isMaterializable"] and group.startswith(BACKFILL_GROUP_PREFIXES):
                by_asset.append(
                    {
                        "assetKey": {"path": node["assetKey"]["path"]},
                        "partitions": self._partitions_for_day(node),
                    }
                )
                requests.backfill_assets.append("/".join(node["assetKey"]["path"]))
        if not by_asset:
            return
        params = {"partitionsByAssets": by_asset, "title": f"demo day {self.day}"}
        reply = self.client.query(_LAUNCH_BACKFILL, {"p": params})["launchPartitionBackfill"]
        requests.backfill_id = _checked(reply, "demo backfill", "LaunchBackfillSuccess")[
            "backfillId"
        ]

    def take_dumps(self, requests: DemoRequests) -> None:
        """Start each dump sensor, then run each pipeline's ``raw_dump`` for a new dump key."""
        for sensor in self._sensors(DUMP_SENSOR_SUFFIX):
            self.start_sensor(sensor)
            requests.started_sensors.append(sensor)
        for node in self.repo["assetNodes"]:
            path = node["assetKey"]["path"]
            in_dump_group = (node["groupName"] or "").startswith(DUMP_GROUP_PREFIX)
            if not in_dump_group or path[-1] != "raw_dump":
                continue
            partitions_name = node["partitionDefinition"]["dimensionTypes"][0][
                "dynamicPartitionsDefinitionName"
            ]
            dump_key = new_dump_key()
            reply = self.client.query(
                _ADD_PARTITION, {"r": self.selector, "n": partitions_name, "k": dump_key}
            )["addDynamicPartition"]
            _checked(reply, f"add dump partition {dump_key}", "AddDynamicPartitionSuccess")
            requests.dump_runs[dump_key] = self.launch_run(
                path, dump_key, {"etl_platform/dump": f"{path[1]}/{dump_key}"}
            )

    def launch_run(self, path: list[str], partition: str, tags: dict[str, str]) -> str:
        """Queue a run of one asset partition; returns its run id."""
        all_tags = {"dagster/partition": partition, **tags}
        params = {
            "selector": {
                **self.selector,
                "jobName": "__ASSET_JOB",
                "assetSelection": [{"path": path}],
            },
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in all_tags.items()]},
        }
        reply = self.client.query(_LAUNCH_RUN, {"p": params})["launchRun"]
        what = f"run of {'/'.join(path)} partition {partition}"
        return _checked(reply, what, "LaunchRunSuccess")["run"]["runId"]

    def land_microbatches(self, requests: DemoRequests, land: Callable[[str], str]) -> None:
        """Start each micro-batch queue sensor and land one demo file for it."""
        sensors = self._sensors(MICROBATCH_SENSOR_SUFFIX)
        for sensor in sensors:
            self.start_sensor(sensor)
            requests.started_sensors.append(sensor)
        if sensors:
            requests.landed_files.append(land(self.day))


def land_microbatch_demo_file(day: str) -> str:
    """The micro-batch hook: one gzip CSV (the demo loader's columns: order_id, customer,
    amount, updated_at, is_deleted; no header) under the demo landing prefix's ``dt=<day>/``.
    Its S3 object-created event is the queue message the ``*_sqs_sensor`` picks up."""
    bucket, prefix = MICROBATCH_LANDING
    stamp = datetime.now(UTC)
    rows = [
        f"{900000 + i},demo customer {i},{10 + i}.50,{stamp.isoformat()},false" for i in range(20)
    ]
    key = f"{prefix}dt={date.fromisoformat(day).isoformat()}/demo-{stamp:%H%M%S}.csv.gz"
    s3 = boto3.client("s3", region_name=os.environ.get("AWS_REGION", "us-east-1"))
    s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(("\n".join(rows) + "\n").encode()))
    return f"s3://{bucket}/{key}"


def run_demo_world(url: str, day: str | None = None, wait_s: float = 180.0) -> DemoRequests:
    """Ask the instance behind ``url`` to materialize the demo day of every pipeline."""
    client = GraphQLClient(url)
    client.wait_ready(wait_s)
    runs = DemoWorldRuns(client, day)
    requests = DemoRequests(runs.day)
    runs.take_dumps(requests)
    runs.land_microbatches(requests, land_microbatch_demo_file)
    runs.backfill_day(requests)
    return requests
