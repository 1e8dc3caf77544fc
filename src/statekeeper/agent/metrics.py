"""Sidecar Prometheus metrics (own registry) and its one HTTP port: /metrics, /ready, /healthz.

Every metric is set from an observed fact, never from an intention:
  statekeeper_litestream_up                    1 while a `litestream replicate` child is running
  statekeeper_litestream_restarts_total        times the child died and was started again
  statekeeper_s3_up                            1 when the last replica status probe reached S3
  statekeeper_replica_lag_seconds{db}          now − newest LTX file timestamp in the replica
  statekeeper_replica_newest_timestamp_seconds{db}  that newest timestamp (unix seconds)
  statekeeper_lease_held                       1 while this replica holds the lease
  statekeeper_rclone_last_success_timestamp_seconds{path}  end of the last successful sync
  statekeeper_rclone_sync_failures_total{path} syncs that failed (rclone error or deadline)
  statekeeper_rclone_sync_refusals_total{path} syncs refused to protect the remote copy
  statekeeper_rclone_sync_duration_seconds     wall-clock duration of each sync run (histogram)
  statekeeper_restored_bytes                   bytes `agent restore` wrote at this pod's start
  statekeeper_rclone_files_skipped{path}       files the last sync left out (control characters)
  statekeeper_litestream_last_sync_timestamp_seconds{db}  litestream's last successful sync
                                               (its control socket's `last_sync_at`)
  statekeeper_litestream_replicating{db}       1 while that sync is at most `sync_stale_after` old
  statekeeper_litestream_sync_errors_total{db} sync errors litestream logged
  statekeeper_litestream_consecutive_errors{db}  failed syncs since the last good one
  statekeeper_replica_restorable{db}           1 when the last check found the replica restorable
                                               up to its high-water mark (snapshot + LTX chain)
  statekeeper_replica_last_restorable_timestamp_seconds{db}  time of the last good check
  statekeeper_replica_restorable_txid{db}      newest TXID a restore of the replica reaches
  statekeeper_replica_reseeds_total{db}        re-seeds (a new snapshot) after a failed check
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class SidecarMetrics:
    """All sidecar metrics, in a registry of their own (no process/platform collectors)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.litestream_up = Gauge(
            "statekeeper_litestream_up", "1 while litestream replicate runs", registry=r
        )
        self.litestream_restarts = Counter(
            "statekeeper_litestream_restarts",
            "Times litestream replicate died and was restarted",
            registry=r,
        )
        self.s3_up = Gauge(
            "statekeeper_s3_up", "1 when the last replica status probe reached S3", registry=r
        )
        self.replica_lag = Gauge(
            "statekeeper_replica_lag_seconds",
            "Seconds since the newest data in the replica (newest LTX file)",
            ["db"],
            registry=r,
        )
        self.replica_newest = Gauge(
            "statekeeper_replica_newest_timestamp_seconds",
            "Unix time of the newest LTX file in the replica",
            ["db"],
            registry=r,
        )
        self.lease_held = Gauge(
            "statekeeper_lease_held", "1 while this replica holds the lease", registry=r
        )
        self.sync_last_success = Gauge(
            "statekeeper_rclone_last_success_timestamp_seconds",
            "Unix time the last successful rclone sync of a config path ended",
            ["path"],
            registry=r,
        )
        self.sync_failures = Counter(
            "statekeeper_rclone_sync_failures",
            "rclone syncs that failed (error or deadline)",
            ["path"],
            registry=r,
        )
        self.sync_refusals = Counter(
            "statekeeper_rclone_sync_refusals",
            "rclone syncs refused because they would wipe the remote copy",
            ["path"],
            registry=r,
        )
        self.sync_duration = Histogram(
            "statekeeper_rclone_sync_duration_seconds",
            "Wall-clock duration of one sync run over all config paths",
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
            registry=r,
        )
        self.restored_bytes = Gauge(
            "statekeeper_restored_bytes",
            "Bytes agent restore wrote when this pod started (0 when nothing was restored)",
            registry=r,
        )

        self.files_skipped = Gauge(
            "statekeeper_rclone_files_skipped",
            "Files the last sync of a config path left out (names with control characters)",
            ["path"],
            registry=r,
        )
        self.last_sync = Gauge(
            "statekeeper_litestream_last_sync_timestamp_seconds",
            "Unix time of litestream's last successful sync of a database",
            ["db"],
            registry=r,
        )
        self.replicating = Gauge(
            "statekeeper_litestream_replicating",
            "1 while litestream's last successful sync of a database is recent",
            ["db"],
            registry=r,
        )
        self.sync_errors = Counter(
            "statekeeper_litestream_sync_errors",
            "Sync errors litestream logged for a database",
            ["db"],
            registry=r,
        )
        self.consecutive_errors = Gauge(
            "statekeeper_litestream_consecutive_errors",
            "Failed litestream syncs of a database since its last successful one",
            ["db"],
            registry=r,
        )
        self.restorable = Gauge(
            "statekeeper_replica_restorable",
            "1 when the last check found the replica restorable up to its high-water mark",
            ["db"],
            registry=r,
        )
        self.last_restorable = Gauge(
            "statekeeper_replica_last_restorable_timestamp_seconds",
            "Unix time of the last check that found the replica restorable",
            ["db"],
            registry=r,
        )
        self.restorable_txid = Gauge(
            "statekeeper_replica_restorable_txid",
            "Newest TXID a restore of the replica reaches (snapshot + unbroken LTX chain)",
            ["db"],
            registry=r,
        )
        self.reseeds = Counter(
            "statekeeper_replica_reseeds",
            "Times the sidecar re-seeded a replica (a new snapshot) after a failed check",
            ["db"],
            registry=r,
        )

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))


class HealthServer:
    """A small threaded HTTP server: `/metrics`, `/ready` (503 until `ready()`), `/healthz`."""

    def __init__(
        self,
        metrics: SidecarMetrics,
        *,
        port: int,
        ready: Callable[[], tuple[bool, str]],
        healthy: Callable[[], tuple[bool, str]],
        host: str = "0.0.0.0",
    ) -> None:
        handler = _make_handler(metrics, ready, healthy)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 1.0},  # shutdown() latency only; requests wake it at once
            name="http",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _make_handler(
    metrics: SidecarMetrics,
    ready: Callable[[], tuple[bool, str]],
    healthy: Callable[[], tuple[bool, str]],
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, metrics.render(), CONTENT_TYPE_LATEST)
            elif path in ("/ready", "/readyz"):
                ok, why = ready()
                self._send(200 if ok else 503, (why + "\n").encode(), "text/plain")
            elif path in ("/healthz", "/livez"):
                ok, why = healthy()
                self._send(200 if ok else 503, (why + "\n").encode(), "text/plain")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # probes every few seconds would flood the log

    return Handler
