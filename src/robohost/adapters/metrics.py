"""The Prometheus metrics of ``robohost serve`` and the HTTP endpoint that serves them (``/metrics``).

``Metrics`` holds one registry with every metric (README, "Metrics"); values that are read when scraped
(feed lag, backup age, the remote log queue) come from callbacks. ``MetricsServer`` serves the registry on
a small threaded WSGI server, on 127.0.0.1 by default; with a user name and password it demands HTTP basic
authentication (compared in constant time). Must not import ``robohost.services``, ``robohost.cli`` or
``robohost.config``.
"""

from __future__ import annotations

import base64
import hmac
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
Reading = Callable[[], dict[tuple[str, ...], float]]


class _Scraped(Collector):
    """Gauges computed when scraped: ``(name, help, label names, reading)``."""

    def __init__(self) -> None:
        self.gauges: list[tuple[str, str, tuple[str, ...], Reading]] = []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, text, labels, reading in self.gauges:
            family = GaugeMetricFamily(name, text, labels=list(labels))
            try:
                values = reading()
            except Exception:  # a database hiccup must not break the scrape
                values = {}
            for key, value in values.items():
                family.add_metric(list(key), value)
            yield family


class Metrics:
    """Every metric robohost exports, in one registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        r = self.registry
        self.events = Counter("robohost_events", "Market events processed by the engine.", ["robot"], registry=r)
        self.throughput = Gauge(
            "robohost_engine_events_per_second",
            "Engine throughput between the last two commits.",
            ["robot"],
            registry=r,
        )
        self.latency = Histogram(
            "robohost_event_to_order_seconds",
            "From a live bar's arrival at the socket to the paper broker accepting the order it caused.",
            ["robot"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.orders = Counter(
            "robohost_orders", "Orders the robot placed (accepted or rejected).", ["robot"], registry=r
        )
        self.fills = Counter("robohost_fills", "Fills.", ["robot"], registry=r)
        self.rejections = Counter(
            "robohost_order_rejections", "Orders rejected before the market.", ["robot"], registry=r
        )
        self.halts = Counter("robohost_halts", "Halts by the kill switch or a strategy error.", ["robot"], registry=r)
        self.equity = Gauge(
            "robohost_equity", "Equity at the last commit (cash plus positions).", ["robot"], registry=r
        )
        self.pnl = Gauge("robohost_pnl", "Equity minus the run's starting cash.", ["robot"], registry=r)
        self.realized_pnl = Gauge(
            "robohost_realized_pnl", "Realised P&L of the run's fills so far.", ["robot"], registry=r
        )
        self.last_event = Gauge(
            "robohost_feed_last_event_timestamp_seconds",
            "Time of the newest event committed (live runs).",
            ["robot"],
            registry=r,
        )
        self.jobs = Counter("robohost_jobs", "Jobs ended, by outcome.", ["robot", "job", "outcome"], registry=r)
        self.alerts = Counter(
            "robohost_alert_deliveries", "Alert deliveries, by channel and outcome.", ["channel", "outcome"], registry=r
        )
        self.health = Gauge(
            "robohost_health_check_level", "The last health check: 0 ok, 1 warn, 2 critical.", ["check"], registry=r
        )
        self.alerts_open = Gauge("robohost_alerts_open", "Problems alerted and not cleared yet.", registry=r)
        self._scraped = _Scraped()
        r.register(self._scraped)
        self._live: dict[str, float] = {}
        self._lock = threading.Lock()
        self.scraped(
            "robohost_feed_lag_seconds",
            "Seconds since the newest event of each running live run.",
            ("robot",),
            self._feed_lag,
        )

    def scraped(self, name: str, text: str, labels: tuple[str, ...], reading: Reading) -> None:
        """Add a gauge whose values ``reading`` gives at each scrape."""
        self._scraped.gauges.append((name, text, labels, reading))

    def live_event(self, robot: str, ts_s: float | None) -> None:
        """The newest committed event of a live run (None: the run ended)."""
        with self._lock:
            if ts_s is None:
                self._live.pop(robot, None)
            else:
                self._live[robot] = ts_s
        if ts_s is not None:
            self.last_event.labels(robot).set(ts_s)

    def _feed_lag(self) -> dict[tuple[str, ...], float]:
        now = time.time()
        with self._lock:
            return {(robot,): max(0.0, now - ts) for robot, ts in self._live.items()}


class _Threaded(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged (a scrape every few seconds would flood the log)."""


def basic_auth(app: Callable[..., Iterable[bytes]], username: str, password: str) -> Callable[..., Iterable[bytes]]:
    """Wrap a WSGI app: only requests with these basic-auth credentials pass."""
    expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        given = environ.get("HTTP_AUTHORIZATION", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            start_response(
                "401 Unauthorized",
                [("WWW-Authenticate", 'Basic realm="robohost metrics"'), ("Content-Type", "text/plain")],
            )
            return [b"authentication required\n"]
        return app(environ, start_response)

    return guarded


class MetricsServer:
    """Serves ``/metrics`` of a registry on ``host:port`` in a background thread."""

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str = "127.0.0.1",
        port: int = 9464,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        app: Callable[..., Iterable[bytes]] = make_wsgi_app(registry)
        if username:
            app = basic_auth(app, username, password or "")
        server_class = _Threaded
        if ":" in host:
            server_class = type("_Threaded6", (_Threaded,), {"address_family": socket.AF_INET6})
        self._server = make_server(host, port, app, server_class=server_class, handler_class=_Quiet)
        self._thread = threading.Thread(target=self._server.serve_forever, name="robohost-metrics", daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        """The address it listens on (the port is the real one when 0 was asked)."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)
