"""`pdp ui` refuses what a web page could send the Dagster UI (another Host, another origin, a
mutation by GET) and passes on what the UI sends: the rules, then a real webserver behind it."""

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from pdp_assets.ops.ui_guard import refusal
from pdp_assets_tests.dev_server import start_dev_server, stop_dev_server

HOSTS = {"127.0.0.1:3000", "localhost:3000"}
MUTATION = 'mutation { wipeAssets(assetPartitionRanges: [{assetKey: {path: ["lab_results"]}}]) { __typename } }'


def refused(method="POST", path="/graphql", query="", kind="http", **headers) -> str | None:
    headers = {"host": "127.0.0.1:3000", **{k.replace("_", "-"): v for k, v in headers.items()}}
    return refusal(kind, method, path, urllib.parse.urlencode({"query": query}) if query else "", headers, HOSTS)


def test_what_the_ui_sends_passes():
    assert refused(origin="http://127.0.0.1:3000", sec_fetch_site="same-origin") is None
    assert refused(host="localhost:3000", origin="http://localhost:3000") is None
    assert refused() is None  # no Origin: not a browser (the console, curl)
    assert refused("GET", query="{ version }") is None
    assert refused("GET", "/runs", sec_fetch_site="cross-site", sec_fetch_mode="navigate") is None  # a link to the UI


def test_what_a_web_page_could_send_is_refused():
    assert "unexpected Host 'evil.example:3000'" in refused(host="evil.example:3000")
    assert "from 'http://evil.example'" in refused(origin="http://evil.example")
    assert "from 'null'" in refused(origin="null")  # a sandboxed frame or a data: URL
    assert "from 'http://evil.example'" in refused(kind="websocket", method="GET", origin="http://evil.example")
    assert refused("GET", "/server_info", sec_fetch_site="cross-site", sec_fetch_mode="no-cors") == "cross-site request refused"
    assert refused("GET", query=MUTATION) == "a GraphQL mutation must be sent by POST"
    assert refused("GET", query="mutation {") == "a GraphQL mutation must be sent by POST"  # unparsable, might be one


def _send(url: str, data: bytes | None = None, **headers) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


MATERIALIZATIONS = """query { assetOrError(assetKey: {path: ["lab_results"]}) {
  ... on Asset { assetMaterializations(limit: 10) { partition } } } }"""
REPORT = """mutation { reportRunlessAssetEvents(eventParams: {eventType: ASSET_MATERIALIZATION,
  assetKey: {path: ["lab_results"]}, partitionKeys: ["2024-01-01"]}) { __typename } }"""


@pytest.mark.slow
def test_a_forged_request_fails_and_the_ui_still_works(tmp_path_factory):
    server = start_dev_server(tmp_path_factory.mktemp("ug"))
    try:
        def materializations() -> list:
            return server.graphql(MATERIALIZATIONS)["assetOrError"]["assetMaterializations"]

        ours = {"Origin": server.url}
        status, body = _send(f"{server.url}/graphql", json.dumps({"query": REPORT}).encode(), **ours)
        assert status == 200 and "ReportRunlessAssetEventsSuccess" in body, body
        assert materializations() == [{"partition": "2024-01-01"}]

        wipe = json.dumps({"query": MUTATION}).encode()
        forged = [
            _send(f"{server.url}/graphql?" + urllib.parse.urlencode({"query": MUTATION})),  # GET, as a link would
            _send(f"{server.url}/graphql", wipe, Origin="http://evil.example"),
            _send(f"{server.url}/graphql", wipe, Host="rebound.example"),
        ]
        assert [status for status, _ in forged] == [403, 403, 403], forged
        assert materializations() == [{"partition": "2024-01-01"}]  # nothing was wiped

        assert _send(server.url + "/", None, **{"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"})[0] == 200
        status, body = _send(f"{server.url}/graphql", wipe, **ours)  # the UI's own wipe goes through
        assert status == 200 and "AssetWipeSuccess" in body, body
        assert materializations() == []
    finally:
        stop_dev_server(server)
