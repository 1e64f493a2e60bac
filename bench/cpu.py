#!/usr/bin/env python3
"""Process CPU per GiB and context switches, from the kernel's accounting (wait4's rusage,
what /usr/bin/time -v reports), for sekura-ssh against ssh and for sekura-sshd against
sshd's whole process tree, in one run, the two programs alternating; then threads and
resident memory per idle connection on sekura-sshd.

    python3 bench/cpu.py [BUILD_DIR ...]

Each BUILD_DIR holds bin/sekura-ssh and bin/sekura-sshd (default: build/); give two to
compare builds (before and after a change) in the same run. BENCH_BYTES (default 1 GiB),
BENCH_ROUNDS (default 3, medians reported) and BENCH_CIPHERS (comma-separated) tune it.
"""

import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

from run import BYTES, Sshd, free_port
from server import rss_kib, wait_for_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
IDLE = int(os.environ.get("BENCH_IDLE", "100"))
CIPHERS = os.environ.get(
    "BENCH_CIPHERS", "aes128-gcm@openssh.com,chacha20-poly1305@openssh.com").split(",")
GIB = float(1 << 30)


def measured(args, **kwargs):
    """Runs `args` to completion: (wall s, user+sys CPU s, involuntary, voluntary switches)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, **kwargs)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{args[0]} failed with status {status}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_nivcsw, usage.ru_nvcsw


def load():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


class Server:
    """A server started for one measurement: its rusage covers its whole life, threads that
    ended and reaped children (the session's command, sshd's per-connection processes)."""

    def __init__(self, args, port):
        self.port = port
        self.proc = subprocess.Popen(args, stderr=subprocess.DEVNULL)
        wait_for_port(port)

    def finish(self):
        self.proc.send_signal(signal.SIGTERM)
        _, _, usage = os.wait4(self.proc.pid, 0)
        return usage.ru_utime + usage.ru_stime, usage.ru_nivcsw, usage.ru_nvcsw


def sekura_sshd(build, sshd):
    port = free_port()
    return Server([os.path.join(build, "bin", "sekura-sshd"), "-p", str(port), "-h",
                   sshd.host_key, "-o",
                   f"AuthorizedKeysFile={os.path.join(sshd.dir, 'authorized_keys')}",
                   "-o", f"MaxUnauthenticated={IDLE + 50}"], port)


def openssh_sshd(sshd):
    port = free_port()
    config = os.path.join(sshd.dir, "sshd_config")
    return Server(["/usr/sbin/sshd", "-D", "-e", "-f", config, "-o", f"Port={port}"], port)


def client_args(sshd, program, port, cipher):
    """The client's command line for a transfer from the server on `port`, which serves
    sshd's host key: known_hosts learns that port first."""
    with open(sshd.host_key + ".pub") as f:
        kind, blob = f.read().split()[:2]
    with open(sshd.known_hosts, "a") as f:
        f.write(f"[127.0.0.1]:{port} {kind} {blob}\n")
    args = sshd.client_args(program, [("Ciphers", cipher)])
    args[args.index("-p") + 1] = str(port)
    return args + [f"head -c {BYTES} /dev/zero"]


def row(label, samples):
    wall = statistics.median(s[0] for s in samples)
    cpu = statistics.median(s[1] for s in samples) * GIB / BYTES
    inv = statistics.median(s[2] for s in samples)
    vol = statistics.median(s[3] for s in samples)
    print(f"    {label:34} CPU {cpu:6.2f} s/GiB  wall {wall:6.2f} s  "
          f"involuntary {inv:8.0f}  voluntary {vol:8.0f}")
    return cpu


def label(build):
    """A build's name in the report: its directory and the one above (two builds are often
    both called build/)."""
    return os.path.join(*build.split(os.sep)[-2:])


def main():
    builds = [os.path.abspath(b) for b in sys.argv[1:]] or [os.path.join(ROOT, "build")]
    ssh = shutil.which("ssh") or "/usr/bin/ssh"
    sshd = Sshd()
    print(f"{BYTES >> 20} MiB of zeros, median of {ROUNDS} rounds; load average {load()}")
    try:
        for cipher in CIPHERS:
            print(f"  client, {cipher}, against the same sshd (port {sshd.port})")
            samples = {b: [] for b in builds + ["ssh"]}
            for _ in range(ROUNDS):
                for b in builds:
                    program = os.path.join(b, "bin", "sekura-ssh")
                    samples[b].append(measured(client_args(sshd, program, sshd.port, cipher)))
                samples["ssh"].append(measured(client_args(sshd, ssh, sshd.port, cipher)))
            theirs = row("ssh", samples["ssh"])
            for b in builds:
                ours = row(f"sekura-ssh {label(b)}", samples[b])
                print(f"    {'':34} ratio to ssh {ours / theirs:5.2f}")

            print(f"  server, {cipher}, OpenSSH's ssh as the client")
            samples = {b: [] for b in builds + ["sshd"]}
            for _ in range(ROUNDS):
                for b in builds + ["sshd"]:
                    server = openssh_sshd(sshd) if b == "sshd" else sekura_sshd(b, sshd)
                    wall, _, _, _ = measured(client_args(sshd, ssh, server.port, cipher))
                    cpu, inv, vol = server.finish()
                    samples[b].append((wall, cpu, inv, vol))
            theirs = row("sshd (process tree)", samples["sshd"])
            for b in builds:
                ours = row(f"sekura-sshd {label(b)}", samples[b])
                print(f"    {'':34} ratio to sshd {ours / theirs:5.2f}")
        print(f"  sekura-sshd holding {IDLE} idle authenticated connections (ssh -N)")
        for b in builds:
            server = sekura_sshd(b, sshd)
            pid = server.proc.pid
            rss, threads = rss_kib(pid), len(os.listdir(f"/proc/{pid}/task"))
            args = client_args(sshd, ssh, server.port, CIPHERS[0])[:-1] + ["-N"]
            clients = [subprocess.Popen(args, stdin=subprocess.DEVNULL) for _ in range(IDLE)]
            time.sleep(3 + IDLE * 0.05)
            grown = rss_kib(pid) - rss
            more = len(os.listdir(f"/proc/{pid}/task")) - threads
            for c in clients:
                c.terminate()
            for c in clients:
                c.wait()
            server.finish()
            print(f"    {os.path.basename(b):34} {grown / IDLE:6.0f} KiB and "
                  f"{more / IDLE:4.1f} threads per connection")
    finally:
        sshd.stop()


if __name__ == "__main__":
    sys.exit(main())
