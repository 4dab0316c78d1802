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
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "25"))
keepalive = 5
accesslog = os.environ.get("ACCESS_LOG", "-")
errorlog = "-"
# gunicorn's control socket defaults to one path per user, which several servers
# on one machine (tests, a dev server) would fight over; Quire does not use it.
control_socket_disable = True
