#!/usr/bin/env bash
# A local PostgreSQL for the tests of the app's PostgreSQL store: Debian's server package, its
# default cluster started, and a role `app` (password `app`, may create databases) owning
# `app_test`. Idempotent. Prints the URL the tests use (TEST_POSTGRES_URL).
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null; then
  [ "$(id -u)" -eq 0 ] || { echo "ensure-postgres: need root to install postgresql" >&2; exit 1; }
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
pg_lsclusters -h | grep -q "^$version main" || pg_createcluster "$version" main >/dev/null
pg_lsclusters -h | grep "^$version main" | grep -q online || pg_ctlcluster "$version" main start
for _ in $(seq 50); do su postgres -c "psql -qtAc 'select 1'" >/dev/null 2>&1 && break; sleep 0.2; done
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname = 'app'\"" | grep -q 1 \
  || su postgres -c "psql -qc \"CREATE ROLE app LOGIN CREATEDB PASSWORD 'app'\""
su postgres -c "psql -qc \"ALTER ROLE app CREATEDB\"" >/dev/null
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname = 'app_test'\"" | grep -q 1 \
  || su postgres -c "psql -qc \"CREATE DATABASE app_test OWNER app\""
echo "postgres://app:app@127.0.0.1:5432/app_test"
