"""The door in front of the Dagster UI that `pdp ui` serves: any web page the user visits can send
requests to 127.0.0.1, and the Dagster webserver acts on whatever reaches it (a GET to /graphql
can wipe an asset's history or launch runs). This proxy passes on only what the UI itself sends:

- the Host header names this server (127.0.0.1:PORT, localhost:PORT, or PDP_UI_ALLOWED_HOSTS),
  so a page on a rebound DNS name gets nothing;
- a request that carries an Origin (every browser POST, fetch and WebSocket does) comes from the
  UI's own origin, and a browser's cross-site request that is not a navigation is refused;
- a GraphQL mutation never travels in a GET.

The webserver itself listens on a random free port of 127.0.0.1 that nothing announces.
"""

import asyncio
import os
import urllib.parse
from typing import Optional

import httpx
import websockets

# Headers that belong to one connection, not to the request: never passed on.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host"}


def allowed_hosts(port: int) -> set[str]:
    extra = {h.strip() for h in os.environ.get("PDP_UI_ALLOWED_HOSTS", "").split(",") if h.strip()}
    return {f"127.0.0.1:{port}", f"localhost:{port}"} | extra


def _is_mutation(query: str) -> bool:
    from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse

    try:
        document = parse(query)
    except GraphQLError:
        return "mutation" in query.lower()  # unparsable: refused if it might be one
    return any(isinstance(d, OperationDefinitionNode) and d.operation == OperationType.MUTATION
               for d in document.definitions)


def refusal(kind: str, method: str, path: str, query_string: str, headers: dict[str, str],
            hosts: set[str]) -> Optional[str]:
    """Why a request is refused (None: it is passed on). ``headers``: lower-case names."""
    host = headers.get("host", "")
    if host not in hosts:
        return f"unexpected Host {host!r}: this server answers to {', '.join(sorted(hosts))}"
    origin = headers.get("origin")
    if origin is not None and origin not in {f"http://{h}" for h in hosts}:
        return f"cross-site request from {origin!r} refused"
    if headers.get("sec-fetch-site") == "cross-site" and headers.get("sec-fetch-mode") != "navigate":
        return "cross-site request refused"
    if kind == "http" and method == "GET" and path.rstrip("/").endswith("/graphql"):
        query = urllib.parse.parse_qs(query_string).get("query", [""])[0]
        if query and _is_mutation(query):
            return "a GraphQL mutation must be sent by POST"
    return None


class Guard:
    """An ASGI app: checks each request (``refusal``), then proxies it, WebSockets too, to the
    webserver at ``upstream`` (host:port)."""

    def __init__(self, port: int, upstream: str):
        self.hosts, self.upstream = allowed_hosts(port), upstream
        self.client: Optional[httpx.AsyncClient] = None

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.client = httpx.AsyncClient(base_url=f"http://{self.upstream}", timeout=None)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query_string = scope.get("query_string", b"").decode("latin-1")
        problem = refusal(scope["type"], scope.get("method", "GET"), scope["path"], query_string, headers, self.hosts)
        target = scope["path"] + (f"?{query_string}" if query_string else "")  # as sent, to the webserver
        if scope["type"] == "websocket":
            if problem:
                await send({"type": "websocket.close", "code": 1008, "reason": problem[:120]})
            else:
                await self._websocket(scope, receive, send, target)
        elif problem:
            await self._answer(send, 403, problem)
        else:
            await self._http(scope, receive, send, target)

    @staticmethod
    async def _answer(send, status: int, text: str) -> None:
        body = (text + "\n").encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def _http(self, scope, receive, send, target: str) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(k, v) for k, v in scope["headers"] if k.decode("latin-1").lower() not in HOP_BY_HOP]
        request = self.client.build_request(scope["method"], target,
                                            headers=headers, content=body)
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TransportError:
            await self._answer(send, 502, "the Dagster webserver is not answering yet (starting, or stopped)")
            return
        try:
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": [(k, v) for k, v in response.headers.raw if k.decode("latin-1").lower() not in HOP_BY_HOP]})
            async for chunk in response.aiter_raw():  # as sent: compressed stays compressed
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    async def _websocket(self, scope, receive, send, target: str) -> None:
        await receive()  # websocket.connect
        url = f"ws://{self.upstream}{target}"
        try:
            upstream = await websockets.connect(url, subprotocols=scope.get("subprotocols") or None,
                                                max_size=None, open_timeout=10)
        except (OSError, websockets.InvalidHandshake, asyncio.TimeoutError):
            await send({"type": "websocket.close", "code": 1011})
            return
        await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})

        async def to_upstream():
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    await upstream.close()
                    return
                await upstream.send(message.get("text") if message.get("text") is not None else message["bytes"])

        async def to_client():
            try:
                async for data in upstream:
                    key = "text" if isinstance(data, str) else "bytes"
                    await send({"type": "websocket.send", key: data})
            except websockets.ConnectionClosed:
                pass
            await send({"type": "websocket.close", "code": 1000})

        tasks = [asyncio.create_task(to_upstream()), asyncio.create_task(to_client())]
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await upstream.close()


def serve(port: int, upstream_port: int) -> None:
    import uvicorn

    uvicorn.run(Guard(port, f"127.0.0.1:{upstream_port}"), host="127.0.0.1", port=port,
                log_level="warning", ws="websockets-sansio", lifespan="on")
