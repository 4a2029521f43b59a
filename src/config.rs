//! Validated settings for each command, built from the raw command line:
//! reads and checks the URL list, the checksum file and the headers, so that
//! bad input is rejected before anything is downloaded.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::GetArgs;
use crate::engine::retry::RetryPolicy;
use crate::engine::{EngineConfig, DEFAULT_LOWEST_SPEED};
use crate::hooks::{HookConfig, HookConfigError};
use crate::http::{split_header, ClientError, ClientOptions};
use crate::list::{entries_from_args, parse_list, plan, JobSpec, ListEntry, ListError};
use crate::naming::{self, NameError};
use crate::netrc::{Netrc, NetrcError};
use crate::sums::{parse_sums, SumsError};

/// How often a running download syncs and records its offset. Resume does
/// not depend on it within one boot (the page cache survives a kill), only
/// after a crash of the whole machine.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Everything `haul get` needs, checked.
#[derive(Debug)]
pub struct GetConfig {
    pub engine: EngineConfig,
    pub client: ClientOptions,
    pub jobs: Vec<JobSpec>,
    pub quiet: bool,
    /// `--write-sums FILE`, written after the run.
    pub write_sums: Option<PathBuf>,
    /// `--json`: JSON lines on stdout instead of bars and plain lines.
    pub json: bool,
    /// Credentials from `--netrc` / `--netrc-file`, for `Fetcher::with_netrc`.
    pub netrc: Option<Netrc>,
    /// `--on-complete`: the hook to run for each finished file.
    pub hooks: Option<HookConfig>,
    /// Settings that are valid but will do less than they say, one line
    /// each: shown before the run (in `--json`, in the summary).
    pub warnings: Vec<String>,
}

/// Bad usage or bad input: exit code 2, before any download.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("nothing to download: give URLs or -i FILE")]
    NoUrls,
    /// `-i FILE` was given, and FILE (or stdin) holds no URL.
    #[error("nothing to download: {list} has no URLs (only blank lines and comments)")]
    EmptyList { list: String },
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error("-o/--out names the file of one URL, but {0} URLs were given (name several files with out= lines in a list, -i FILE)")]
    OutManyUrls(usize),
    #[error("-o/--out names the file of the URL on the command line, and none was given")]
    OutNoUrl,
    /// The same checks as a list's `out=`.
    #[error("-o/--out: {0}")]
    Out(NameError),
    #[error("--lowest-speed ({lowest} B/s) must be below --max-speed ({max} B/s): every connection not using the whole limit would be aborted as too slow")]
    FloorAboveLimit { lowest: u64, max: u64 },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    List(#[from] ListError),
    #[error(transparent)]
    Sums(#[from] SumsError),
    #[error(transparent)]
    Header(#[from] ClientError),
    #[error(transparent)]
    Netrc(#[from] NetrcError),
    #[error(transparent)]
    Hook(#[from] HookConfigError),
    #[error("{sums}:{line}: checksum for '{path}' differs from the one given at {origin}")]
    ChecksumConflict {
        sums: String,
        line: usize,
        path: String,
        origin: String,
    },
}

impl GetConfig {
    pub fn from_args(args: GetArgs) -> Result<GetConfig, ConfigError> {
        Self::from_args_and(args, Vec::new())
    }

    /// As [`GetConfig::from_args`], with `extra` entries (built by the library,
    /// already checked) downloaded after the command line's and the list's.
    pub fn from_args_and(args: GetArgs, extra: Vec<ListEntry>) -> Result<GetConfig, ConfigError> {
        if args.jobs == 0 {
            return Err(ConfigError::Zero("-j"));
        }
        if args.max_per_host == 0 {
            return Err(ConfigError::Zero("--max-per-host"));
        }
        if args.max_connections == Some(0) {
            return Err(ConfigError::Zero("--max-connections"));
        }
        if args.split == Some(0) {
            return Err(ConfigError::Zero("--split"));
        }
        if args.max_tries == 0 {
            return Err(ConfigError::Zero("--max-tries"));
        }
        let max_speed = (args.max_speed > 0).then_some(args.max_speed);
        let lowest_speed = lowest_speed(args.lowest_speed, max_speed)?;
        let mut entries = entries_from_args(&args.urls)?;
        if let Some(out) = &args.out {
            // aria2c refuses -o with several URIs too; clap already refuses
            // it beside -i.
            let only = match entries.as_mut_slice() {
                [] => return Err(ConfigError::OutNoUrl),
                [only] => only,
                many => return Err(ConfigError::OutManyUrls(many.len())),
            };
            naming::check_out(out).map_err(ConfigError::Out)?;
            only.out = Some(out.clone());
        }
        if let Some(input) = &args.input {
            let (text, source) = if input == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|source| ConfigError::Read {
                        path: "<stdin>".into(),
                        source,
                    })?;
                (text, "<stdin>".to_string())
            } else {
                let text = std::fs::read_to_string(input).map_err(|source| ConfigError::Read {
                    path: input.into(),
                    source,
                })?;
                (text, input.clone())
            };
            entries.extend(parse_list(&text, &source)?);
        }
        entries.extend(extra);
        if entries.is_empty() {
            return Err(match args.input {
                Some(input) if input == "-" => ConfigError::EmptyList {
                    list: "standard input".into(),
                },
                Some(input) => ConfigError::EmptyList { list: input },
                None => ConfigError::NoUrls,
            });
        }
        let mut jobs = plan(entries)?;
        if let Some(path) = &args.checksums {
            apply_sums(&mut jobs, path)?;
        }
        // After planning and the sums: duplicates, path conflicts and bad
        // sums lines are caught over the whole list, identically on every shard.
        if let Some(shard) = args.shard {
            jobs.retain(|job| shard.contains(&job.path));
        }
        let headers = args
            .headers
            .iter()
            .map(|raw| split_header(raw))
            .collect::<Result<Vec<_>, _>>()?;
        let netrc = load_netrc(args.netrc, args.netrc_file.as_deref(), |name| {
            std::env::var_os(name)
        })?;
        let hooks = match args.on_complete {
            Some(program) => Some(HookConfig::new(
                program,
                args.on_complete_jobs,
                args.on_complete_timeout,
                crate::hooks::path_var().as_deref(),
            )?),
            None => None,
        };
        let max_connections = args.max_connections.unwrap_or(args.jobs.max(16));
        let warnings = split_warnings(args.split, args.max_per_host, max_connections);
        Ok(GetConfig {
            engine: EngineConfig {
                out_dir: args.dir,
                jobs: args.jobs,
                max_per_host: args.max_per_host,
                max_connections,
                split: args.split,
                min_split_size: args.min_split_size,
                max_file_size: args.max_file_size,
                retry: RetryPolicy {
                    max_tries: args.max_tries,
                    base: Duration::from_secs_f64(args.retry_wait),
                    max_wait: Duration::from_secs_f64(args.max_retry_wait),
                },
                stall_timeout: Duration::from_secs_f64(args.stall_timeout),
                lowest_speed,
                speed_window: Duration::from_secs_f64(args.lowest_speed_time),
                max_speed,
                checkpoint_every: CHECKPOINT_EVERY,
                allow_overwrite: args.allow_overwrite,
                shard: args.shard,
            },
            client: ClientOptions {
                connect_timeout: Duration::from_secs_f64(args.connect_timeout),
                user_agent: args.user_agent,
                ca_cert: args.ca_cert,
                headers,
                allow_insecure_redirect: args.allow_insecure_redirect,
            },
            jobs,
            quiet: args.quiet,
            write_sums: args.write_sums,
            json: args.json,
            netrc,
            hooks,
            warnings,
        })
    }
}

/// The `--lowest-speed` floor in force: the one given, else the default.
///
/// Either way it stays below `--max-speed`. Time a connection spends
/// waiting on the limit is never held against the server (see the engine's
/// `SpeedFloor::excuse`), but while the server sends slower than the limit
/// the floor judges it, and a floor at or above the limit would then abort
/// every connection that does not use the whole limit. One the user gave is
/// refused; the default, which the user never asked for, drops to half the
/// limit instead.
fn lowest_speed(given: Option<u64>, max_speed: Option<u64>) -> Result<u64, ConfigError> {
    match (given, max_speed) {
        (Some(lowest), Some(max)) if lowest >= max => {
            Err(ConfigError::FloorAboveLimit { lowest, max })
        }
        (Some(lowest), _) => Ok(lowest),
        (None, Some(max)) if max <= DEFAULT_LOWEST_SPEED => Ok(max / 2),
        (None, _) => Ok(DEFAULT_LOWEST_SPEED),
    }
}

/// A line for each cap that keeps an explicit `--split N` from opening N
/// connections.
///
/// The caps win, and say so. `--max-per-host` keeps a run polite to each
/// server for all its files together (aria2's `-x` is a hard cap over `-s`
/// too); raising it for the file that asked would break that the moment two
/// split files share a host, and the user may have set the cap on purpose.
/// What was wrong was only that it won silently: the warning names both
/// flags and the value that would give the split its connections.
fn split_warnings(
    split: Option<usize>,
    max_per_host: usize,
    max_connections: usize,
) -> Vec<String> {
    let Some(split) = split else {
        return Vec::new();
    };
    let mut warnings = Vec::new();
    if split > max_per_host {
        warnings.push(format!(
            "--split {split} is more than --max-per-host {max_per_host}: a file gets at most \
             {max_per_host} connections to its host (raise --max-per-host to {split} to use all {split})"
        ));
    }
    if split > max_connections {
        warnings.push(format!(
            "--split {split} is more than --max-connections {max_connections}: a file gets at \
             most {max_connections} connections (raise --max-connections to {split} to use all {split})"
        ));
    }
    warnings
}

/// The netrc file as curl finds it: `--netrc-file FILE` (must exist), else
/// with `--netrc` `$NETRC` or `$HOME/.netrc` (skipped if absent, as curl
/// does).
pub fn load_netrc(
    enabled: bool,
    file: Option<&std::path::Path>,
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<Option<Netrc>, ConfigError> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let (path, required) = match file {
        Some(path) => (path.to_path_buf(), true),
        None if !enabled => return Ok(None),
        None => match set("NETRC").or_else(|| set("HOME").map(|h| h.join(".netrc"))) {
            Some(path) => (path, false),
            None => return Ok(None),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if !required && err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ConfigError::Read { path, source }),
    };
    Ok(Some(Netrc::parse(&text, &path.display().to_string())?))
}

/// Attaches sha256sum-file entries to the jobs with the same output path.
fn apply_sums(jobs: &mut [JobSpec], path: &std::path::Path) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let source = path.display().to_string();
    let sums = parse_sums(&text, &source)?;
    let by_path: HashMap<&str, usize> = jobs
        .iter()
        .enumerate()
        .map(|(i, job)| (job.path.as_str(), i))
        .collect();
    let mut updates = Vec::new();
    for entry in &sums {
        if let Some(&i) = by_path.get(entry.path.as_str()) {
            updates.push((i, entry));
        }
    }
    for (i, entry) in updates {
        let job = &mut jobs[i];
        match job.checksum {
            Some(given) if given != entry.sha256 => {
                return Err(ConfigError::ChecksumConflict {
                    sums: source,
                    line: entry.line,
                    path: job.path.to_string(),
                    origin: job.origin.to_string(),
                })
            }
            _ => job.checksum = Some(entry.sha256),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_above_a_cap_is_one_warning_line_per_cap_naming_both_flags() {
        assert!(split_warnings(None, 1, 1).is_empty(), "automatic splits");
        assert!(split_warnings(Some(4), 4, 16).is_empty());
        let per_host = split_warnings(Some(8), 4, 16);
        assert_eq!(per_host.len(), 1);
        assert!(
            per_host[0].contains("--split 8") && per_host[0].contains("--max-per-host 4"),
            "{per_host:?}"
        );
        let both = split_warnings(Some(32), 8, 16);
        assert_eq!(both.len(), 2);
        assert!(both[1].contains("--max-connections 16"), "{both:?}");
        assert!(both.iter().all(|w| !w.contains('\n')), "{both:?}");
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
            Err(ConfigError::FloorAboveLimit {
                lowest: 300,
                max: 300
            })
        ));
    }
}
