"""Prometheus metrics of one process: counters, gauges and histograms with labels, read at scrape time in the
text exposition format (version 0.0.4), and the small HTTP server that serves them (``[metrics] port``).

Written here rather than taken from ``prometheus_client``: the few types needed fit in one module, recording a
sample is one dict lookup and an addition (the API middleware records every request, token validations
included), and the process-wide registry stays plain data a test can read back.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
from collections.abc import Callable, Iterable, Sequence

from aiohttp import web

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: from a fast cached token validation to a slow boot-time call.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0)

LabelValues = tuple[str, ...]
# A sample read at scrape time: (metric name, label names, label values, value).
Sample = tuple[str, Sequence[str], Sequence[str], float]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(str(v))}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)

    def lines(self) -> Iterable[str]:
        raise NotImplementedError


class Counter(Metric):
    """Only goes up (requests served, messages handled)."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self.values: dict[LabelValues, float] = {}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def lines(self) -> Iterable[str]:
        for key, value in list(self.values.items()):
            yield f"{self.name}{_labels(self.label_names, key)} {_number(value)}"


class Gauge(Counter):
    """A value that goes up and down, set by its owner."""

    kind = "gauge"

    def set(self, *labels: str, value: float) -> None:
        self.values[labels] = value


class Histogram(Metric):
    """Observations counted into cumulative buckets (latencies, lags), with their sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = (),
                 buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        super().__init__(name, help_text, labels)
        self.bounds = tuple(sorted(buckets))
        # Per label set: a count per bucket (not cumulative; the last one is +Inf), the sum.
        self.series: dict[LabelValues, tuple[list[int], list[float]]] = {}

    def observe(self, value: float, *labels: str) -> None:
        series = self.series.get(labels)
        if series is None:
            series = self.series[labels] = ([0] * (len(self.bounds) + 1), [0.0])
        series[0][bisect.bisect_left(self.bounds, value)] += 1
        series[1][0] += value

    def count(self, *labels: str) -> int:
        series = self.series.get(labels)
        return sum(series[0]) if series else 0

    def lines(self) -> Iterable[str]:
        for key, (counts, total) in list(self.series.items()):
            running = 0
            for bound, n in zip((*self.bounds, math.inf), counts, strict=True):
                running += n
                le = f'le="{_number(bound)}"'
                yield f"{self.name}_bucket{_labels(self.label_names, key, le)} {running}"
            yield f"{self.name}_sum{_labels(self.label_names, key)} {_number(total[0])}"
            yield f"{self.name}_count{_labels(self.label_names, key)} {running}"


class Collected(Metric):
    """A gauge whose samples come from callbacks at scrape time (queue depths, guests by state): the owners
    register a callback while they run and remove it when they stop. Samples with the same labels add up."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self._sources: dict[int, Callable[[], Iterable[tuple[LabelValues, float]]]] = {}
        self._lock = threading.Lock()

    def add(self, source: Callable[[], Iterable[tuple[LabelValues, float]]]) -> int:
        with self._lock:
            key = id(source)
            self._sources[key] = source
            return key

    def remove(self, key: int) -> None:
        with self._lock:
            self._sources.pop(key, None)

    def samples(self) -> dict[LabelValues, float]:
        with self._lock:
            sources = list(self._sources.values())
        out: dict[LabelValues, float] = {}
        for source in sources:
            try:
                for labels, value in source():
                    out[labels] = out.get(labels, 0.0) + value
            except Exception:  # one broken source must not hide the others
                log.exception("metrics source for %s failed", self.name)
        return out

    def lines(self) -> Iterable[str]:
        for key, value in sorted(self.samples().items()):
            yield f"{self.name}{_labels(self.label_names, key)} {_number(value)}"


class Registry:
    """The metrics of one process, rendered in registration order."""

    def __init__(self) -> None:
        self.metrics: dict[str, Metric] = {}

    def register(self, metric: Metric) -> Metric:
        if metric.name in self.metrics:
            raise ValueError(f"metric {metric.name} registered twice")
        self.metrics[metric.name] = metric
        return metric

    def render(self) -> str:
        out: list[str] = []
        for metric in list(self.metrics.values()):
            out.append(f"# HELP {metric.name} {metric.help}")
            out.append(f"# TYPE {metric.name} {metric.kind}")
            out.extend(metric.lines())
        return "\n".join(out) + "\n"


REGISTRY = Registry()


def counter(name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
    return REGISTRY.register(Counter(name, help_text, labels))  # type: ignore[return-value]


def gauge(name: str, help_text: str, labels: Sequence[str] = ()) -> Gauge:
    return REGISTRY.register(Gauge(name, help_text, labels))  # type: ignore[return-value]


def histogram(name: str, help_text: str, labels: Sequence[str] = (),
              buckets: Sequence[float] = LATENCY_BUCKETS) -> Histogram:
    return REGISTRY.register(Histogram(name, help_text, labels, buckets))  # type: ignore[return-value]


def collected(name: str, help_text: str, labels: Sequence[str] = ()) -> Collected:
    return REGISTRY.register(Collected(name, help_text, labels))  # type: ignore[return-value]


# --- the metrics every process has -----------------------------------------------------------------

HTTP_REQUESTS = counter("tinystack_http_requests_total", "API requests handled, by service, route template, "
                        "method and status.", ("service", "route", "method", "status"))
HTTP_LATENCY = histogram("tinystack_http_request_duration_seconds", "API request latency, by service, route "
                         "template and method.", ("service", "route", "method"))
RECONCILE_DEPTH = collected("tinystack_reconcile_queue_depth", "Keys queued or being reconciled, by reconciler.",
                            ("reconciler",))
RECONCILE_LATENCY = histogram("tinystack_reconcile_duration_seconds", "Time one reconcile of one key took, by "
                              "reconciler and outcome (ok, error).", ("reconciler", "outcome"))
RECONCILE_WAIT = histogram("tinystack_reconcile_queue_wait_seconds", "Time a key waited in the queue before a "
                           "worker took it, by reconciler.", ("reconciler",), LAG_BUCKETS)
BUS_LAG = histogram("tinystack_bus_lag_seconds", "Time between a message's publish and the start of its handling "
                    "here, by topic family.", ("topic",), LAG_BUCKETS)
BUS_HANDLED = counter("tinystack_bus_messages_total", "Bus messages handled here, by topic family and outcome.",
                      ("topic", "outcome"))
BUS_PUBLISHED = counter("tinystack_bus_published_total", "Bus messages published from here, by topic family.",
                        ("topic",))
GUESTS = collected("tinystack_guests", "Guests the compute agents of this process keep, by host and state.",
                   ("host", "state"))


def topic_family(topic: str) -> str:
    """``agent.compute.<host>`` -> ``agent.compute``: one series per kind of message, not per host."""
    return ".".join(topic.split(".")[:2]) if topic.startswith("agent.") else topic


# --- serving ------------------------------------------------------------------------------------------


async def _handle(_request: web.Request) -> web.Response:
    return web.Response(body=REGISTRY.render().encode(), headers={"Content-Type": CONTENT_TYPE})


class MetricsServer:
    """``GET /metrics`` on its own port, one per process (API processes and agent-only processes alike)."""

    def __init__(self, bind: str, port: int) -> None:
        self.bind = bind
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        app = web.Application()
        app.router.add_get("/metrics", _handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.bind, self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[-1][1]
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
