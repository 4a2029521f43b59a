//! Validated settings for each command, built from the raw command line:
//! reads and checks the URL list, the checksum file and the headers, so that
//! bad input is rejected before anything is downloaded. The settings a
//! library caller has too go through [`Settings`] and its one wiring
//! function; what is left here is the command line's own (the list file,
//! `-o`, `--checksums`, `--shard`, hooks, output format) and its wording:
//! errors here name flags.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::GetArgs;
use crate::engine::{EngineConfig, JobSource, JobSpec};
use crate::hooks::{HookConfig, HookConfigError};
use crate::http::{split_header, ClientError, Fetcher};
use crate::list::{entries_from_args, ListError};
use crate::list_fingerprint::ListFingerprint;
use crate::naming::{self, NameError};
use crate::netrc::NetrcError;
use crate::plan::list_file::{check as check_list, CheckListError, Checked, Feed};
use crate::settings::{NetrcSource, ResolveError, Setting, SettingError, Settings};
use crate::shard::path_digest;
use crate::store::list_stamp::ListStamp;
use crate::sums::{parse_sums, SumsError};

/// Everything `haul get` needs, checked.
#[derive(Debug)]
pub struct GetConfig {
    pub engine: EngineConfig,
    /// The shared HTTP client, with `--netrc` credentials.
    pub client: Fetcher,
    pub jobs: Jobs,
    pub quiet: bool,
    /// `--write-sums FILE`, written after the run.
    pub write_sums: Option<PathBuf>,
    /// `--json`: JSON lines on stdout instead of bars and plain lines.
    pub json: bool,
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
    #[error("{0} must be above 0 seconds")]
    ZeroTime(&'static str),
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
    #[error("cannot keep standard input in a temporary file in {} (set TMPDIR to another directory)", dir.display())]
    Spool {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    List(#[from] ListError),
    #[error(transparent)]
    Sums(#[from] SumsError),
    #[error(transparent)]
    Header(#[from] ClientError),
    /// The HTTP client: an unusable `--ca-cert`.
    #[error(transparent)]
    Client(ClientError),
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
        let mut settings = settings_from_args(&args);
        // The pure checks first: a bad count is reported before any file
        // is read.
        settings.check().map_err(flag_error)?;
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
        let list = args.input.as_deref().map(open_list).transpose()?;
        // Read now to check the list's checksums as it streams by; its own
        // errors still come after the list's, as when it was applied to
        // the planned jobs.
        let sums = args.checksums.as_deref().map(read_sums);
        let digests = match &sums {
            Some(Ok(sums)) => Some(&sums.by_path),
            _ => None,
        };
        let shard = args.shard;
        let mut expected = 0;
        // Over every shard's jobs, so all shards of a list agree on it.
        let mut fingerprint = ListFingerprint::default();
        // The first conflict with the sums file, by its line: (line, path, origin).
        let mut conflict: Option<(usize, String, String)> = None;
        let read_name = list.as_ref().map(|(_, name)| name.clone());
        let checked = check_list(entries, list, |job| {
            let digest = path_digest(&job.path);
            fingerprint.add_digest(&digest);
            if shard.is_none_or(|shard| shard.contains_digest(&digest)) {
                expected += 1;
            }
            let (Some(given), Some(digests)) = (job.checksum, digests) else {
                return;
            };
            let Some(&(digest, line)) = digests.get(job.path.as_str()) else {
                return;
            };
            // The sums file's first conflicting line is the one reported.
            let earlier = conflict.as_ref().is_none_or(|(first, ..)| line < *first);
            if digest != given && earlier {
                conflict = Some((line, job.path.to_string(), job.origin.to_string()));
            }
        })
        .map_err(|err| match err {
            CheckListError::Read(source) => ConfigError::Read {
                path: read_name.unwrap_or_default().into(),
                source,
            },
            CheckListError::List(err) => ConfigError::List(err),
        })?;
        if checked.is_empty() {
            return Err(match args.input {
                Some(input) if input == "-" => ConfigError::EmptyList {
                    list: "standard input".into(),
                },
                Some(input) => ConfigError::EmptyList { list: input },
                None => ConfigError::NoUrls,
            });
        }
        let digests = match sums {
            Some(sums) => {
                let sums = sums?;
                if let Some((line, path, origin)) = conflict {
                    return Err(ConfigError::ChecksumConflict {
                        sums: sums.source,
                        line,
                        path,
                        origin,
                    });
                }
                sums.by_path
            }
            None => HashMap::new(),
        };
        // Duplicates, path conflicts and bad sums lines are caught over the
        // whole list, identically on every shard: the shard is taken, and
        // the sums applied, as the jobs stream to the engine.
        let adjust = move |mut job: JobSpec| {
            if !shard.is_none_or(|shard| shard.contains(&job.path)) {
                return None;
            }
            if let Some(&(digest, _)) = digests.get(job.path.as_str()) {
                job.checksum = Some(digest);
            }
            Some(job)
        };
        let jobs = Jobs {
            checked,
            adjust: Box::new(adjust),
            expected,
        };
        settings.headers = args
            .headers
            .iter()
            .map(|raw| split_header(raw))
            .collect::<Result<Vec<_>, _>>()?;
        let mut resolved = settings
            .resolve(|name| std::env::var_os(name))
            .map_err(resolve_error)?;
        resolved.engine.shard = args.shard;
        // Only a list file is a list: URLs on the command line are one-off
        // additions to a directory, and each would read as another list.
        resolved.engine.list = args.input.is_some().then(|| {
            ListStamp::new(
                fingerprint.hex(),
                fingerprint.count(),
                args.shard,
                expected as u64,
            )
        });
        let hooks = match args.on_complete {
            Some(program) => Some(HookConfig::new(
                program,
                args.on_complete_jobs,
                args.on_complete_timeout,
                crate::hooks::path_var().as_deref(),
            )?),
            None => None,
        };
        let warnings = resolved
            .split_capped
            .iter()
            .map(|capped| capped.line(Setting::flag))
            .collect();
        Ok(GetConfig {
            engine: resolved.engine,
            client: resolved.client,
            jobs,
            quiet: args.quiet,
            write_sums: args.write_sums,
            json: args.json,
            hooks,
            warnings,
        })
    }
}

/// The jobs of `haul get`, checked: read as a stream when the run starts.
pub struct Jobs {
    checked: Checked,
    /// `--shard` and `--checksums`, applied to each job as it streams.
    adjust: Box<dyn FnMut(JobSpec) -> Option<JobSpec> + Send>,
    /// Jobs the run will have.
    expected: usize,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs")
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl Jobs {
    /// The engine's source; the list file, if any, is read again as the
    /// engine takes its jobs. See [`Checked::into_source`].
    pub fn start(self) -> (JobSource, Feed) {
        self.checked.into_source(self.adjust, self.expected)
    }
}

/// The list file `input` and its name in errors (`-` is standard input,
/// kept in an unlinked temporary file so that it can be read twice).
pub(crate) fn open_list(input: &str) -> Result<(File, String), ConfigError> {
    if input != "-" {
        let file = File::open(input).map_err(|source| ConfigError::Read {
            path: input.into(),
            source,
        })?;
        return Ok((file, input.to_owned()));
    }
    let mut file = tempfile::tempfile().map_err(|source| ConfigError::Spool {
        dir: std::env::temp_dir(),
        source,
    })?;
    std::io::copy(&mut std::io::stdin().lock(), &mut file).map_err(|source| ConfigError::Read {
        path: "<stdin>".into(),
        source,
    })?;
    Ok((file, "<stdin>".to_owned()))
}

/// A settings error in the CLI's words: flags are named here, not in the
/// library.
fn resolve_error(err: ResolveError) -> ConfigError {
    match err {
        ResolveError::Setting(err) => flag_error(err),
        ResolveError::Header(err) => ConfigError::Header(err),
        ResolveError::Client(err) => ConfigError::Client(err),
        ResolveError::NetrcRead { path, source } => ConfigError::Read { path, source },
        ResolveError::Netrc(err) => ConfigError::Netrc(err),
    }
}

/// The command line's settings, as the library's builder would set them:
/// the one place a `haul get` flag meets [`Settings`].
fn settings_from_args(args: &GetArgs) -> Settings {
    let netrc = match (&args.netrc_file, args.netrc) {
        (Some(file), _) => NetrcSource::File(file.clone()),
        (None, true) => NetrcSource::Default,
        (None, false) => NetrcSource::Off,
    };
    Settings {
        out_dir: args.dir.clone(),
        jobs: args.jobs,
        max_per_host: args.max_per_host,
        max_connections: args.max_connections,
        split: args.split,
        min_split_size: args.min_split_size,
        max_file_size: args.max_file_size,
        max_tries: args.max_tries,
        retry_wait: Duration::from_secs_f64(args.retry_wait),
        max_retry_wait: Duration::from_secs_f64(args.max_retry_wait),
        stall_timeout: Duration::from_secs_f64(args.stall_timeout),
        lowest_speed: args.lowest_speed,
        lowest_speed_time: Duration::from_secs_f64(args.lowest_speed_time),
        max_speed: args.max_speed,
        connect_timeout: Duration::from_secs_f64(args.connect_timeout),
        // Split and checked after the list, as before: see `from_args`.
        headers: Vec::new(),
        user_agent: args.user_agent.clone(),
        ca_cert: args.ca_cert.clone(),
        netrc,
        allow_insecure_redirect: args.allow_insecure_redirect,
        allow_overwrite: args.allow_overwrite,
    }
}

/// A setting's error in the command line's words: it names the flag.
fn flag_error(err: SettingError) -> ConfigError {
    match err {
        SettingError::Zero(setting) => ConfigError::Zero(setting.flag()),
        SettingError::ZeroTime(setting) => ConfigError::ZeroTime(setting.flag()),
        SettingError::FloorAboveLimit { lowest, max } => {
            ConfigError::FloorAboveLimit { lowest, max }
        }
    }
}

/// A sha256sum file's digests by path, with their lines.
struct Sums {
    source: String,
    by_path: HashMap<String, ([u8; 32], usize)>,
}

fn read_sums(path: &std::path::Path) -> Result<Sums, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let source = path.display().to_string();
    let by_path = parse_sums(&text, &source)?
        .into_iter()
        .map(|entry| (entry.path.to_string(), (entry.sha256, entry.line)))
        .collect();
    Ok(Sums { source, by_path })
}
