#!/usr/bin/env bash
# Creates the role `migex` and one database per node (migex_kz, migex_kg, migex_uz,
# migex_tj), each owned by that role. The postgres image runs this once, when its data
# volume is empty (from /docker-entrypoint-initdb.d/); later starts do not run it.
#
# The role's password comes from MIGEX_DB_PASSWORD. psql reads it with \getenv, so it
# never appears on a command line. The nodes authenticate with the same value (PGPASSWORD).
set -e

if [ -z "${MIGEX_DB_PASSWORD:-}" ]; then
  echo "init: MIGEX_DB_PASSWORD is empty; refusing to create the migex role without a password" >&2
  exit 1
fi

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" <<'SQL'
\getenv migex_password MIGEX_DB_PASSWORD
CREATE ROLE migex LOGIN PASSWORD :'migex_password';
CREATE DATABASE migex_kz OWNER migex;
CREATE DATABASE migex_kg OWNER migex;
CREATE DATABASE migex_uz OWNER migex;
CREATE DATABASE migex_tj OWNER migex;
-- Only the owner (and superusers) may connect to a node's database.
REVOKE CONNECT, TEMPORARY ON DATABASE migex_kz, migex_kg, migex_uz, migex_tj FROM PUBLIC;
SQL
