#!/bin/sh
# The part of the official image's entrypoint the tests and the kind overlay use: a fresh cluster in
# $PGDATA, owned by postgres, with POSTGRES_HOST_AUTH_METHOD (default trust: throw-away test data),
# listening on every address unless the command line says otherwise (the official image's
# listen_addresses = '*'), the database POSTGRES_DB when set, then the server as postgres.
set -eu
if [ "${1:-}" = postgres ]; then
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 700 "$PGDATA"
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    auth="${POSTGRES_HOST_AUTH_METHOD:-trust}"
    runuser -u postgres -- initdb -D "$PGDATA" -U "${POSTGRES_USER:-postgres}" --auth="$auth" -E UTF8 --no-sync --no-instructions >/dev/null
    printf 'host all all 0.0.0.0/0 %s\nhost all all ::/0 %s\n' "$auth" "$auth" >> "$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    if [ -n "${POSTGRES_DB:-}" ] && [ "$POSTGRES_DB" != postgres ]; then
      echo "CREATE DATABASE \"$POSTGRES_DB\"" | runuser -u postgres -- postgres --single -D "$PGDATA" -c listen_addresses= postgres >/dev/null
    fi
  fi
  # setpriv execs (runuser would stay as PID 1 and not pass the stop signal on).
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$@"
fi
exec "$@"
