"""Prometheus metrics, on one registry so tests and several apps in one process don't collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = [
    "AUDIT_QUEUE",
    "CONNECTIONS",
    "DEADLINES",
    "DETACHED",
    "DISPLACEMENTS",
    "EXPIRIES",
    "FRAMES",
    "FRAME_ERRORS",
    "HTTP_LATENCY",
    "HTTP_REQUESTS",
    "LIMIT_HITS",
    "LOGINS",
    "REFRESHES",
    "REGISTRY",
    "REVOCATIONS",
    "SESSIONS",
    "TASKS",
    "TRUNK_REFUSED",
    "WEBHOOKS_REFUSED",
]

REGISTRY = CollectorRegistry()

# Audit events queued for the store (``pending``: it is down or slow) and never written
# (``dropped``: counted and logged by AuditLog). Set from the node's own AuditLog at start.
AUDIT_QUEUE = Gauge(
    "voxgate_audit_events", "Audit events not written", ["state"], registry=REGISTRY
)
HTTP_REQUESTS = Counter(
    "voxgate_http_requests", "REST requests", ["method", "route", "status"], registry=REGISTRY
)
HTTP_LATENCY = Histogram(
    "voxgate_http_seconds", "REST latency", ["method", "route"], registry=REGISTRY
)
SESSIONS = Gauge("voxgate_sessions", "Live signaling sessions", ["kind"], registry=REGISTRY)
LOGINS = Counter("voxgate_logins", "Gateway logins", ["method", "result"], registry=REGISTRY)
DETACHED = Gauge(
    "voxgate_detached_sessions",
    "Sessions with a call whose socket dropped, kept for their client to reattach",
    registry=REGISTRY,
)
REFRESHES = Counter("voxgate_refreshes", "In-place token refreshes", registry=REGISTRY)
REATTACHES = Counter(
    "voxgate_reattaches", "Sessions resumed by a reconnecting client", registry=REGISTRY
)
TRUNK_REFUSED = Counter(
    "voxgate_trunk_calls_refused",
    "Calls to numbers refused before the trunk (cause) and trunk calls refused at the edge",
    ["reason"],
    registry=REGISTRY,
)
DISPLACEMENTS = Counter("voxgate_displacements", "Registrations displaced", registry=REGISTRY)
REVOCATIONS = Counter("voxgate_revocations", "Sessions closed by revocation", registry=REGISTRY)
EXPIRIES = Counter("voxgate_expiries", "Sessions ended at token expiry", registry=REGISTRY)
FRAME_ERRORS = Counter("voxgate_frame_errors", "Bad frames", ["kind"], registry=REGISTRY)
LIMIT_HITS = Counter("voxgate_limit_hits", "Limits hit", ["limit"], registry=REGISTRY)
CONNECTIONS = Counter("voxgate_ws_connections", "WebSocket connections accepted", registry=REGISTRY)
FRAMES = Counter("voxgate_ws_frames", "WebSocket frames received", registry=REGISTRY)
WEBHOOKS_REFUSED = Counter(
    "voxgate_webhooks_refused",
    "Webhook events dropped because their URL's address is not permitted (--webhook-allow)",
    registry=REGISTRY,
)
# What a long-running node must not accumulate (``make bench``'s soak counts them before and
# after its churn): asyncio tasks alive in the process, and the gateway's session deadlines in
# its one heap (a session gone must leave neither). Set by ``voxgate serve`` at start.
TASKS = Gauge("voxgate_asyncio_tasks", "Live asyncio tasks in the process", registry=REGISTRY)
DEADLINES = Gauge(
    "voxgate_deadlines", "Session deadlines in the gateway's timer heap", registry=REGISTRY
)
