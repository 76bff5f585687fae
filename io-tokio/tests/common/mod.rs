//! The process harness shared by the tests that run the `m2msec` binary: temporary directories,
//! free ports, pipes collected by threads, servers started until their `listening:` lines, and
//! SIGTERM / SIGKILL. Each test binary uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_m2msec");
/// Bound on any single wait (process start, exit, one client operation).
pub(crate) const LIMIT: Duration = Duration::from_secs(20);

/// A directory removed on drop.
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    /// `m2msec-<test binary>-<name>-<pid>-<random>` in the system's temporary directory.
    pub(crate) fn new(name: &str) -> Self {
        let mut rnd = [0u8; 8];
        getrandom::getrandom(&mut rnd).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "m2msec-{}-{name}-{}-{}",
            env!("CARGO_CRATE_NAME"),
            std::process::id(),
            u64::from_le_bytes(rnd)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A port free on 127.0.0.1 for both TCP and UDP right now (for a server another file must name
/// before it starts, or one restarted on the same address).
pub(crate) fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Reads a child's pipe into a shared buffer.
pub(crate) fn collect(mut r: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = Arc::clone(&buf);
    thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = r.read(&mut chunk) {
            b.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

/// Sends a child's stdout lines to a channel.
pub(crate) fn lines(out: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

pub(crate) fn text(buf: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

/// Waits at most [`LIMIT`] for `child` to exit; kills it and fails if it does not.
pub(crate) fn wait_exit(child: &mut Child, what: &str) -> ExitStatus {
    let end = Instant::now() + LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Sends SIGTERM to `child`.
pub(crate) fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(ok.success(), "kill -TERM failed");
}

/// The outcome of one client command.
pub(crate) struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Waits for `child` (stdout and stderr piped) to exit and collects its whole output.
pub(crate) fn finish(mut child: Child, what: &str) -> Run {
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    let status = wait_exit(&mut child, what);
    // The readers drop their handle at EOF, which follows the exit.
    let end = Instant::now() + Duration::from_secs(2);
    while Arc::strong_count(&stdout) + Arc::strong_count(&stderr) > 2 && Instant::now() < end {
        thread::sleep(Duration::from_millis(5));
    }
    Run {
        code: status.code(),
        stdout: text(&stdout),
        stderr: text(&stderr),
    }
}

/// Spawns `m2msec <role> --config <config> [extra...]` with stdout and stderr piped.
fn spawn_role(role: &str, config: &Path, extra: &[&str]) -> Child {
    Command::new(BIN)
        .args([role, "--config"])
        .arg(config)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn m2msec {role}: {e}"))
}

/// A running `m2msec mef|maf|registrar` listening on TLS and DTLS; SIGKILLed when dropped.
pub(crate) struct Server {
    pub role: &'static str,
    pub child: Child,
    pub tls: SocketAddr,
    pub dtls: SocketAddr,
    /// stdout lines after the `listening:` ones.
    pub lines: mpsc::Receiver<String>,
    pub stderr: Arc<Mutex<Vec<u8>>>,
}

impl Server {
    /// Starts `m2msec <role> --config <config>` and waits for both `listening:` lines.
    pub(crate) fn start(role: &'static str, config: &Path) -> Self {
        let mut child = spawn_role(role, config, &[]);
        let stderr = collect(child.stderr.take().unwrap());
        let lines = lines(child.stdout.take().unwrap());
        let (mut tls, mut dtls) = (None, None);
        let end = Instant::now() + LIMIT;
        while tls.is_none() || dtls.is_none() {
            match lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some(a) = line.strip_prefix("listening: https://") {
                        tls = Some(a.parse().expect("TLS address"));
                    } else if let Some(a) = line.strip_prefix("listening: coaps://") {
                        dtls = Some(a.parse().expect("DTLS address"));
                    } else {
                        panic!("unexpected {role} output line {line:?}");
                    }
                }
                Err(_) => {
                    if let Some(status) = child.try_wait().unwrap() {
                        thread::sleep(Duration::from_millis(50));
                        panic!("m2msec {role} exited with {status}: {}", text(&stderr));
                    }
                    if Instant::now() >= end {
                        let _ = child.kill();
                        panic!("m2msec {role} did not listen: {}", text(&stderr));
                    }
                }
            }
        }
        Self {
            role,
            child,
            tls: tls.unwrap(),
            dtls: dtls.unwrap(),
            lines,
            stderr,
        }
    }

    pub(crate) fn https(&self) -> String {
        format!("https://127.0.0.1:{}", self.tls.port())
    }

    pub(crate) fn coaps(&self) -> String {
        format!("coaps://127.0.0.1:{}", self.dtls.port())
    }

    /// The next stdout line (a registrar event).
    pub(crate) fn next_line(&self) -> String {
        self.lines.recv_timeout(LIMIT).unwrap_or_else(|_| {
            panic!(
                "no line from m2msec {} within {LIMIT:?}: {}",
                self.role,
                text(&self.stderr)
            )
        })
    }

    /// Fails if a line arrives within `wait`.
    pub(crate) fn no_line(&self, wait: Duration) {
        if let Ok(line) = self.lines.recv_timeout(wait) {
            panic!("unexpected m2msec {} line {line:?}", self.role);
        }
    }

    /// Sends SIGTERM, checks nothing was printed as an error and returns the exit status.
    pub(crate) fn sigterm_status(mut self) -> ExitStatus {
        sigterm(&self.child);
        let what = format!("m2msec {} after SIGTERM", self.role);
        let status = wait_exit(&mut self.child, &what);
        thread::sleep(Duration::from_millis(50)); // let the stderr reader drain
        let err = text(&self.stderr);
        assert!(!err.contains("error:"), "{what}: {err}");
        status
    }

    /// Sends SIGTERM, checks the exit status is 0 and nothing was printed as an error.
    pub(crate) fn sigterm(self) {
        let what = format!("m2msec {} after SIGTERM", self.role);
        let status = self.sigterm_status();
        assert_eq!(status.code(), Some(0), "{what}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `m2msec mef|maf` listening on TLS only, logging warnings only, to be SIGKILLed;
/// SIGKILLed when dropped too.
pub(crate) struct KillProc {
    role: &'static str,
    child: Child,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl KillProc {
    /// Starts `m2msec <role>` and waits for its `listening: https://ADDR` line.
    pub(crate) fn start(role: &'static str, config: &Path) -> Self {
        let mut child = spawn_role(role, config, &["--log", "warn"]);
        let stderr = collect(child.stderr.take().unwrap());
        let rx = lines(child.stdout.take().unwrap());
        let mut p = Self {
            role,
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            stderr,
        };
        let end = Instant::now() + LIMIT;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(line) => {
                    if let Some(a) = line.strip_prefix("listening: https://") {
                        p.addr = a.parse().expect("listening address");
                        return p;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(status) = p.child.try_wait().unwrap() {
                        panic!(
                            "m2msec {role} exited with {status} before listening: {}",
                            p.stderr()
                        );
                    }
                    assert!(
                        Instant::now() < end,
                        "m2msec {role} did not listen: {}",
                        p.stderr()
                    );
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = p.child.wait();
                    panic!("m2msec {role} closed stdout: {}", p.stderr());
                }
            }
        }
    }

    pub(crate) fn stderr(&self) -> String {
        text(&self.stderr)
    }

    /// SIGKILL (what `Child::kill` sends on Unix), then reaps the process.
    pub(crate) fn sigkill(mut self) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert!(
            !status.success(),
            "killed {} exited successfully",
            self.role.to_uppercase()
        );
    }
}

impl Drop for KillProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// An interactive child (stdin piped): the client/server tests of cli.rs and cli_cert.rs

/// A child process whose output is collected by threads; killed when dropped.
pub(crate) struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

pub(crate) fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + LIMIT;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

impl Proc {
    pub(crate) fn spawn_cmd(program: &str, args: &[&str]) -> Self {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Self {
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
        }
    }

    pub(crate) fn spawn(args: &[&str]) -> Self {
        Self::spawn_cmd(BIN, args)
    }

    pub(crate) fn stdout(&self) -> Vec<u8> {
        self.stdout.lock().unwrap().clone()
    }

    pub(crate) fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout()).into_owned()
    }

    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// The complete lines of stderr that start with `prefix`.
    pub(crate) fn stderr_lines(&self, prefix: &str) -> Vec<String> {
        self.stderr()
            .split_inclusive('\n')
            .filter_map(|l| l.strip_suffix('\n'))
            .filter(|l| l.starts_with(prefix))
            .map(String::from)
            .collect()
    }

    pub(crate) fn wait_stdout(&self, needle: &[u8]) {
        wait_until("stdout data", || {
            self.stdout().windows(needle.len()).any(|w| w == needle)
        });
    }

    /// The port from the server's `listening:` line (once the whole line is out: stderr is
    /// unbuffered and a line may arrive in pieces).
    pub(crate) fn port(&self) -> u16 {
        let port = || {
            let err = self.stderr();
            let rest = &err[err.find("listening: ")?..];
            let line = &rest[..rest.find('\n')?];
            line.rsplit(':').next()?.parse().ok()
        };
        wait_until("listening line", || port().is_some());
        port().unwrap()
    }

    pub(crate) fn send(&mut self, data: &[u8]) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(data).unwrap();
        stdin.flush().unwrap();
    }

    pub(crate) fn close_stdin(&mut self) {
        self.stdin = None;
    }

    pub(crate) fn wait(&mut self) -> ExitStatus {
        let end = Instant::now() + LIMIT;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                // let the collector threads catch up
                thread::sleep(Duration::from_millis(50));
                return s;
            }
            assert!(
                Instant::now() < end,
                "process did not exit; stderr: {}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for exit code 1 with exactly one `error:` line containing `cause`.
    pub(crate) fn expect_error(&mut self, cause: &str) {
        let status = self.wait();
        let errors = self.stderr_lines("error: ");
        assert_eq!(status.code(), Some(1), "stderr: {}", self.stderr());
        assert_eq!(errors.len(), 1, "stderr: {}", self.stderr());
        assert!(
            errors[0].contains(cause),
            "want {cause:?}, got {:?}",
            errors[0]
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
