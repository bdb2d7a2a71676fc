"""gunicorn settings, read from the environment (``gunicorn -c jitportal/gunicorn.conf.py``).

Defaults suit one container behind Pomerium: a few threaded workers, and an access log on
stdout for the container runtime to collect. Threads (gthread) keep the worker's heartbeat
going while one thread streams a long audit export; with sync workers ``timeout`` would
kill any response that takes longer than 30 s to send.
"""

import gc
import os


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


# Every interface of the container; compose publishes no port for it (Pomerium only).
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# Heroku's convention, also honoured by gunicorn itself; 3 fits a small VM.
workers = _int("WEB_CONCURRENCY", 3)
threads = _int("GUNICORN_THREADS", 4)
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Pomerium keeps upstream connections open; outlive its idle timeout less than it does.
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle workers now and then so a slow leak cannot grow without bound, but rarely: each
# restart boots Django again (and loses the frozen, warmed-up state below) while that
# worker's share of the traffic queues. At 1,000 a worker restarted every few seconds of
# page traffic; at 10,000 one restarted every 7-14 s of /healthz load (1,400-3,000
# requests/s on two workers) and showed in that round's /healthz p99 (bench/README.md).
# At 100,000 a worker lives for hours of real traffic; the jitter (up to 10 %) keeps the
# workers from restarting together.
max_requests = _int("GUNICORN_MAX_REQUESTS", 100_000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 10_000)
# The worker heartbeat file on tmpfs: a container's overlay filesystem can stall it.
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR", "/dev/shm")  # noqa: S108 - tmpfs
# Pomerium's assertion carries the user's groups: people in hundreds of groups send a header
# of tens of KB, and gunicorn's default (8190 bytes per header) answers 431 and locks them out.
# 64 KB per header fits real assertions; Envoy (inside Pomerium) caps all headers at 60 KB by
# default, so this is never the tighter limit.
limit_request_field_size = _int("GUNICORN_LIMIT_REQUEST_FIELD_SIZE", 65536)
limit_request_fields = _int("GUNICORN_LIMIT_REQUEST_FIELDS", 100)
# The request line (method, path, query) keeps gunicorn's maximum.
limit_request_line = _int("GUNICORN_LIMIT_REQUEST_LINE", 8190)
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
# Only Pomerium can reach the container (no published port), so its X-Forwarded-* is trusted.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "*")
# gunicorn's control socket (for `gunicornc`) defaults to ~/.gunicorn/, which in the image is
# /app: root-owned and read-only to the app user, so gunicorn logged a permission error at
# every start. The container runtime restarts and scales the server, so the socket is off
# unless GUNICORN_CONTROL_SOCKET names a path the app user may write (e.g. /dev/shm/gunicorn.ctl).
_control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not _control_socket
if _control_socket:
    control_socket = _control_socket

# Garbage collection. A full (oldest-generation) collection walks every object the worker
# holds, Django's modules, URL patterns and compiled templates included: 60-90 ms with the
# worker's ~150,000 objects, once every few dozen page views, and it stops every thread of
# the worker meanwhile. That pause was most of the pages' p99 (bench/README.md, "Pages").
# What exists once the application is loaded, and again once the first requests have
# compiled the templates and filled the caches, lives as long as the worker: it is frozen
# (``gc.freeze``, as CPython's documentation suggests for servers), so collections skip it.
# Garbage made by requests is collected as before.
GC_FREEZE_AFTER_REQUESTS = 200


def post_worker_init(worker: object) -> None:
    gc.collect()
    gc.freeze()


def post_request(worker: object, req: object, environ: object, resp: object) -> None:
    if getattr(worker, "jit_warm_frozen", False):
        return
    if getattr(worker, "nr", 0) >= GC_FREEZE_AFTER_REQUESTS:
        worker.jit_warm_frozen = True  # type: ignore[attr-defined]
        gc.collect()
        gc.freeze()
