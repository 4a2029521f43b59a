//! Running the real `haul` binary from tests: a sandbox directory, a command
//! builder, a running child that can be killed or signalled, and its outcome.
//!
//! Children write stdout/stderr to files (no pipe can fill up and block
//! them), always run with proxies cleared so nothing leaves loopback, and are
//! killed when a test panics (their output then goes to the test's).
//! Waiting is bounded: a helper thread waits on the child and the test waits
//! on a channel with a deadline, never by sleeping.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Default bound on one haul run.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Fast retries, for tests whose faults are retried.
pub const FAST_RETRY: [&str; 2] = ["--retry-wait", "0.05"];

static RUN_NO: AtomicUsize = AtomicUsize::new(0);

/// The binary under test: `HAUL_TEST_BIN` if set (e.g. to run the suite
/// against a release build), else the one cargo built for this test run.
pub fn haul_bin() -> PathBuf {
    std::env::var_os("HAUL_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_haul")))
}

/// A temporary tree: `ROOT/dl` is haul's download dir, `ROOT/logs` holds the
/// children's output, anything else a test writes (lists, sums) sits in ROOT.
pub struct Sandbox {
    root: TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// A fresh sandbox with an empty `dl` directory.
    pub fn new() -> Sandbox {
        let root = tempfile::Builder::new()
            .prefix("haul-it-")
            .tempdir()
            .expect("create a temp dir");
        std::fs::create_dir(root.path().join("dl")).expect("create dl/");
        std::fs::create_dir(root.path().join("logs")).expect("create logs/");
        Sandbox { root }
    }

    /// The sandbox root (haul's working directory).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The download directory, `ROOT/dl`.
    pub fn dir(&self) -> PathBuf {
        self.root.path().join("dl")
    }

    /// `ROOT/dl` as a string for `-d`.
    pub fn dir_arg(&self) -> String {
        self.dir().display().to_string()
    }

    /// `ROOT/dl/name`.
    pub fn dl(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }

    /// Writes `ROOT/name` and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.root.path().join(name);
        std::fs::write(&path, contents).expect("write a sandbox file");
        path
    }

    /// A `haul` command in ROOT with these arguments.
    pub fn haul<I, S>(&self, args: I) -> HaulCmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.haul_at(&haul_bin(), args)
    }

    /// As [`Sandbox::haul`], but runs the binary at `bin` (a release build
    /// for a memory measurement).
    pub fn haul_at<I, S>(&self, bin: &Path, args: I) -> HaulCmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(bin);
        cmd.args(args).current_dir(self.root.path());
        for var in [
            "http_proxy",
            "HTTP_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("NO_PROXY", "*").env("NO_COLOR", "1");
        // A developer's own config file or netrc must not change the tests.
        cmd.env_remove("HAUL_CONFIG")
            .env_remove("NETRC")
            .env("XDG_CONFIG_HOME", self.root.path().join("config"))
            .env("HOME", self.root.path());
        HaulCmd {
            cmd,
            logs: self.root.path().join("logs"),
            stdin: None,
            stdout_closed: false,
        }
    }

    /// Every path under ROOT (recursively, relative to ROOT) whose file name
    /// contains `needle`.
    pub fn find(&self, needle: &str) -> Vec<PathBuf> {
        let mut found = Vec::new();
        walk(self.root.path(), &mut |path| {
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().contains(needle))
            {
                found.push(
                    path.strip_prefix(self.root.path())
                        .unwrap_or(path)
                        .to_path_buf(),
                );
            }
        });
        found
    }

    /// Regular files under `dl/` outside `dl/.haul`, relative to `dl/`.
    pub fn downloads(&self) -> Vec<PathBuf> {
        let dir = self.dir();
        let mut found = Vec::new();
        walk(&dir, &mut |path| {
            let rel = path.strip_prefix(&dir).unwrap_or(path);
            if !rel.starts_with(".haul") && path.is_file() {
                found.push(rel.to_path_buf());
            }
        });
        found.sort();
        found
    }

    /// Panics if any `.part` file remains in `dl/`.
    pub fn assert_no_part_files(&self) {
        let parts: Vec<_> = self
            .downloads()
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".part"))
            .collect();
        assert!(parts.is_empty(), "leftover .part files: {parts:?}");
    }
}

fn walk(dir: &Path, visit: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        visit(&path);
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&path, visit);
        }
    }
}

/// A `haul` invocation being built.
pub struct HaulCmd {
    cmd: Command,
    logs: PathBuf,
    stdin: Option<PathBuf>,
    stdout_closed: bool,
}

impl HaulCmd {
    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> HaulCmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> HaulCmd {
        self.cmd.env(key, value);
        self
    }

    /// Runs haul through `sh -c 'PRELUDE; exec haul ARGS'`, for limits
    /// only a shell builtin sets without unsafe code (`ulimit -n 256`).
    /// Call it after the arguments are added.
    pub fn under_shell(self, prelude: &str) -> HaulCmd {
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(format!("{prelude}; exec \"$0\" \"$@\""))
            .arg(self.cmd.get_program())
            .args(self.cmd.get_args());
        for (key, value) in self.cmd.get_envs() {
            match value {
                Some(value) => sh.env(key, value),
                None => sh.env_remove(key),
            };
        }
        if let Some(dir) = self.cmd.get_current_dir() {
            sh.current_dir(dir);
        }
        HaulCmd { cmd: sh, ..self }
    }

    /// Feeds the child's stdin from this file.
    pub fn stdin_file(mut self, path: PathBuf) -> HaulCmd {
        self.stdin = Some(path);
        self
    }

    /// Gives the child a stdout pipe whose reading end is already closed,
    /// as `haul ... | head -1` leaves it once `head` is done: every write
    /// fails with EPIPE, from the first one on, so the test needs no timing.
    /// The outcome's `stdout` is then empty.
    pub fn stdout_closed(mut self) -> HaulCmd {
        self.stdout_closed = true;
        self
    }

    /// The command built so far, for a runner that wraps it (on a
    /// terminal, see `support::term`).
    pub fn into_command(self) -> Command {
        self.cmd
    }

    /// Starts the child.
    pub fn spawn(mut self) -> Running {
        let n = RUN_NO.fetch_add(1, Ordering::Relaxed);
        let out_path = self.logs.join(format!("run-{n}.stdout"));
        let err_path = self.logs.join(format!("run-{n}.stderr"));
        let stdin = match &self.stdin {
            Some(path) => Stdio::from(File::open(path).expect("open the stdin file")),
            None => Stdio::null(),
        };
        let stdout = if self.stdout_closed {
            let (reader, writer) = std::io::pipe().expect("create a pipe");
            drop(reader);
            Stdio::from(writer)
        } else {
            Stdio::from(File::create(&out_path).expect("create stdout log"))
        };
        self.cmd
            .stdin(stdin)
            .stdout(stdout)
            .stderr(File::create(&err_path).expect("create stderr log"));
        let child = self.cmd.spawn().expect("spawn haul");
        Running {
            pid: child.id(),
            child: Some(child),
            out_path,
            err_path,
            started: Instant::now(),
        }
    }

    /// Runs to completion within [`RUN_TIMEOUT`].
    pub fn run(self) -> Outcome {
        self.spawn().wait(RUN_TIMEOUT)
    }
}

/// A running `haul`; killed (SIGKILL) if dropped before [`Running::wait`].
pub struct Running {
    pid: u32,
    child: Option<Child>,
    out_path: PathBuf,
    err_path: PathBuf,
    started: Instant,
}

impl Running {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// SIGKILL, as `kill -9` would: no chance to save anything.
    pub fn kill9(&mut self) {
        if let Some(child) = self.child.as_mut() {
            child.kill().expect("SIGKILL haul");
        }
    }

    /// Sends a signal by name (`INT`, `TERM`) with `kill(1)`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid.to_string())
            .status()
            .expect("run kill(1)");
        assert!(status.success(), "kill -{name} {} failed", self.pid);
    }

    /// Waits for the child while sampling its VmHWM (peak RSS, KiB) from
    /// /proc; returns the outcome and the largest value seen.
    pub fn wait_watching_rss(self, timeout: Duration) -> (Outcome, u64) {
        let status = format!("/proc/{}/status", self.pid());
        let (stop, stopped) = mpsc::channel::<()>();
        let sampler = std::thread::spawn(move || {
            let mut peak = 0;
            loop {
                let hwm = std::fs::read_to_string(&status).ok().and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("VmHWM:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                });
                match hwm {
                    Some(kib) => peak = peak.max(kib),
                    None => return peak, // exited (a zombie has no VmHWM)
                }
                // Paces the sampling; the stop message ends it at once.
                match stopped.recv_timeout(Duration::from_millis(10)) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return peak,
                }
            }
        });
        let out = self.wait(timeout);
        let _ = stop.send(());
        let peak = sampler.join().expect("the RSS sampler panicked");
        (out, peak)
    }

    /// Waits for the child to exit; SIGKILLs it and panics after `timeout`.
    pub fn wait(mut self, timeout: Duration) -> Outcome {
        let mut child = self.child.take().expect("child not waited yet");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = match rx.recv_timeout(timeout) {
            Ok(status) => status.expect("wait for haul"),
            Err(_) => {
                // The waiter thread still owns the child, so the pid cannot
                // have been reused yet.
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(self.pid.to_string())
                    .status();
                let _ = rx.recv_timeout(Duration::from_secs(5));
                let outcome = self.outcome(None);
                panic!("haul still running after {timeout:?}\n{outcome}");
            }
        };
        self.outcome(Some(status))
    }

    fn outcome(&self, status: Option<ExitStatus>) -> Outcome {
        Outcome {
            status,
            stdout: std::fs::read_to_string(&self.out_path).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.err_path).unwrap_or_default(),
            ended: Instant::now(),
            elapsed: self.started.elapsed(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let status = child.wait().ok();
            // A test that failed while haul ran (a wait that timed out) gets
            // haul's side of the story in its output.
            if std::thread::panicking() {
                eprintln!(
                    "haul (pid {}) killed by a failing test\n{}",
                    self.pid,
                    self.outcome(status)
                );
            }
        }
    }
}

/// How a `haul` run ended.
pub struct Outcome {
    /// `None` if it had to be killed after a timeout.
    pub status: Option<ExitStatus>,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
    /// When the waiter saw it exit.
    pub ended: Instant,
    /// From spawn to exit.
    pub elapsed: Duration,
}

impl Outcome {
    /// The exit code; `None` if killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// Panics (showing both streams) unless the exit code is `code`.
    pub fn assert_code(&self, code: i32) -> &Outcome {
        assert_eq!(self.code(), Some(code), "unexpected exit status\n{self}");
        self
    }

    /// Panics (showing both streams) unless stderr contains every needle,
    /// compared case-insensitively.
    pub fn assert_stderr_has(&self, needles: &[&str]) -> &Outcome {
        let haystack = self.stderr.to_lowercase();
        for needle in needles {
            assert!(
                haystack.contains(&needle.to_lowercase()),
                "stderr lacks {needle:?}\n{self}"
            );
        }
        self
    }

    /// stdout and stderr together, for messages that may go to either.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Lines of stdout starting with `done`.
    pub fn done_lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| l.trim_start().starts_with("done"))
            .collect()
    }

    /// Lines of stderr starting with `failed`.
    pub fn failed_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.trim_start().starts_with("failed"))
            .collect()
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status: {:?} after {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.elapsed, self.stdout, self.stderr
        )
    }
}
