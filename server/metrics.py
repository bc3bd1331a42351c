"""Prometheus metrics of one server (a registry per server, so tests can run several)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]


class Metrics:
    """The server's metrics; the sync layer feeds the per-peer ones."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.peer_connected = Gauge(
            "crdtsync_peer_connected", "1 if the peer link is up", ["peer"], registry=r
        )
        self.peer_lag_batches = Gauge(
            "crdtsync_peer_lag_batches",
            "log entries the peer has not acknowledged",
            ["peer"],
            registry=r,
        )
        self.peer_lag_seconds = Gauge(
            "crdtsync_peer_lag_seconds",
            "age of the oldest entry the peer has not acknowledged",
            ["peer"],
            registry=r,
        )
        self.peer_relayed_origins = Gauge(
            "crdtsync_peer_relayed_origins",
            "origins whose writes go whole to the peer: it said it does not get them from them",
            ["peer"],
            registry=r,
        )
        self.bytes_sent = Counter(
            "crdtsync_bytes_sent", "bytes sent to a peer", ["peer"], registry=r
        )
        self.bytes_received = Counter(
            "crdtsync_bytes_received", "bytes received from a peer", ["peer"], registry=r
        )
        self.deltas_sent = Counter(
            "crdtsync_deltas_sent", "delta messages sent", ["peer"], registry=r
        )
        self.deltas_received = Counter(
            "crdtsync_deltas_received", "delta messages received", ["peer"], registry=r
        )
        self.catchups = Counter(
            "crdtsync_catchups",
            "state catch-ups received from a peer (one per catch-up, however many parts)",
            ["peer"],
            registry=r,
        )
        self.commit_seconds = Histogram(
            "crdtsync_commit_seconds",
            "group commit latency",
            registry=r,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        self.writes = Counter("crdtsync_writes", "client writes by type", ["type"], registry=r)
        self._writes_of: dict[str, Any] = {}  # kind -> its child of ``writes`` (labels() costs)
        self.rejected_total = Counter(
            "crdtsync_rejected", "rejected messages by reason", ["reason"], registry=r
        )
        self.keys = Gauge("crdtsync_keys", "keys in the keyspace", registry=r)
        self.entries_left_out = Gauge(
            "crdtsync_sync_entries_left_out",
            "delta-log entries not sent to a peer because it holds them, or gets them, from "
            "their origin (since the server started)",
            registry=r,
        )

    def write(self, kind: str) -> None:
        """Count one client write of ``kind``."""
        child = self._writes_of.get(kind)
        if child is None:
            child = self._writes_of[kind] = self.writes.labels(kind)
        child.inc()

    def rejected(self, reason: str) -> None:
        """Count one rejected message."""
        self.rejected_total.labels(reason).inc()

    def render(self) -> bytes:
        """Return the Prometheus text exposition."""
        return generate_latest(self.registry)
