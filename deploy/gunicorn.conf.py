"""gunicorn settings, from the environment.

gevent workers, so that one worker holds many websockets and streaming git
requests; the embedded default runs a single worker (SQLite, in-process fan-out).
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "1000"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# On SIGTERM workers get this long to finish in-flight requests (a running git push
# included) and commit live rooms. It must stay below Docker's stop timeout, after which
# the container is SIGKILLed: deploy/deploy.yml sets `--stop-timeout 40` on the web role
# (Docker's default is 10 s) and kamal-proxy drains for up to `drain_timeout` before that.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "25"))
keepalive = 5
accesslog = os.environ.get("ACCESS_LOG", "-")
errorlog = "-"
# gunicorn's control socket defaults to one path per user, which several servers
# on one machine (tests, a dev server) would fight over; Quire does not use it.
control_socket_disable = True


def post_worker_init(worker):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    """Start live editing's background work (crash recovery sweep) in each worker."""
    from app import live

    live.start(worker.wsgi)
    live.stop_on_sigterm(worker.wsgi)  # commit rooms and close sockets (1001) at once


def worker_exit(server, worker):  # noqa: ANN001, ANN201
    """On SIGTERM (a deploy): commit every live room and close its sockets (1001)."""
    from app import live

    live.stop(getattr(worker, "wsgi", None))


# Monitoring (app/ops/gunicorn_hooks.py): PROMETHEUS_MULTIPROC_DIR is set here, before any
# worker imports prometheus_client, and emptied at start; JSON access lines without probes.
from app.ops import gunicorn_hooks as _ops  # noqa: E402

_ops.use_multiprocess_dir()
logger_class = _ops.JsonAccessLogger
on_starting = _ops.on_starting
child_exit = _ops.child_exit
