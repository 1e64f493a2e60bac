#!/usr/bin/env python3
"""Sekura's client against OpenSSH's client, both talking to the same private sshd.

Prints, for each case, MB/s or connections per second and client CPU for both, and the
ratio ours/OpenSSH. Run through `make bench`; needs build/bin/sekura-ssh and OpenSSH.
"""

import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEKURA_SSH = os.path.join(ROOT, "build", "bin", "sekura-ssh")
BYTES = int(os.environ.get("BENCH_BYTES", str(1 << 30)))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "30"))
CIPHERS = [
    ("aes128-gcm@openssh.com", None),
    ("chacha20-poly1305@openssh.com", None),
    ("aes128-ctr", "hmac-sha2-256-etm@openssh.com"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sshd:
    """A private sshd on a free loopback port with its own keys and config."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sekura-bench-")
        self.port = free_port()
        self.user = subprocess.check_output(["id", "-un"], text=True).strip()
        keygen = lambda path, kind: subprocess.check_call(
            ["ssh-keygen", "-q", "-N", "", "-t", kind, "-f", path])
        self.host_key = os.path.join(self.dir, "host_ed25519")
        self.user_key = os.path.join(self.dir, "id_ed25519")
        keygen(self.host_key, "ed25519")
        keygen(self.user_key, "ed25519")
        shutil.copy(self.user_key + ".pub", os.path.join(self.dir, "authorized_keys"))
        with open(self.host_key + ".pub") as f:
            host_pub = f.read().split()
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        with open(self.known_hosts, "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        config = os.path.join(self.dir, "sshd_config")
        with open(config, "w") as f:
            f.write("\n".join([
                "ListenAddress 127.0.0.1", f"Port {self.port}", f"HostKey {self.host_key}",
                f"PidFile {self.dir}/sshd.pid", f"AuthorizedKeysFile {self.dir}/authorized_keys",
                "StrictModes no", "UsePAM no", "PermitRootLogin yes", "PrintMotd no",
                "PrintLastLog no", "MaxStartups 100", "LogLevel ERROR", "Compression yes", ""]))
        os.makedirs("/run/sshd", exist_ok=True)
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", config],
                                     stderr=open(os.path.join(self.dir, "sshd.log"), "w"))
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("sshd did not start; see " + self.dir)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def client_args(self, program, options):
        args = [program, "-F", "none", "-p", str(self.port), "-l", self.user, "-i", self.user_key,
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"]
        if program.endswith("/ssh"):
            args += ["-o", "GlobalKnownHostsFile=/dev/null", "-o", "UpdateHostKeys=no",
                     "-o", "ControlMaster=no", "-o", "IdentityAgent=none"]
        for key, value in options:
            args += ["-o", f"{key}={value}"]
        return args + ["127.0.0.1"]


def run_measured(args):
    """Runs a client to completion; returns wall seconds and its CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def throughput(sshd, program, cipher, mac, extra=(), command=None):
    options = [("Ciphers", cipher)] + ([("MACs", mac)] if mac else []) + list(extra)
    command = command or f"head -c {BYTES} /dev/zero"
    wall, _ = run_measured(sshd.client_args(program, options) + [command])
    return BYTES / 1e6 / wall


def connections(sshd, program, kex):
    args = sshd.client_args(program, [("KexAlgorithms", kex)]) + ["true"]
    run_measured(args)  # warm up
    total_wall = total_cpu = 0.0
    for _ in range(CONNECTIONS):
        wall, cpu = run_measured(args)
        total_wall += wall
        total_cpu += cpu
    return CONNECTIONS / total_wall, total_cpu / CONNECTIONS * 1000


def main():
    if not os.path.exists(SEKURA_SSH):
        raise SystemExit(f"{SEKURA_SSH} is missing: run make first")
    ssh = shutil.which("ssh") or "/usr/bin/ssh"
    sshd = Sshd()
    try:
        print(f"throughput: reading {BYTES >> 20} MiB of zeros (MB/s, higher is better)")
        for cipher, mac in CIPHERS:
            ours = throughput(sshd, SEKURA_SSH, cipher, mac)
            theirs = throughput(sshd, ssh, cipher, mac)
            label = cipher + (f" + {mac}" if mac else "")
            print(f"  {label:55} sekura {ours:8.1f}  openssh {theirs:8.1f}  ratio {ours / theirs:5.2f}")
        gcm = "aes128-gcm@openssh.com"
        print("cost of rekeying (aes128-gcm, MB/s)")
        plain = throughput(sshd, SEKURA_SSH, gcm, None)
        rekeyed = throughput(sshd, SEKURA_SSH, gcm, None, [("RekeyLimit", "64M")])
        theirs = throughput(sshd, ssh, gcm, None, [("RekeyLimit", "64M")])
        print(f"  sekura no limit {plain:8.1f}  sekura RekeyLimit=64M {rekeyed:8.1f}  "
              f"openssh RekeyLimit=64M {theirs:8.1f}  ratio {rekeyed / theirs:5.2f}")
        text = f"yes 'the quick brown fox jumps over the lazy dog' | head -c {BYTES}"
        print("compression on a text stream (aes128-gcm, MB/s)")
        row = []
        for program in (SEKURA_SSH, ssh):
            for on in ("no", "yes"):
                row.append(throughput(sshd, program, gcm, None, [("Compression", on)], text))
        print(f"  sekura off {row[0]:8.1f} on {row[1]:8.1f}   openssh off {row[2]:8.1f} on {row[3]:8.1f}"
              f"   ratio on {row[1] / row[3]:5.2f}")
        print(f"sequential connections: connect, kex, publickey auth, exec true, close ({CONNECTIONS} each)")
        for kex in ["curve25519-sha256", "sntrup761x25519-sha512@openssh.com"]:
            try:
                ours = connections(sshd, SEKURA_SSH, kex)
            except subprocess.CalledProcessError:
                print(f"  {kex:40} not supported by sekura yet")
                continue
            theirs = connections(sshd, ssh, kex)
            print(f"  {kex:40} sekura {ours[0]:6.2f}/s {ours[1]:6.1f} ms CPU   "
                  f"openssh {theirs[0]:6.2f}/s {theirs[1]:6.1f} ms CPU   "
                  f"rate ratio {ours[0] / theirs[0]:5.2f}  CPU ratio {ours[1] / theirs[1]:5.2f}")
    finally:
        sshd.stop()


if __name__ == "__main__":
    sys.exit(main())
