"""Gunicorn settings for Loupe, read from the environment.

PORT                  port to listen on, on all interfaces (default 8000)
WEB_CONCURRENCY       worker processes (default 2 x CPUs + 1, at most 8)
GUNICORN_THREADS      threads per worker process (default 4)
GUNICORN_TIMEOUT      seconds before a silent worker is restarted (default 120)
FORWARDED_ALLOW_IPS   comma-separated addresses of proxies whose X-Forwarded-* headers are
                      trusted, or * (default 127.0.0.1,::1)
LOG_LEVEL             gunicorn's error log level (default info)
"""

import os


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not available on every platform
        return os.cpu_count() or 1


bind = f"0.0.0.0:{int(os.environ.get('PORT') or 8000)}"

workers = int(os.environ.get("WEB_CONCURRENCY") or min(2 * _cpus() + 1, 8))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 4)

timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 120)
graceful_timeout = 30
keepalive = 5

# Restart each worker now and then, so that slow memory growth cannot accumulate.
max_requests = 1000
max_requests_jitter = 100

forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1,::1"

accesslog = "-"
errorlog = "-"
loglevel = (os.environ.get("LOG_LEVEL") or "info").lower()
access_log_format = (
    '%(h)s "%({x-forwarded-for}i)s" %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms "%(f)s" "%(a)s"'
)

# Heartbeat files on tmpfs: a container's overlay filesystem can stall them.
if os.path.isdir("/dev/shm"):  # noqa: S108 - gunicorn heartbeat files, not secrets
    worker_tmp_dir = "/dev/shm"  # noqa: S108

# No runtime control socket (gunicorn >= 25.1): the container is the unit that is restarted,
# and the non-root user has no writable home for the socket. Older gunicorn ignores this.
control_socket_disable = True
