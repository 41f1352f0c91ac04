#!/usr/bin/env bash
# Sync side by side: warren sync and rsync over OpenSSH's ssh, in the same
# run, against one throwaway sshd on 127.0.0.1, through warren-delay-proxy
# on loopback (0 ms: the proxy only counts the bytes) and at a 50 ms
# round trip.
#
#   cargo build --release --locked -p warren -p warren-testkit
#   bench/sync.sh          # full run
#   bench/sync.sh quick    # (or QUICK=1) small sizes, a few minutes
#
# The source is a tree of FILES small files (FILE_SIZE bytes, PERDIR per
# directory) and one BIG file. Rows, each run by rsync and by warren sync
# into their own destination, both pushing (`-a SRC/ host:DST/`):
#   first     the first copy into an empty destination;
#   unchanged a re-run with nothing changed;
#   touched   100 files touched (mtime only);
#   delta     1 MiB rewritten in the middle of BIG and 1 KB inserted near
#             its start.
# Each cell: wall seconds and bytes on the wire (both directions, counted
# by the proxy). Ratios: time rsync/warren (> 1: warren faster), bytes
# warren/rsync (< 1: warren sent less). Every destination is checked
# against the source (file count, total size, a hash over paths and
# contents) after each row: a wrong copy is FAIL.
#
# warren sync runs with its default `--remote-helper auto`, after one
# `--remote-helper install` before the rows put the helper (this binary)
# in ~/.cache/warren/VERSION/ on the server, which is this machine: it is
# removed again at the end unless it was there before.
# Cipher: aes128-gcm for both (sshd offers only it).
#
# Knobs (env): BIG, FILES, FILE_SIZE, WAN_BIG, WAN_FILES, RTT (ms, 50),
# LINKS ("lo wan"), TOOLS ("rsync warren"). TMPDIR picks where the data
# goes (4 x BIG and more).
set -euo pipefail
cd "$(dirname "$0")/.."
WARREN=${WARREN:-target/release/warren}
DELAY=${DELAY:-target/release/warren-delay-proxy}
H=bench/cp/helper.py
[ -x "$WARREN" ] && [ -x "$DELAY" ] || {
  echo "build first: cargo build --release --locked -p warren -p warren-testkit" >&2; exit 1; }
[ -x /usr/sbin/sshd ] || { echo "needs openssh-server (scripts/test installs it)" >&2; exit 1; }
for c in python3 rsync ssh; do
  command -v $c >/dev/null || { echo "needs $c" >&2; exit 1; }
done
mkdir -p /run/sshd

if [ "${1:-}" = quick ] || [ "${QUICK:-0}" = 1 ]; then
  BIG=${BIG:-67108864} FILES=${FILES:-1000} WAN_BIG=${WAN_BIG:-16777216} WAN_FILES=${WAN_FILES:-200}
else
  BIG=${BIG:-1073741824} FILES=${FILES:-10000} WAN_BIG=${WAN_BIG:-268435456} WAN_FILES=${WAN_FILES:-2000}
fi
FILE_SIZE=${FILE_SIZE:-4096}
RTT=${RTT:-50}
LINKS=${LINKS:-lo wan}
TOOLS=${TOOLS:-rsync warren}
PERDIR=100
AES=aes128-gcm@openssh.com

VERSION=$("$WARREN" -V 2>/dev/null | awk '{print $2}')
CACHE=$HOME/.cache/warren/$VERSION
CACHE_WAS_THERE=0
[ -e "$CACHE" ] && CACHE_WAS_THERE=1

D=$(mktemp -d)
cleanup() {
  local p
  for p in $(cat $D/pids $D/pid 2>/dev/null); do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$D"
  [ $CACHE_WAS_THERE = 1 ] || rm -rf "$CACHE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
: > $D/pids
die() { echo "FAIL: $*" >&2; exit 1; }

. bench/lib/sshd.sh
start_sshd $D "Ciphers $AES
Subsystem sftp internal-sftp
MaxSessions 20
MaxStartups 100" "  ControlMaster no
  ControlPath none
  Ciphers $AES" || die "sshd did not start"

# proxy NAME ONE_WAY_MS: a counting delay proxy in front of sshd, as Host NAME
proxy() {
  local name=$1 ms=$2
  "$DELAY" 127.0.0.1:0 127.0.0.1:$PORT $ms $D/count-$name > $D/proxy-$name.out 2> $D/proxy-$name.log &
  echo $! >> $D/pids
  for _ in $(seq 100); do [ -s $D/proxy-$name.out ] && break; sleep 0.1; done
  local addr; addr=$(cat $D/proxy-$name.out)
  [ -n "$addr" ] || die "the delay proxy did not start: $(cat $D/proxy-$name.log)"
  bench_host $D $name ${addr##*:}
}
proxy lo 0
proxy wan $((RTT / 2))

# wire NAME: bytes relayed so far by proxy NAME (both ways)
wire() { sleep 0.25; local up down; read -r up down < $D/count-$1; echo $((up + down)); }

# ---------------------------------------------------------------- sources
for link in $LINKS; do
  if [ $link = lo ]; then big=$BIG files=$FILES; else big=$WAN_BIG files=$WAN_FILES; fi
  mkdir -p $D/src-$link
  head -c $big /dev/urandom > $D/src-$link/big
  python3 $H tree $D/src-$link/tree $files $(( files < PERDIR ? files : PERDIR )) $FILE_SIZE
done
sync

# The helper is installed once before the rows (its upload, this binary,
# is a one-time cost that would otherwise land in the first delta row).
mkdir -p $D/warm
head -c 300000 /dev/urandom > $D/warm/f
"$WARREN" sync -a -q -e "ssh -F $D/ssh_config" $D/warm/ lo:$D/warm-dst/
echo x >> $D/warm/f
"$WARREN" sync -a -q --remote-helper install -e "ssh -F $D/ssh_config" $D/warm/ lo:$D/warm-dst/
[ -x "$CACHE/warren" ] || die "the helper was not installed in $CACHE"

# run TOOL LINK: one sync of src-LINK/ into dst-TOOL-LINK/; sets SECS BYTES
run() {
  local tool=$1 link=$2 cmd before out
  case $tool in
    rsync) cmd=(rsync) ;;
    warren) cmd=("$WARREN" sync) ;;
  esac
  cmd+=(-a -e "ssh -F $D/ssh_config" $D/src-$link/ $link:$D/dst-$tool-$link/)
  before=$(wire $link)
  out=$(python3 $H run $D/$tool.out $D/$tool.err -- "${cmd[@]}")
  set -- $out
  [ "$3" = 0 ] || die "$tool on $link exited $3: $(tail -3 $D/$tool.err)"
  SECS=$1
  BYTES=$(( $(wire $link) - before ))
  [ "$(python3 $H digest $D/dst-$tool-$link)" = "$(python3 $H digest $D/src-$link)" ] ||
    die "$tool on $link: the destination differs from the source"
}

# change ROW LINK: what the row does to the source before the tools run
change() {
  local row=$1 link=$2
  case $row in
    touched)
      find $D/src-$link/tree -type f | sort | sed -n 1,100p | xargs touch ;;
    delta)
      python3 - "$D/src-$link/big" <<'EOP'
import os, sys
p = sys.argv[1]
size = os.path.getsize(p)
with open(p, "r+b") as f:
    f.seek(size // 2)
    f.write(os.urandom(1 << 20))
with open(p, "rb") as f:
    data = f.read()
with open(p + ".new", "wb") as f:
    f.write(data[:4096] + os.urandom(1000) + data[4096:])
os.replace(p + ".new", p)
EOP
      ;;
  esac
}

ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print('%.2f' % (a / b) if b > 0 else 'n/a')" "$1" "$2"; }

printf '%s\n' "| link | row | rsync s | warren s | time rsync/warren | rsync bytes | warren bytes | bytes warren/rsync |"
printf '%s\n' "|---|---|---:|---:|---:|---:|---:|---:|"
for link in $LINKS; do
  for row in first unchanged touched delta; do
    change $row $link
    declare -A S=() B=()
    order=$TOOLS
    [ $row = unchanged ] || [ $row = delta ] && order=$(echo $TOOLS | tr ' ' '\n' | tac | tr '\n' ' ')
    for tool in $order; do
      run $tool $link
      S[$tool]=$SECS B[$tool]=$BYTES
      echo "$link $row $tool: ${SECS}s ${BYTES} bytes" >&2
    done
    printf '| %s | %s | %.2f | %.2f | %s | %s | %s | %s |\n' \
      "$link" "$row" "${S[rsync]:-0}" "${S[warren]:-0}" "$(ratio ${S[rsync]:-0} ${S[warren]:-0})" \
      "${B[rsync]:-0}" "${B[warren]:-0}" "$(ratio ${B[warren]:-0} ${B[rsync]:-0})"
  done
done
