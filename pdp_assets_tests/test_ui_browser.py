"""The Dagster UI as users see it: `dagster dev` from workspace.yaml on a temporary instance, its
global asset graph opened in Debian's headless Chromium (Selenium, /usr/bin/chromedriver).

The GraphQL test asserts that every asset is partitioned and has at least one asset check. The
browser test checks that the four groups, every asset node and every lineage edge that GraphQL
reports are drawn on the graph (an edge counts when it leaves its upstream node's box and ends at
its downstream node's), and saves a screenshot to test-output/asset_graph.png.
"""

import json
import re
import time

import pytest

from pdp_assets_tests.conftest import OUTPUT
from pdp_assets_tests.dev_server import start_dev_server, stop_dev_server

pytestmark = pytest.mark.slow

GROUPS = {"lab_results", "health", "retail", "warehouse"}
UPLOAD_AND_REQUEST_ASSETS = {  # partitioned by file (dynamic partitions); every other asset by ISO week
    "lab_raw_uploads", "lab_valid_rows", "lab_quarantine", "lab_deletions", "warehouse_lab_deletions",
}
WINDOW = (2200, 3700)  # tall enough for the whole expanded graph at zoom 1: all nodes are drawn
RENDER_SECONDS = 60

ASSETS_QUERY = """
query ($selector: RepositorySelector!) {
  repositoryOrError(repositorySelector: $selector) {
    __typename
    ... on Repository {
      assetNodes {
        assetKey { path }
        groupName
        isPartitioned
        isObservable
        partitionDefinition { type }
        dependencyKeys { path }
        assetChecksOrError {
          __typename
          ... on AssetChecks { checks { name blocking } }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One `dagster dev` (webserver and daemon) for this module, stopped by its process group."""
    server = start_dev_server(tmp_path_factory.mktemp("ui"))
    try:
        yield server
    finally:
        stop_dev_server(server)


@pytest.fixture(scope="module")
def assets(server) -> dict[str, dict]:
    repo = server.graphql(ASSETS_QUERY, {"selector": server.selector})["repositoryOrError"]
    assert repo["__typename"] == "Repository", repo
    return {"/".join(n["assetKey"]["path"]): n for n in repo["assetNodes"]}


def test_every_asset_is_partitioned_and_has_an_asset_check(assets):
    assert {n["groupName"] for n in assets.values()} == GROUPS
    unpartitioned = [k for k, n in assets.items() if not (n["isPartitioned"] and n["partitionDefinition"])]
    assert unpartitioned == []
    kinds = {k: n["partitionDefinition"]["type"] for k, n in assets.items()}
    assert {k for k, t in kinds.items() if t == "DYNAMIC"} == UPLOAD_AND_REQUEST_ASSETS
    assert {t for k, t in kinds.items() if k not in UPLOAD_AND_REQUEST_ASSETS} == {"TIME_WINDOW"}
    # lab_staged_weeks is recorded by the intake and deletion runs, once their blocking checks pass
    unchecked = [k for k, n in assets.items() if k != "lab_staged_weeks" and (
                 n["assetChecksOrError"]["__typename"] != "AssetChecks" or not n["assetChecksOrError"]["checks"])]
    assert unchecked == [], f"assets without an asset check: {unchecked}"
    # the gates that stop bad data flowing downstream are blocking
    blocking = {(k, c["name"]) for k, n in assets.items() for c in n["assetChecksOrError"]["checks"] if c["blocking"]}
    assert {("lab_results", "lake_schema"), ("lab_valid_rows", "rows_accounted"),
            ("health_daily_metrics", "pandera_schema")} <= blocking
    assert len(assets) >= 25


# Read the drawn graph in one go: group boxes, asset nodes (group-relative name and box) and
# edges (start and end points of each arrowed path), in the SVG's own coordinates.
READ_GRAPH_JS = """
const svg = document.querySelector('svg[class*="svgContainer"]');
if (!svg) return null;
const box = fo => ({x: +fo.getAttribute('x'), y: +fo.getAttribute('y'),
                    w: +fo.getAttribute('width'), h: +fo.getAttribute('height')});
const groups = [...svg.querySelectorAll('foreignObject.group')].map(fo => {
  const label = fo.querySelector('[data-tooltip]');
  return {name: label ? label.getAttribute('data-tooltip') : fo.textContent.trim(), ...box(fo)};
});
const nodes = [...svg.querySelectorAll('foreignObject')].flatMap(fo => {
  const label = fo.querySelector('[class*="assetName"] [data-tooltip]');
  return label ? [{name: label.getAttribute('data-tooltip'), ...box(fo)}] : [];
});
const edges = [...svg.querySelectorAll('path[marker-end]')].map(p => {
  const numbers = p.getAttribute('d').match(/-?[0-9.]+/g).map(Number);
  return [numbers[0], numbers[1], numbers[numbers.length - 2], numbers[numbers.length - 1]];
});
return JSON.stringify({groups, nodes, edges});
"""


def _inside(x: float, y: float, b: dict, pad: float = 0) -> bool:
    return b["x"] - pad <= x <= b["x"] + b["w"] + pad and b["y"] - pad <= y <= b["y"] + b["h"] + pad


def drawn_lineage(graph: dict) -> tuple[set[str], dict[str, dict], set[tuple[str, str]]]:
    """(group names, node boxes by (group, name), edges as (upstream, downstream) node ids)."""
    nodes = {}
    for node in graph["nodes"]:
        group = next(g["name"] for g in graph["groups"] if _inside(node["x"], node["y"], g))
        nodes[f"{group}:{node['name']}"] = node
    edges = set()
    for x1, y1, x2, y2 in graph["edges"]:
        # an edge leaves the right side of its upstream node and ends (arrowhead) at the left side
        # of its downstream node
        up = [k for k, b in nodes.items() if abs(b["x"] + b["w"] - x1) <= 12 and _inside(x1, y1, b, 12)]
        down = [k for k, b in nodes.items() if abs(b["x"] - x2) <= 12 and _inside(x2, y2, b, 12)]
        assert len(up) == 1 and len(down) == 1, f"edge {x1},{y1} -> {x2},{y2} does not join two nodes: {up} {down}"
        edges.add((up[0], down[0]))
    return {g["name"] for g in graph["groups"]}, nodes, edges


@pytest.fixture
def browser(chromium):
    return chromium(*WINDOW)


def test_asset_graph_shows_the_four_groups_and_their_lineage(server, assets, browser):
    from selenium.webdriver import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    # What GraphQL says the graph is: node ids "<group>:<last key part>" (the name a node shows).
    ids = {k: f"{n['groupName']}:{n['assetKey']['path'][-1]}" for k, n in assets.items()}
    assert len(set(ids.values())) == len(ids), ids
    lineage = {(ids["/".join(d["path"])], ids[k]) for k, n in assets.items() for d in n["dependencyKeys"]}
    assert ("lab_results:lab_results", "warehouse:warehouse_lab_results") in lineage  # lab -> warehouse crosses groups

    # Before the first page load: no "join the community" dialog, every group expanded (the UI
    # keeps both in local storage; groups start collapsed on the global graph).
    browser.get(f"{server.url}/server_info")
    expanded = ",".join(f"global@global:{g}" for g in sorted(GROUPS))
    browser.execute_script(
        "localStorage.setItem('communityNux', JSON.stringify('1'));"
        "localStorage.setItem('asset-graph-open-graph-nodes-global-__GLOBAL__', arguments[0]);",
        json.dumps({"expanded": expanded}),
    )
    started = time.monotonic()
    browser.get(f"{server.url}/asset-groups")
    WebDriverWait(browser, 30).until(lambda d: d.title == "Global asset lineage")

    def fully_drawn(driver):
        text = driver.execute_script(READ_GRAPH_JS)
        graph = json.loads(text) if text else None
        if graph and len(graph["nodes"]) == len(assets) and len(graph["edges"]) >= len(lineage):
            return graph
        return None

    try:
        WebDriverWait(browser, RENDER_SECONDS, poll_frequency=0.5).until(fully_drawn)
    except Exception:
        browser.save_screenshot(str(OUTPUT / "asset_graph_failed.png"))
        text = browser.execute_script(READ_GRAPH_JS)
        raise AssertionError(f"the graph was not fully drawn in {RENDER_SECONDS} s; drawn: {text and text[:2000]}; "
                             f"page: {browser.find_element(By.TAG_NAME, 'body').text[:1500]}")
    rendered_in = time.monotonic() - started

    # Fit the whole graph in view (a double click on the background re-centres it), then read it.
    svg = browser.find_element(By.CSS_SELECTOR, 'svg[class*="svgContainer"]')
    viewport = svg.find_element(By.XPATH, "../..")
    width, height = viewport.rect["width"], viewport.rect["height"]
    corner = ActionChains(browser).move_to_element_with_offset(viewport, -width / 2 + 10, -height / 2 + 10)
    corner.double_click().perform()
    time.sleep(1.5)  # the re-centring is animated
    graph = WebDriverWait(browser, 10, poll_frequency=0.5).until(fully_drawn)
    screenshot = OUTPUT / "asset_graph.png"
    screenshot.unlink(missing_ok=True)
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 50_000

    groups, nodes, edges = drawn_lineage(graph)
    assert groups == GROUPS
    assert set(nodes) == set(ids.values())
    assert edges == lineage, f"missing: {lineage - edges}; unexpected: {edges - lineage}"

    # The same names as text a person reads: group headers and asset node titles.
    page = browser.find_element(By.TAG_NAME, "body").text
    for name in [*GROUPS, "lab_cdc_export", "health_daily_metrics", "retail_gold_devices", "warehouse_lab_deletions"]:
        assert re.search(rf"(?m)^{name}$", page), f"{name} is not shown on the page"
    print(f"\nasset graph: {len(nodes)} nodes, {len(edges)} edges in {len(groups)} groups drawn in "
          f"{rendered_in:.1f} s; screenshot {screenshot}")
