"""A real SMTP server for Portico's mail tests: aiosmtpd on loopback that
hands every accepted mail to Dovecot over LMTP, so replies land in the
recipient's mailbox and can be read back over IMAP.

Usage: relay.py LMTP_PORT   (prints "port N" once listening, then serves
until stdin closes). Recipients at refuse.test get a permanent 550, ones at
later.test a temporary 451: the outbox's failure paths against a real server.
"""
import smtplib
import socket
import sys

from aiosmtpd.controller import Controller


class ToLmtp:
    def __init__(self, lmtp_port):
        self.lmtp_port = lmtp_port

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        domain = address.rsplit("@", 1)[-1].lower()
        if domain == "refuse.test":
            return "550 5.1.1 no such mailbox here"
        if domain == "later.test":
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with smtplib.LMTP("127.0.0.1", self.lmtp_port) as lmtp:
            lmtp.sendmail(envelope.mail_from, envelope.rcpt_tos, envelope.original_content)
        return "250 OK delivered"


def main():
    lmtp_port = int(sys.argv[1])
    # aiosmtpd's Controller cannot listen on port 0: take a free port first.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(ToLmtp(lmtp_port), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"port {port}", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
