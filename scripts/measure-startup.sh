#!/usr/bin/env bash
# Whole-process start-up of the agent CLI, alternated with its peer (farm-bench --vs):
#   snapsync-agent --version        vs  qemu-img --version
#   snapsync-agent sync T S@snap    vs  qemu-img create -f qcow2 -b base.qcow2 (a new overlay: its "sync")
# The sync runs against an idle agent on a scratch pool (its own process, loopback, no token).
# Usage: bash scripts/measure-startup.sh [RUNS]   (default 10; needs farm-bench and qemu-img)
set -euo pipefail
runs="${1:-10}"
root="$(cd "$(dirname "$0")/.." && pwd)"
agent="$root/bin/snapsync-agent"
work="$(mktemp -d)"
cleanup() {
  [ -n "${serve_pid:-}" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

npm --prefix "$root" run --silent build >/dev/null
uptime
"$agent" init --pool "$work/pool" >/dev/null
"$agent" serve --pool "$work/pool" --listen 127.0.0.1:0 --insecure-no-auth >"$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 100); do
  url="$(grep -o 'ws://127.0.0.1:[0-9]*' "$work/serve.log" | head -1 || true)"
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$work/serve.log"; exit 1; }
export SNAPSYNC_URL="$url"
"$agent" create prod --type vdisk --size 1G >/dev/null
"$agent" create staging --type vdisk --size 1G >/dev/null
"$agent" snapshot prod nightly >/dev/null
qemu-img create -q -f qcow2 "$work/base.qcow2" 1G

echo "== --version"
farm-bench -n "$runs" --vs 'qemu-img --version' -- "$agent" --version
echo "== sync (CLI, whole process, against a running agent)"
cd "$work"
farm-bench -n "$runs" --vs "sh -c 'rm -f o.qcow2; exec qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 o.qcow2'" \
  -- "$agent" sync staging prod@nightly
uptime
