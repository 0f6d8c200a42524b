"""The orders service behind the demo target's HTTP front: routing, per-shard pools, JSON answers."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from skewcheck.demo.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from skewcheck.demo.metrics import build_registry, render
from skewcheck.demo.pool import ShardPool
from skewcheck.errors import SkewcheckError, UsageError

JSON_TYPE = "application/json"
_MAX_KEY_CHARS = 256  # a key longer than this is a client bug, not a user id


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(status: int, payload: Any, shard: int | None = None) -> Response:
    headers = [("X-Shard", str(shard))] if shard is not None else []
    return Response(status, json.dumps(payload, separators=(",", ":")).encode(), JSON_TYPE, headers)


def error_response(status: int, message: str, shard: int | None = None) -> Response:
    payload: dict[str, Any] = {"error": message}
    if shard is not None:
        payload["shard"] = shard
    return json_response(status, payload, shard)


class OrdersApp:
    """N shards, each a ShardPool; keys routed exactly as the system under test routes them."""

    def __init__(self, shards: int, routing: str, key_type: str, pool_size: int,
                 service_ms: float, wait_timeout_ms: float) -> None:
        from skewcheck.keytext import parse_key
        from skewcheck.routing import make_router

        if shards < 1:
            raise UsageError(f"--shards must be >= 1, got {shards}")
        if pool_size < 1:
            raise UsageError(f"--pool-size must be >= 1, got {pool_size}")
        if service_ms < 0 or wait_timeout_ms < 0:
            raise UsageError("--service-ms and --wait-timeout-ms must be >= 0")
        if key_type not in ("int", "str"):
            raise UsageError(f"--key-type must be int or str, got {key_type!r}")
        try:
            self.router = make_router(routing, shards, key_type)
        except SkewcheckError:
            raise
        except (ValueError, KeyError, TypeError) as exc:  # an unknown router or a router/key-type mismatch
            raise UsageError(f"router {routing!r}: {exc}") from None
        self._parse_key = parse_key
        self.shards, self.routing, self.key_type = shards, routing, key_type
        self.pools = [ShardPool(pool_size, service_ms / 1000.0, wait_timeout_ms / 1000.0) for _ in range(shards)]
        self.registry = build_registry(self.pools)
        self._order_ids = itertools.count(1)  # next() on a count is atomic under the GIL

    # --- routing --------------------------------------------------------------------------

    def route(self, raw: Any) -> tuple[str, int]:
        """user_id (query text or JSON value) -> (key text, shard); ValueError with a message if unusable."""
        if isinstance(raw, bool) or raw is None:
            raise ValueError("user_id is required")
        if isinstance(raw, int):
            text = str(raw)
        elif isinstance(raw, str):
            text = raw.strip() if self.key_type == "int" else raw
        else:
            raise ValueError("user_id must be an integer or a string")
        if not text:
            raise ValueError("user_id is required")
        if len(text) > _MAX_KEY_CHARS:
            raise ValueError(f"user_id longer than {_MAX_KEY_CHARS} characters")
        try:
            key = self._parse_key(text, self.key_type)
            shard = int(self.router.shard(key))
        except (SkewcheckError, ValueError, TypeError, OverflowError) as exc:
            raise ValueError(f"bad user_id {text[:40]!r}: {exc}") from None
        return text, shard

    # --- endpoints ------------------------------------------------------------------------

    def get_orders(self, query: str) -> Response:
        values = parse_qs(query, keep_blank_values=True).get("user_id", [])
        if len(values) != 1:
            return error_response(400, "exactly one user_id query parameter is required")
        try:
            key, shard = self.route(values[0])
        except ValueError as exc:
            return error_response(400, str(exc))
        code = self.pools[shard].query(200)
        if code != 200:
            return self._pool_timeout(shard)
        orders = [{"order_id": f"{key}-{n}", "user_id": key, "amount": round(9.99 * n, 2), "shard": shard}
                  for n in (1, 2)]
        return json_response(200, orders, shard)

    def post_order(self, body: bytes) -> Response:
        try:
            doc = json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, ValueError):
            return error_response(400, "body must be a JSON object")
        if not isinstance(doc, dict):
            return error_response(400, 'body must be a JSON object like {"user_id": 42, "amount": 9.99}')
        amount = doc.get("amount", 0)
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not math.isfinite(amount):
            return error_response(400, "amount must be a finite number")
        try:
            key, shard = self.route(doc.get("user_id"))
        except ValueError as exc:
            return error_response(400, str(exc))
        code = self.pools[shard].query(201)
        if code != 201:
            return self._pool_timeout(shard)
        order = {"order_id": next(self._order_ids), "user_id": key, "amount": amount, "shard": shard}
        return json_response(201, order, shard)

    def metrics(self) -> Response:
        return Response(200, render(self.registry), METRICS_CONTENT_TYPE)

    def _pool_timeout(self, shard: int) -> Response:
        waited = self.pools[shard].wait_timeout_s * 1000
        return error_response(503, f"shard {shard} connection pool exhausted: no slot within {waited:g} ms", shard)
