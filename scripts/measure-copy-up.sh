#!/usr/bin/env bash
# Copy-up writes, cold: 4 fio clients (fio --ioengine=nbd, random 4 KiB writes, QD32) into 4
# fresh clones of one 1 GiB vdisk, after `sync` and drop_caches, for RUNTIME seconds. Every
# write into a block a clone does not own yet copies the whole 64 KiB block up first.
# Prints fio's aggregate IOPS, the agent's CPU (all threads, and its event loop thread alone)
# and how busy the host's CPUs were, for each run, then the medians.
#
# usage: scripts/measure-copy-up.sh [RUNS=3] [RUNTIME=6] [OTHER_CHECKOUT] [--qemu]
#   OTHER_CHECKOUT: another built checkout (a git worktree): run alternately with this one.
#   --qemu: also qemu-nbd --aio=threads and --aio=io_uring on 4 qcow2 overlays of one qcow2 base.
# Needs root (drop_caches), fio with its nbd engine, qemu-img/qemu-nbd for --qemu.
set -euo pipefail
RUNS=${1:-3}
RUNTIME=${2:-6}
OTHER=${3:-}
QEMU=0
for a in "$@"; do [ "$a" = --qemu ] && QEMU=1; done
[ "$OTHER" = --qemu ] && OTHER=
HERE=$(cd "$(dirname "$0")/.." && pwd)
[ -w /proc/sys/vm/drop_caches ] || { echo "needs root: writes /proc/sys/vm/drop_caches" >&2; exit 2; }
(cd "$HERE" && npm run --silent build)
RESULTS=$(mktemp)
trap 'rm -f "$RESULTS"' EXIT

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

# CPU ticks: process (all threads), its main thread, host busy, host total; then the wall clock.
snapshot() {
  local pid=$1 p m u n s i w q sq st
  p=$(awk '{print $14+$15}' "/proc/$pid/stat")
  m=$(awk '{print $14+$15}' "/proc/$pid/task/$pid/stat")
  read -r _ u n s i w q sq st _ < /proc/stat
  echo "$p $m $((u + n + s + q + sq + st)) $((u + n + s + i + w + q + sq + st)) $(date +%s.%N)"
}

# fio's IOPS, then "agent% loop% host%" from two snapshots of `pid` (0: host only).
run_fio() {
  local pid=$1; shift
  local before after iops
  before=$(snapshot "${pid/#0/$$}")
  iops=$(fio --ioengine=nbd --rw=randwrite --bs=4k --iodepth=32 --time_based --runtime="$RUNTIME" \
    --group_reporting --output-format=terse "$@" 2>/dev/null | awk -F';' '$49 > 0 {print $49}')
  after=$(snapshot "${pid/#0/$$}")
  echo "$before $after" | awk -v iops="$iops" -v own="$pid" '{
    wall = $10 - $5; hz = 100
    agent = own == 0 ? 0 : ($6 - $1) / hz / wall * 100
    loop = own == 0 ? 0 : ($7 - $2) / hz / wall * 100
    printf "%d %.0f %.0f %.0f\n", iops, agent, loop, 100 * ($8 - $3) / ($9 - $4)
  }'
}

snapsync_run() {
  local root=$1 dir port pid
  dir=$(mktemp -d /tmp/snapsync-copy-up.XXXXXX)
  "$root/bin/snapsync-agent" init --pool "$dir/pool" --capacity 12G > /dev/null
  port=$((20000 + RANDOM % 20000))
  "$root/bin/snapsync-agent" serve --pool "$dir/pool" --listen "127.0.0.1:$port" --insecure-no-auth \
    --nbd "unix:$dir/nbd.sock" > "$dir/agent.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do [ -S "$dir/nbd.sock" ] && break; sleep 0.1; done
  local cli=("$root/bin/snapsync-agent") url=(--url "ws://127.0.0.1:$port")
  "${cli[@]}" create base --type vdisk --size 1G "${url[@]}" > /dev/null
  fio --name=fill --ioengine=nbd --uri="nbd+unix:///base?socket=$dir/nbd.sock" --rw=write --bs=1m \
    --iodepth=8 --size=1G > /dev/null
  "${cli[@]}" snapshot base s1 "${url[@]}" > /dev/null
  local clients=()
  for i in 1 2 3 4; do
    "${cli[@]}" clone base@s1 "c$i" "${url[@]}" > /dev/null
    clients+=("--name=c$i" "--uri=nbd+unix:///c$i?socket=$dir/nbd.sock")
  done
  drop_caches
  run_fio "$pid" "${clients[@]}"
  kill -INT "$pid"
  wait "$pid" 2> /dev/null || true
  rm -rf "$dir"
}

qemu_run() {
  local aio=$1 dir pids=() clients=()
  dir=$(mktemp -d /tmp/snapsync-copy-up-qemu.XXXXXX)
  qemu-img create -q -f qcow2 "$dir/base.qcow2" 1G
  qemu-nbd --persistent --socket="$dir/base.sock" -f qcow2 --aio="$aio" "$dir/base.qcow2" &
  local base=$!
  for _ in $(seq 100); do [ -S "$dir/base.sock" ] && break; sleep 0.1; done
  fio --name=fill --ioengine=nbd --uri="nbd+unix:///?socket=$dir/base.sock" --rw=write --bs=1m \
    --iodepth=8 --size=1G > /dev/null
  kill "$base"
  wait "$base" 2> /dev/null || true
  for i in 1 2 3 4; do
    qemu-img create -q -f qcow2 -b "$dir/base.qcow2" -F qcow2 "$dir/c$i.qcow2"
    qemu-nbd --persistent --socket="$dir/c$i.sock" -f qcow2 --aio="$aio" "$dir/c$i.qcow2" &
    pids+=($!)
    clients+=("--name=c$i" "--uri=nbd+unix:///?socket=$dir/c$i.sock")
  done
  for i in 1 2 3 4; do for _ in $(seq 100); do [ -S "$dir/c$i.sock" ] && break; sleep 0.1; done; done
  drop_caches
  run_fio 0 "${clients[@]}"
  kill "${pids[@]}"
  wait "${pids[@]}" 2> /dev/null || true
  rm -rf "$dir"
}

record() {
  local label=$1 line
  line=$(cat)
  echo "$label $line" >> "$RESULTS"
  echo "$line" | awk -v l="$label" '{printf "%-28s %6d IOPS  agent CPU %3d%% (event loop %3d%%)  host busy %3d%%\n", l, $1, $2, $3, $4}'
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs"
for r in $(seq "$RUNS"); do
  snapsync_run "$HERE" | record "this"
  if [ -n "$OTHER" ]; then snapsync_run "$OTHER" | record "other"; fi
  if [ "$QEMU" = 1 ]; then
    qemu_run threads | record "qemu-nbd--aio=threads"
    qemu_run io_uring | record "qemu-nbd--aio=io_uring"
  fi
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "medians (IOPS, agent CPU-µs per write):"
awk '{n[$1]++; v[$1, n[$1]] = $2; c[$1, n[$1]] = $2 > 0 ? $3 * 1e4 / $2 : 0}
  function median(k, arr,   i, j, t, a, m) {
    m = n[k]; for (i = 1; i <= m; i++) a[i] = arr[k, i]
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
  }
  END { for (k in n) printf "  %-28s %6d IOPS  %5.1f µs\n", k, median(k, v), median(k, c) }' "$RESULTS"
