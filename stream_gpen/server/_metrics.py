"""A tiny thread-safe metrics registry rendered as Prometheus text (no extra dependency)."""
from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict, deque
from typing import Callable

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
#: the span ``stream_gpen_faces_per_second`` averages over; the record of restored faces keeps no more
FACES_WINDOW_S = 10.0


def _labels(items: tuple[tuple[str, str], ...]) -> str:
    if not items:
        return ""
    esc = (v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for _, v in items)
    return "{" + ",".join(f'{k}="{v}"' for (k, _), v in zip(items, esc)) + "}"


class _Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0
        self.n = 0

    def observe(self, v: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, v)] += 1
        self.total += v
        self.n += 1


class Metrics:
    """Counters, histograms and gauges for ``GET /metrics``.

    Gauges that are cheap to read at scrape time (queue depth, memory) are callbacks, so they are
    never stale.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple, int] = defaultdict(int)
        self.latency: dict[tuple, _Histogram] = {}
        self.batch_sizes = _Histogram(_BATCH_BUCKETS)
        self.faces_total = 0
        self.images_total = 0
        self.live_frames: dict[str, int] = defaultdict(int)
        self.live_kinds: dict[str, int] = defaultdict(int)
        self.refused: dict[str, int] = defaultdict(int)
        self._face_times: deque[tuple[float, int]] = deque()
        self.gauges: dict[str, tuple[str, Callable[[], list[tuple[tuple, float]]]]] = {}

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(("route", route), ("method", method), ("status", str(status)))] += 1
            key = (("route", route),)
            h = self.latency.get(key)
            if h is None:
                h = self.latency[key] = _Histogram(_LATENCY_BUCKETS)
            h.observe(seconds)

    def batch(self, images: int, faces: int) -> None:
        now = time.monotonic()
        with self._lock:
            self.batch_sizes.observe(images)
            self.images_total += images
            self._add_faces(now, faces)

    def add_faces(self, faces: int) -> None:
        now = time.monotonic()
        with self._lock:
            self._add_faces(now, faces)

    def _add_faces(self, now: float, faces: int) -> None:
        """Count ``faces`` and keep them for the rate (the lock held). The record is pruned here,
        not only when ``/metrics`` is read: a server nobody scrapes grew it by an entry a frame
        for good. A frame without faces adds nothing to the rate, so it is not kept."""
        self.faces_total += faces
        self._prune(now)
        if faces:
            self._face_times.append((now, faces))

    def _prune(self, now: float) -> None:
        while self._face_times and self._face_times[0][0] < now - FACES_WINDOW_S:
            self._face_times.popleft()

    def refuse(self, reason: str) -> None:
        with self._lock:
            self.refused[reason] += 1

    def live(self, result: str, kind: str | None = None) -> None:
        with self._lock:
            self.live_frames[result] += 1
            if kind is not None:
                self.live_kinds[kind] += 1

    def faces_per_second(self) -> float:
        """Faces restored per second over the last :data:`FACES_WINDOW_S`."""
        now = time.monotonic()
        with self._lock:
            self._prune(now)
            return sum(n for _, n in self._face_times) / FACES_WINDOW_S

    def gauge(self, name: str, help_text: str, read: Callable[[], list[tuple[tuple, float]]]) -> None:
        self.gauges[name] = (help_text, read)

    def render(self) -> str:
        out: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")

        def hist(name: str, labels: tuple, h: _Histogram) -> None:
            cum = 0
            for b, c in zip(h.buckets, h.counts):
                cum += c
                out.append(f"{name}_bucket{_labels(labels + (('le', repr(float(b))),))} {cum}")
            out.append(f"{name}_bucket{_labels(labels + (('le', '+Inf'),))} {h.n}")
            out.append(f"{name}_sum{_labels(labels)} {h.total:.6f}")
            out.append(f"{name}_count{_labels(labels)} {h.n}")

        fps = self.faces_per_second()
        with self._lock:
            family("stream_gpen_requests_total", "counter", "HTTP requests by route, method and status")
            for k, v in sorted(self.requests.items()):
                out.append(f"stream_gpen_requests_total{_labels(k)} {v}")
            family("stream_gpen_request_seconds", "histogram", "HTTP request latency by route")
            for k, h in sorted(self.latency.items()):
                hist("stream_gpen_request_seconds", k, h)
            family("stream_gpen_batch_images", "histogram", "images per model call (dynamic batching)")
            hist("stream_gpen_batch_images", (), self.batch_sizes)
            family("stream_gpen_images_total", "counter", "images (and live frames) enhanced")
            out.append(f"stream_gpen_images_total {self.images_total}")
            family("stream_gpen_faces_restored_total", "counter", "faces restored (images, live, video)")
            out.append(f"stream_gpen_faces_restored_total {self.faces_total}")
            family("stream_gpen_faces_per_second", "gauge", "faces restored per second over the last 10 s")
            out.append(f"stream_gpen_faces_per_second {fps:.3f}")
            family("stream_gpen_refused_total", "counter", "requests refused by a limit, by reason")
            for k, v in sorted(self.refused.items()):
                out.append(f"stream_gpen_refused_total{_labels((('reason', k),))} {v}")
            family("stream_gpen_live_frames_total", "counter", "live WebSocket frames by result")
            for k, v in sorted(self.live_frames.items()):
                out.append(f"stream_gpen_live_frames_total{_labels((('result', k),))} {v}")
            family("stream_gpen_live_processed_by_kind_total", "counter", "live frames answered, by wire format")
            for k, v in sorted(self.live_kinds.items()):
                out.append(f"stream_gpen_live_processed_by_kind_total{_labels((('kind', k),))} {v}")
        for name, (help_text, read) in sorted(self.gauges.items()):
            family(name, "gauge", help_text)
            for labels, value in read():
                out.append(f"{name}{_labels(labels)} {value:g}")
        return "\n".join(out) + "\n"
