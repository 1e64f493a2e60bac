#!/usr/bin/env python3
"""Paramiko's client against a server under test, well-behaved or hostile.

Usage: paramiko_client.py PORT MODE [options]. Prints one result line on stdout and exits 0
when the server behaved as the mode expects:

  exec KEYFILE COMMAND [USER]
                             log in with the key (as USER, default alice), run COMMAND,
                             print "STDOUT <repr>", "STDERR <repr>" and "STATUS <code>"
  userauth-success           after key exchange, send USERAUTH_SUCCESS as a client; the
                             server must close the connection: prints "CLOSED"
  open-before-auth           open a session channel before authenticating: "CLOSED"
  window-overflow PASSWORD   log in, then send 4 MiB on a session whose window is 2 MiB:
                             "CLOSED"
"""

import socket
import sys
import time

import paramiko
from paramiko.common import cMSG_USERAUTH_SUCCESS
from paramiko.message import Message

USER = "alice"


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    t = paramiko.Transport(sock)
    t.start_client(timeout=10)
    return t


def wait_closed(t, seconds=10):
    deadline = time.time() + seconds
    while t.is_active() and time.time() < deadline:
        time.sleep(0.02)
    if t.is_active():
        print("STILL OPEN")
        sys.exit(1)
    print("CLOSED")


def main():
    port = int(sys.argv[1])
    mode = sys.argv[2]
    if mode == "exec":
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        user = sys.argv[5] if len(sys.argv) > 5 else USER
        client.connect("127.0.0.1", port=port, username=user, key_filename=sys.argv[3],
                       allow_agent=False, look_for_keys=False, timeout=10)
        _, stdout, stderr = client.exec_command(sys.argv[4], timeout=10)
        out = stdout.read()
        err = stderr.read()
        status = stdout.channel.recv_exit_status()
        print("STDOUT %r" % out.decode())
        print("STDERR %r" % err.decode())
        print("STATUS %d" % status)
        client.close()
    elif mode == "userauth-success":
        t = connect(port)
        m = Message()
        m.add_byte(cMSG_USERAUTH_SUCCESS)
        t._send_user_message(m)
        wait_closed(t)
    elif mode == "open-before-auth":
        t = connect(port)
        try:
            t.open_session(timeout=10)
            print("OPENED")
            sys.exit(1)
        except Exception:
            pass
        wait_closed(t)
    elif mode == "window-overflow":
        t = connect(port)
        t.auth_password(USER, sys.argv[3])
        chan = t.open_session(timeout=10)
        chan.exec_command("sleep 30")
        # Claim a window the server never granted, then use it.
        chan.out_window_size = 1 << 30
        try:
            chan.sendall(b"x" * (4 << 20))
        except Exception:
            pass
        wait_closed(t)
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
