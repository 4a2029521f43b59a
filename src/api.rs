//! haul as a library: describe downloads, run them, watch them happen.
//!
//! A thin facade over exactly what `haul get` runs: the same defaults (taken
//! from the command-line parser, so there is one source of them), the same
//! checks on every name and checksum, the same engine, manifest and resume.
//! It prints nothing; progress arrives as [`Event`]s and the run ends with a
//! [`Report`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), haul::api::Error> {
//! use haul::api::{Downloader, Job};
//!
//! let mut dl = Downloader::new("out").jobs(4)?.max_tries(3)?;
//! dl.add(Job::new("https://example.org/data.tar").out("data/data.tar"));
//! dl.add(Job::new("https://example.org/a.iso").sha256("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"));
//! let (mut events, run) = dl.spawn();
//! while let Some(event) = events.recv().await {
//!     println!("{event:?}");
//! }
//! let report = run.await.expect("the run task")?;
//! println!("{} done, {} failed", report.done, report.failed);
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command, GetArgs};
use crate::config::{ConfigError, GetConfig};
use crate::engine::EngineError;
pub use crate::event::{Event, JobId, Report};
use crate::http::ClientError;
use crate::list::{entry_with_options, ListEntry, ListError, Origin};

/// Events a spawned run may queue before it waits for the receiver.
const EVENT_QUEUE: usize = 1024;

/// Why a run could not be set up, or could not keep its state.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad setting or job (the same messages `haul get` gives).
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    List(#[from] ListError),
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The output directory, its lock or its manifest.
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("invalid setting: {0}")]
    Setting(String),
}

/// One file to download: a URL and the options a list line could carry.
#[derive(Debug, Clone)]
pub struct Job {
    url: String,
    options: Vec<(String, String)>,
}

impl Job {
    /// Downloads `url` under the name taken from its last path segment.
    pub fn new(url: impl Into<String>) -> Job {
        Job {
            url: url.into(),
            options: Vec::new(),
        }
    }

    /// Adds another place serving the same file, tried in the order added
    /// after the first URL (a TAB-separated URL on a list line). The name
    /// still comes from the first URL.
    pub fn mirror(mut self, url: impl AsRef<str>) -> Job {
        // The list's own syntax, so the URL is checked exactly as a mirror
        // on a list line would be.
        self.url.push('\t');
        self.url.push_str(url.as_ref());
        self
    }

    /// Saves under this path, relative to the output directory (`out=`).
    pub fn out(self, path: impl Into<String>) -> Job {
        self.option("out", path.into())
    }

    /// Saves into this sub-directory of the output directory (`dir=`).
    pub fn dir(self, dir: impl Into<String>) -> Job {
        self.option("dir", dir.into())
    }

    /// The file must hash to this sha256 (hex) or it fails (`checksum=`).
    pub fn sha256(self, hex: impl AsRef<str>) -> Job {
        self.option("checksum", format!("sha-256={}", hex.as_ref()))
    }

    /// Sends this header with this job's requests, to its own origin only.
    pub fn header(self, name: &str, value: &str) -> Job {
        self.option("header", format!("{name}: {value}"))
    }

    fn option(mut self, name: &str, value: String) -> Job {
        self.options.push((name.to_string(), value));
        self
    }
}

/// A set of downloads into one directory and the settings to run them with.
#[derive(Debug)]
pub struct Downloader {
    dir: PathBuf,
    /// `haul get` options in command-line spelling; the last of a repeated
    /// option wins, as on the command line.
    flags: Vec<String>,
    jobs: Vec<Job>,
}

impl Downloader {
    /// Downloads into `dir` with `haul get`'s defaults (among them the
    /// speed floor: an attempt under 1 KiB/s over 30 s is aborted and
    /// resumed; `set(["--lowest-speed", "0"])` turns it off).
    pub fn new(dir: impl Into<PathBuf>) -> Downloader {
        Downloader {
            dir: dir.into(),
            flags: Vec::new(),
            jobs: Vec::new(),
        }
    }

    /// Sets any `haul get` option by its command-line spelling, e.g.
    /// `set(["--split", "8", "--max-per-host", "8"])`, checked at once.
    /// URLs are not taken here: add them with [`Downloader::add`].
    pub fn set<I, S>(mut self, flags: I) -> Result<Downloader, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.flags.extend(flags.into_iter().map(Into::into));
        let args = self.args()?;
        // A library caller reacts to `Event::Finished` in its own loop.
        if args.on_complete.is_some() {
            return Err(Error::Setting(
                "--on-complete is for the command line; act on Event::Finished instead".into(),
            ));
        }
        if !args.urls.is_empty() {
            return Err(Error::Setting(format!(
                "not an option: {}; add URLs with add()",
                args.urls.join(" ")
            )));
        }
        Ok(self)
    }

    /// Files downloaded at once (`-j`).
    pub fn jobs(self, n: usize) -> Result<Downloader, Error> {
        self.set(["-j".to_string(), n.to_string()])
    }

    /// Connections per file (`--split`); 1 turns splitting off.
    pub fn split(self, n: usize) -> Result<Downloader, Error> {
        self.set(["--split".to_string(), n.to_string()])
    }

    /// Tries per file before it fails (`--max-tries`).
    pub fn max_tries(self, n: u32) -> Result<Downloader, Error> {
        self.set(["--max-tries".to_string(), n.to_string()])
    }

    /// The settings as `haul get` would parse them.
    fn args(&self) -> Result<GetArgs, Error> {
        let mut argv = vec!["haul".to_string(), "get".to_string()];
        argv.extend(self.flags.iter().cloned());
        match Cli::try_parse_from(&argv)
            .map_err(|e| Error::Setting(e.to_string()))?
            .command
        {
            Command::Get(mut args) => {
                args.dir = self.dir.clone();
                Ok(args)
            }
            _ => Err(Error::Setting("`get` no longer parses as get".into())),
        }
    }

    /// Adds one file to download.
    pub fn add(&mut self, job: Job) {
        self.jobs.push(job);
    }

    /// Runs every job to its end, sending events to `events` (dropped
    /// events are not an error: a receiver may stop listening) and stopping
    /// cleanly, progress saved, when `cancel` fires.
    pub async fn run(
        self,
        events: mpsc::Sender<Event>,
        cancel: CancellationToken,
    ) -> Result<Report, Error> {
        let source: Arc<str> = Arc::from("library");
        let mut extra: Vec<ListEntry> = Vec::with_capacity(self.jobs.len());
        for (i, job) in self.jobs.iter().enumerate() {
            let origin = Origin {
                source: Arc::clone(&source),
                line: i + 1,
            };
            extra.push(entry_with_options(&job.url, &job.options, origin)?);
        }
        let cfg = GetConfig::from_args_and(self.args()?, extra)?;
        let client = crate::http::build_client(&cfg.client)?;
        let mut report = crate::engine::run(cfg.engine, client, cfg.jobs, events, cancel).await?;
        // What `haul get` prints before the run (`--split` above a cap).
        report.warnings.splice(0..0, cfg.warnings);
        Ok(report)
    }

    /// Starts the run on the current tokio runtime and returns its events
    /// and its result. The run cannot be cancelled this way; use
    /// [`Downloader::run`] with a token for that.
    pub fn spawn(self) -> (mpsc::Receiver<Event>, JoinHandle<Result<Report, Error>>) {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let run = tokio::spawn(self.run(tx, CancellationToken::new()));
        (rx, run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn a_job_with_mirrors_is_one_entry_named_by_its_first_url() {
        let job = Job::new("http://a/f.bin").mirror("http://b/other.bin");
        let origin = Origin {
            source: Arc::from("library"),
            line: 1,
        };
        let entry = entry_with_options(&job.url, &job.options, origin).expect("valid job");
        assert_eq!(entry.url.as_str(), "http://a/f.bin");
        let mirrors: Vec<&str> = entry.mirrors.iter().map(url::Url::as_str).collect();
        assert_eq!(mirrors, ["http://b/other.bin"]);
    }

    /// Serves `files` from a temp dir with haul's own server; returns the
    /// base URL and what keeps it alive.
    async fn serve(files: &[(&str, Vec<u8>)]) -> (String, tempfile::TempDir, CancellationToken) {
        let root = tempfile::tempdir().expect("temp dir");
        for (name, body) in files {
            std::fs::write(root.path().join(name), body).expect("write a served file");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let stop = CancellationToken::new();
        let opts = crate::serve::ServeOptions { limit_rate: None };
        tokio::spawn(crate::serve::serve(
            listener,
            root.path().to_path_buf(),
            opts,
            stop.clone(),
        ));
        (base, root, stop)
    }

    #[test]
    fn a_library_run_gets_the_speed_floor_by_default_too() {
        let origin = Origin {
            source: Arc::from("library"),
            line: 1,
        };
        let entry = entry_with_options("http://h/f", &[], origin).expect("valid job");
        let args = Downloader::new("x").args().expect("default settings");
        let cfg = GetConfig::from_args_and(args, vec![entry]).expect("valid config");
        assert_eq!(cfg.engine.lowest_speed, 1024);
        assert_eq!(cfg.engine.speed_window, std::time::Duration::from_secs(30));
    }

    #[tokio::test]
    async fn runs_jobs_with_options_and_reports_each_as_an_event() {
        let good = vec![7u8; 100_000];
        let (base, _root, stop) = serve(&[("a.bin", good.clone()), ("b.bin", vec![1; 10])]).await;
        let out = tempfile::tempdir().expect("temp dir");
        let mut dl = Downloader::new(out.path())
            .set(["--retry-wait", "0.05"])
            .and_then(|d| d.jobs(2))
            .expect("settings");
        let sha = hex::encode(Sha256::digest(&good));
        dl.add(
            Job::new(format!("{base}/a.bin"))
                .out("sub/a.bin")
                .sha256(&sha),
        );
        dl.add(Job::new(format!("{base}/b.bin")).sha256("00".repeat(32)));

        let (mut events, run) = dl.spawn();
        let mut seen = Vec::new();
        while let Some(event) = events.recv().await {
            seen.push(event);
        }
        let report = run.await.expect("run task").expect("run");
        stop.cancel();

        assert_eq!((report.done, report.failed), (1, 1), "{seen:?}");
        let finished = seen.iter().any(|e| {
            matches!(e, Event::Finished { path, sha256, .. } if path == "sub/a.bin" && *sha256 == sha)
        });
        assert!(finished, "{seen:?}");
        let failed = seen.iter().any(|e| {
            matches!(e, Event::Failed { path, error, .. } if path == "b.bin" && error.contains("expected"))
        });
        assert!(failed, "{seen:?}");
        assert_eq!(std::fs::read(out.path().join("sub/a.bin")).ok(), Some(good));
        assert!(!out.path().join("b.bin").exists());
    }

    #[tokio::test]
    async fn rejects_bad_settings_and_bad_jobs_with_the_cli_messages() {
        let unknown = Downloader::new("x").set(["--no-such-flag"]);
        assert!(matches!(unknown, Err(Error::Setting(_))));
        let url = Downloader::new("x").set(["http://example.org/a"]);
        assert!(matches!(url, Err(Error::Setting(msg)) if msg.contains("add()")));
        let hook = Downloader::new("x").set(["--on-complete", "/bin/true"]);
        assert!(matches!(hook, Err(Error::Setting(msg)) if msg.contains("Event::Finished")));
        // The last of a repeated option wins, as on the command line.
        assert!(Downloader::new("x").jobs(2).and_then(|d| d.jobs(3)).is_ok());

        let out = tempfile::tempdir().expect("temp dir");
        let mut dl = Downloader::new(out.path());
        dl.add(Job::new("http://127.0.0.1:9/x").out("../escape"));
        let err = dl.run(mpsc::channel(8).0, CancellationToken::new()).await;
        let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("library:1"), "{msg}");
    }
}
