#!/usr/bin/env bash
# Install what the tests need (SIPp, Kamailio, Chromium, Redis from Debian, the npm packages) and run every test.
# This is the README's test command and what .ci/run runs.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages the interop tests drive. Each is checked after install: a missing peer fails here, loudly.
need_pkgs=()
command -v sipp >/dev/null 2>&1 || need_pkgs+=(sip-tester)
command -v kamailio >/dev/null 2>&1 || need_pkgs+=(kamailio)
for p in kamailio-presence-modules kamailio-sqlite-modules; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need_pkgs+=("$p")
done
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
command -v docker-compose >/dev/null 2>&1 || need_pkgs+=(docker-compose)
command -v sqlite3 >/dev/null 2>&1 || need_pkgs+=(sqlite3)
command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${need_pkgs[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}"
fi
command -v sipp >/dev/null 2>&1 || { echo "sipp is still missing after installing sip-tester" >&2; exit 1; }
command -v kamailio >/dev/null 2>&1 || { echo "kamailio is still missing after installing kamailio" >&2; exit 1; }
ls /usr/lib/*/kamailio/modules/presence_dialoginfo.so /usr/lib/*/kamailio/modules/db_sqlite.so >/dev/null 2>&1 \
  || { echo "Kamailio presence/SQLite modules missing after installing kamailio-presence-modules kamailio-sqlite-modules" >&2; exit 1; }
[ -f /usr/share/kamailio/db_sqlite/presence-create.sql ] \
  || { echo "Kamailio's SQLite schema (/usr/share/kamailio/db_sqlite) is missing" >&2; exit 1; }
[ -x /usr/bin/chromium ] || { echo "chromium is still missing after installing chromium" >&2; exit 1; }
command -v docker-compose >/dev/null 2>&1 || { echo "docker-compose is still missing after installing docker-compose" >&2; exit 1; }
command -v sqlite3 >/dev/null 2>&1 || { echo "sqlite3 is still missing after installing sqlite3" >&2; exit 1; }
[ -x /usr/bin/redis-server ] || { echo "redis-server is still missing after installing redis-server" >&2; exit 1; }

npm ci --no-audit --no-fund
# tap ships built with its TypeScript plugin (ts-node); package.json turns it off for tsx, which takes
# effect only once tap's test class is rebuilt: without this every test process loads both loaders.
npx tap build
npm run typecheck

log=$(mktemp)
status=0
npx tap "$@" 2>&1 | tee "$log" || status=$?
# Print the plain closing line CI reads: "N passed, N failed".
summary=$(grep -E '^# \{ total: ' "$log" | tail -n 1 || true)
pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")
fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary")
rm -f "$log"
echo "${pass:-0} passed, ${fail:-0} failed"
if [ -z "$summary" ] && [ "$status" -eq 0 ]; then echo "tap printed no summary" >&2; exit 1; fi
exit "$status"
