#!/usr/bin/env bash
# Side-by-side: warren ssh vs OpenSSH's ssh against the same throwaway sshd
# on 127.0.0.1, same cipher. Prints each figure and the ratio
# (ssh time / warren time: > 1 means warren is faster).
#
#   cargo build --release -p warren && bench/exec.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
WARREN=${WARREN:-target/release/warren}
ROUNDS=${1:-10}
[ -x "$WARREN" ] || { echo "build first: cargo build --release -p warren" >&2; exit 1; }
[ -x /usr/sbin/sshd ] || { echo "needs openssh-server (scripts/test installs it)" >&2; exit 1; }
command -v bc >/dev/null || { echo "needs bc (apt-get install bc)" >&2; exit 1; }
mkdir -p /run/sshd

D=$(mktemp -d)
trap 'kill $(cat $D/pid 2>/dev/null) 2>/dev/null; rm -rf $D' EXIT
. bench/lib/sshd.sh
start_sshd $D "SetEnv SHLVL=1"

now() { date +%s.%N; }
# best of $ROUNDS wall-clock seconds for a command line
best() {
  local b=999999 s e t
  for _ in $(seq "$ROUNDS"); do
    s=$(now); "$@" > /dev/null; e=$(now)
    t=$(echo "$e - $s" | bc -l); b=$(echo "if ($t < $b) $t else $b" | bc -l)
  done
  echo "$b"
}
row() { # name, seconds_warren, seconds_ssh, unit-work (bytes or 0)
  local w=$2 s=$3 ratio
  ratio=$(echo "scale=2; $s / $w" | bc -l)
  if [ "$4" -gt 0 ]; then
    printf "| %-38s | %9.1f MB/s | %9.1f MB/s | %5sx |\n" "$1" "$(echo "$4/$w/1000000" | bc -l)" "$(echo "$4/$s/1000000" | bc -l)" "$ratio"
  else
    printf "| %-38s | %10.1f ms | %10.1f ms | %5sx |\n" "$1" "$(echo "$w*1000" | bc -l)" "$(echo "$s*1000" | bc -l)" "$ratio"
  fi
}

W=("$WARREN" ssh -F $D/ssh_config)
S=(ssh -F $D/ssh_config)
BYTES=200000000
head -c $BYTES /dev/urandom > $D/blob
echo "warren $($WARREN ssh -V 2>&1 | head -1); $(ssh -V 2>&1); best of $ROUNDS; $(nproc) CPUs"
echo "| figure | warren | OpenSSH | ratio |"
echo "|---|---|---|---|"
for kex in curve25519-sha256; do
  row "login + true (kex $kex)" \
    "$(best "${W[@]}" -o KexAlgorithms=$kex bench true)" "$(best "${S[@]}" -o KexAlgorithms=$kex bench true)" 0
done
for c in aes256-gcm@openssh.com chacha20-poly1305@openssh.com; do
  row "download 200 MB via cat ($c)" \
    "$(best "${W[@]}" -c $c bench "cat $D/blob")" "$(best "${S[@]}" -c $c bench "cat $D/blob")" $BYTES
  up_w() { "${W[@]}" -c $c bench "cat > /dev/null" < $D/blob; }
  up_s() { "${S[@]}" -c $c bench "cat > /dev/null" < $D/blob; }
  row "upload 200 MB via cat ($c)" "$(best up_w)" "$(best up_s)" $BYTES
done

# Connection sharing: the same `true` through a running master (no TCP
# connect, key exchange or login), each client through its own master,
# then each through the other's (they speak the same protocol).
"${W[@]}" -M -S $D/wctl -fN bench
"${S[@]}" -M -S $D/sctl -fN bench
stop_masters() {
  "${S[@]}" -S $D/wctl -O exit bench 2>/dev/null || true
  "${S[@]}" -S $D/sctl -O exit bench 2>/dev/null || true
}
trap 'stop_masters; kill $(cat $D/pid 2>/dev/null) 2>/dev/null; rm -rf $D' EXIT
fresh_w=$(best "${W[@]}" bench true); fresh_s=$(best "${S[@]}" bench true)
mux_w=$(best "${W[@]}" -S $D/wctl bench true); mux_s=$(best "${S[@]}" -S $D/sctl bench true)
row "true, fresh connection" "$fresh_w" "$fresh_s" 0
row "true through own master (-S)" "$mux_w" "$mux_s" 0
row "true through the other's master" "$(best "${W[@]}" -S $D/sctl bench true)" "$(best "${S[@]}" -S $D/wctl bench true)" 0
printf "master speedup over a fresh connection: warren %.1fx, OpenSSH %.1fx\n" \
  "$(echo "$fresh_w / $mux_w" | bc -l)" "$(echo "$fresh_s / $mux_s" | bc -l)"
