//! systemd's service notification protocol (sd_notify(3)), without libsystemd.
//!
//! The service manager passes a Unix datagram socket in `$NOTIFY_SOCKET` (a path, or an abstract
//! name written with a leading `@`); each datagram is one or more `KEY=VALUE` lines. avsepd sends
//! `READY=1` once it has started, `STATUS=...` (one line for `systemctl status`), `WATCHDOG=1`
//! keep-alives when `$WATCHDOG_USEC` asks for them, and `STOPPING=1` when a graceful stop begins.
//! Without `$NOTIFY_SOCKET` (not under systemd, or `Type=simple`) every call is a no-op.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Sends notifications to the service manager, or nothing when there is none.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// The socket named by `$NOTIFY_SOCKET`; disabled (with a warning) when it is unusable.
    pub fn from_env() -> Notifier {
        let Some(name) = std::env::var_os("NOTIFY_SOCKET") else {
            return Notifier::disabled();
        };
        match Notifier::connect(&name) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(
                    "NOTIFY_SOCKET `{}` is unusable, not notifying systemd: {e}",
                    name.to_string_lossy()
                );
                Notifier::disabled()
            }
        }
    }

    /// A notifier that sends nothing.
    pub fn disabled() -> Notifier {
        Notifier { target: None }
    }

    /// Notify the socket `name`: an absolute path, or `@name` for an abstract socket.
    pub fn connect(name: &OsStr) -> io::Result<Notifier> {
        let bytes = name.as_bytes();
        let addr = match bytes.first() {
            Some(b'/') => SocketAddr::from_pathname(name)?,
            Some(b'@') => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(&bytes[1..])?
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "expected an absolute path or an abstract name starting with '@'",
                ));
            }
        };
        let socket = UnixDatagram::unbound()?;
        Ok(Notifier {
            target: Some((socket, addr)),
        })
    }

    /// True when notifications go somewhere.
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Send `state` (`KEY=VALUE` lines) as one datagram; Ok without a socket.
    pub fn send(&self, state: &str) -> io::Result<()> {
        let Some((socket, addr)) = &self.target else {
            return Ok(());
        };
        let n = socket.send_to_addr(state.as_bytes(), addr)?;
        if n != state.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "notification datagram truncated",
            ));
        }
        Ok(())
    }

    /// `READY=1` with a status line.
    pub fn ready(&self, status: &str) -> io::Result<()> {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)))
    }

    /// `STATUS=...`, shown by `systemctl status`.
    pub fn status(&self, status: &str) -> io::Result<()> {
        self.send(&format!("STATUS={}", one_line(status)))
    }

    /// `WATCHDOG=1`: the daemon's loop is alive.
    pub fn watchdog(&self) -> io::Result<()> {
        self.send("WATCHDOG=1")
    }

    /// `STOPPING=1` with a status line: a graceful stop has begun.
    pub fn stopping(&self, status: &str) -> io::Result<()> {
        self.send(&format!("STOPPING=1\nSTATUS={}", one_line(status)))
    }
}

/// A status value may not span lines (each line is a separate assignment).
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, when it is set for this process
/// (`$WATCHDOG_PID` absent or equal to our pid); None when no watchdog is expected.
pub fn watchdog_ping_interval() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    ping_interval(usec.as_deref(), pid.as_deref(), std::process::id())
}

fn ping_interval(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(own_pid)
    {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    Some(Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    fn recv(socket: &UnixDatagram) -> String {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).expect("a datagram");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn sends_each_message_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::connect(path.as_os_str()).unwrap();
        assert!(n.is_enabled());
        n.ready("1 stream: door waiting for data").unwrap();
        assert_eq!(
            recv(&server),
            "READY=1\nSTATUS=1 stream: door waiting for data"
        );
        n.status("two\nlines").unwrap();
        assert_eq!(recv(&server), "STATUS=two lines");
        n.watchdog().unwrap();
        assert_eq!(recv(&server), "WATCHDOG=1");
        n.stopping("stopping").unwrap();
        assert_eq!(recv(&server), "STOPPING=1\nSTATUS=stopping");
    }

    #[test]
    fn abstract_names_start_with_at() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("avsepd-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier::connect(OsStr::new(&format!("@{name}"))).unwrap();
        n.watchdog().unwrap();
        assert_eq!(recv(&server), "WATCHDOG=1");
    }

    #[test]
    fn disabled_and_bad_names() {
        let n = Notifier::disabled();
        assert!(!n.is_enabled());
        n.ready("x").unwrap();
        assert!(Notifier::connect(OsStr::new("relative/sock")).is_err());
        assert!(Notifier::connect(OsStr::new("")).is_err());
        // A socket nobody listens on is an error to report, not a panic.
        let dir = tempfile::tempdir().unwrap();
        let n = Notifier::connect(dir.path().join("absent").as_os_str()).unwrap();
        assert!(n.watchdog().is_err());
    }

    #[test]
    fn watchdog_interval_is_half_the_period_for_our_pid() {
        let half = Some(Duration::from_millis(500));
        assert_eq!(ping_interval(Some("1000000"), None, 7), half);
        assert_eq!(ping_interval(Some("1000000"), Some("7"), 7), half);
        assert_eq!(ping_interval(Some("1000000"), Some("8"), 7), None);
        assert_eq!(ping_interval(Some("0"), None, 7), None);
        assert_eq!(ping_interval(Some("soon"), None, 7), None);
        assert_eq!(ping_interval(None, None, 7), None);
    }
}
