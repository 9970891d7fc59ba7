"""Prometheus metrics of one arena server, in a registry of its own (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class ArenaMetrics:
    """Matches live, actions per second, rejections, deadline expiries, turn latency."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.matches_live = Gauge("maro_matches_live", "Matches being played now", registry=r)
        self.matches_ended = Counter("maro_matches_ended_total", "Matches ended, by status", ["status"], registry=r)
        self.actions = Counter("maro_actions_total", "Actions accepted, by game", ["game"], registry=r)
        self.rejections = Counter("maro_rejections_total", "Actions refused with a reason, by game", ["game"], registry=r)
        self.deadline_expiries = Counter("maro_deadline_expiries_total", "Turn attempts that ran out of time", ["game"], registry=r)
        self.turn_latency = Histogram(
            "maro_turn_latency_seconds", "Time from a turn prompt to the accepted action", ["game"], registry=r,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120),
        )
        self.streams = Gauge("maro_streams_open", "Open Play and Spectate streams", registry=r)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Expose /metrics over HTTP for Prometheus to scrape."""
        start_http_server(port, addr=host, registry=self.registry)

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        value = self.registry.get_sample_value(name, labels or {})
        return 0.0 if value is None else value
