#!/usr/bin/env bash
# Port forwarding side by side: warren ssh vs OpenSSH's ssh, both tunnelling
# through the same throwaway sshd on 127.0.0.1 with the same cipher, runs
# alternating between the two clients. The far end of every tunnel is
# bench/forward/peer.py (a source / sink / echo server on loopback).
#
#   cargo build --release --locked -p warren -p warren-testkit
#   bench/forward.sh          # full run, ~8-9 min on 2 CPUs
#   bench/forward.sh quick    # (or QUICK=1) smaller sizes, 1 round, ~2 min
#
# Knobs (env): ROUNDS, BYTES (single-stream size), WAN_BYTES, PINGS,
# SETUPS, CONNS. Each figure is the median over ROUNDS alternating runs
# (per-run figures go to stderr); the ratio column is always "> 1: warren
# is better" (throughput warren/ssh; times and memory ssh/warren). The last
# line gives the load average and the share of CPU time the hypervisor
# stole during the run: on a shared VM that is the first thing to check.
set -euo pipefail
cd "$(dirname "$0")/.."
WARREN=${WARREN:-target/release/warren}
DELAY=${DELAY:-target/release/warren-delay-proxy}
PEER=bench/forward/peer.py
[ -x "$WARREN" ] && [ -x "$DELAY" ] || {
  echo "build first: cargo build --release --locked -p warren -p warren-testkit" >&2; exit 1; }
[ -x /usr/sbin/sshd ] || { echo "needs openssh-server (scripts/test installs it)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "needs python3" >&2; exit 1; }
command -v bc >/dev/null || { echo "needs bc (apt-get install bc)" >&2; exit 1; }
mkdir -p /run/sshd

if [ "${1:-}" = quick ] || [ "${QUICK:-0}" = 1 ]; then
  ROUNDS=${ROUNDS:-1} BYTES=${BYTES:-200000000} WAN_BYTES=${WAN_BYTES:-50000000}
  PINGS=${PINGS:-500} SETUPS=${SETUPS:-3} CONNS=${CONNS:-200}
else
  ROUNDS=${ROUNDS:-5} BYTES=${BYTES:-1000000000} WAN_BYTES=${WAN_BYTES:-200000000}
  PINGS=${PINGS:-2000} SETUPS=${SETUPS:-10} CONNS=${CONNS:-200}
fi
PAR=4                     # parallel streams through one -L
PAR_BYTES=$((BYTES / PAR)) # so the aggregate moves BYTES
ECHO_BYTES=65536          # per concurrent connection
AES=aes256-gcm@openssh.com
CHACHA=chacha20-poly1305@openssh.com

D=$(mktemp -d)
cleanup() {
  local p
  # Everything started in the background is listed in $D/pids; setup runs
  # spawn their client from peer.py, which leaves its pid in $D/setup.pid.
  for p in $(cat $D/pids $D/setup.pid $D/pid 2>/dev/null); do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in $(cat $D/pids $D/setup.pid 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
: > $D/pids

# spawn NAME CMD...: runs CMD in the background (logs in $D/NAME.*); sets LASTPID
spawn() {
  local name=$1; shift
  "$@" < /dev/null > $D/$name.out 2> $D/$name.log &
  LASTPID=$!
  echo $LASTPID >> $D/pids
}
# stop PID: ends a process spawned here and forgets it
stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  grep -vx "$1" $D/pids > $D/pids.new || true
  mv $D/pids.new $D/pids
}
die() { echo "FAIL: $*" >&2; exit 1; }

# ---------------------------------------------------------------- sshd
. bench/lib/sshd.sh
start_sshd $D "AllowTcpForwarding yes
GatewayPorts no
MaxStartups 100" "  ExitOnForwardFailure yes
  ControlMaster no
  ControlPath none" || die "sshd did not start"
known() { echo "[127.0.0.1]:$1 $(cut -d' ' -f1,2 $D/host.pub)" >> $D/known_hosts; }

# ---------------------------------------------------------------- far end
spawn peer python3 $PEER serve $D/peer.port
for _ in $(seq 50); do [ -s $D/peer.port ] && break; sleep 0.1; done
[ -s $D/peer.port ] || die "peer.py serve did not start: $(cat $D/peer.log)"
FAR=$(cat $D/peer.port)

W=("$WARREN" ssh -F $D/ssh_config)
S=(ssh -F $D/ssh_config)
client() { if [ "$1" = w ]; then echo "${W[@]}"; else echo "${S[@]}"; fi; }

# ready PID PORT [socks]: waits (max 15 s) until PORT accepts connections
# and, unless socks, echoes a byte through the tunnel.
ready() {
  local pid=$1 port=$2 mode=${3:-echo}
  python3 - "$port" "$mode" <<'EOP' || { echo "client log:" >&2; cat $D/*.log >&2; kill -0 $pid 2>/dev/null || echo "(client $pid exited)" >&2; die "tunnel on port $port never became ready"; }
import socket, sys, time
port, mode = int(sys.argv[1]), sys.argv[2]
end = time.time() + 15
while time.time() < end:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if mode == "socks":
            sys.exit(0)
        s.sendall(b"E!")
        if s.recv(1) == b"!":
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.02)
sys.exit(1)
EOP
}

median() { python3 -c 'import sys; v=sorted(float(x) for x in sys.argv[1:]); print(v[len(v)//2] if len(v)%2 else (v[len(v)//2-1]+v[len(v)//2])/2)' "$@"; }
# row NAME KIND WARREN OPENSSH; KIND: mbs (higher better), us/ms/mib (lower better)
row() {
  python3 - "$@" <<'EOP'
import sys
name, kind, w, s = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
fmt = {"mbs": "%.1f MB/s", "us": "%.0f µs", "ms": "%.1f ms", "mib": "%.1f MiB", "s": "%.2f s"}[kind]
ratio = (w / s) if kind == "mbs" else (s / w)
print(f"| {name} | {fmt % w} | {fmt % s} | {ratio:.2f}x |")
EOP
}
order() { if [ $(($1 % 2)) -eq 0 ]; then echo "w s"; else echo "s w"; fi; }

# ---------------------------------------------------------------- tunnels
# One long-lived tunnel per (client, cipher): -L to the far end; the AES
# one also carries -R (sshd listens) and -D (SOCKS).
declare -A LPORT RPORT DPORT PID
for c in w s; do
  for cipher in aes chacha; do
    k=$c-$cipher
    LPORT[$k]=$(freeport)
    args=(-N -L ${LPORT[$k]}:127.0.0.1:$FAR)
    if [ $cipher = aes ]; then
      RPORT[$k]=$(freeport); DPORT[$k]=$(freeport)
      args+=(-R ${RPORT[$k]}:127.0.0.1:$FAR -D 127.0.0.1:${DPORT[$k]})
      ciph=$AES
    else
      ciph=$CHACHA
    fi
    spawn tunnel-$k $(client $c) -c $ciph "${args[@]}" bench
    PID[$k]=$LASTPID
    ready ${PID[$k]} ${LPORT[$k]}
    if [ $cipher = aes ]; then ready ${PID[$k]} ${RPORT[$k]}; ready ${PID[$k]} ${DPORT[$k]} socks; fi
  done
done

# cpu jiffies "total steal" from /proc/stat
cpustat() { awk '/^cpu /{t=0; for (i=2;i<=9;i++) t+=$i; print t, $9}' /proc/stat; }
START=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
read -r CPU0 STEAL0 <<< "$(cpustat)"
echo "warren $("$WARREN" ssh -V 2>&1 | head -1); $(ssh -V 2>&1); $(nproc) CPUs;" \
  "median of $ROUNDS alternating runs; ratio > 1: warren better"
echo
echo "| figure | warren | OpenSSH | ratio |"
echo "|---|---|---|---|"

# thr NAME KEY-SUFFIX PEER-ARGS...: single/multi-stream throughput row
# (PEER-ARGS gets the port appended via the placeholder PORT_W / PORT_S)
thr() {
  local name=$1 port_var=$2 cipher=$3; shift 3
  local -a tw=() ts=()
  local r c out port bytes
  for r in $(seq $ROUNDS); do
    for c in $(order $r); do
      eval "port=\${$port_var[$c-$cipher]}"
      out=$(python3 $PEER "${@//PORT/$port}") || die "$name ($c): peer.py ${*//PORT/$port} failed"
      bytes=${out#* }
      if [ $c = w ]; then tw+=(${out% *}); else ts+=(${out% *}); fi
    done
  done
  echo "raw seconds, $name: warren ${tw[*]}; OpenSSH ${ts[*]}" >&2
  row "$name" mbs "$(echo "$bytes / $(median "${tw[@]}") / 1000000" | bc -l)" \
                  "$(echo "$bytes / $(median "${ts[@]}") / 1000000" | bc -l)"
}
MB=$((BYTES / 1000000))
for cipher in aes chacha; do
  [ $cipher = aes ] && cn=aes256-gcm || cn=chacha20-poly1305
  thr "-L download $MB MB, sshd→client ($cn)" LPORT $cipher down 127.0.0.1 PORT $BYTES
  thr "-L upload $MB MB, client→sshd ($cn)" LPORT $cipher up 127.0.0.1 PORT $BYTES
done
thr "-R, far end sends $MB MB: client→sshd (aes256-gcm)" RPORT aes down 127.0.0.1 PORT $BYTES
thr "-R, far end receives $MB MB: sshd→client (aes256-gcm)" RPORT aes up 127.0.0.1 PORT $BYTES
thr "-D SOCKS5 download $MB MB, sshd→client (aes256-gcm)" DPORT aes down 127.0.0.1 PORT $BYTES --socks 127.0.0.1 $FAR
thr "-L $PAR parallel downloads, aggregate $MB MB (aes256-gcm)" LPORT aes down 127.0.0.1 PORT $PAR_BYTES --streams $PAR

# ---------------------------------------------------------------- latency
declare -a mw=() ms=() pw=() ps=()
for r in $(seq $ROUNDS); do
  for c in $(order $r); do
    out=$(python3 $PEER ping 127.0.0.1 ${LPORT[$c-aes]} $PINGS) || die "ping ($c) failed"
    if [ $c = w ]; then mw+=(${out% *}); pw+=(${out#* }); else ms+=(${out% *}); ps+=(${out#* }); fi
  done
done
echo "raw µs, round trip median: warren ${mw[*]}; OpenSSH ${ms[*]}; p99: warren ${pw[*]}; OpenSSH ${ps[*]}" >&2
row "-L 1-byte round trip, median of $PINGS (aes256-gcm)" us "$(median "${mw[@]}")" "$(median "${ms[@]}")"
row "-L 1-byte round trip, p99 of $PINGS (aes256-gcm)" us "$(median "${pw[@]}")" "$(median "${ps[@]}")"

# The long-lived tunnels are done: stop them so they don't share the CPU.
for k in "${!PID[@]}"; do stop ${PID[$k]}; done

# ---------------------------------------------------------------- setup time
declare -a sw=() ss=()
for r in $(seq $SETUPS); do
  for c in $(order $r); do
    p=$(freeport)
    out=$(python3 $PEER setup $p $D/setup.pid -- $(client $c) -c $AES -N -L $p:127.0.0.1:$FAR bench) \
      || die "setup ($c) failed"
    if [ $c = w ]; then sw+=($out); else ss+=($out); fi
  done
done
echo "raw seconds, setup: warren ${sw[*]}; OpenSSH ${ss[*]}" >&2
row "start client → first byte echoed through -L, median of $SETUPS" ms \
  "$(echo "$(median "${sw[@]}") * 1000" | bc -l)" "$(echo "$(median "${ss[@]}") * 1000" | bc -l)"

# ---------------------------------------------------------------- concurrency + RSS
# A fresh client per round: RSS idle (tunnel up, one echo done, 0.5 s
# settle), then CONNS concurrent connections each echoing 64 KiB.
declare -a tw=() ts=() iw=() is=() ow=() os=() xw=() xs=()
FAILW=0 FAILS=0
for r in $(seq $ROUNDS); do
  for c in $(order $r); do
    p=$(freeport)
    spawn many-$c-$r $(client $c) -c $AES -N -L $p:127.0.0.1:$FAR bench
    pid=$LASTPID
    ready $pid $p
    sleep 0.5
    idle=$(python3 $PEER rss $pid)
    out=$(python3 $PEER many 127.0.0.1 $p $CONNS $ECHO_BYTES $pid 2> $D/many-$c-$r.err) \
      || die "many ($c) failed: $(cat $D/many-$c-$r.err)"
    read -r t f ro rx <<< "$out"
    if [ "$f" -gt 0 ]; then echo "($c round $r: $f failed connections:)" >&2; head -5 $D/many-$c-$r.err >&2; fi
    kill -0 $pid 2>/dev/null || echo "($c round $r: client exited during the concurrency test)" >&2
    stop $pid
    if [ $c = w ]; then tw+=($t); iw+=($idle); ow+=($ro); xw+=($rx); FAILW=$((FAILW + f))
    else ts+=($t); is+=($idle); os+=($ro); xs+=($rx); FAILS=$((FAILS + f)); fi
  done
done
echo "raw seconds, $CONNS conns: warren ${tw[*]}; OpenSSH ${ts[*]}" >&2
row "$CONNS concurrent conns × 64 KiB echo through -L, total time" ms \
  "$(echo "$(median "${tw[@]}") * 1000" | bc -l)" "$(echo "$(median "${ts[@]}") * 1000" | bc -l)"
echo "| $CONNS concurrent conns: failed connections (all $ROUNDS runs) | $FAILW | $FAILS | |"
row "client RSS idle, tunnel up (VmRSS)" mib "$(echo "$(median "${iw[@]}") / 1024" | bc -l)" "$(echo "$(median "${is[@]}") / 1024" | bc -l)"
row "client RSS with $CONNS connections open" mib "$(echo "$(median "${ow[@]}") / 1024" | bc -l)" "$(echo "$(median "${os[@]}") / 1024" | bc -l)"
row "client RSS peak during the $CONNS-connection test" mib "$(echo "$(median "${xw[@]}") / 1024" | bc -l)" "$(echo "$(median "${xs[@]}") / 1024" | bc -l)"

# ---------------------------------------------------------------- WAN-like link
WMB=$((WAN_BYTES / 1000000))
for ow_ms in 10 25; do
  spawn delay-$ow_ms "$DELAY" 127.0.0.1:0 127.0.0.1:$PORT $ow_ms
  for _ in $(seq 50); do [ -s $D/delay-$ow_ms.out ] && break; sleep 0.1; done
  [ -s $D/delay-$ow_ms.out ] || die "delay proxy did not start: $(cat $D/delay-$ow_ms.log)"
  pp=$(cut -d: -f2 $D/delay-$ow_ms.out)
  known $pp
  declare -A WL=() WPID=()
  for c in w s; do
    WL[$c-aes]=$(freeport)
    spawn wan-$c-$ow_ms $(client $c) -c $AES -p $pp -N -L ${WL[$c-aes]}:127.0.0.1:$FAR bench
    WPID[$c]=$LASTPID
    ready ${WPID[$c]} ${WL[$c-aes]}
  done
  rtt=$((2 * ow_ms))
  thr "-L download $WMB MB over $rtt ms RTT, sshd→client (aes256-gcm)" WL aes down 127.0.0.1 PORT $WAN_BYTES
  if [ $ow_ms = 25 ]; then
    thr "-L upload $WMB MB over $rtt ms RTT, client→sshd (aes256-gcm)" WL aes up 127.0.0.1 PORT $WAN_BYTES
  fi
  for c in w s; do stop ${WPID[$c]}; done
done
echo
read -r CPU1 STEAL1 <<< "$(cpustat)"
echo "Load average at start $LOAD0, at end $(cut -d' ' -f1-3 /proc/loadavg);" \
  "CPU time stolen by the hypervisor: $(( 100 * (STEAL1 - STEAL0) / (CPU1 - CPU0 + 1) ))%;" \
  "$(($(date +%s) - START)) s."
