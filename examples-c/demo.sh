#!/usr/bin/env bash
# The demo behind `make demo`: starts sekura-sshd (the example server, built on Sekura) on a
# free loopback port with a fresh host key and authorized key in a temporary directory, runs
# a few commands through sekura-ssh (the example client), shows the server's log, and stops
# the server. No OpenSSH is involved: sekura-keygen makes the keys.
#
#   examples-c/demo.sh [path/to/sekura-ssh [path/to/sekura-sshd]]
#       (default: build/bin/sekura-ssh, and sekura-sshd and sekura-keygen beside it)
set -euo pipefail

client=$(realpath "${1:-build/bin/sekura-ssh}")
server=$(realpath "${2:-$(dirname "$client")/sekura-sshd}")
keygen=$(dirname "$server")/sekura-keygen
for program in "$client" "$server" "$keygen"; do
    [ -x "$program" ] || { echo "demo: $program is missing; run make first" >&2; exit 1; }
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/sekura-demo.XXXXXX")
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

"$keygen" -t ed25519 -f "$dir/host_key" > /dev/null
"$keygen" -t ed25519 -f "$dir/user_key" > /dev/null
cp "$dir/user_key.pub" "$dir/authorized_keys"

# A port that was free a moment ago (python3 if present, else a random one).
pick_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' \
        2>/dev/null || shuf -i 20000-60000 -n 1
}

# Starts sekura-sshd on $port in the background of this script; fails if it exits before it
# listens.
start_server() {
    "$server" -p "$port" -h "$dir/host_key" -o "AuthorizedKeysFile=$dir/authorized_keys" \
        2> "$dir/server.log" &
    server_pid=$!
    for _ in $(seq 200); do
        grep -q "Server listening" "$dir/server.log" && return 0
        if ! kill -0 "$server_pid" 2>/dev/null; then
            wait "$server_pid" || true
            server_pid=
            return 1
        fi
        sleep 0.05
    done
    return 1
}

for attempt in 1 2 3 4 5; do
    port=$(pick_port)
    start_server && break
    if [ "$attempt" -eq 5 ] || ! grep -q "Address already in use" "$dir/server.log"; then
        echo "demo: sekura-sshd did not start:" >&2
        cat "$dir/server.log" >&2
        exit 1
    fi
done
printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$dir/host_key.pub")" > "$dir/known_hosts"

ssh=("$client" -F none -p "$port" -i "$dir/user_key"
     -o "UserKnownHostsFile=$dir/known_hosts" -o StrictHostKeyChecking=yes -o BatchMode=yes
     "$(id -un)@127.0.0.1")
step() { printf '\n$ sekura-ssh %s\n' "$*"; }

echo "sekura-sshd listens on 127.0.0.1:$port (pid $server_pid)."
echo "Each command below runs through sekura-ssh; both are C programs linked with libsekura."

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
echo "Stopping sekura-sshd. Its log:"
kill -TERM "$server_pid"
wait "$server_pid" || true
server_pid=
sed 's/^/  /' "$dir/server.log"
