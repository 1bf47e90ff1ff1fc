#!/bin/sh
# Runs once, when the PostgreSQL container starts on an empty data directory, as the superuser
# (docker-entrypoint-initdb.d). It makes the two roles the system runs as, from Docker secrets:
#   bwv_owner  owns the database and its schema: runs `migrate`, then grants bwv_app its rights
#              (manage.py db_grant_app_role); used by the migrate service only;
#   bwv_app    web, worker and beat: reads and writes rows, appends to the audit log, and can
#              neither change the schema nor switch off or get round the audit log's trigger.
# The superuser itself is used by nobody after this.
set -eu

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v owner_password="$(cat /run/secrets/db_owner_password)" \
    -v app_password="$(cat /run/secrets/db_app_password)" <<'SQL'
CREATE ROLE bwv_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
CREATE ROLE bwv_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD :'app_password';
ALTER DATABASE :"DBNAME" OWNER TO bwv_owner;
ALTER SCHEMA public OWNER TO bwv_owner;
REVOKE ALL ON DATABASE :"DBNAME" FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT CONNECT ON DATABASE :"DBNAME" TO bwv_app;
SQL
