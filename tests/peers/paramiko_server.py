#!/usr/bin/env python3
"""A small Paramiko SSH server: a second, independent SSH implementation for Sekura's tests.

Used by tests/paramiko_server.rs. It listens on 127.0.0.1 and prints "PORT <n>" then
"HOSTKEY <SHA256 fingerprint>" on stdout, one line each, flushed. It exits when its stdin
closes, on SIGTERM or on SIGINT.

Authentication:
  - keyboard-interactive (RFC 4256): round 1 asks ("Password: ", no echo) and ("Code: ", echo)
    under name "sekura-test" and instruction "answer both"; the answers "secret", "1234" lead
    to round 2, one prompt ("Again: ", no echo); the answer "ok" succeeds. Anything else fails.
  - password: alice / pw.
Each session channel accepts "exec" of any command, runs nothing, writes back
"ran: <command>\\n", sends exit status 7 and closes the channel.

Usage: paramiko_server.py [--port N] [--log FILE] [--host-key FILE]
  --port 0 (the default) picks a free port. --log writes Paramiko's DEBUG log to FILE.
  --host-key loads an RSA private key file; otherwise a 2048-bit RSA key is generated.
"""

import argparse
import logging
import os
import signal
import socket
import sys
import threading

try:
    import paramiko
    from paramiko.common import cMSG_CHANNEL_SUCCESS
except ImportError as e:  # pragma: no cover - reported to the Rust test through stderr
    sys.stderr.write(f"paramiko is missing ({e}): run `python3 -m pip install paramiko`\n")
    sys.exit(3)

USER = "alice"
PASSWORD = "pw"
ROUND1_ANSWERS = ["secret", "1234"]
ROUND2_ANSWERS = ["ok"]

log = logging.getLogger("sekura.paramiko_server")


class Server(paramiko.ServerInterface):
    """Per-connection server state (Paramiko calls these from its transport thread)."""

    def __init__(self):
        self.round = 0
        # Set once an exec request was accepted; the connection thread then answers it.
        self.exec_event = threading.Event()
        self.command = None
        # Set once Paramiko has sent CHANNEL_SUCCESS for the exec request (see Transport).
        self.exec_reply_sent = threading.Event()
        self.exec_reply_pending = False

    def get_allowed_auths(self, username):
        return "keyboard-interactive,password"

    def check_auth_password(self, username, password):
        if username == USER and password == PASSWORD:
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_auth_interactive(self, username, submethods):
        log.info("keyboard-interactive for %r, submethods %r", username, submethods)
        self.round = 1
        query = paramiko.InteractiveQuery("sekura-test", "answer both")
        query.add_prompt("Password: ", False)
        query.add_prompt("Code: ", True)
        return query

    def check_auth_interactive_response(self, responses):
        log.info("round %d responses %r", self.round, responses)
        if self.round == 1 and list(responses) == ROUND1_ANSWERS:
            self.round = 2
            query = paramiko.InteractiveQuery("sekura-test", "one more")
            query.add_prompt("Again: ", False)
            return query
        if self.round == 2 and list(responses) == ROUND2_ANSWERS:
            self.round = 0
            return paramiko.AUTH_SUCCESSFUL
        self.round = 0
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel, command):
        if self.exec_event.is_set():
            return False  # one command per connection is all the tests need
        self.command = command.decode("utf-8", "replace")
        self.exec_reply_pending = True
        self.exec_event.set()
        return True

    def check_channel_pty_request(self, *args):
        return False

    def check_channel_shell_request(self, channel):
        return False


class Transport(paramiko.Transport):
    """Notes when the reply to an exec request leaves, so the answer follows it on the wire.

    Paramiko sends CHANNEL_SUCCESS from its own thread after check_channel_exec_request
    returns; without this the command's output and CHANNEL_CLOSE could race ahead of it.
    """

    def _send_user_message(self, data):
        super()._send_user_message(data)
        server = self.server_object
        raw = data.asbytes() if hasattr(data, "asbytes") else bytes(data)
        if (
            isinstance(server, Server)
            and server.exec_reply_pending
            and raw[:1] == cMSG_CHANNEL_SUCCESS
        ):
            server.exec_reply_pending = False
            server.exec_reply_sent.set()


def serve_connection(sock, addr, host_key):
    transport = Transport(sock)
    transport.add_server_key(host_key)
    server = Server()
    try:
        transport.start_server(server=server)
        channel = transport.accept(30)
        if channel is None:
            log.info("%s: no channel opened", addr)
            return
        if not server.exec_event.wait(30) or not server.exec_reply_sent.wait(30):
            log.info("%s: no exec request", addr)
            return
        channel.sendall(f"ran: {server.command}\n".encode())
        channel.send_exit_status(7)
        channel.shutdown_write()
        channel.close()
        # Let the client read everything and close the connection itself.
        transport.join(30)
    except Exception:  # log and keep serving other connections
        log.exception("%s: connection failed", addr)
    finally:
        transport.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log")
    parser.add_argument("--host-key")
    args = parser.parse_args()

    if args.log:
        paramiko.util.log_to_file(args.log, level=logging.DEBUG)
        logging.getLogger("sekura").setLevel(logging.DEBUG)
        handler = logging.FileHandler(args.log)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logging.getLogger("sekura").addHandler(handler)

    if args.host_key:
        host_key = paramiko.RSAKey.from_private_key_file(args.host_key)
    else:
        host_key = paramiko.RSAKey.generate(2048)

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(16)

    def stop(*_):
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def watch_stdin():
        # The test holds our stdin open; when it ends (or dies), so do we.
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()

    print(f"PORT {listener.getsockname()[1]}", flush=True)
    print(f"HOSTKEY {host_key.fingerprint}", flush=True)
    log.info("listening on %s", listener.getsockname())

    while True:
        sock, addr = listener.accept()
        threading.Thread(
            target=serve_connection, args=(sock, addr, host_key), daemon=True
        ).start()


if __name__ == "__main__":
    main()
