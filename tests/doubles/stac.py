"""A transactional STAC API double: a real HTTP server on loopback with the Transaction extension's contract.

Implements what the publisher relies on (spec stac-publication.md §3), items kept in memory per collection:

    POST   /collections/{c}/items        201 (Location, the item); 409 if the id exists; 400 without an id
    PUT    /collections/{c}/items/{id}   200 (the item); 404 if missing; 400 if the body's id/collection disagree
    DELETE /collections/{c}/items/{id}   204; 404 if missing
    GET    /collections/{c}/items/{id}   the item; 404 if missing
    GET    /collections/{c}/items        a FeatureCollection of every item (no paging)
    GET    /, /conformance, /collections, /collections/{c}; POST /collections (creates one)

An unknown collection is 404. With a token configured, requests without it are 401 and with another value 403.

Fault injection (tests drive it from Python; counts are numbers of requests, None = until reset):
    down(seconds=None) / up()       the listener is closed: connections are refused (restarted on the same port)
    drop(count)                     the connection is closed without an answer (the client sees a network error)
    fail(status, count)             answer this status (e.g. 500, 503, 400, 403) without touching the items
    slow(seconds, count)            wait before handling; the request is still applied afterwards, as a real
                                    server that finishes a request whose client gave up would do
    conflict_on_post(True)          every POST answers 409, whether the item exists or not
Every request is logged (method, path, status or None when refused by a fault that dropped it, item id).

Run by hand, and point the server at it:

    python -m tests.doubles.stac --port 8766 [--token secret] [--collection ai-model]
    STAC_PUBLISH_URL=http://127.0.0.1:8766 STAC_PUBLIC_BASE_URL=http://127.0.0.1:5000 python manage.py stac_publish
"""

import argparse
import json
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

from tests.doubles.base import DoubleRequestHandler, HttpDouble

TRANSACTION_CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "https://api.stacspec.org/v1.0.0/ogcapi-features/extensions/transaction",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/simpletx",
]


@dataclass
class LoggedRequest:
    method: str
    path: str
    status: int | None  # None: the connection was dropped without an answer
    collection: str | None = None
    item_id: str | None = None  # from the URL, else from the body of a POST
    authorization: str | None = None
    body: dict | None = None
    at: float = field(default_factory=time.monotonic)


@dataclass
class Fault:
    kind: str  # "fail", "slow", "drop"
    remaining: int | None  # requests still affected; None = until reset
    status: int = 500
    seconds: float = 0.0
    methods: frozenset | None = None  # None = every method
    body: dict | None = None

    def applies(self, method: str) -> bool:
        return (self.remaining is None or self.remaining > 0) and (self.methods is None or method in self.methods)


class StacDouble(HttpDouble):
    methods = ("GET", "POST", "PUT", "DELETE", "PATCH")
    poll_interval = 0.02  # down() and up() take effect at once

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, collections=("ai-model",), token: str | None = None,
                 auth_header: str = "Authorization", auth_scheme: str = "Bearer"):
        self.lock = threading.RLock()
        self.collections: dict[str, dict[str, dict]] = {c: {} for c in collections}
        self.log: list[LoggedRequest] = []
        self.faults: list[Fault] = []
        self.post_conflict = False
        self.token, self.auth_header, self.auth_scheme = token, auth_header, auth_scheme
        self.in_flight = 0
        self._restart_timer: threading.Timer | None = None
        super().__init__(host, port)

    # --- lifecycle ---------------------------------------------------------------------------------

    def stop(self) -> None:
        with self.lock:  # against a concurrent up() from the restart timer
            if self._restart_timer is not None:
                self._restart_timer.cancel()
                self._restart_timer = None
            super().stop()

    @property
    def is_up(self) -> bool:
        return self.server is not None

    def down(self, seconds: float | None = None) -> None:
        """Closes the listener (connection refused); with seconds, it listens again on the same port after that."""
        self.stop()
        if seconds is not None:
            with self.lock:
                self._restart_timer = threading.Timer(seconds, self.up)
                self._restart_timer.daemon = True
                self._restart_timer.start()

    def up(self) -> None:
        with self.lock:
            if self._restart_timer is not None:
                self._restart_timer.cancel()
                self._restart_timer = None
            if self.server is not None:
                return
            self._listen()
            self.start()

    # --- configuration and inspection ---------------------------------------------------------------

    def reset(self, *, collections=("ai-model",), token: str | None = None) -> None:
        """A clean slate: up, no items, no log, no faults."""
        self.up()
        with self.lock:
            self.collections = {c: {} for c in collections}
            self.log.clear()
            self.faults.clear()
            self.post_conflict = False
            self.token = token

    def reset_faults(self) -> None:
        with self.lock:
            self.faults.clear()
            self.post_conflict = False
        self.up()

    def fail(self, status: int, count: int | None = None, *, methods=None, body: dict | None = None) -> None:
        with self.lock:
            self.faults.append(Fault("fail", count, status=status, methods=_methods(methods), body=body))

    def slow(self, seconds: float, count: int | None = None, *, methods=None) -> None:
        with self.lock:
            self.faults.append(Fault("slow", count, seconds=seconds, methods=_methods(methods)))

    def drop(self, count: int | None = None, *, methods=None) -> None:
        with self.lock:
            self.faults.append(Fault("drop", count, methods=_methods(methods)))

    def conflict_on_post(self, enabled: bool = True) -> None:
        with self.lock:
            self.post_conflict = enabled

    def add_collection(self, collection: str) -> None:
        with self.lock:
            self.collections.setdefault(collection, {})

    def seed(self, item: dict, collection: str = "ai-model") -> None:
        """Puts an item in place without a request (e.g. a stale copy left by an earlier publication)."""
        with self.lock:
            self.collections.setdefault(collection, {})[item["id"]] = {**item, "collection": collection}

    def items(self, collection: str = "ai-model") -> dict[str, dict]:
        with self.lock:
            return {key: json.loads(json.dumps(value)) for key, value in self.collections.get(collection, {}).items()}

    def requests(self, *, method: str | None = None, item_id: str | None = None) -> list[LoggedRequest]:
        with self.lock:
            return [r for r in self.log if (method is None or r.method == method) and (item_id is None or r.item_id == item_id)]

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Waits until no request is being handled (e.g. a slow one whose client already gave up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if not self.in_flight:
                    return
            time.sleep(0.01)
        raise TimeoutError("the STAC double is still handling requests")

    # --- the contract ---------------------------------------------------------------------------------

    def _take_faults(self, method: str) -> tuple[float, Fault | None, bool]:
        """(seconds to wait, the fail fault to answer with, whether to drop), consuming one use of each."""
        with self.lock:
            delay, failing, dropping = 0.0, None, False
            for fault in self.faults:
                if not fault.applies(method):
                    continue
                if fault.kind == "slow" and not delay:
                    delay = fault.seconds
                elif fault.kind == "drop" and not dropping:
                    dropping = True
                elif fault.kind == "fail" and failing is None and not dropping:
                    failing = fault
                else:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
            self.faults = [f for f in self.faults if f.remaining is None or f.remaining > 0]
            return delay, failing, dropping

    def _auth_error(self, headers) -> tuple[int, dict] | None:
        if self.token is None:
            return None
        given = headers.get(self.auth_header)
        expected = f"{self.auth_scheme} {self.token}" if self.auth_scheme else self.token
        if given is None:
            return 401, {"code": "Unauthorized", "description": "missing credentials"}
        if given != expected:
            return 403, {"code": "Forbidden", "description": "invalid credentials"}
        return None

    def answer(self, method: str, path: str, headers, body) -> tuple[int, dict | None, dict]:
        """(status, JSON body or None, extra headers) for a request that reached the items."""
        denied = self._auth_error(headers)
        if denied is not None:
            return denied[0], denied[1], {}
        segments = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
        with self.lock:
            if not segments:
                return 200, {"type": "Catalog", "id": "stac-double", "stac_version": "1.0.0", "description": "STAC double",
                             "conformsTo": TRANSACTION_CONFORMANCE, "links": []}, {}
            if segments == ["conformance"]:
                return 200, {"conformsTo": TRANSACTION_CONFORMANCE}, {}
            if segments[0] != "collections":
                return 404, _error("NotFoundError", f"no route {path}"), {}
            if len(segments) == 1:
                if method == "GET":
                    return 200, {"collections": [_collection(c) for c in self.collections], "links": []}, {}
                if method == "POST" and isinstance(body, dict) and body.get("id"):
                    if body["id"] in self.collections:
                        return 409, _error("ConflictError", f"collection {body['id']} exists"), {}
                    self.collections[body["id"]] = {}
                    return 201, _collection(body["id"]), {}
                return 405 if method != "POST" else 400, _error("BadRequest", "unsupported"), {}
            collection = segments[1]
            if collection not in self.collections:
                return 404, _error("NotFoundError", f"collection {collection} does not exist"), {}
            items = self.collections[collection]
            if len(segments) == 2:
                return (200, _collection(collection), {}) if method == "GET" else (405, _error("MethodNotAllowed", method), {})
            if segments[2] != "items" or len(segments) > 4:
                return 404, _error("NotFoundError", f"no route {path}"), {}
            if len(segments) == 3:
                if method == "GET":
                    features = list(items.values())
                    return 200, {"type": "FeatureCollection", "features": features, "numberReturned": len(features),
                                 "links": []}, {}
                if method == "POST":
                    return self._create(collection, items, body)
                return 405, _error("MethodNotAllowed", method), {}
            item_id = segments[3]
            if method == "GET":
                if item_id not in items:
                    return 404, _error("NotFoundError", f"item {item_id} does not exist"), {}
                return 200, items[item_id], {}
            if method == "PUT":
                if not isinstance(body, dict) or body.get("type") != "Feature":
                    return 400, _error("BadRequest", "the body must be a STAC item"), {}
                if body.get("id", item_id) != item_id or body.get("collection", collection) != collection:
                    return 400, _error("BadRequest", "the body's id or collection differs from the URL"), {}
                if item_id not in items:
                    return 404, _error("NotFoundError", f"item {item_id} does not exist"), {}
                items[item_id] = {**body, "id": item_id, "collection": collection}
                return 200, items[item_id], {}
            if method == "DELETE":
                if item_id not in items:
                    return 404, _error("NotFoundError", f"item {item_id} does not exist"), {}
                del items[item_id]
                return 204, None, {}
            return 405, _error("MethodNotAllowed", method), {}

    def _create(self, collection: str, items: dict, body) -> tuple[int, dict | None, dict]:
        if self.post_conflict:
            return 409, _error("ConflictError", "injected conflict"), {}
        if isinstance(body, dict) and body.get("type") == "FeatureCollection":
            features = body.get("features") or []
            if any(not isinstance(f, dict) or not f.get("id") for f in features):
                return 400, _error("BadRequest", "every item needs an id"), {}
            if any(f["id"] in items for f in features):
                return 409, _error("ConflictError", "an item already exists"), {}
            for feature in features:
                items[feature["id"]] = {**feature, "collection": collection}
            return 201, None, {}
        if not isinstance(body, dict) or body.get("type") != "Feature" or not body.get("id"):
            return 400, _error("BadRequest", "the body must be a STAC item with an id"), {}
        if body.get("collection", collection) != collection:
            return 400, _error("BadRequest", "the body's collection differs from the URL"), {}
        if body["id"] in items:
            return 409, _error("ConflictError", f"item {body['id']} already exists in {collection}"), {}
        items[body["id"]] = {**body, "collection": collection}
        location = f"{self.url}/collections/{quote(collection)}/items/{quote(body['id'], safe='')}"
        return 201, items[body["id"]], {"Location": location}

    def handle(self, request: DoubleRequestHandler) -> None:
        with self.lock:
            self.in_flight += 1
        try:
            self._serve(request)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _serve(self, request: DoubleRequestHandler) -> None:
        method = request.command
        path = urlsplit(request.path).path
        raw = request.read_body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        entry = LoggedRequest(method, path, None, authorization=request.headers.get(self.auth_header),
                              body=body if isinstance(body, dict) else None)
        parts = [unquote(s) for s in path.strip("/").split("/")]
        if len(parts) >= 2 and parts[0] == "collections":
            entry.collection = parts[1]
            if len(parts) >= 4 and parts[2] == "items":
                entry.item_id = parts[3]
            elif method == "POST" and isinstance(body, dict):
                entry.item_id = body.get("id")
        with self.lock:
            self.log.append(entry)
        delay, failing, dropping = self._take_faults(method)
        if delay:
            time.sleep(delay)
        if dropping:
            request.close_connection = True
            request.connection.close()
            return
        if failing is not None:
            status, payload, extra = failing.status, failing.body or _error("InjectedFault", f"HTTP {failing.status}"), {}
        elif isinstance(body, bytes):
            status, payload, extra = 400, _error("BadRequest", "the body is not JSON"), {}
        else:
            status, payload, extra = self.answer(method, path, request.headers, body)
        entry.status = status
        geojson = "features" in (payload or {}) or (payload or {}).get("type") == "Feature"
        try:
            request.send_json(status, payload, extra, "application/geo+json" if geojson else "application/json")
        except OSError:
            pass  # the client gave up (e.g. its timeout passed while we were slow)


def _methods(methods) -> frozenset | None:
    if methods is None:
        return None
    return frozenset([methods] if isinstance(methods, str) else methods)


def _error(code: str, description: str) -> dict:
    return {"code": code, "description": description}


def _collection(collection: str) -> dict:
    return {"type": "Collection", "id": collection, "stac_version": "1.0.0", "description": collection,
            "license": "proprietary", "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                                                 "temporal": {"interval": [[None, None]]}}, "links": []}


def main():
    parser = argparse.ArgumentParser(description="Run a transactional STAC API double on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--collection", action="append", default=[], help="collection id (repeatable; default ai-model)")
    parser.add_argument("--token", default=None, help="require Authorization: Bearer TOKEN")
    args = parser.parse_args()
    double = StacDouble(args.host, args.port, collections=args.collection or ["ai-model"], token=args.token)
    print(f"STAC API double on {double.url} (collections: {', '.join(double.collections)}); Ctrl-C to stop", flush=True)
    double.serve_until_interrupted()


if __name__ == "__main__":
    main()
