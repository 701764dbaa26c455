"""Prometheus metrics, in a registry of the app's own (no module-level singletons)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal, get_args

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "LIMITS", "Limit", "Metrics"]

Limit = Literal[
    "connections",
    "connections_per_address",
    "connections_per_subject",
    "handshakes_per_address",
    "messages",
    "subscriptions",
]
"""The ``limit`` label of ``gateway_limit_hits_total``: which limit a client ran into."""

LIMITS: Final[tuple[Limit, ...]] = get_args(Limit)


@dataclass(frozen=True, slots=True)
class Metrics:
    """Every metric of the README's "Metrics" section, registered in ``registry``."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    router_requests: Counter = field(init=False)
    router_poll_seconds: Histogram = field(init=False)
    router_up: Gauge = field(init=False)
    viewers: Gauge = field(init=False)
    ws_connections: Gauge = field(init=False)
    frames_sent: Counter = field(init=False)
    frames_dropped: Counter = field(init=False)
    slow_consumer_closes: Counter = field(init=False)
    frame_encode: Counter = field(init=False)
    rows_skipped: Counter = field(init=False)
    cluster_lease_held: Gauge = field(init=False)
    cluster_lease_changes: Counter = field(init=False)
    cluster_stream_lag: Histogram = field(init=False)
    cluster_redis_errors: Counter = field(init=False)
    cluster_degraded: Gauge = field(init=False)
    limit_hits: Counter = field(init=False)

    def __post_init__(self) -> None:
        r = self.registry
        put = object.__setattr__  # frozen: the metrics are created once, here
        put(
            self,
            "router_requests",
            Counter(
                "gateway_router_requests",
                "RouterOS API requests by outcome (ok, timeout, error)",
                ["router", "outcome"],
                registry=r,
            ),
        )
        put(
            self,
            "router_poll_seconds",
            Histogram(
                "gateway_router_poll_seconds",
                "Duration of one tick of a router: the requests of every source watched",
                ["router"],
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                registry=r,
            ),
        )
        put(
            self,
            "router_up",
            Gauge("gateway_router_up", "1 when the router answers", ["router"], registry=r),
        )
        put(
            self,
            "viewers",
            Gauge(
                "gateway_viewers",
                "Websocket subscriptions to a router's sources",
                ["router"],
                registry=r,
            ),
        )
        put(
            self,
            "ws_connections",
            Gauge("gateway_ws_connections", "Open websocket connections", registry=r),
        )
        put(
            self,
            "frames_sent",
            Counter("gateway_frames_sent", "Traffic frames written to viewers", registry=r),
        )
        put(
            self,
            "frames_dropped",
            Counter(
                "gateway_frames_dropped",
                "Traffic frames skipped for a backed-up viewer (a newer frame replaced them)",
                registry=r,
            ),
        )
        put(
            self,
            "slow_consumer_closes",
            Counter(
                "gateway_slow_consumer_closes",
                "Viewers closed with 4408 for falling behind",
                registry=r,
            ),
        )
        put(
            self,
            "frame_encode",
            Counter("gateway_frame_encode", "JSON encodings of traffic frames", registry=r),
        )
        put(
            self,
            "rows_skipped",
            Counter(
                "gateway_rows_skipped",
                "Rows of a router's reply that could not be read, and were left out of its frame",
                ["router", "source"],
                registry=r,
            ),
        )
        # Cluster mode (README, "Cluster mode"); in one process they stay at zero.
        put(
            self,
            "cluster_lease_held",
            Gauge(
                "gateway_cluster_lease_held",
                "1 while this replica holds the router's lease (and so polls it)",
                ["router"],
                registry=r,
            ),
        )
        put(
            self,
            "cluster_lease_changes",
            Counter(
                "gateway_cluster_lease_changes",
                "Router leases this replica acquired, lost or released",
                ["router", "change"],
                registry=r,
            ),
        )
        put(
            self,
            "cluster_stream_lag",
            Histogram(
                "gateway_cluster_stream_lag_seconds",
                "From the holder publishing a frame to this replica reading it from Redis",
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                registry=r,
            ),
        )
        put(
            self,
            "cluster_redis_errors",
            Counter(
                "gateway_cluster_redis_errors",
                "Redis calls that failed or missed their deadline",
                registry=r,
            ),
        )
        put(
            self,
            "cluster_degraded",
            Gauge(
                "gateway_cluster_degraded",
                "1 while Redis is unreachable and this replica polls for its own viewers",
                registry=r,
            ),
        )
        put(
            self,
            "limit_hits",
            Counter(
                "gateway_limit_hits",
                "Clients refused or closed by a limit (README, Limits), by limit",
                ["limit"],
                registry=r,
            ),
        )
        for limit in LIMITS:
            self.limit_hits.labels(limit)  # every limit listed from the start, at 0

    def render(self) -> bytes:
        return generate_latest(self.registry)
