#!/usr/bin/env bash
# The container's entry point (Dockerfile ENTRYPOINT, under tini).
#   web (the default CMD): apply pending migrations, then exec gunicorn.
#   anything else: run it as given, e.g. `kamal app exec -i "flask --app app shell"`.
#
# Migrations run at every start of a web container but under the database's migration
# lock (pg_advisory_lock on PostgreSQL, a file lock on SQLite: app/migrate.py), so when
# several containers of a new release boot at once, one migrates and the others wait
# and then find nothing to do. Migrations are expand/contract (docs/DEPLOY.md): the
# release still serving keeps working against the migrated schema.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Kamal names the release in KAMAL_VERSION; an image built without GIT_SHA uses it.
if [ "${QUIRE_RELEASE:-unknown}" = unknown ] && [ -n "${KAMAL_VERSION:-}" ]; then
  export QUIRE_RELEASE="$KAMAL_VERSION"
fi

if [ "$#" -eq 0 ] || [ "$1" = web ]; then
  if [ "${QUIRE_MIGRATE_ON_BOOT:-1}" = 1 ]; then
    flask --app app db upgrade
  fi
  exec gunicorn --config deploy/gunicorn.conf.py "app:create_app()"
fi
exec "$@"
