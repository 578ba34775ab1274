"""A real SMTP server that keeps what portal-core sends: aiosmtpd on
loopback writing each accepted mail, once per recipient, to DIR as
NNNNNN.eml with a `Delivered-To:` header first (as a mailbox would), so the
browser tests read the invitation mail that was actually delivered.

Usage: mail-sink.py DIR   (prints "port N" once listening, then serves until
it is terminated). Started by scripts/portal-run.
"""
import itertools
import os
import signal
import socket
import sys

from aiosmtpd.controller import Controller


class ToFiles:
    def __init__(self, directory):
        self.directory = directory
        self.numbers = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        for rcpt in envelope.rcpt_tos:
            name = f"{next(self.numbers):06d}.eml"
            tmp = os.path.join(self.directory, "." + name)
            with open(tmp, "wb") as f:
                f.write(f"Delivered-To: {rcpt}\r\n".encode())
                f.write(envelope.original_content)
            # Whole files only: readers never see a mail half-written.
            os.rename(tmp, os.path.join(self.directory, name))
        return "250 OK kept"


def main():
    directory = sys.argv[1]
    os.makedirs(directory, exist_ok=True)
    # aiosmtpd's Controller cannot listen on port 0: take a free port first.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(ToFiles(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"port {port}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
