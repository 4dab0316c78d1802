# syntax=docker/dockerfile:1
# Quire's production image: `kamal deploy -c deploy/deploy.yml` builds it (docs/DEPLOY.md).
#   docker build --build-arg GIT_SHA="$(git rev-parse HEAD)" -t quire .
# Stages: the editor bundle (Node), the pinned Python venv, then a slim runtime holding
# only the venv, the code, git and the PostgreSQL client (for scripts/backup).

# --- 1. the live editor's bundle (static/dist) --------------------------------------------
FROM node:20-slim AS editor
WORKDIR /src
# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
# scripts/build-editor.mjs bundles assets/editor/main.js into static/dist/.
COPY scripts/build-editor.mjs scripts/
COPY assets/ assets/
COPY static/ static/
RUN npm run build && mkdir -p static/dist

# --- 2. pinned Python requirements in /opt/venv ---------------------------------------------
FROM python:3.11-slim-trixie AS python
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --require-virtualenv -r /tmp/requirements.txt

# --- 3. runtime ------------------------------------------------------------------------------
FROM python:3.11-slim-trixie AS runtime
# git serves clone/fetch/push; pg_dump (client 17 dumps servers up to 17) is for backups;
# tini reaps the git subprocesses and forwards SIGTERM to gunicorn.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git postgresql-client tini ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 1000 quire \
    && useradd --system --uid 1000 --gid quire --home-dir /app --shell /usr/sbin/nologin quire \
    && mkdir -p /data/repos /data/var /data/backups \
    && chown -R quire:quire /data
COPY --from=python /opt/venv /opt/venv
WORKDIR /app
COPY --chown=quire:quire . /app
COPY --from=editor --chown=quire:quire /src/static/dist /app/static/dist

ARG GIT_SHA=unknown
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    QUIRE_ENV=production \
    QUIRE_VAR_DIR=/data/var \
    REPOS_ROOT=/data/repos \
    HOST=0.0.0.0 \
    PORT=8000 \
    LOG_FORMAT=json \
    GIT_SHA=${GIT_SHA} \
    QUIRE_RELEASE=${GIT_SHA}

# The repositories volume (deploy.yml: quire_repos:/data/repos) is created from this
# directory the first time, so it starts owned by the quire user.
VOLUME ["/data/repos"]
USER 1000:1000
EXPOSE 8000
# kamal-proxy checks /up itself; this is for `docker ps` and plain `docker run`.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/up', timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "/app/deploy/entrypoint.sh"]
CMD ["web"]
