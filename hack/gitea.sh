#!/usr/bin/env bash
# Starts or stops a real Gitea (sqlite) on a free loopback port, with its whole state in DIR and
# a fresh admin user. Tests start one per package through test/testenv (testenv.Gitea).
#
#   hack/gitea.sh up DIR     build Gitea if missing, start it, create the admin user, wait until it
#                            answers, write DIR/gitea.env (GITEA_URL, GITEA_USER, GITEA_PASSWORD)
#                            and print GITEA_URL and GITEA_USER as `export` lines (the password
#                            stays in the file: `source DIR/gitea.env`)
#   hack/gitea.sh down DIR   stop it (idempotent)
#
# DIR holds app.ini, data/, repositories/, logs/gitea.log and run/gitea.pid. `up` on a running
# DIR does nothing; otherwise it starts a fresh Gitea. Webhooks may target loopback addresses.
set -euo pipefail

HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_NAME=gitea
SELF=$HACK/gitea.sh
# shellcheck source-path=SCRIPTDIR source=cluster/lib.sh
source "$HACK/cluster/lib.sh"

usage() { echo "usage: $0 up|down DIR" >&2; exit 2; }

gitea() { "$BIN/gitea" --work-path "$DIR" --config "$DIR/app.ini" "$@"; }

running() {
  ours "$(pid_of gitea)" && [ -f "$DIR/gitea.env" ] &&
    curl -sf --max-time 2 "$(sed -n 's/^GITEA_URL=//p' "$DIR/gitea.env")/api/v1/version" >/dev/null
}

print_env() {
  sed -n 's/^GITEA_URL=/export GITEA_URL=/p; s/^GITEA_USER=/export GITEA_USER=/p' "$DIR/gitea.env"
  log "Gitea in $DIR is up: $(sed -n 's/^GITEA_URL=//p' "$DIR/gitea.env"), password in $DIR/gitea.env"
}

up() {
  BIN=$("$HACK/build-binaries.sh" gitea)
  if running; then
    print_env
    return
  fi
  down
  local begin=$SECONDS
  cd "$DIR"
  # Only what this script creates is removed: DIR may hold other things.
  rm -rf "$DIR/app.ini" "$DIR/data" "$DIR/repositories" "$DIR/logs" "$DIR/run" "$DIR/custom" \
    "$DIR/options" "$DIR/templates" "$DIR/gitea.env"
  mkdir -p "$DIR/logs" "$DIR/run"
  # Gitea built without bindata reads these from its work path.
  cp -r "$BIN/options" "$BIN/templates" "$DIR/"
  chmod -R u+w "$DIR/options" "$DIR/templates"

  local port user=kudod-admin password
  port=$(free_ports 1)
  password=$(openssl rand -hex 16)
  cat >"$DIR/app.ini" <<EOF
APP_NAME = kudod test Gitea
RUN_MODE = prod
RUN_USER = $(id -un)
I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true
WORK_PATH = $DIR

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = $port
DOMAIN = 127.0.0.1
ROOT_URL = http://127.0.0.1:$port/
DISABLE_SSH = true
OFFLINE_MODE = true
LFS_START_SERVER = false
APP_DATA_PATH = $DIR/data

[database]
DB_TYPE = sqlite3
PATH = $DIR/data/gitea.db
SQLITE_JOURNAL_MODE = WAL

[security]
INSTALL_LOCK = true
SECRET_KEY = $(openssl rand -hex 32)
INTERNAL_TOKEN = $(openssl rand -hex 48)
# Tests authenticate every API call with the password: keep its hash cheap.
PASSWORD_HASH_ALGO = pbkdf2\$1000\$32

[oauth2]
ENABLED = false

[repository]
ROOT = $DIR/repositories
DEFAULT_BRANCH = main

[service]
DISABLE_REGISTRATION = true
REQUIRE_SIGNIN_VIEW = false

[webhook]
ALLOWED_HOST_LIST = loopback
DELIVER_TIMEOUT = 10

[queue]
TYPE = channel

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[mailer]
ENABLED = false

[actions]
ENABLED = false

[packages]
ENABLED = false

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[cron]
ENABLED = false

[log]
MODE = console
LEVEL = warn
EOF
  chmod 600 "$DIR/app.ini"

  gitea migrate >"$DIR/logs/migrate.log" 2>&1 || fail migrate "database migration failed"
  gitea admin user create --username "$user" --password "$password" --email "$user@example.invalid" \
    --admin --must-change-password=false >"$DIR/logs/admin.log" 2>&1 || fail admin "could not create the admin user"
  start gitea "$BIN/gitea" --work-path "$DIR" --config "$DIR/app.ini" web --port "$port"
  await gitea 60 curl -sf --max-time 2 "http://127.0.0.1:$port/api/v1/version"

  umask 077
  cat >"$DIR/gitea.env" <<EOF
GITEA_URL=http://127.0.0.1:$port
GITEA_USER=$user
GITEA_PASSWORD=$password
EOF
  log "ready in $((SECONDS - begin))s"
  print_env
}

down() {
  stop gitea
}

[ $# -eq 2 ] || usage
[ "$1" = down ] && [ ! -d "$2" ] && exit 0
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
case $1 in
  up) up ;;
  down) down ;;
  *) usage ;;
esac
