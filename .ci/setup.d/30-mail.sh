# Mail servers for the email channel's tests (crates/portal/tests/mail_servers.rs):
# a private Dovecot (IMAP + LMTP) and aiosmtpd as the SMTP server, each started
# by the tests on loopback. Without them those tests would skip; here they must
# run, so a missing server fails them.
apt-get install -y -q dovecot-imapd dovecot-lmtpd python3-aiosmtpd
export PORTICO_REQUIRE_MAIL_SERVERS=1
