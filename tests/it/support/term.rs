//! Running the real `haul` on a pseudo-terminal, to see its progress bars
//! as a person would.
//!
//! haul draws bars only when stderr is a terminal, and redraws them in place
//! with escape sequences. [`Terminal`] starts haul under util-linux `script`
//! (in bsdutils, which is essential on Debian, so no test dependency is
//! needed for the pty itself) on a terminal of a fixed size, and feeds
//! everything haul writes to a `vt100` screen emulator. Tests then look at
//! screens of text: the one on display now, every screen seen so far (one
//! per chunk read), and the last one. Ctrl-C is typed into the terminal, so
//! the terminal's line discipline signals haul and echoes `^C` exactly as it
//! does for a person at a keyboard.
//!
//! Waiting is on what the screen shows (a condition variable the reader
//! thread signals after every chunk, through `support::wait`), with a
//! deadline, never by sleeping.

use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::cli::HaulCmd;
use super::wait::wait_until;

/// One screen of text: a string per row, trailing blanks trimmed.
pub type Screen = Vec<String>;

/// `haul` running on a pseudo-terminal; killed if dropped before
/// [`Terminal::finish`] (its pty then hangs up, which ends haul too).
pub struct Terminal {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    shared: Arc<Shared>,
    reader: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<Display>,
    changed: Condvar,
}

struct Display {
    parser: vt100::Parser,
    cols: u16,
    /// The screen after each chunk of output, oldest first.
    history: Vec<Screen>,
    /// Everything haul wrote, escape sequences included.
    raw: Vec<u8>,
    /// The terminal's output ended (haul and `script` are gone).
    ended: bool,
}

impl Display {
    fn screen(&self) -> Screen {
        self.parser
            .screen()
            .rows(0, self.cols)
            .map(|row| row.trim_end().to_string())
            .collect()
    }
}

/// How a run on a terminal ended.
pub struct TermOutcome {
    /// haul's exit code (`script -e` passes it on); `None` if killed.
    pub code: Option<i32>,
    /// The last screen.
    pub screen: Screen,
    /// Every screen seen, oldest first; the last is [`TermOutcome::screen`].
    pub history: Vec<Screen>,
    /// The raw output, escapes included, for failure messages.
    pub raw: String,
}

impl Terminal {
    /// Starts `cmd` on a `cols` x `rows` pseudo-terminal.
    pub fn spawn(cmd: HaulCmd, cols: u16, rows: u16) -> Terminal {
        let haul = cmd.into_command();
        let mut line = format!("stty cols {cols} rows {rows} && exec");
        for word in std::iter::once(haul.get_program()).chain(haul.get_args()) {
            line.push(' ');
            line.push_str(&quote(&word.to_string_lossy()));
        }
        let mut script = Command::new("script");
        script.args(["-q", "-f", "-e", "-c", &line, "/dev/null"]);
        for (key, value) in haul.get_envs() {
            match value {
                Some(value) => script.env(key, value),
                None => script.env_remove(key),
            };
        }
        if let Some(dir) = haul.get_current_dir() {
            script.current_dir(dir);
        }
        // `script` runs the line with $SHELL; the bars need a terminal type
        // that is not "dumb", whatever the environment running the tests has.
        script.env("SHELL", "/bin/sh").env("TERM", "xterm");
        let mut child = script
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn script(1) (util-linux, package bsdutils)");
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().expect("script's stdout is piped");
        let size = |n: u16| NonZeroU16::new(n).expect("a terminal size is not zero");
        let shared = Arc::new(Shared {
            state: Mutex::new(Display {
                parser: vt100::Parser::new(size(rows), size(cols), 0),
                cols,
                history: Vec::new(),
                raw: Vec::new(),
                ended: false,
            }),
            changed: Condvar::new(),
        });
        let for_reader = Arc::clone(&shared);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = stdout.read(&mut buf).unwrap_or(0);
                let mut st = for_reader.lock();
                if n == 0 {
                    st.ended = true;
                    for_reader.changed.notify_all();
                    return;
                }
                st.parser.process(&buf[..n]);
                st.raw.extend_from_slice(&buf[..n]);
                let screen = st.screen();
                st.history.push(screen);
                for_reader.changed.notify_all();
            }
        });
        Terminal {
            child: Some(child),
            stdin,
            shared,
            reader: Some(reader),
        }
    }

    /// The screen on display now.
    pub fn screen(&self) -> Screen {
        self.shared.lock().screen()
    }

    /// Waits until the screen on display satisfies `done` and returns it;
    /// panics, showing the screen, after `timeout` or if haul's output ends
    /// first. `what` names the awaited state in that message.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Screen) -> bool,
    ) -> Screen {
        // Stops waiting early once haul's output ended: nothing can change.
        let st = wait_until(
            self.shared.lock(),
            &self.shared.changed,
            timeout,
            what,
            |st| st.ended || done(&st.screen()),
            |st| {
                format!(
                    "screen:\n{}\nend of the raw output: {:?}",
                    show(&st.screen()),
                    tail(&st.raw)
                )
            },
        );
        let screen = st.screen();
        if !done(&screen) {
            let raw = tail(&st.raw);
            drop(st);
            panic!(
                "output ended waiting for {what}; screen:\n{}\nend of the raw output: {raw:?}",
                show(&screen)
            );
        }
        screen
    }

    /// Types Ctrl-C: the terminal sends SIGINT to haul and echoes `^C`.
    pub fn ctrl_c(&mut self) {
        let stdin = self.stdin.as_mut().expect("the terminal's input is open");
        stdin.write_all(&[0x03]).expect("type Ctrl-C");
        stdin.flush().expect("flush the terminal's input");
    }

    /// Waits for haul to exit and its output to end; kills it and panics,
    /// showing the screen, after `timeout`.
    pub fn finish(mut self, timeout: Duration) -> TermOutcome {
        let mut child = self.child.take().expect("not finished yet");
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = match rx.recv_timeout(timeout) {
            Ok(status) => status.expect("wait for script(1)"),
            Err(_) => {
                // The waiter thread still owns the child, so the pid cannot
                // have been reused yet.
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
                let _ = rx.recv_timeout(Duration::from_secs(5));
                panic!(
                    "haul still running after {timeout:?}; screen:\n{}",
                    show(&self.screen())
                );
            }
        };
        // The input stays open until haul is gone: `script` passes an end
        // of input on to the terminal.
        self.stdin = None;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let st = self.shared.lock();
        TermOutcome {
            code: status.code(),
            screen: st.screen(),
            history: st.history.clone(),
            raw: String::from_utf8_lossy(&st.raw).into_owned(),
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Display> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A screen for a failure message, framed so blank rows show.
pub fn show(screen: &Screen) -> String {
    let mut out = String::new();
    for row in screen {
        out.push('|');
        out.push_str(row);
        out.push('\n');
    }
    out
}

/// The first row containing `needle`.
pub fn row_with<'a>(screen: &'a Screen, needle: &str) -> Option<&'a str> {
    screen
        .iter()
        .find(|row| row.contains(needle))
        .map(String::as_str)
}

/// The last few hundred bytes of `raw`, as text, for a failure message.
pub fn tail(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let chars: Vec<char> = text.chars().collect();
    chars[chars.len().saturating_sub(600)..].iter().collect()
}

/// `word` single-quoted for `sh`.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}
