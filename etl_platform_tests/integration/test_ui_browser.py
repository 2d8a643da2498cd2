"""The Dagster UI as a person uses it: headless Chromium (Debian's `chromium` package) driven by
Playwright against one `etl-platform dev` on the demo world, whose demo day is being materialized
in the background through the daemon (`etl-platform demo run`, started by `dev`).

Every wait is on a page element or a GraphQL answer, never on network idle (the UI keeps its
subscriptions open). With ETL_UPDATE_SCREENSHOTS=1 the screenshots go to docs/img/ (the README
shows them); otherwise to a temporary directory.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from etl_platform.local.demo_runs import DemoWorldRuns, GraphQLClient, demo_date

from .dev_server import DevServer, start_dev_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
BACKFILL_DATE = "2026-11-01"  # the first date of the demo DynamoDB pipeline: not the demo day
BACKFILL_SEGMENTS = ("0", "1")
MISSING_DUMP = "no-such-dump"
DEMO_DEADLINE_S = 420
COMMUNITY_DIALOG = "Join the Dagster community"

pytestmark = pytest.mark.slow

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
)


def _require_chromium() -> None:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: `apt-get install chromium` (.ci/run does it in CI)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def dev() -> Iterator[DevServer]:
    _require_chromium()
    if os.environ.get("ETL_UI_TEST_URL"):  # while writing tests: a `dev` that is already up
        yield DevServer(os.environ["ETL_UI_TEST_URL"], None, Path(), Path())  # type: ignore[arg-type]
        return
    server = start_dev_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def graphql(dev: DevServer) -> GraphQLClient:
    return GraphQLClient(dev.url)


def _dismiss_community_dialog(context: Any, graphql: GraphQLClient) -> None:
    """A fresh instance greets its first visitor with a community / newsletter dialog, on top
    of whatever is being clicked: Skip it once, as a person would (the instance then answers
    ``shouldShowNux: false``; each page also has a handler should it show up again)."""
    if not graphql.query("{ shouldShowNux }")["shouldShowNux"]:
        return
    page = context.new_page()
    page.goto("/overview")
    page.get_by_text(COMMUNITY_DIALOG).wait_for(timeout=120_000)
    page.get_by_role("button", name="Skip").click()
    page.get_by_text(COMMUNITY_DIALOG).wait_for(state="hidden")
    _poll(
        "the dialog dismissed",
        lambda: not graphql.query("{ shouldShowNux }")["shouldShowNux"],
        30,
        1,
    )
    page.close()


@pytest.fixture(scope="module")
def browser(dev: DevServer, graphql: GraphQLClient) -> Iterator[Any]:
    """One browser context for the module (one person's session: local storage is shared)."""
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = chromium.new_context(viewport=VIEWPORT, base_url=dev.url)
        context.set_default_timeout(60_000)
        try:
            _dismiss_community_dialog(context, graphql)
            yield context
        finally:
            context.close()
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    page = browser.new_page()
    page.add_locator_handler(
        page.get_by_text(COMMUNITY_DIALOG),
        lambda _: page.get_by_role("button", name="Skip").click(),
    )
    try:
        yield page
    finally:
        page.close()


@pytest.fixture(scope="module")
def screenshot() -> Callable[[Any, str], None]:
    if os.environ.get("ETL_UPDATE_SCREENSHOTS"):
        target = Path(__file__).resolve().parents[2] / "docs" / "img"
    else:
        target = Path(os.environ.get("TMPDIR", "/tmp")) / "etl_ui_screenshots"
    target.mkdir(parents=True, exist_ok=True)

    def save(page: Any, name: str) -> None:
        page.get_by_text(COMMUNITY_DIALOG).wait_for(state="hidden")
        page.screenshot(path=str(target / f"{name}.png"))

    return save


@pytest.fixture(scope="module")
def launched() -> dict[str, str]:
    """Ids launched by one test and followed by a later one (the runs overlap the demo's)."""
    return {}


def _expected_assets() -> dict[tuple[str, ...], str]:
    """Every asset of the code location and its group, read from the definitions (so a new
    pipeline is covered as soon as it is declared)."""
    from etl_platform.definitions import defs

    return {tuple(s.key.path): s.group_name or "" for s in defs().resolve_all_asset_specs()}


def _poll(what: str, probe: Callable[[], Any], timeout_s: float, every_s: float = 3) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout_s:.0f} s")
        time.sleep(every_s)


def test_backfill_of_two_segments_is_launched_by_clicking(page, graphql, screenshot, launched):
    # the extract reads the data-schemas the demo day infers first (until then the UI asks
    # "Are you sure?" about the missing upstream, and the runs would fail)
    schemas = ["dynamodb", "demo", "data_schemas"]
    _poll("the demo's data-schemas", functools.partial(_materialized, graphql, schemas), 240)
    page.goto("/assets/s3/demo/segment_csv")
    dialog = _open_launch_dialog(page)
    date_input = dialog.get_by_placeholder(re.compile("^ex: "))
    date_input.fill(BACKFILL_DATE)
    date_input.press("Enter")
    dialog.get_by_text("Select a partition or create one").click()
    page.get_by_placeholder("Filter partitions").wait_for()
    for segment in BACKFILL_SEGMENTS:
        option = page.locator("label").filter(has=page.locator(f"[title='{segment}']"))
        option.click()
    dialog.get_by_text("segment", exact=True).click()  # closes the segment list
    page.get_by_placeholder("Filter partitions").wait_for(state="hidden")
    dialog.get_by_text(f"{len(BACKFILL_SEGMENTS)} partitions").wait_for()
    screenshot(page, "02-backfill-dialog")
    before = _backfill_ids(graphql)
    dialog.get_by_role("button", name="Launch backfill").click()
    new = _poll("the clicked backfill", lambda: _backfill_ids(graphql) - before, 30, 1)
    (backfill_id,) = new
    launched["backfill"] = backfill_id


def _open_launch_dialog(page: Any) -> Any:
    """Materialize… opens the partitions dialog (slow to fill while the demo runs load the
    machine, hence the long wait)."""
    page.get_by_role("button", name="Materialize…").first.click()
    title = page.get_by_text("Launch runs to materialize")
    title.wait_for(timeout=90_000)
    return page.get_by_role("dialog").filter(has=title)


def _backfill_ids(graphql: GraphQLClient) -> set[str]:
    query = "{ partitionBackfillsOrError(limit: 20) { ... on PartitionBackfills { results { id }"
    query += " } } }"
    results = graphql.query(query)["partitionBackfillsOrError"]["results"]
    return {r["id"] for r in results}


def test_a_failed_run_names_the_bad_input(page, graphql, screenshot):
    runs = DemoWorldRuns(graphql)
    partitions = "postgres_dump_demo"
    reply = graphql.query(
        "mutation($r: RepositorySelector!, $n: String!, $k: String!) { addDynamicPartition("
        "repositorySelector: $r, partitionsDefName: $n, partitionKey: $k) { __typename } }",
        {"r": runs.selector, "n": partitions, "k": MISSING_DUMP},
    )
    assert reply["addDynamicPartition"]["__typename"] == "AddDynamicPartitionSuccess"
    run_id = runs.launch_run(["s3", "demo", "clean_dump"], MISSING_DUMP, {})
    page.goto(f"/runs/{run_id}")
    page.get_by_text("Failure", exact=True).first.wait_for(timeout=240_000)
    bad_input = f"s3://pg-extract/dumps/{MISSING_DUMP}"
    error = page.get_by_text(re.compile(re.escape(bad_input) + ".* has no manifest"))
    error.first.wait_for()
    error.first.scroll_into_view_if_needed()
    screenshot(page, "06-failed-run")


def _materialized(graphql: GraphQLClient, path: list[str]) -> list[str | None]:
    query = """query($k: AssetKeyInput!) { assetOrError(assetKey: $k) { ... on Asset {
      assetMaterializations(limit: 5) { partition } } } }"""
    asset = graphql.query(query, {"k": {"path": path}})["assetOrError"]
    return [m["partition"] for m in asset.get("assetMaterializations", [])]


def test_the_demo_day_is_materialized_through_the_daemon(graphql):
    """`dev` asked the daemon for the demo day of every pipeline; within a few minutes the
    published schema, the lake day, the restored dump target and the micro-batch table's day
    have a materialization."""
    day = demo_date()
    expected = [
        (["warehouse", "demo", "published"], day),
        (["lake", "demo", "orders"], day),
        (["postgres", "demo", "target"], None),  # the dump's key is made at run time
        (["warehouse", "orders_demo", "orders"], day),  # the landed file, through its sensor
    ]
    for path, partition in expected:

        def done(path: list[str] = path, partition: str | None = partition) -> bool:
            partitions = _materialized(graphql, path)
            return partition in partitions if partition else bool(partitions)

        _poll(f"{'/'.join(path)} materialized", done, DEMO_DEADLINE_S)


def test_lineage_draws_every_pipeline_from_source_to_last_asset(page, screenshot):
    expected = _expected_assets()
    groups = sorted(set(expected.values()))
    assert len(groups) >= 3
    page.goto("/asset-groups")
    page.get_by_text("Global asset lineage").wait_for()
    for group in groups:  # collapsed at first: one box per pipeline instance
        page.get_by_text(group, exact=True).last.wait_for()
    page.keyboard.press("Alt+e")  # "Expand all groups" (the graph's own shortcut)
    labels = page.locator("[class*='AssetNode_assetName']")
    playwright_api.expect(labels).to_have_count(len(expected))
    shown = Counter(text.split("/")[-1].strip() for text in labels.all_inner_texts())
    assert shown == Counter(k[-1] for k in expected)
    screenshot(page, "01-lineage")


def test_the_published_asset_shows_checks_and_metadata(page, screenshot):
    page.goto("/assets/warehouse/demo/published")
    page.get_by_text("Latest check results").wait_for()
    row_count = page.get_by_text("Row count", exact=True).locator("xpath=..")
    playwright_api.expect(row_count).to_contain_text(re.compile(r"\d[\d,]*"))
    screenshot(page, "03-published-overview")
    # the schema of every published table (one per entity type): columns, types, paths
    schemas = page.get_by_role("row").filter(has_text="table_schemas")
    schemas.get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("columnheader", name="attribute path").first.wait_for()
    dialog.get_by_role("cell", name="sk", exact=True).first.wait_for()
    screenshot(page, "04-published-schema")
    page.keyboard.press("Escape")
    page.goto("/assets/warehouse/demo/published?view=checks")
    for check in ("row_counts_match_extract", "primary_keys_unique", "no_orphan_child_rows"):
        page.get_by_text(check, exact=True).first.wait_for()
    page.get_by_text("Passed").first.wait_for()
    screenshot(page, "05-published-checks")


def _sensor_names() -> list[str]:
    from etl_platform.definitions import defs

    return sorted(s.name for s in defs().sensors)


def _ticks(graphql: GraphQLClient, runs: DemoWorldRuns, name: str) -> int:
    query = """query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) { ... on Sensor {
      sensorState { ticks(limit: 5) { id status } } } } }"""
    selector = {**runs.selector, "sensorName": name}
    sensor = graphql.query(query, {"s": selector})["sensorOrError"]
    return len(sensor["sensorState"]["ticks"])


def test_each_sensor_page_shows_ticks(page, graphql, screenshot):
    runs = DemoWorldRuns(graphql)
    location = runs.selector["repositoryLocationName"]
    for name in _sensor_names():
        _poll(f"a tick of sensor {name}", functools.partial(_ticks, graphql, runs, name), 120)
        page.goto(f"/locations/{location}/sensors/{name}")
        header = page.locator("[class*='PageHeader_title']").first
        playwright_api.expect(header).to_contain_text(name)
        page.get_by_role("columnheader", name="Timestamp").wait_for()
        page.get_by_role("button", name="View logs").first.wait_for()  # one per tick row
        if name.endswith("_dump_sensor"):
            screenshot(page, "07-dump-sensor-ticks")


def _backfill_status(graphql: GraphQLClient, backfill_id: str) -> str:
    query = "query($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on "
    query += "PartitionBackfill { status } } }"
    return graphql.query(query, {"id": backfill_id})["partitionBackfillOrError"]["status"]


def test_the_clicked_backfill_reaches_success_in_the_ui(page, graphql, screenshot, launched):
    backfill_id = launched.get("backfill")
    assert backfill_id, "the clicked backfill was not launched (see the test above)"
    finished = _poll(
        f"backfill {backfill_id} finished",
        lambda: (status := _backfill_status(graphql, backfill_id)) not in ("REQUESTED",) and status,
        DEMO_DEADLINE_S,
    )
    page.goto(f"/runs/b/{backfill_id}")
    page.get_by_text("Partition selection").wait_for()
    for segment in BACKFILL_SEGMENTS:
        page.get_by_text(f"{BACKFILL_DATE}|{segment}", exact=True).wait_for()
    page.get_by_text("Succeeded", exact=True).first.wait_for()
    page.get_by_text("100% completed").wait_for()
    screenshot(page, "08-backfill-succeeded")
    assert finished == "COMPLETED_SUCCESS"


def test_demo_run_repeats_the_requests_on_demand(dev):
    """`etl-platform demo run` against the running UI: a new dump and a new backfill of the day
    (last: its runs are stopped with the dev server)."""
    import json
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ETL_"))}
    done = subprocess.run(
        [sys.executable, "-m", "etl_platform.cli", "--local-dir", str(dev.root / "local")]
        + ["demo", "run", "--url", dev.url],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    requests = json.loads(done.stdout[: done.stdout.rindex("}") + 1])
    assert requests["day"] == demo_date()
    assert requests["backfill_id"] and requests["dump_runs"]
    assert "warehouse/demo/published" in requests["backfill_assets"]
