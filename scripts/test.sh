#!/usr/bin/env bash
# Install what the tests need (SIPp from Debian's sip-tester, the npm packages) and run every test.
# This is the README's test command and what .ci/run runs.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages the interop tests drive. Each is checked after install: a missing peer fails here, loudly.
need_pkgs=()
command -v sipp >/dev/null 2>&1 || need_pkgs+=(sip-tester)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${need_pkgs[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}"
fi
command -v sipp >/dev/null 2>&1 || { echo "sipp is still missing after installing sip-tester" >&2; exit 1; }

npm ci --no-audit --no-fund
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
