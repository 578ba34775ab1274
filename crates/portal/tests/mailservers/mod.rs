//! Real mail servers on loopback for tests: a private Dovecot (IMAP + LMTP)
//! and an aiosmtpd SMTP server delivering into it (`relay.py`). Each test
//! starts its own on free ports in a temp folder and stops them on drop.
//!
//! When the servers are not installed the tests skip with a loud message,
//! except under CI (`CI` or `PORTICO_REQUIRE_MAIL_SERVERS` set), where a
//! missing server is a failure: `.ci/setup.d/30-mail.sh` installs them.
#![allow(dead_code)] // shared by the tests and the benchmark, each using a part

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const PASSWORD: &str = "pw";

pub struct MailServers {
    pub imap_port: u16,
    pub lmtp_port: u16,
    pub smtp_port: u16,
    // Field order is drop order: the relay, then Dovecot, then the folder.
    relay: Stopped,
    dovecot: Stopped,
    dir: tempfile::TempDir,
}

/// A server process stopped (SIGTERM, then reaped) when dropped, also when a
/// test panics half-way through starting the servers: none is left running.
struct Stopped(Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        // SIGTERM: Dovecot's master stops its children too (SIGKILL would
        // orphan them); Python exits on it.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

fn dovecot_binary() -> Option<PathBuf> {
    ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Debian's python (where python3-aiosmtpd installs), else whatever is on PATH.
fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn have_aiosmtpd() -> bool {
    Command::new(python())
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, what: &str, log: &Path) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{what} did not listen on port {port}; log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

impl MailServers {
    /// Starts the servers, or `None` (after a loud skip message) when they
    /// are not installed outside CI.
    pub fn start() -> Option<MailServers> {
        let (Some(dovecot), true) = (dovecot_binary(), have_aiosmtpd()) else {
            let msg = "dovecot (dovecot-imapd, dovecot-lmtpd) or python3-aiosmtpd is not installed";
            if std::env::var_os("CI").is_some()
                || std::env::var_os("PORTICO_REQUIRE_MAIL_SERVERS").is_some()
            {
                panic!(
                    "{msg}; CI must run the mail-server tests (.ci/setup.d/30-mail.sh installs them)"
                );
            }
            // Straight to stderr, past the test harness's capture: a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!!!!! SKIPPED: {msg}; mail-server tests did not run !!!!!!!!\n"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // Dovecot's processes run as `mail` and `dovenull`: they must reach the folder.
        set_mode(root, 0o755);
        let mail = root.join("mail");
        std::fs::create_dir_all(&mail).unwrap();
        chown_to_mail(&mail);
        let (imap_port, lmtp_port) = (free_port(), free_port());
        std::fs::write(root.join("passwd"), "").unwrap();
        let log = root.join("dovecot.log");
        let conf = format!(
            r#"base_dir = {root}/run
state_dir = {root}/state
log_path = {log}
ssl = no
listen = 127.0.0.1
protocols = imap lmtp
first_valid_uid = 8
first_valid_gid = 8
default_login_user = dovenull
default_internal_user = dovecot
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
lmtp_save_to_detail_mailbox = no
recipient_delimiter = +
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid=mail gid=mail home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
service anvil {{
  chroot =
}}
"#,
            root = root.display(),
            log = log.display(),
        );
        let conf_path = root.join("dovecot.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let dovecot = Stopped(
            Command::new(dovecot)
                .arg("-F")
                .arg("-c")
                .arg(&conf_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(root.join("dovecot.stderr")).unwrap())
                .spawn()
                .expect("starting dovecot"),
        );
        wait_for_port(imap_port, "dovecot IMAP", &log);
        wait_for_port(lmtp_port, "dovecot LMTP", &log);
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mailservers/relay.py");
        let mut relay = Stopped(
            Command::new(python())
                .arg(script)
                .arg(lmtp_port.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(root.join("relay.log")).unwrap())
                .spawn()
                .expect("starting the aiosmtpd relay"),
        );
        let mut line = String::new();
        BufReader::new(relay.0.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let smtp_port: u16 = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("relay did not report its port: {line:?}"));
        Some(MailServers {
            imap_port,
            lmtp_port,
            smtp_port,
            dovecot,
            relay,
            dir,
        })
    }

    /// Adds a mailbox user (address = login).
    pub fn add_user(&self, address: &str) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("passwd"))
            .unwrap();
        writeln!(f, "{address}:{{PLAIN}}{PASSWORD}").unwrap();
    }

    /// Delivers raw mail into `to`'s mailbox over LMTP (as the MX would).
    pub fn deliver(&self, to: &str, raw: &[u8]) {
        deliver_many(self.lmtp_port, to, std::iter::once(raw.to_vec()));
    }
}

/// Delivers several mails over one LMTP session.
pub fn deliver_many(lmtp_port: u16, to: &str, mails: impl IntoIterator<Item = Vec<u8>>) {
    let stream = std::net::TcpStream::connect(("127.0.0.1", lmtp_port)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut w = stream;
    let expect = |reader: &mut BufReader<std::net::TcpStream>, code: &str| {
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert!(
                line.starts_with(code),
                "LMTP: expected {code}, got {line:?}"
            );
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
    };
    expect(&mut reader, "220");
    write!(w, "LHLO test\r\n").unwrap();
    expect(&mut reader, "250");
    for raw in mails {
        write!(
            w,
            "MAIL FROM:<sender@mail.test>\r\nRCPT TO:<{to}>\r\nDATA\r\n"
        )
        .unwrap();
        expect(&mut reader, "250");
        expect(&mut reader, "250");
        expect(&mut reader, "354");
        let text = String::from_utf8_lossy(&raw).replace("\r\n", "\n");
        for line in text.split('\n') {
            if line.starts_with('.') {
                w.write_all(b".").unwrap();
            }
            w.write_all(line.as_bytes()).unwrap();
            w.write_all(b"\r\n").unwrap();
        }
        w.write_all(b".\r\n").unwrap();
        expect(&mut reader, "250");
    }
    write!(w, "QUIT\r\n").unwrap();
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown_to_mail(p: &Path) {
    let ok = Command::new("chown")
        .arg("mail:mail")
        .arg(p)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "chown mail:mail {} (tests run as root, as in CI)",
        p.display()
    );
}
