//! The typed settings of a download run, and the one function that turns
//! them into an engine configuration and an HTTP client.
//!
//! Both ways in fill a [`Settings`]: the command line (`config.rs`, from
//! clap's `GetArgs`) and the library's `DownloaderBuilder` (`api.rs`).
//! [`Settings::resolve`] checks them and builds what the engine runs with,
//! netrc credentials included, so a setting one side supports cannot be
//! dropped by the other. The defaults are the `DEFAULT_*` constants here,
//! which clap's `default_value_t` uses too.
//!
//! Messages here name settings as the library spells them (`jobs`,
//! `max_per_host`), never command-line flags: `config.rs` maps them to
//! flag names for the CLI. Nothing here reads the command line or prints.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::engine::retry::RetryPolicy;
use crate::engine::EngineConfig;
pub use crate::engine::{DEFAULT_LOWEST_SPEED, DEFAULT_LOWEST_SPEED_TIME};
use crate::http::{header_pair, ClientError, ClientOptions, Fetcher};
use crate::netrc::{Netrc, NetrcError};

/// Downloads at once, by default.
pub const DEFAULT_JOBS: u32 = 8;
/// The per-host cap when none is given is `jobs`, but never below this: a
/// run of few downloads (`-j 1`) can still split a large file over the
/// connections an automatic split uses.
pub const PER_HOST_FLOOR: usize = 4;
/// Files at least this large are split automatically, by default (16 MiB).
pub const DEFAULT_MIN_SPLIT_SIZE: u64 = 16 << 20;
/// Attempts per file (the first one included), by default.
pub const DEFAULT_MAX_TRIES: u32 = 5;
/// Base wait between attempts, by default; it doubles each time, with jitter.
pub const DEFAULT_RETRY_WAIT: Duration = Duration::from_secs(1);
/// Longest wait between attempts, `Retry-After` included, by default.
pub const DEFAULT_MAX_RETRY_WAIT: Duration = Duration::from_secs(60);
/// An attempt receiving nothing for this long is aborted, by default.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Connecting gives up after this long, by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a running download syncs and records its offset. Resume does
/// not depend on it within one boot (the page cache survives a kill), only
/// after a crash of the whole machine.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Where basic-auth credentials come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum NetrcSource {
    /// None are sent.
    #[default]
    Off,
    /// `$NETRC`, else `$HOME/.netrc`, skipped if absent (as curl does).
    Default,
    /// This file, which must exist.
    File(PathBuf),
}

/// Everything a `get` run is set up with, before it is checked.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub out_dir: PathBuf,
    pub jobs: usize,
    /// None: as many as `jobs`, so `-j N` is N downloads at once even when
    /// they share a host, and at least [`PER_HOST_FLOOR`].
    pub max_per_host: Option<usize>,
    /// None: the larger of 16 and `jobs`.
    pub max_connections: Option<usize>,
    /// None: split large files automatically.
    pub split: Option<usize>,
    pub min_split_size: u64,
    pub max_file_size: Option<u64>,
    pub max_tries: u32,
    pub retry_wait: Duration,
    pub max_retry_wait: Duration,
    pub stall_timeout: Duration,
    /// None: [`DEFAULT_LOWEST_SPEED`], or half a lower `max_speed`.
    pub lowest_speed: Option<u64>,
    pub lowest_speed_time: Duration,
    /// 0 is no limit.
    pub max_speed: u64,
    pub connect_timeout: Duration,
    /// Extra request headers, sent to each job's own origin only; checked by
    /// [`Settings::resolve`].
    pub headers: Vec<(String, String)>,
    pub user_agent: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub netrc: NetrcSource,
    pub allow_insecure_redirect: bool,
    pub allow_overwrite: bool,
}

impl Settings {
    /// The defaults, downloading into `out_dir`.
    pub fn new(out_dir: PathBuf) -> Settings {
        Settings {
            out_dir,
            jobs: DEFAULT_JOBS as usize,
            max_per_host: None,
            max_connections: None,
            split: None,
            min_split_size: DEFAULT_MIN_SPLIT_SIZE,
            max_file_size: None,
            max_tries: DEFAULT_MAX_TRIES,
            retry_wait: DEFAULT_RETRY_WAIT,
            max_retry_wait: DEFAULT_MAX_RETRY_WAIT,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            lowest_speed: None,
            lowest_speed_time: DEFAULT_LOWEST_SPEED_TIME,
            max_speed: 0,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            headers: Vec::new(),
            user_agent: None,
            ca_cert: None,
            netrc: NetrcSource::Off,
            allow_insecure_redirect: false,
            allow_overwrite: false,
        }
    }

    /// The checks that need no file and no network: counts of at least 1,
    /// times above zero, a speed floor below the speed limit.
    pub fn check(&self) -> Result<(), SettingError> {
        let counts = [
            (self.jobs, Setting::Jobs),
            (self.max_per_host.unwrap_or(1), Setting::MaxPerHost),
            (self.max_connections.unwrap_or(1), Setting::MaxConnections),
            (self.split.unwrap_or(1), Setting::Split),
            (self.max_tries as usize, Setting::MaxTries),
        ];
        if let Some((_, setting)) = counts.iter().find(|(n, _)| *n == 0) {
            return Err(SettingError::Zero(*setting));
        }
        let times = [
            (self.stall_timeout, Setting::StallTimeout),
            (self.lowest_speed_time, Setting::LowestSpeedTime),
        ];
        if let Some((_, setting)) = times.iter().find(|(t, _)| t.is_zero()) {
            return Err(SettingError::ZeroTime(*setting));
        }
        lowest_speed(self.lowest_speed, self.max_speed()).map(|_| ())
    }

    fn max_speed(&self) -> Option<u64> {
        (self.max_speed > 0).then_some(self.max_speed)
    }

    /// The one wiring of settings to the engine and the HTTP client, for
    /// the command line and the library alike: checks the settings, the
    /// headers, reads the netrc file and the CA certificate, and builds the
    /// client. `env` reads environment variables (`NETRC`, `HOME`).
    pub fn resolve(
        self,
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Resolved, ResolveError> {
        self.check()?;
        for (name, value) in &self.headers {
            header_pair(name, value).map_err(ResolveError::Header)?;
        }
        let netrc = load_netrc(&self.netrc, env)?;
        let max_speed = self.max_speed();
        let lowest_speed = lowest_speed(self.lowest_speed, max_speed)?;
        let max_connections = self.max_connections.unwrap_or(self.jobs.max(16));
        let max_per_host = self.max_per_host.unwrap_or(self.jobs.max(PER_HOST_FLOOR));
        let split_capped = split_capped(self.split, max_per_host, max_connections);
        let client = ClientOptions {
            connect_timeout: self.connect_timeout,
            user_agent: self.user_agent,
            ca_cert: self.ca_cert,
            headers: self.headers,
            allow_insecure_redirect: self.allow_insecure_redirect,
        };
        let client = crate::http::build_client(&client)
            .map_err(ResolveError::Client)?
            .with_netrc(netrc);
        Ok(Resolved {
            engine: EngineConfig {
                out_dir: self.out_dir,
                jobs: self.jobs,
                max_per_host,
                max_connections,
                split: self.split,
                min_split_size: self.min_split_size,
                max_file_size: self.max_file_size,
                retry: RetryPolicy {
                    max_tries: self.max_tries,
                    base: self.retry_wait,
                    max_wait: self.max_retry_wait,
                },
                stall_timeout: self.stall_timeout,
                lowest_speed,
                speed_window: self.lowest_speed_time,
                max_speed,
                checkpoint_every: CHECKPOINT_EVERY,
                allow_overwrite: self.allow_overwrite,
                shard: None,
                list: None,
            },
            client,
            split_capped,
        })
    }
}

/// What [`Settings::resolve`] built.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub engine: EngineConfig,
    /// The one client every job shares, netrc credentials included.
    pub client: Fetcher,
    /// Caps that keep an explicit split from opening all its connections;
    /// each side words the warning in its own spelling.
    pub split_capped: Vec<SplitCapped>,
}

/// Why [`Settings::resolve`] refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResolveError {
    #[error(transparent)]
    Setting(#[from] SettingError),
    #[error(transparent)]
    Header(ClientError),
    #[error("cannot read {}", path.display())]
    NetrcRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Netrc(#[from] NetrcError),
    #[error(transparent)]
    Client(ClientError),
}

/// A setting of a download run, as errors and warnings name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Setting {
    /// Downloads at once.
    Jobs,
    /// Connections to one host at once.
    MaxPerHost,
    /// Connections at once over the whole run.
    MaxConnections,
    /// Connections per file.
    Split,
    /// Attempts per file.
    MaxTries,
    /// How long an attempt may receive nothing.
    StallTimeout,
    /// The window the speed floor is judged over.
    LowestSpeedTime,
}

impl Setting {
    /// The setter of `DownloaderBuilder` that sets it.
    pub fn name(self) -> &'static str {
        match self {
            Setting::Jobs => "jobs",
            Setting::MaxPerHost => "max_per_host",
            Setting::MaxConnections => "max_connections",
            Setting::Split => "split",
            Setting::MaxTries => "max_tries",
            Setting::StallTimeout => "stall_timeout",
            Setting::LowestSpeedTime => "lowest_speed_time",
        }
    }

    /// The command-line flag that sets it (the CLI's messages name these).
    pub(crate) fn flag(self) -> &'static str {
        match self {
            Setting::Jobs => "-j",
            Setting::MaxPerHost => "--max-per-host",
            Setting::MaxConnections => "--max-connections",
            Setting::Split => "--split",
            Setting::MaxTries => "--max-tries",
            Setting::StallTimeout => "--stall-timeout",
            Setting::LowestSpeedTime => "--lowest-speed-time",
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A setting out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingError {
    /// A count that must be at least 1 is 0.
    #[error("{0} must be at least 1")]
    Zero(Setting),
    /// A time limit that zero would make fail at once is zero.
    #[error("{0} must be above zero")]
    ZeroTime(Setting),
    /// The speed floor is at or above the speed limit: every connection not
    /// using the whole limit would be aborted as too slow.
    #[error("lowest_speed ({lowest} B/s) must be below max_speed ({max} B/s): every connection not using the whole limit would be aborted as too slow")]
    FloorAboveLimit {
        /// The floor, in bytes a second.
        lowest: u64,
        /// The limit, in bytes a second.
        max: u64,
    },
}

/// The speed floor in force: the one given, else the default.
///
/// Either way it stays below the speed limit. Time a connection spends
/// waiting on the limit is never held against the server (see the engine's
/// `SpeedFloor::excuse`), but while the server sends slower than the limit
/// the floor judges it, and a floor at or above the limit would then abort
/// every connection that does not use the whole limit. One the user gave is
/// refused; the default, which the user never asked for, drops to half the
/// limit instead.
fn lowest_speed(given: Option<u64>, max_speed: Option<u64>) -> Result<u64, SettingError> {
    match (given, max_speed) {
        (Some(lowest), Some(max)) if lowest >= max => {
            Err(SettingError::FloorAboveLimit { lowest, max })
        }
        (Some(lowest), _) => Ok(lowest),
        (None, Some(max)) if max <= DEFAULT_LOWEST_SPEED => Ok(max / 2),
        (None, _) => Ok(DEFAULT_LOWEST_SPEED),
    }
}

/// A cap that keeps an explicit split from opening all its connections.
///
/// The caps win, and say so. `max_per_host` keeps a run polite to each
/// server for all its files together (aria2's `-x` is a hard cap over `-s`
/// too); raising it for the file that asked would break that the moment two
/// split files share a host, and the user may have set the cap on purpose.
/// What was wrong was only that it won silently: the warning names both
/// settings and the value that would give the split its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SplitCapped {
    pub split: usize,
    /// [`Setting::MaxPerHost`] or [`Setting::MaxConnections`].
    pub cap: Setting,
    pub cap_value: usize,
}

impl SplitCapped {
    /// One line, naming each setting as `name` spells it.
    pub fn line(&self, name: impl Fn(Setting) -> &'static str) -> String {
        let (split, n) = (self.split, self.cap_value);
        let (split_name, cap_name) = (name(Setting::Split), name(self.cap));
        let scope = match self.cap {
            Setting::MaxPerHost => " to its host",
            _ => "",
        };
        format!(
            "{split_name} {split} is more than {cap_name} {n}: a file gets at most \
             {n} connections{scope} (raise {cap_name} to {split} to use all {split})"
        )
    }
}

/// Each cap an explicit `split` is above, per-host first.
fn split_capped(
    split: Option<usize>,
    max_per_host: usize,
    max_connections: usize,
) -> Vec<SplitCapped> {
    let Some(split) = split else {
        return Vec::new();
    };
    [
        (Setting::MaxPerHost, max_per_host),
        (Setting::MaxConnections, max_connections),
    ]
    .into_iter()
    .filter(|&(_, cap_value)| split > cap_value)
    .map(|(cap, cap_value)| SplitCapped {
        split,
        cap,
        cap_value,
    })
    .collect()
}

/// The netrc file as curl finds it: a named file (must exist), else
/// `$NETRC` or `$HOME/.netrc` (skipped if absent, as curl does).
fn load_netrc(
    source: &NetrcSource,
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<Option<Netrc>, ResolveError> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let (path, required) = match source {
        NetrcSource::File(path) => (path.clone(), true),
        NetrcSource::Off => return Ok(None),
        NetrcSource::Default => {
            match set("NETRC").or_else(|| set("HOME").map(|h| h.join(".netrc"))) {
                Some(path) => (path, false),
                None => return Ok(None),
            }
        }
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if !required && err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ResolveError::NetrcRead { path, source }),
    };
    Ok(Some(Netrc::parse(&text, &path.display().to_string())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(warnings: &[SplitCapped]) -> Vec<String> {
        warnings.iter().map(|w| w.line(Setting::flag)).collect()
    }

    #[test]
    fn a_split_above_a_cap_is_one_warning_line_per_cap_naming_both_flags() {
        assert!(split_capped(None, 1, 1).is_empty(), "automatic splits");
        assert!(split_capped(Some(4), 4, 16).is_empty());
        let per_host = flags(&split_capped(Some(8), 4, 16));
        assert_eq!(per_host.len(), 1);
        assert!(
            per_host[0].contains("--split 8") && per_host[0].contains("--max-per-host 4"),
            "{per_host:?}"
        );
        let both = flags(&split_capped(Some(32), 8, 16));
        assert_eq!(both.len(), 2);
        assert!(both[1].contains("--max-connections 16"), "{both:?}");
        assert!(both.iter().all(|w| !w.contains('\n')), "{both:?}");
    }

    #[test]
    fn the_library_words_split_warnings_with_setting_names() {
        let lines: Vec<String> = split_capped(Some(8), 4, 16)
            .iter()
            .map(|w| w.line(Setting::name))
            .collect();
        assert_eq!(
            lines,
            [
                "split 8 is more than max_per_host 4: a file gets at most 4 connections to its \
              host (raise max_per_host to 8 to use all 8)"
            ]
        );
    }

    #[test]
    fn the_speed_floor_is_on_by_default_and_stays_below_the_limit() {
        assert_eq!(lowest_speed(None, None).ok(), Some(1024));
        assert_eq!(lowest_speed(None, Some(10 << 20)).ok(), Some(1024));
        assert_eq!(lowest_speed(None, Some(1025)).ok(), Some(1024));
        // The default gives way to a limit at or below it...
        assert_eq!(lowest_speed(None, Some(1024)).ok(), Some(512));
        assert_eq!(lowest_speed(None, Some(300)).ok(), Some(150));
        // ...but a floor the user gave is theirs: kept, or refused.
        assert_eq!(lowest_speed(Some(0), Some(300)).ok(), Some(0));
        assert_eq!(lowest_speed(Some(200), Some(300)).ok(), Some(200));
        assert_eq!(lowest_speed(Some(5 << 20), None).ok(), Some(5 << 20));
        assert!(matches!(
            lowest_speed(Some(300), Some(300)),
            Err(SettingError::FloorAboveLimit {
                lowest: 300,
                max: 300
            })
        ));
    }

    #[test]
    fn zero_counts_and_times_are_refused_naming_the_setting() {
        let mut s = Settings::new("x".into());
        assert_eq!(s.check(), Ok(()));
        s.split = Some(0);
        assert_eq!(s.check(), Err(SettingError::Zero(Setting::Split)));
        s.split = None;
        s.stall_timeout = Duration::ZERO;
        let err = s.check().err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("stall_timeout must be above zero"));
    }
}
