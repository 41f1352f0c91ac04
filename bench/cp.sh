#!/usr/bin/env bash
# File copy side by side: warren cp, OpenSSH's scp (SFTP mode, its default
# since 9.0), `sftp -b` and rclone's SFTP backend, in the same run, against
# a throwaway OpenSSH sshd AND a `warren serve`, both on 127.0.0.1 with the
# same host key, directly and through warren-delay-proxy (20 and 50 ms
# round trips). Runs alternate between the tools row by row.
#
#   cargo build --release --locked -p warren -p warren-testkit
#   apt-get install -y rclone
#   bench/cp.sh          # full run: 28 min on 2 CPUs at load average ~5
#   bench/cp.sh quick    # (or QUICK=1) small sizes, 1 round, ~3 min (3.6 at load 4)
#
# Rows, per server: one big file put and get, a tree of small files put
# and get (-r), on loopback and over each RTT in RTTS (smaller sizes there).
# Each cell is the median over ROUNDS runs (WAN_ROUNDS over the delay
# proxy) in MB/s (10^6 bytes) or files/s; per-run figures go to stderr.
# Ratios are warren/other: > 1 means warren is better. Every copy is checked
# (big file: cmp with the source; tree: file count, total size and a hash
# over paths and contents): a run that failed or copied wrong shows FAIL.
# A second table gives CPU seconds per GB of the client (with its ssh child)
# and of the server (sshd's listener with all its reaped session processes;
# warren serve as one process) on the big loopback rows.
#
# sshd serves SFTP with internal-sftp, in its session process: the
# external sftp-server is started through the user's login shell, which
# reads ~/.bashrc when run by sshd (0.35 s per connection on a machine
# whose .bashrc runs `pyenv init`), a cost of the account, not of SFTP.
#
# Cipher: every tool against one server uses the same one. OpenSSH's sshd
# is configured with `Ciphers aes128-gcm@openssh.com` only (the others are
# passed -c / rclone's first choice), so anything else fails to connect.
# warren serve offers sshd's default list, in which rclone 1.60 (Debian
# 12, no cipher option) also picks aes128-gcm first, so all four use
# aes128-gcm there too; the script checks each connection's cipher in
# warren serve's log and fails the run otherwise.
#
# Tools run with their defaults otherwise: scp and sftp 64 outstanding
# 32 KiB requests; rclone --transfers 4 (4 files at once, over up to 4 SSH
# connections), big downloads in 4 streams (--multi-thread-streams, above
# 250 MiB), modtimes set after each upload, except that its hash check
# after each transfer is off (it would run md5sum on the server; the
# script checks every copy itself); warren cp with its default
# parallelism.
#
# Knobs (env): ROUNDS, WAN_ROUNDS, BIG (bytes), FILES, WAN_BIG, WAN_FILES,
# FILE_SIZE, RTTS ("20 50"), SERVERS ("sshd serve"), TOOLS ("w s f r":
# warren cp, scp, sftp, rclone). The temp dir holds the source and the
# destination (2 x BIG and more): TMPDIR picks where.
set -euo pipefail
cd "$(dirname "$0")/.."
WARREN=${WARREN:-target/release/warren}
DELAY=${DELAY:-target/release/warren-delay-proxy}
H=bench/cp/helper.py
[ -x "$WARREN" ] && [ -x "$DELAY" ] || {
  echo "build first: cargo build --release --locked -p warren -p warren-testkit" >&2; exit 1; }
[ -x /usr/sbin/sshd ] || { echo "needs openssh-server (scripts/test installs it)" >&2; exit 1; }
for c in python3 scp sftp rclone cmp; do
  command -v $c >/dev/null || { echo "needs $c (rclone: apt-get install -y rclone)" >&2; exit 1; }
done
mkdir -p /run/sshd

if [ "${1:-}" = quick ] || [ "${QUICK:-0}" = 1 ]; then
  ROUNDS=${ROUNDS:-1} WAN_ROUNDS=${WAN_ROUNDS:-1}
  BIG=${BIG:-134217728} FILES=${FILES:-500} WAN_BIG=${WAN_BIG:-16777216} WAN_FILES=${WAN_FILES:-10}
else
  ROUNDS=${ROUNDS:-3} WAN_ROUNDS=${WAN_ROUNDS:-1}
  BIG=${BIG:-1073741824} FILES=${FILES:-10000} WAN_BIG=${WAN_BIG:-268435456} WAN_FILES=${WAN_FILES:-50}
fi
FILE_SIZE=${FILE_SIZE:-4096}
RTTS=${RTTS:-20 50}
SERVERS=${SERVERS:-sshd serve}
TOOLS=${TOOLS:-w s f r}
PERDIR=100
AES=aes128-gcm@openssh.com

D=$(mktemp -d)
cleanup() {
  local p
  for p in $(cat $D/pids $D/pid 2>/dev/null); do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in $(cat $D/pids 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
: > $D/pids
die() { echo "FAIL: $*" >&2; exit 1; }

# spawn NAME CMD...: runs CMD in the background (logs in $D/NAME.*); sets LASTPID
spawn() {
  local name=$1; shift
  "$@" < /dev/null > $D/$name.out 2> $D/$name.log &
  LASTPID=$!
  echo $LASTPID >> $D/pids
}
stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  grep -vx "$1" $D/pids > $D/pids.new || true
  mv $D/pids.new $D/pids
}
# waitfile FILE WHAT: waits (max 10 s) for FILE to be non-empty
waitfile() {
  for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.1; done
  die "$2 did not start: $(cat ${1%.out}.log 2>/dev/null)"
}

# ---------------------------------------------------------------- warren cp?
# Until warren has a cp command its column reads n/a, with the reason.
WCP_MISSING=
if ! "$WARREN" cp --help > $D/wcp-help.out 2>&1; then
  WCP_MISSING="$("$WARREN" -V 2>&1 | head -1) has no cp command: $(grep -m1 . $D/wcp-help.out | cut -c1-200)"
fi

# ---------------------------------------------------------------- servers
. bench/lib/sshd.sh
start_sshd $D "Ciphers $AES
Subsystem sftp internal-sftp
MaxSessions 20
MaxStartups 100" "  ControlMaster no
  ControlPath none" || die "sshd did not start"
SSHD_PID=$(cat $D/pid)

# warren serve: same host key, same authorized_keys. It logs each
# connection's negotiated algorithms (russh's kex at debug, nothing else;
# checked after every run); OpenSSH 9.2's sshd has no PerSourcePenalties,
# so neither does this one.
spawn serve env WARREN_LOG=warn,russh::server::kex=debug "$WARREN" serve --listen 127.0.0.1:0 --host-key $D/host --authorized-keys $D/ak \
  --per-source-penalties no
SERVE_PID=$LASTPID
for _ in $(seq 100); do grep -q 'listening on' $D/serve.out 2>/dev/null && break; sleep 0.1; done
SERVE_PORT=$(sed -n 's/^warren serve: listening on .*:\([0-9]*\)$/\1/p' $D/serve.out)
[ -n "$SERVE_PORT" ] || die "warren serve did not start: $(cat $D/serve.log)"
bench_host $D bench-serve $SERVE_PORT

# rclone remotes, one per Host alias (throwaway config in the temp dir)
rclone_remote() {
  cat >> $D/rclone.conf <<EOC
[$1]
type = sftp
host = 127.0.0.1
port = $2
user = $(id -un)
key_file = $D/id
known_hosts_file = $D/known_hosts
shell_type = unix
disable_hashcheck = true

EOC
}
rclone_remote bench $PORT
rclone_remote bench-serve $SERVE_PORT

declare -A SRV_PORT=([sshd]=$PORT [serve]=$SERVE_PORT) SRV_ALIAS=([sshd]=bench [serve]=bench-serve)
declare -A SRV_PID=([sshd]=$SSHD_PID [serve]=$SERVE_PID)
declare -A SRV_CIPHER=([sshd]=$AES [serve]=$AES)
declare -A SRV_NAME=([sshd]="OpenSSH sshd" [serve]="warren serve")
declare -A TOOL_NAME=([w]="warren cp" [s]=scp [f]="sftp -b" [r]=rclone)

# ---------------------------------------------------------------- sources
mkdir -p $D/src/lan $D/src/wan $D/dst
head -c $BIG /dev/urandom > $D/src/lan/big
head -c $WAN_BIG /dev/urandom > $D/src/wan/big
python3 $H tree $D/src/lan/tree $FILES $(( FILES < PERDIR ? FILES : PERDIR )) $FILE_SIZE
python3 $H tree $D/src/wan/tree $WAN_FILES $(( WAN_FILES < PERDIR ? WAN_FILES : PERDIR )) $FILE_SIZE
declare -A TREE_DIGEST
for set in lan wan; do TREE_DIGEST[$set]=$(python3 $H digest $D/src/$set/tree); done
sync

# ---------------------------------------------------------------- one copy
# cmdline TOOL ALIAS KIND DIR SET: the command for one copy into $D/dst
# (KIND big|tree, DIR put|get); an sftp batch goes to $D/batch.
cmdline() {
  local t=$1 host=$2 kind=$3 dir=$4 set=$5 cipher=$6
  local src=$D/src/$set/$kind dst r=() from to
  [ $kind = tree ] && r=(-r)
  case $t in
    w|s)
      # scp semantics: a tree lands in the existing target directory
      if [ $kind = big ]; then dst=$D/dst/big; else dst=$D/dst/; fi
      if [ $dir = put ]; then from=$src to=$host:$dst; else from=$host:$src to=$dst; fi
      if [ $t = w ]; then CMD=("$WARREN" cp); else CMD=(scp); fi
      CMD+=(-F $D/ssh_config -c $cipher -q "${r[@]}" "$from" "$to") ;;
    f)
      echo "$dir ${r[*]} $src $D/dst/$kind" > $D/batch
      CMD=(sftp -F $D/ssh_config -c $cipher -q -b $D/batch $host) ;;
    r)
      if [ $dir = put ]; then from=$src to=$host:$D/dst/$kind; else from=$host:$src to=$D/dst/$kind; fi
      CMD=(rclone --config $D/rclone.conf --cache-dir $D/rclone-cache --temp-dir $D -q)
      if [ $kind = big ]; then CMD+=(copyto); else CMD+=(copy); fi
      CMD+=("$from" "$to") ;;
  esac
}

# server_cpu SRV: CPU seconds of the server and its reaped descendants,
# once its session processes are gone (max 10 s)
server_cpu() {
  local pid=${SRV_PID[$1]}
  for _ in $(seq 100); do [ -z "$(pgrep -P $pid)" ] && break; sleep 0.1; done
  python3 $H ticks $pid
}

# once SRV HOST KIND DIR SET TOOL: one verified copy; sets RES to
# "wall client_cpu server_cpu" or "FAIL reason"
once() {
  local srv=$1 host=$2 kind=$3 dir=$4 set=$5 t=$6
  rm -rf $D/dst; mkdir $D/dst; sync
  cmdline $t $host $kind $dir $set ${SRV_CIPHER[$srv]}
  local s0 s1 out wall cpu rc log0 got
  log0=$(wc -l < $D/serve.log)
  s0=$(server_cpu $srv)
  out=$(python3 $H run $D/run.out $D/run.err -- "${CMD[@]}")
  s1=$(server_cpu $srv)
  read -r wall cpu rc <<< "$out"
  if [ "$rc" != 0 ]; then
    RES="FAIL exit $rc: $(tr '\n' ' ' < $D/run.err | cut -c1-300)"; return
  fi
  if [ $kind = big ]; then
    cmp -s $D/src/$set/big $D/dst/big || { RES="FAIL copy differs from the source ($(stat -c %s $D/dst/big 2>/dev/null || echo no file) bytes)"; return; }
  else
    got=$(python3 $H digest $D/dst/tree 2>/dev/null || echo "no tree")
    [ "$got" = "${TREE_DIGEST[$set]}" ] || { RES="FAIL tree differs: got $got, want ${TREE_DIGEST[$set]}"; return; }
  fi
  if [ $srv = serve ]; then
    # every connection of this run must have negotiated the cipher
    local bad
    tail -n +$((log0 + 1)) $D/serve.log | grep 'negotiated:' > $D/kex || true
    [ -s $D/kex ] || { RES="FAIL warren serve logged no key exchange for this run"; return; }
    bad=$(grep -v "cipher: Name(\"${SRV_CIPHER[$srv]}\")" $D/kex | head -1 || true)
    [ -z "$bad" ] || { RES="FAIL negotiated $(sed 's/.*cipher: Name("\([^"]*\)").*/\1/' <<< "$bad")"; return; }
  fi
  RES="$wall $cpu $(awk "BEGIN{print $s1 - $s0}")"
}

# ---------------------------------------------------------------- rows
START=$(date +%s)
cpustat() { awk '/^cpu /{t=0; for (i=2;i<=9;i++) t+=$i; print t, $9}' /proc/stat; }
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
read -r CPU0 STEAL0 <<< "$(cpustat)"
: > $D/table; : > $D/cputable; : > $D/notes
ROW=0
# row SRV HOST LINK KIND DIR SET ROUNDS: measures all tools, appends a line
row() {
  local srv=$1 host=$2 link=$3 kind=$4 dir=$5 set=$6 rounds=$7
  local -A vals=() cpus=() scpus=() failed=()
  local r t i units amount label w c s
  local -a order=($TOOLS)
  if [ $kind = big ]; then
    amount=$(stat -c %s $D/src/$set/big); units=MB/s
    label="$(python3 -c "import sys; b=int(sys.argv[1]); print(f'{b/2**30:.3g} GiB' if b>=2**30 else f'{b/2**20:.3g} MiB')" $amount) file"
  else
    amount=${TREE_DIGEST[$set]%% *}; units=files/s
    label="$amount files x $((FILE_SIZE / 1024)) KiB, -r"
  fi
  for r in $(seq $rounds); do
    ROW=$((ROW + 1))
    for i in $(seq $(( ROW % ${#order[@]} ))); do order=("${order[@]:1}" "${order[0]}"); done
    for t in "${order[@]}"; do
      if [ $t = w ] && [ -n "$WCP_MISSING" ]; then continue; fi
      once $srv $host $kind $dir $set $t
      if [ "${RES%% *}" = FAIL ]; then
        failed[$t]=1
        echo "FAIL: ${SRV_NAME[$srv]}, $link, $label $dir, ${TOOL_NAME[$t]}: ${RES#FAIL }" >&2
        echo "- ${SRV_NAME[$srv]}, $link, $label $dir, ${TOOL_NAME[$t]}: ${RES#FAIL }" >> $D/notes
      else
        read -r w c s <<< "$RES"
        vals[$t]+="$w "; cpus[$t]+="$c "; scpus[$t]+="$s "
      fi
    done
  done
  python3 - "$srv" "${SRV_NAME[$srv]}" "$link" "$label $dir" "$kind" "$amount" "$TOOLS" "${WCP_MISSING:+n/a}" \
    "w=${vals[w]:-}" "s=${vals[s]:-}" "f=${vals[f]:-}" "r=${vals[r]:-}" \
    "cw=${cpus[w]:-}" "cs=${cpus[s]:-}" "cf=${cpus[f]:-}" "cr=${cpus[r]:-}" \
    "sw=${scpus[w]:-}" "ss=${scpus[s]:-}" "sf=${scpus[f]:-}" "sr=${scpus[r]:-}" \
    "fw=${failed[w]:-}" "fs=${failed[s]:-}" "ff=${failed[f]:-}" "fr=${failed[r]:-}" \
    >> $D/table 3>> $D/cputable <<'EOP'
import os, sys
srv, sname, link, what, kind, amount, tools, wmissing = sys.argv[1:9]
kv = dict(a.split("=", 1) for a in sys.argv[9:])
amount = float(amount)
def med(s):
    v = sorted(float(x) for x in s.split())
    n = len(v)
    return None if n == 0 else (v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2)
rate, cell = {}, {}
for t in "wsfr":
    if t not in tools.split():
        cell[t] = "–"; continue
    if t == "w" and wmissing:
        cell[t] = "n/a"; continue
    if kv["f" + t]:
        cell[t] = "FAIL"; continue
    wall = med(kv[t])
    rate[t] = amount / wall / (1e6 if kind == "big" else 1)
    cell[t] = ("%.1f MB/s" if kind == "big" else "%.0f files/s") % rate[t]
    print("raw s, %s, %s, %s, %s: %s" % (sname, link, what, t, kv[t].strip()), file=sys.stderr)
def ratio(o):
    if cell["w"] in ("n/a", "–") or cell[o] == "–":
        return cell["w"] if cell["w"] == "n/a" else "–"
    if "w" not in rate or o not in rate:
        return "FAIL"
    return "%.2fx" % (rate["w"] / rate[o])
print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
    sname, link, what, cell["w"], cell["s"], cell["f"], cell["r"], ratio("s"), ratio("f"), ratio("r")))
if kind == "big" and link == "loopback":
    gb = amount / 1e9
    out = os.fdopen(3, "w")
    for t in "wsfr":
        if t in rate:
            out.write("| %s | %s | %s | %.2f | %.2f | %.2f |\n" % (
                sname, what, {"w": "warren cp", "s": "scp", "f": "sftp -b", "r": "rclone"}[t],
                amount / med(kv[t]) / 1e6, med(kv["c" + t]) / gb, med(kv["s" + t]) / gb))
EOP
  tail -1 $D/table >&2
}

echo "rows: ${SRV_NAME[sshd]} ($AES), ${SRV_NAME[serve]} ($AES); started $(date -u +%FT%TZ)" >&2
for srv in $SERVERS; do
  host=${SRV_ALIAS[$srv]}
  for kind in big tree; do
    for dir in put get; do row $srv $host loopback $kind $dir lan $ROUNDS; done
  done
done
for rtt in $RTTS; do
  for srv in $SERVERS; do
    spawn delay-$srv-$rtt "$DELAY" 127.0.0.1:0 127.0.0.1:${SRV_PORT[$srv]} $((rtt / 2))
    pp=$LASTPID
    waitfile $D/delay-$srv-$rtt.out "delay proxy"
    port=$(cut -d: -f2 $D/delay-$srv-$rtt.out)
    bench_host $D bench-$srv-$rtt $port
    rclone_remote bench-$srv-$rtt $port
    for kind in big tree; do
      for dir in put get; do row $srv bench-$srv-$rtt "$rtt ms RTT" $kind $dir wan $WAN_ROUNDS; done
    done
    stop $pp
  done
done
read -r CPU1 STEAL1 <<< "$(cpustat)"
echo "warren serve log: $(wc -l < $D/serve.log) lines, $(grep -c 'negotiated:' $D/serve.log) connections" >&2

# ---------------------------------------------------------------- report
echo "warren $("$WARREN" -V 2>&1 | head -1); $(ssh -V 2>&1); $(rclone version 2>/dev/null | head -1);" \
  "$(nproc) CPUs; median of $ROUNDS runs (loopback), $WAN_ROUNDS (delay proxy), tools alternating;" \
  "ratio > 1: warren cp better"
echo
echo "| server (cipher) | link | copy | warren cp | scp | sftp -b | rclone | warren/scp | warren/sftp | warren/rclone |"
echo "|---|---|---|---|---|---|---|---|---|---|"
sed -e "s/^| OpenSSH sshd |/| OpenSSH sshd (${AES%@*}) |/" -e "s/^| warren serve |/| warren serve (${AES%@*}) |/" $D/table
echo
echo "CPU seconds per GB (10^9 bytes), big file on loopback: client = the tool's process with its ssh;"
echo "server = sshd with its session processes (internal-sftp), or warren serve."
echo
echo "| server | copy | tool | MB/s | client CPU s/GB | server CPU s/GB |"
echo "|---|---|---|---|---|---|"
cat $D/cputable
if [ -n "$WCP_MISSING" ]; then echo; echo "warren cp: n/a: $WCP_MISSING"; fi
if [ -s $D/notes ]; then echo; echo "Failed runs:"; cat $D/notes; fi
echo
echo "Load average at start $LOAD0, at end $(cut -d' ' -f1-3 /proc/loadavg);" \
  "CPU time stolen by the hypervisor: $(( 100 * (STEAL1 - STEAL0) / (CPU1 - CPU0 + 1) ))%;" \
  "$(($(date +%s) - START)) s."
