#!/usr/bin/env bash
# CPU seconds each process spends on one -L transfer, warren vs OpenSSH's
# ssh through the same throwaway sshd (bench/lib/sshd.sh), aes256-gcm:
# where each direction's time goes, which process bounds it, and what the
# client's window costs the server. Per-process CPU comes from
# /proc/PID/stat (utime+stime), sshd's summed over the listener's
# descendants. "sshd busy" is sshd's CPU time over the transfer's wall
# time: near 100% means sshd's one process is the bound, whatever the
# client does.
#
#   cargo build --profile profiling --locked -p warren
#   bench/forward-cpu.sh                  # 1 GB down and up, 3 rounds
#   ROUNDS=5 BYTES=2000000000 DIRECTIONS=down WINDOWS="auto 2M 64M" bench/forward-cpu.sh
#
# DIRECTIONS: "down" (sshd sends to the client), "up" (the client sends).
# WINDOWS: "auto" is warren's default (windows sized to the path); a size
# pins the window through WARREN_WINDOW. Pause other work first: on a
# shared 2-CPU machine the throughput column moves with the load, the
# CPU columns much less.
#
# The profiling profile is the release build with symbols and line tables
# (the release binary is stripped), so the same binary can be looked into:
#   perf record --call-graph dwarf -p "$(pgrep -n -f target/profiling/warren)"
set -euo pipefail
cd "$(dirname "$0")/.."
WARREN=${WARREN:-target/profiling/warren}
BYTES=${BYTES:-1000000000}
ROUNDS=${ROUNDS:-3}
WINDOWS=${WINDOWS:-auto}
DIRECTIONS=${DIRECTIONS:-down up}
[ -x "$WARREN" ] || { echo "build first: cargo build --profile profiling --locked -p warren" >&2; exit 1; }
command -v bc >/dev/null || { echo "needs bc (apt-get install bc)" >&2; exit 1; }
mkdir -p /run/sshd
D=$(mktemp -d)
PIDS=()
cleanup() {
  kill "${PIDS[@]}" 2>/dev/null || true
  [ -s $D/pid ] && kill "$(cat $D/pid)" 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT
. bench/lib/sshd.sh
start_sshd $D "AllowTcpForwarding yes" "  ControlMaster no
  ControlPath none"
python3 bench/forward/peer.py serve $D/peer.port > /dev/null 2>&1 &
PEER=$!
PIDS+=($PEER)
for _ in $(seq 100); do [ -s $D/peer.port ] && break; sleep 0.1; done
FAR=$(cat $D/peer.port)

ticks() { awk '{print $14 + $15}' /proc/$1/stat 2>/dev/null || echo 0; }
descendants() { local p; for p in $(pgrep -P "$1" || true); do echo "$p"; descendants "$p"; done; }
sshd_ticks() { local t=0 p; for p in $(descendants "$(cat $D/pid)"); do t=$((t + $(ticks $p))); done; echo $t; }
secs() { echo "scale=2; $1 / $(getconf CLK_TCK)" | bc; }

# one DIRECTION NAME CMD...: one transfer through `CMD -N -L`; prints a row
one() {
  local dir=$1 name=$2; shift 2
  local lp; lp=$(freeport)
  "$@" -F $D/ssh_config -c aes256-gcm@openssh.com -N -L $lp:127.0.0.1:$FAR bench &
  local client=$!
  PIDS+=($client)
  for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1',$lp))" 2>/dev/null && break
    sleep 0.05
  done
  sleep 0.2
  local s0 c0 p0 s1 c1 p1 out
  s0=$(sshd_ticks); c0=$(ticks $client); p0=$(ticks $PEER)
  out=$(python3 bench/forward/peer.py $dir 127.0.0.1 $lp $BYTES)
  s1=$(sshd_ticks); c1=$(ticks $client); p1=$(ticks $PEER)
  printf "| %s | %s | %.1f MB/s | %s | %.0f%% | %s | %s |\n" "$dir" "$name" \
    "$(echo "$BYTES / ${out%% *} / 1000000" | bc -l)" \
    "$(secs $((s1 - s0)))" "$(echo "100 * $(secs $((s1 - s0))) / ${out%% *}" | bc -l)" \
    "$(secs $((c1 - c0)))" "$(secs $((p1 - p0)))"
  kill $client; wait $client 2>/dev/null || true
}

echo "| direction | client | throughput | sshd CPU s | sshd busy | client CPU s | peer.py CPU s |"
echo "|---|---|---|---|---|---|---|"
for _ in $(seq $ROUNDS); do
  for d in $DIRECTIONS; do
    for w in $WINDOWS; do
      if [ "$w" = auto ]; then one $d "warren" $WARREN ssh
      else WARREN_WINDOW=$w one $d "warren, window $w" $WARREN ssh; fi
    done
    one $d "OpenSSH" ssh
  done
done
echo
echo "$BYTES bytes per run; load average $(cut -d' ' -f1-3 /proc/loadavg)"
