#!/usr/bin/env bash
# The demo behind `make demo`: starts a private OpenSSH sshd on a free loopback port, with its
# own host key, configuration and authorized key in a temporary directory, runs a few
# commands through sekura-ssh, and stops the server.
#
#   examples-c/demo.sh [path/to/sekura-ssh]      (default: build/bin/sekura-ssh)
set -euo pipefail

client=$(realpath "${1:-build/bin/sekura-ssh}")
sshd_bin=/usr/sbin/sshd
[ -x "$client" ] || { echo "demo: $client is missing; run make first" >&2; exit 1; }
[ -x "$sshd_bin" ] || { echo "demo: no $sshd_bin (Debian: apt-get install openssh-server)" >&2; exit 1; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/sekura-demo.XXXXXX")
sshd_pid=
cleanup() {
    if [ -n "$sshd_pid" ]; then
        kill "$sshd_pid" 2>/dev/null || true
        wait "$sshd_pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

ssh-keygen -q -t ed25519 -N '' -C sekura-demo-host -f "$dir/host_key"
ssh-keygen -q -t ed25519 -N '' -C sekura-demo-user -f "$dir/user_key"
cp "$dir/user_key.pub" "$dir/authorized_keys"

# A port that was free a moment ago (python3 if present, else a random one).
pick_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' \
        2>/dev/null || shuf -i 20000-60000 -n 1
}

# Starts sshd in the foreground (-D, logging to stderr with -e) on $port, in the background
# of this script; fails if sshd exits before it listens.
start_sshd() {
    cat > "$dir/sshd_config" <<CONFIG
ListenAddress 127.0.0.1
Port $port
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PrintMotd no
CONFIG
    "$sshd_bin" -D -e -f "$dir/sshd_config" 2> "$dir/sshd.log" &
    sshd_pid=$!
    for _ in $(seq 200); do
        grep -q "Server listening" "$dir/sshd.log" && return 0
        if ! kill -0 "$sshd_pid" 2>/dev/null; then
            wait "$sshd_pid" || true
            sshd_pid=
            return 1
        fi
        sleep 0.05
    done
    return 1
}

# sshd's privilege separation directory, normally made by the system's service.
[ "$(id -u)" -ne 0 ] || mkdir -p /run/sshd
for attempt in 1 2 3 4 5; do
    port=$(pick_port)
    start_sshd && break
    if [ "$attempt" -eq 5 ] || ! grep -q "Address already in use" "$dir/sshd.log"; then
        echo "demo: sshd did not start:" >&2
        cat "$dir/sshd.log" >&2
        exit 1
    fi
done
printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$dir/host_key.pub")" > "$dir/known_hosts"

ssh=("$client" -F none -p "$port" -i "$dir/user_key"
     -o "UserKnownHostsFile=$dir/known_hosts" -o StrictHostKeyChecking=yes -o BatchMode=yes
     "$(id -un)@127.0.0.1")
step() { printf '\n$ sekura-ssh %s\n' "$*"; }

echo "A private OpenSSH sshd listens on 127.0.0.1:$port (pid $sshd_pid)."
echo "Each command below runs through sekura-ssh, a C program linked with libsekura."

step "uname -a"
"${ssh[@]}" uname -a

step "'tr a-z A-Z'   (standard input: \"hello from the local side\")"
echo "hello from the local side" | "${ssh[@]}" 'tr a-z A-Z'

step "'echo this goes to stderr >&2; exit 42'"
status=0
"${ssh[@]}" 'echo this goes to stderr >&2; exit 42' || status=$?
echo "exit status $status"
[ "$status" -eq 42 ]

echo
echo "Stopping sshd."
