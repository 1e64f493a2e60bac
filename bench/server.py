#!/usr/bin/env python3
"""OpenSSH's ssh against sekura-sshd and against OpenSSH's sshd, in the same run.

Prints bulk throughput (MB/s), sequential connections per second (connect, kex, publickey
auth, exec true, close) and the resident memory of each server holding 100 idle
authenticated connections (ssh -N, child processes included), with the ratios
sekura/OpenSSH. Run through `make bench`; needs build/bin/sekura-sshd and OpenSSH.
"""

import os
import shutil
import socket
import subprocess
import sys
import time

from run import BYTES, CONNECTIONS, Sshd, free_port, run_measured

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEKURA_SSHD = os.path.join(ROOT, "build", "bin", "sekura-sshd")
IDLE = int(os.environ.get("BENCH_IDLE", "100"))


class SekuraSshd:
    """build/bin/sekura-sshd with the same user key as `sshd`, on its own port."""

    def __init__(self, sshd):
        self.port = free_port()
        self.user = sshd.user
        self.user_key = sshd.user_key
        self.known_hosts = os.path.join(sshd.dir, "known_hosts_sekura")
        with open(sshd.host_key + ".pub") as f:
            kind, blob = f.read().split()[:2]
        with open(self.known_hosts, "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {kind} {blob}\n")
        self.proc = subprocess.Popen(
            [SEKURA_SSHD, "-p", str(self.port), "-h", sshd.host_key,
             "-o", f"AuthorizedKeysFile={os.path.join(sshd.dir, 'authorized_keys')}",
             # As the sshd it is compared with (MaxStartups 100): no early drops.
             "-o", f"MaxUnauthenticated={IDLE + 50}"],
            stderr=open(os.path.join(sshd.dir, "sekura-sshd.log"), "w"))
        wait_for_port(self.port)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()

    client_args = Sshd.client_args


def wait_for_port(port):
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"no server on port {port}")


def rss_kib(pid):
    """Resident memory of `pid` and all its descendants, in KiB."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total


def throughput(server, ssh):
    wall, _ = run_measured(server.client_args(ssh, [("Ciphers", "aes128-gcm@openssh.com")])
                           + [f"head -c {BYTES} /dev/zero"])
    return BYTES / 1e6 / wall


def connection_rate(server, ssh):
    args = server.client_args(ssh, [("KexAlgorithms", "curve25519-sha256")]) + ["true"]
    run_measured(args)
    start = time.perf_counter()
    for _ in range(CONNECTIONS):
        run_measured(args)
    return CONNECTIONS / (time.perf_counter() - start)


def idle_memory(server, ssh, pid):
    """Opens IDLE authenticated connections without a session (ssh -N); returns the growth
    of the server's resident memory, its child processes included."""
    before = rss_kib(pid)
    clients = [subprocess.Popen(server.client_args(ssh, []) + ["-N"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
               for _ in range(IDLE)]
    time.sleep(3 + IDLE * 0.05)
    grown = rss_kib(pid) - before
    for c in clients:
        c.terminate()
    for c in clients:
        c.wait()
    return grown


def main():
    if not os.path.exists(SEKURA_SSHD):
        raise SystemExit(f"{SEKURA_SSHD} is missing: run make first")
    ssh = shutil.which("ssh") or "/usr/bin/ssh"
    sshd = Sshd()
    ours = SekuraSshd(sshd)
    try:
        print("server: OpenSSH's ssh against sekura-sshd and against OpenSSH's sshd")
        a, b = throughput(ours, ssh), throughput(sshd, ssh)
        print(f"  throughput {BYTES >> 20} MiB aes128-gcm    sekura-sshd {a:8.1f} MB/s  "
              f"sshd {b:8.1f} MB/s  ratio {a / b:5.2f}")
        a, b = connection_rate(ours, ssh), connection_rate(sshd, ssh)
        print(f"  connections ({CONNECTIONS}, curve25519)      sekura-sshd {a:8.2f}/s     "
              f"sshd {b:8.2f}/s     ratio {a / b:5.2f}")
        a = idle_memory(ours, ssh, ours.proc.pid)
        b = idle_memory(sshd, ssh, sshd.proc.pid)
        print(f"  memory, {IDLE} idle connections        sekura-sshd {a / 1024:8.1f} MiB  "
              f"sshd {b / 1024:8.1f} MiB  ({a / IDLE:.0f} vs {b / IDLE:.0f} KiB each)")
    finally:
        ours.stop()
        sshd.stop()


if __name__ == "__main__":
    sys.exit(main())
