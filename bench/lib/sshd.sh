# Shared by the bench scripts: a throwaway sshd on 127.0.0.1 and a client
# config for it, both usable by warren ssh and OpenSSH's ssh.
#
#   . bench/lib/sshd.sh
#   start_sshd DIR "sshd_config lines" "extra Host bench lines"
#
# Sets PORT; writes DIR/ssh_config (Host bench), DIR/known_hosts, DIR/id
# (the client key), DIR/pid (sshd's pid). The caller stops sshd.
# Also `freeport`: prints a free TCP port on 127.0.0.1, and
#   bench_host DIR NAME PORT
# which adds a Host NAME block like bench's for another port on 127.0.0.1
# (a delay proxy, another server using DIR/host as its host key) and its
# known_hosts line.
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_sshd() {
  local dir=$1 server_extra=${2:-} client_extra=${3:-}
  ssh-keygen -q -t ed25519 -N '' -f "$dir/host"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/id"
  cp "$dir/id.pub" "$dir/ak"
  PORT=$(freeport)
  cat > "$dir/sshd_config" <<EOC
Port $PORT
ListenAddress 127.0.0.1
HostKey $dir/host
AuthorizedKeysFile $dir/ak
PidFile $dir/pid
StrictModes no
UsePAM no
$server_extra
EOC
  /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
  local _
  for _ in $(seq 50); do [ -s "$dir/pid" ] && break; sleep 0.1; done
  [ -s "$dir/pid" ] || { echo "sshd did not start: $(cat "$dir/sshd.log")" >&2; return 1; }
  printf '%s\n' "$client_extra" > "$dir/client_extra"
  bench_host "$dir" bench "$PORT"
}

bench_host() {
  local dir=$1 name=$2 port=$3
  echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/host.pub")" >> "$dir/known_hosts"
  cat >> "$dir/ssh_config" <<EOC
Host $name
  HostName 127.0.0.1
  Port $port
  User $(id -un)
  IdentityFile $dir/id
  IdentitiesOnly yes
  IdentityAgent none
  BatchMode yes
  UserKnownHostsFile $dir/known_hosts
  GlobalKnownHostsFile /dev/null
$(cat "$dir/client_extra")
EOC
}
