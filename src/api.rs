//! haul as a library: describe downloads, run them, watch them happen.
//!
//! A typed front to exactly what `haul get` runs: the same defaults (the
//! `DEFAULT_*` constants the command line's parser uses too), the same
//! checks on every name and checksum, the same wiring of settings to the
//! engine and the HTTP client (`settings.rs`), the same manifest and resume.
//! It prints nothing; progress arrives as [`Event`]s and the run ends with a
//! [`Report`]. Its errors name settings and jobs, never command-line flags.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::{stream, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::engine::{EngineConfig, JobSource, JobSpec};
use crate::event::{Event, Report};
use crate::http::Fetcher;
use crate::list::{check_header, check_url, ListEntry, Origin};
use crate::naming::{output_path, RelPath};
use crate::plan::plan;
use crate::settings::{NetrcSource, ResolveError, Setting, SettingError, Settings};

/// Events a spawned run may queue before it waits for the receiver.
const EVENT_QUEUE: usize = 1024;

/// What an [`Error`] wraps: the message names the object (URL, path, file)
/// and [`std::error::Error::source`] gives the cause.
type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a job, a downloader or a run could not be set up, or a run could not
/// keep its state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting of [`DownloaderBuilder`] is out of range.
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// The HTTP client could not be set up: a bad header, an unreadable or
    /// malformed netrc file, or an unusable CA certificate.
    #[error(transparent)]
    Client(BoxError),
    /// A [`Job`]'s URL, output path, checksum or header is malformed, or two
    /// jobs conflict (one output path for two URLs).
    #[error(transparent)]
    Job(BoxError),
    /// The output directory, its lock or its manifest.
    #[error(transparent)]
    Run(BoxError),
}

impl From<ResolveError> for Error {
    fn from(err: ResolveError) -> Error {
        match err {
            ResolveError::Setting(err) => Error::Setting(err),
            other => Error::Client(Box::new(other)),
        }
    }
}

/// One file to download: its URL, where it goes, and what it must hash to.
///
/// Every part is checked when it is set, with the checks a line of a
/// `haul get -i` list gets.
#[derive(Debug, Clone)]
pub struct Job {
    url: url::Url,
    mirrors: Vec<url::Url>,
    /// Checked by `naming::check_out`.
    out: Option<String>,
    /// Checked by `naming::check_dir`.
    dir: Option<String>,
    checksum: Option<[u8; 32]>,
    /// Checked by `list::check_header`.
    headers: Vec<(String, String)>,
    /// Where the file goes, from `url`, `out` and `dir`: settled as each is
    /// set, so a job streamed into a running download cannot fail to plan.
    path: RelPath,
}

impl Job {
    /// Downloads `url` (http or https) under the name taken from its last
    /// path segment.
    pub fn new(url: &str) -> Result<Job, Error> {
        let url = check_url(url).map_err(job_error)?;
        Ok(Job {
            path: output_path(&url, None, None).map_err(job_error)?,
            url,
            mirrors: Vec::new(),
            out: None,
            dir: None,
            checksum: None,
            headers: Vec::new(),
        })
    }

    /// Adds another place serving the same file, tried in the order added
    /// after the first URL. The name still comes from the first URL; a URL
    /// already given is kept once.
    pub fn mirror(mut self, url: &str) -> Result<Job, Error> {
        let url = check_url(url).map_err(job_error)?;
        if url != self.url && !self.mirrors.contains(&url) {
            self.mirrors.push(url);
        }
        Ok(self)
    }

    /// Saves under this path, relative to the output directory (it may hold
    /// sub-directories; `..` and absolute paths are refused).
    pub fn out(mut self, path: &str) -> Result<Job, Error> {
        crate::naming::check_out(path).map_err(job_error)?;
        self.out = Some(path.to_owned());
        self.settle_path()
    }

    /// Saves into this sub-directory of the output directory.
    pub fn dir(mut self, dir: &str) -> Result<Job, Error> {
        crate::naming::check_dir(dir).map_err(job_error)?;
        self.dir = Some(dir.to_owned());
        self.settle_path()
    }

    /// The file must hash to this sha256 or it fails.
    #[must_use]
    pub fn sha256(mut self, digest: [u8; 32]) -> Job {
        self.checksum = Some(digest);
        self
    }

    /// As [`Job::sha256`], from 64 hex digits.
    pub fn sha256_hex(self, hex: &str) -> Result<Job, Error> {
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hex, &mut digest).map_err(|_| {
            job_error(format!(
                "sha-256 digest '{}' is not 64 hex digits",
                hex.escape_debug()
            ))
        })?;
        Ok(self.sha256(digest))
    }

    /// Sends this header with this job's requests, to its own origin only.
    /// Headers haul manages (`Range`, `If-Range`, `Accept-Encoding`, ...)
    /// are refused.
    pub fn header(mut self, name: &str, value: &str) -> Result<Job, Error> {
        self.headers
            .push(check_header(name, value).map_err(job_error)?);
        Ok(self)
    }

    fn settle_path(mut self) -> Result<Job, Error> {
        self.path =
            output_path(&self.url, self.dir.as_deref(), self.out.as_deref()).map_err(job_error)?;
        Ok(self)
    }

    /// The job as the engine runs it, at `origin` (what the plan of a
    /// one-entry list gives).
    fn spec(self, origin: Origin) -> JobSpec {
        JobSpec {
            url: self.url,
            mirrors: self.mirrors,
            path: self.path,
            checksum: self.checksum,
            headers: self.headers,
            origin,
        }
    }

    /// The entry a list line with the same options would give, at `origin`.
    fn entry(&self, origin: Origin) -> ListEntry {
        ListEntry {
            origin,
            url: self.url.clone(),
            mirrors: self.mirrors.clone(),
            out: self.out.clone(),
            dir: self.dir.clone(),
            checksum: self.checksum,
            headers: self.headers.clone(),
        }
    }
}

fn job_error(err: impl Into<BoxError>) -> Error {
    Error::Job(err.into())
}

/// Sets up a [`Downloader`]: typed setters that cannot fail, and one
/// [`DownloaderBuilder::build`] that checks them all.
///
/// Every default is `haul get`'s, from the same constants.
#[derive(Debug, Clone)]
#[must_use]
pub struct DownloaderBuilder {
    settings: Settings,
}

impl DownloaderBuilder {
    /// Downloads into `dir` (created if missing; state goes to `dir/.haul/`).
    pub fn new(dir: impl Into<PathBuf>) -> DownloaderBuilder {
        DownloaderBuilder {
            settings: Settings::new(dir.into()),
        }
    }

    /// Files downloaded at once. By default, this is
    /// [`DEFAULT_JOBS`](crate::DEFAULT_JOBS).
    pub fn jobs(mut self, n: u32) -> DownloaderBuilder {
        self.settings.jobs = n as usize;
        self
    }

    /// Connections to one host at once, over all files. By default as many
    /// as [`jobs`](DownloaderBuilder::jobs) (so that many downloads run at
    /// once even when they all come from one host), and at least 4 (so a
    /// large file can still be split when few run at once).
    pub fn max_per_host(mut self, n: u32) -> DownloaderBuilder {
        self.settings.max_per_host = Some(n as usize);
        self
    }

    /// Connections at once over the whole run. By default, this is the
    /// larger of 16 and [`DownloaderBuilder::jobs`].
    pub fn max_connections(mut self, n: u32) -> DownloaderBuilder {
        self.settings.max_connections = Some(n as usize);
        self
    }

    /// Connections per file; 1 turns splitting off. `max_per_host` and
    /// `max_connections` stay hard caps (the report warns when they cut a
    /// split down). By default, files of at least `min_split_size` get up
    /// to 4 when the server supports ranges.
    pub fn split(mut self, n: u32) -> DownloaderBuilder {
        self.settings.split = Some(n as usize);
        self
    }

    /// Split automatically only files at least this many bytes long. By
    /// default, this is [`DEFAULT_MIN_SPLIT_SIZE`](crate::DEFAULT_MIN_SPLIT_SIZE).
    pub fn min_split_size(mut self, bytes: u64) -> DownloaderBuilder {
        self.settings.min_split_size = bytes;
        self
    }

    /// Fails any file larger than this many bytes. By default, there is no
    /// limit.
    pub fn max_file_size(mut self, bytes: u64) -> DownloaderBuilder {
        self.settings.max_file_size = Some(bytes);
        self
    }

    /// Attempts per file before it fails, the first one included. By
    /// default, this is [`DEFAULT_MAX_TRIES`](crate::DEFAULT_MAX_TRIES).
    pub fn max_tries(mut self, n: u32) -> DownloaderBuilder {
        self.settings.max_tries = n;
        self
    }

    /// Base wait between attempts; it doubles each time, with jitter. By
    /// default, this is [`DEFAULT_RETRY_WAIT`](crate::DEFAULT_RETRY_WAIT).
    pub fn retry_wait(mut self, wait: Duration) -> DownloaderBuilder {
        self.settings.retry_wait = wait;
        self
    }

    /// Longest wait between attempts, a server's `Retry-After` included. By
    /// default, this is [`DEFAULT_MAX_RETRY_WAIT`](crate::DEFAULT_MAX_RETRY_WAIT).
    pub fn max_retry_wait(mut self, wait: Duration) -> DownloaderBuilder {
        self.settings.max_retry_wait = wait;
        self
    }

    /// Aborts (and retries) an attempt that receives nothing for this long.
    /// By default, this is [`DEFAULT_STALL_TIMEOUT`](crate::DEFAULT_STALL_TIMEOUT).
    pub fn stall_timeout(mut self, timeout: Duration) -> DownloaderBuilder {
        self.settings.stall_timeout = timeout;
        self
    }

    /// Aborts and retries an attempt averaging fewer bytes a second than
    /// this over the last `lowest_speed_time`; 0 turns it off. By default,
    /// this is [`DEFAULT_LOWEST_SPEED`](crate::DEFAULT_LOWEST_SPEED), or
    /// half a `max_speed` at or below that.
    pub fn lowest_speed(mut self, bytes_per_sec: u64) -> DownloaderBuilder {
        self.settings.lowest_speed = Some(bytes_per_sec);
        self
    }

    /// The sliding window `lowest_speed` is judged over. By default, this
    /// is [`DEFAULT_LOWEST_SPEED_TIME`](crate::DEFAULT_LOWEST_SPEED_TIME).
    pub fn lowest_speed_time(mut self, window: Duration) -> DownloaderBuilder {
        self.settings.lowest_speed_time = window;
        self
    }

    /// Caps the whole run at this many bytes a second, all connections
    /// together; 0 is no limit. By default, there is no limit.
    pub fn max_speed(mut self, bytes_per_sec: u64) -> DownloaderBuilder {
        self.settings.max_speed = bytes_per_sec;
        self
    }

    /// Gives up connecting after this long. By default, this is
    /// [`DEFAULT_CONNECT_TIMEOUT`](crate::DEFAULT_CONNECT_TIMEOUT).
    pub fn connect_timeout(mut self, timeout: Duration) -> DownloaderBuilder {
        self.settings.connect_timeout = timeout;
        self
    }

    /// Sends this header with every job's requests (to each job's own
    /// origin only, never to a host a redirect points at); checked by
    /// [`DownloaderBuilder::build`]. By default, none is added.
    pub fn header(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> DownloaderBuilder {
        let (name, value): (String, String) = (name.into(), value.into());
        self.settings
            .headers
            .push((name.trim().to_owned(), value.trim().to_owned()));
        self
    }

    /// The `User-Agent` header. By default, haul's own.
    pub fn user_agent(mut self, agent: impl Into<String>) -> DownloaderBuilder {
        self.settings.user_agent = Some(agent.into());
        self
    }

    /// Also trusts the CA certificates in this PEM file, read by
    /// [`DownloaderBuilder::build`]. By default, only the built-in roots.
    pub fn ca_cert(mut self, pem_file: impl Into<PathBuf>) -> DownloaderBuilder {
        self.settings.ca_cert = Some(pem_file.into());
        self
    }

    /// Sends basic-auth credentials from `$NETRC`, else `~/.netrc` (skipped
    /// if absent), to the hosts it names, unless the URL or an
    /// `Authorization` header carries some. A file named with
    /// [`DownloaderBuilder::netrc_file`] is kept. By default, this is off.
    pub fn netrc(mut self, enabled: bool) -> DownloaderBuilder {
        self.settings.netrc = match (enabled, self.settings.netrc) {
            (false, _) => NetrcSource::Off,
            (true, NetrcSource::File(path)) => NetrcSource::File(path),
            (true, _) => NetrcSource::Default,
        };
        self
    }

    /// As [`DownloaderBuilder::netrc`], with this file, which must exist.
    pub fn netrc_file(mut self, file: impl Into<PathBuf>) -> DownloaderBuilder {
        self.settings.netrc = NetrcSource::File(file.into());
        self
    }

    /// Follows redirects from HTTPS to plain HTTP. By default, they are
    /// refused: the rest of the download would travel unencrypted.
    pub fn allow_insecure_redirect(mut self, allow: bool) -> DownloaderBuilder {
        self.settings.allow_insecure_redirect = allow;
        self
    }

    /// Replaces existing files that haul did not download. By default, such
    /// a file makes its job fail.
    pub fn overwrite(mut self, allow: bool) -> DownloaderBuilder {
        self.settings.allow_overwrite = allow;
        self
    }

    /// Checks the settings, reads the netrc and CA files, and builds the
    /// HTTP client.
    pub fn build(self) -> Result<Downloader, Error> {
        let resolved = self.settings.resolve(|name| std::env::var_os(name))?;
        let warnings = resolved
            .split_capped
            .iter()
            .map(|capped| capped.line(Setting::name))
            .collect();
        Ok(Downloader {
            engine: resolved.engine,
            client: resolved.client,
            warnings,
            jobs: Vec::new(),
        })
    }
}

/// A set of downloads into one directory and the settings to run them with;
/// made by [`DownloaderBuilder::build`].
#[derive(Debug)]
pub struct Downloader {
    engine: EngineConfig,
    client: Fetcher,
    /// Settings that are valid but will do less than they say.
    warnings: Vec<String>,
    jobs: Vec<Job>,
}

impl Downloader {
    /// A builder with `haul get`'s defaults, downloading into `dir`.
    pub fn builder(dir: impl Into<PathBuf>) -> DownloaderBuilder {
        DownloaderBuilder::new(dir)
    }

    /// Adds one file to download.
    pub fn add(&mut self, job: Job) {
        self.jobs.push(job);
    }

    /// Runs every job to its end, sending events to `events` (dropped
    /// events are not an error: a receiver may stop listening) and stopping
    /// cleanly, progress saved, when `cancel` fires.
    ///
    /// Jobs are named `library:N` (N from 1, in the order added) in the
    /// errors of two jobs that conflict.
    pub async fn run(
        self,
        events: mpsc::Sender<Event>,
        cancel: CancellationToken,
    ) -> Result<Report, Error> {
        let jobs = plan(self.entries()).map_err(job_error)?;
        self.run_source(jobs.into(), events, cancel).await
    }

    /// As [`Downloader::run`], then goes on with every job `jobs` yields,
    /// as it yields them, until it ends: jobs can be added to a running
    /// download (feed the stream from a bounded channel), and a long list
    /// can be fed without holding it whole. The stream is read only a
    /// bounded window ahead of the downloads, so a producer behind a
    /// bounded channel waits instead of queueing everything in memory.
    ///
    /// A streamed job is announced when it arrives (`Queued`, or `Skipped`
    /// when its file is already complete). One whose output path another
    /// job of this run is still downloading fails at once (a `Failed`
    /// event naming the path); once that job has ended, the path may be
    /// added again. Jobs are numbered ([`JobId`](crate::JobId)) in the
    /// order they arrive, after those added with [`Downloader::add`], and
    /// named `library:N` counting on from those.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), haul::Error> {
    /// use haul::{Downloader, Job};
    /// use tokio_util::sync::CancellationToken;
    ///
    /// let (add, queue) = tokio::sync::mpsc::channel::<Job>(16);
    /// let jobs = futures::stream::unfold(queue, |mut queue| async move {
    ///     queue.recv().await.map(|job| (job, queue))
    /// });
    /// let (events, mut seen) = tokio::sync::mpsc::channel(1024);
    /// let dl = Downloader::builder("out").build()?;
    /// let run = tokio::spawn(dl.run_stream(jobs, events, CancellationToken::new()));
    /// add.send(Job::new("https://example.org/a.iso")?).await.ok();
    /// // Add more at any time; once `add` is dropped, the run ends with its
    /// // last job.
    /// drop(add);
    /// while let Some(event) = seen.recv().await {
    ///     println!("{event:?}");
    /// }
    /// let report = run.await.expect("the run task")?;
    /// # Ok(()) }
    /// ```
    pub async fn run_stream(
        self,
        jobs: impl Stream<Item = Job> + Send + 'static,
        events: mpsc::Sender<Event>,
        cancel: CancellationToken,
    ) -> Result<Report, Error> {
        let planned = plan(self.entries()).map_err(job_error)?;
        let first = self.jobs.len() + 1;
        let source = library_source();
        let streamed = jobs.enumerate().map(move |(i, job)| {
            job.spec(Origin {
                source: Arc::clone(&source),
                line: first + i,
            })
        });
        let jobs = JobSource::new(stream::iter(planned).chain(streamed));
        self.run_source(jobs, events, cancel).await
    }

    /// The added jobs as list entries, named `library:N`.
    fn entries(&self) -> Vec<ListEntry> {
        let source = library_source();
        self.jobs
            .iter()
            .enumerate()
            .map(|(i, job)| {
                job.entry(Origin {
                    source: Arc::clone(&source),
                    line: i + 1,
                })
            })
            .collect()
    }

    async fn run_source(
        self,
        jobs: JobSource,
        events: mpsc::Sender<Event>,
        cancel: CancellationToken,
    ) -> Result<Report, Error> {
        let mut report = crate::engine::run(self.engine, self.client, jobs, events, cancel)
            .await
            .map_err(|err| Error::Run(Box::new(err)))?;
        // What `haul get` prints before the run (a split above a cap).
        report.warnings.splice(0..0, self.warnings);
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

/// Where library jobs come from, in their errors: `library:N`.
fn library_source() -> Arc<str> {
    Arc::from("library")
}

#[cfg(test)]
mod tests;
