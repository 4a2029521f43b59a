//! The command line as the user typed it: clap derive structs, no logic.
//! `config.rs` turns these into validated settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::settings::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_JOBS, DEFAULT_LOWEST_SPEED_TIME, DEFAULT_MAX_RETRY_WAIT,
    DEFAULT_MAX_TRIES, DEFAULT_RETRY_WAIT, DEFAULT_STALL_TIMEOUT,
};
use crate::size::parse_size;

// `--help` headings. Clap lists them in the order their first option
// appears below; `-h` shows only the options not marked `hide_short_help`.
const INPUT: &str = "Input";
const OUTPUT: &str = "Output";
const CONNECTIONS: &str = "Connections";
const RETRIES: &str = "Retries and timeouts";
const VERIFICATION: &str = "Verification";
const NETWORK: &str = "Network and TLS";
const FORMAT: &str = "Output format";
const HOOKS: &str = "Hooks";
const CONFIGURATION: &str = "Configuration";

/// A resumable, parallel, verifying HTTP(S) download manager.
///
/// Exit codes: 0 all done, 1 some downloads failed (status: not all done),
/// 2 bad usage or input, 130 interrupted (progress saved: run the same
/// command again to resume).
#[derive(Debug, Parser)]
#[command(name = "haul", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Read defaults from this TOML file [default: $HAUL_CONFIG, else
    /// $XDG_CONFIG_HOME/haul/config.toml if it exists].
    #[arg(long, global = true, value_name = "FILE")]
    #[arg(help_heading = CONFIGURATION, hide_short_help = true)]
    pub config: Option<PathBuf>,
    /// Read no config file.
    #[arg(long, global = true, conflicts_with = "config")]
    #[arg(help_heading = CONFIGURATION, hide_short_help = true)]
    pub no_config: bool,
}

// Parsed once per run: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Download URLs (from the command line and/or an aria2-style list).
    // An option given twice takes the last value, as in curl and aria2c.
    #[command(args_override_self = true)]
    Get(GetArgs),
    /// Re-hash downloaded files against the manifest or a sha256sum file.
    Verify(VerifyArgs),
    /// Show what the manifests in an output directory record, and what
    /// their list names that no manifest holds yet (exit 0 only when all
    /// of it is done, else 1).
    Status(StatusArgs),
    /// Serve a directory over HTTP with Range and ETag support.
    Serve(ServeArgs),
    /// Run an offline demo: serve generated files on loopback and download them.
    Demo(DemoArgs),
    /// Print a shell completion script to stdout.
    Completions(CompletionsArgs),
    /// Print the man page (roff) to stdout, or write one page per command.
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// URLs to download (http or https).
    pub urls: Vec<String>,
    /// Read URLs from FILE ("-" for standard input), aria2 input-file style.
    ///
    /// One URL a line (TAB-separated URLs are mirrors of one file); indented
    /// `out=`, `dir=`, `checksum=sha-256=HEX` and `header=Name: value` lines
    /// apply to the URL above. See LIST FORMAT in `haul man`.
    #[arg(short = 'i', long = "input-file", value_name = "FILE")]
    #[arg(help_heading = INPUT)]
    pub input: Option<String>,
    /// Directory to save into; state is kept in DIR/.haul/.
    #[arg(short = 'd', long = "dir", value_name = "DIR", default_value = ".")]
    #[arg(visible_short_alias = 'P', visible_alias = "directory-prefix")]
    #[arg(help_heading = OUTPUT)]
    pub dir: PathBuf,
    /// Save the one URL given as NAME (inside DIR; may hold sub-directories).
    ///
    /// As a list's `out=`: `..` components and absolute paths are refused.
    /// With more than one URL, or with -i, it is an error (name them with
    /// `out=` lines in a list instead).
    #[arg(
        short = 'o',
        long = "out",
        value_name = "NAME",
        conflicts_with = "input"
    )]
    #[arg(help_heading = OUTPUT)]
    pub out: Option<String>,
    /// Accepted for aria2c and wget users: haul always resumes.
    ///
    /// A partial download (`NAME.part` and its record in DIR/.haul/) is
    /// always continued from where it stopped, with or without this flag.
    #[arg(short = 'c', long = "continue")]
    #[arg(help_heading = OUTPUT, hide_short_help = true)]
    pub resume: bool,
    /// Downloads at once.
    ///
    /// Over HTTP/2, up to 4 × N: a host that multiplexes carries its
    /// downloads as streams on its open connections, and many small files
    /// finish sooner with more requests in flight.
    #[arg(short = 'j', long = "jobs", value_name = "N", default_value_t = DEFAULT_JOBS as usize)]
    #[arg(visible_alias = "max-concurrent-downloads", help_heading = CONNECTIONS)]
    pub jobs: usize,
    /// Connections to one host at once [default: -j, at least 4].
    ///
    /// Over HTTP/2 a host's downloads are streams on its open connections:
    /// only -j bounds them (see -j).
    #[arg(long, value_name = "N")]
    #[arg(short = 'x', visible_alias = "max-connection-per-server")]
    #[arg(help_heading = CONNECTIONS)]
    pub max_per_host: Option<usize>,
    /// Connections at once over the whole run [default: the larger of 16 and -j].
    #[arg(long, value_name = "N")]
    #[arg(help_heading = CONNECTIONS, hide_short_help = true)]
    pub max_connections: Option<usize>,
    /// Connections per file (1 disables splitting).
    ///
    /// Default: up to 4 for files of at least --min-split-size when the
    /// server supports ranges.
    #[arg(short = 's', long, value_name = "N")]
    #[arg(help_heading = CONNECTIONS)]
    pub split: Option<usize>,
    /// Split automatically only files at least this large (bytes; K, M, G suffixes).
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = parse_size)]
    #[arg(short = 'k', help_heading = CONNECTIONS, hide_short_help = true)]
    pub min_split_size: u64,
    /// Fail any file larger than this (bytes; K, M, G suffixes).
    ///
    /// An announced length over it is refused before download, a body
    /// without one is cut.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    #[arg(help_heading = OUTPUT, hide_short_help = true)]
    pub max_file_size: Option<u64>,
    /// Attempts per file before giving up (the first one included).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_TRIES)]
    #[arg(short = 't', visible_alias = "tries", help_heading = RETRIES)]
    pub max_tries: u32,
    /// Base wait between attempts in seconds; it doubles each time, with jitter.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_RETRY_WAIT.as_secs_f64(), value_parser = parse_secs)]
    #[arg(help_heading = RETRIES, hide_short_help = true)]
    pub retry_wait: f64,
    /// Longest wait between attempts, Retry-After included, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_MAX_RETRY_WAIT.as_secs_f64(), value_parser = parse_secs)]
    #[arg(help_heading = RETRIES, hide_short_help = true)]
    pub max_retry_wait: f64,
    /// Abort an attempt that receives no bytes for this many seconds (above 0).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_STALL_TIMEOUT.as_secs_f64(), value_parser = parse_positive_secs)]
    #[arg(help_heading = RETRIES, hide_short_help = true)]
    pub stall_timeout: f64,
    /// Abort and retry an attempt that averages fewer bytes a second than this
    /// over the last --lowest-speed-time seconds (K, M, G suffixes; 0 is off)
    /// [default: 1K, or half of a --max-speed at or below that].
    #[arg(
        long,
        visible_aliases = ["lowest-speed-limit", "speed-limit"],
        value_name = "SPEED",
        value_parser = parse_size
    )]
    #[arg(help_heading = RETRIES, hide_short_help = true)]
    pub lowest_speed: Option<u64>,
    /// The sliding window --lowest-speed is judged over, in seconds.
    #[arg(
        long,
        visible_alias = "speed-time",
        value_name = "SECS",
        default_value_t = DEFAULT_LOWEST_SPEED_TIME.as_secs_f64(),
        value_parser = parse_positive_secs
    )]
    #[arg(help_heading = RETRIES, hide_short_help = true)]
    pub lowest_speed_time: f64,
    /// Cap the whole run at this many bytes a second, all connections
    /// together (K, M, G suffixes; 0 is no limit).
    #[arg(
        long,
        visible_alias = "max-overall-download-limit",
        value_name = "RATE",
        default_value = "0",
        value_parser = parse_size
    )]
    #[arg(help_heading = CONNECTIONS)]
    pub max_speed: u64,
    /// Give up connecting after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_CONNECT_TIMEOUT.as_secs_f64(), value_parser = parse_secs)]
    #[arg(help_heading = RETRIES, hide_short_help = true)]
    pub connect_timeout: f64,
    /// sha256sum-format file of expected checksums (names relative to DIR).
    #[arg(long, value_name = "FILE")]
    #[arg(help_heading = VERIFICATION)]
    pub checksums: Option<PathBuf>,
    /// Extra request header for every URL, "Name: value" (repeatable).
    #[arg(long = "header", value_name = "HEADER")]
    #[arg(help_heading = NETWORK)]
    pub headers: Vec<String>,
    /// User-Agent header.
    #[arg(long, value_name = "UA")]
    #[arg(short = 'U', help_heading = NETWORK, hide_short_help = true)]
    pub user_agent: Option<String>,
    /// Also trust the CA certificates in this PEM file.
    #[arg(long, value_name = "FILE")]
    #[arg(help_heading = NETWORK, hide_short_help = true)]
    pub ca_cert: Option<PathBuf>,
    /// Send basic-auth credentials from ~/.netrc (or $NETRC) to the hosts it
    /// names, unless the URL or an Authorization header carries some.
    #[arg(long)]
    #[arg(help_heading = NETWORK, hide_short_help = true)]
    pub netrc: bool,
    /// Like --netrc, with this file (which must exist).
    #[arg(long, value_name = "FILE")]
    #[arg(help_heading = NETWORK, hide_short_help = true)]
    pub netrc_file: Option<PathBuf>,
    /// Follow redirects from HTTPS to plain HTTP.
    ///
    /// Refused by default: the rest of the download would travel
    /// unencrypted.
    #[arg(long)]
    #[arg(help_heading = NETWORK, hide_short_help = true)]
    pub allow_insecure_redirect: bool,
    /// Replace existing files that haul did not download.
    #[arg(long)]
    #[arg(help_heading = OUTPUT, hide_short_help = true)]
    pub allow_overwrite: bool,
    /// Print only errors.
    #[arg(short, long)]
    #[arg(help_heading = FORMAT)]
    pub quiet: bool,
    /// After the run, write a sha256sum file of every complete file.
    ///
    /// It lists every complete file this directory's manifest (or the
    /// shard's) records, sorted by name, with names relative to DIR: `cd DIR
    /// && sha256sum -c FILE` accepts it.
    #[arg(long, value_name = "FILE")]
    #[arg(help_heading = VERIFICATION, hide_short_help = true)]
    pub write_sums: Option<PathBuf>,
    /// Take only shard K of N (K from 0 to N-1) of the list.
    ///
    /// A stable hash of each output path picks its shard. State goes to
    /// DIR/.haul/shard-K-of-N/.
    #[arg(long, value_name = "K/N")]
    #[arg(help_heading = INPUT, hide_short_help = true)]
    pub shard: Option<crate::shard::Shard>,
    /// Print newline-delimited JSON events on stdout instead of bars and
    /// lines (schema in README, "Machine-readable output").
    #[arg(long)]
    #[arg(help_heading = FORMAT)]
    pub json: bool,
    /// Run PROGRAM for each file this run downloads.
    ///
    /// It runs as `PROGRAM PATH URL SHA256` (PATH absolute), with
    /// HAUL_PATH, HAUL_URL, HAUL_SHA256, HAUL_BYTES and HAUL_OUT_DIR set. A
    /// program, not a shell line (put one in a script). Its exit status
    /// never fails the download.
    #[arg(long, visible_alias = "on-download-complete", value_name = "PROGRAM")]
    #[arg(help_heading = HOOKS, hide_short_help = true)]
    pub on_complete: Option<PathBuf>,
    /// --on-complete hooks running at once.
    #[arg(long, value_name = "N", default_value_t = 2)]
    #[arg(help_heading = HOOKS, hide_short_help = true)]
    pub on_complete_jobs: usize,
    /// Kill a hook still running after this many seconds (0: no limit).
    #[arg(long, value_name = "SECS", default_value = "0", value_parser = parse_secs)]
    #[arg(help_heading = HOOKS, hide_short_help = true)]
    pub on_complete_timeout: f64,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Output directory of an earlier `haul get`.
    #[arg(short = 'd', long = "dir", value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Check against this sha256sum-format file instead of the manifests.
    ///
    /// GNU text or binary lines (`HEX  name`, `HEX *name`) and BSD
    /// `SHA256 (name) = HEX` lines are read.
    #[arg(long, value_name = "FILE")]
    pub checksums: Option<PathBuf>,
    /// Check DIR against the list `haul get -i LIST` ran ("-" for standard
    /// input): every job it names must be done and match its sha256.
    ///
    /// The sha256 is the list's `checksum=`, else the one haul recorded when
    /// it downloaded the file, in any run or shard in DIR. A job no run has
    /// finished fails the check, named with why: the completion check to run
    /// at the end of a sharded download. A bad list is refused whole, with
    /// FILE:LINE, before anything is hashed.
    #[arg(
        short = 'i',
        long = "input-file",
        value_name = "LIST",
        conflicts_with = "checksums"
    )]
    pub input: Option<String>,
    /// Check only the files the manifests record as done: jobs not finished
    /// are neither listed nor counted against the run.
    #[arg(long, conflicts_with_all = ["input", "checksums"])]
    pub done_only: bool,
    /// Print only problems.
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the files that verified to FILE in sha256sum format, sorted by
    /// name, relative to DIR.
    #[arg(long, value_name = "FILE")]
    pub write_sums: Option<PathBuf>,
    /// One JSON object a line on stdout.
    ///
    /// A `verified` line per file, then a `verify_summary`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output directory of an earlier `haul get`.
    #[arg(short = 'd', long = "dir", value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Show only shard K/N's manifest [default: every manifest in DIR].
    #[arg(long, value_name = "K/N", conflicts_with = "input")]
    pub shard: Option<crate::shard::Shard>,
    /// Show the jobs of the list `haul get -i LIST` ran ("-" for standard
    /// input), as any run or shard in DIR recorded them; a job none recorded
    /// is `none`. Exits 0 only when every one is done.
    #[arg(short = 'i', long = "input-file", value_name = "LIST")]
    pub input: Option<String>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory to serve.
    pub root: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// Port (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Cap each connection at this many bytes a second (K, M, G suffixes).
    #[arg(long, value_name = "RATE", value_parser = parse_size)]
    pub limit_rate: Option<u64>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo downloads to.
    #[arg(
        short = 'd',
        long = "dir",
        value_name = "DIR",
        default_value = "haul-demo"
    )]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write haul.1 and haul-COMMAND.1 into DIR instead of printing haul.1.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Seconds as a non-negative decimal, so tests can ask for 0.05 s waits.
fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=86_400.0 * 365.0).contains(&v) => Ok(v),
        _ => Err(format!("'{s}' is not a number of seconds")),
    }
}

/// Seconds above zero, for a time limit that 0 would make fail at once.
fn parse_positive_secs(s: &str) -> Result<f64, String> {
    match parse_secs(s)? {
        v if v > 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not above 0 seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(args: &[&str]) -> GetArgs {
        let argv = ["haul", "get", "http://h/f"].iter().chain(args);
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Command::Get(get),
                ..
            }) => get,
            Ok(other) => panic!("not a get: {other:?}"),
            Err(err) => panic!("{err}"),
        }
    }

    #[test]
    fn lowest_speed_is_left_to_config_and_takes_the_aria2_and_curl_names_too() {
        // None: `config` picks the default, which depends on --max-speed.
        assert_eq!(get(&[]).lowest_speed, None);
        assert_eq!(get(&["--lowest-speed", "1K"]).lowest_speed, Some(1024));
        assert_eq!(get(&["--lowest-speed", "0"]).lowest_speed, Some(0));
        let aria2 = get(&["--lowest-speed-limit", "2M"]).lowest_speed;
        assert_eq!(aria2, Some(2 << 20));
        assert_eq!(get(&["--speed-limit", "3K"]).lowest_speed, Some(3 << 10));
        assert!(Cli::try_parse_from(["haul", "get", "--lowest-speed", "fast", "u"]).is_err());
    }

    #[test]
    fn a_stall_timeout_of_zero_is_refused_rather_than_failing_every_attempt() {
        assert_eq!(get(&[]).stall_timeout, 30.0);
        assert_eq!(get(&["--stall-timeout", "0.05"]).stall_timeout, 0.05);
        for bad in ["0", "0.000", "-0.5"] {
            let argv = ["haul", "get", "--stall-timeout", bad, "u"];
            assert!(Cli::try_parse_from(argv).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_speed_window_is_thirty_seconds_by_default_and_never_zero() {
        assert_eq!(get(&[]).lowest_speed_time, 30.0);
        assert_eq!(get(&["--lowest-speed-time", "2.5"]).lowest_speed_time, 2.5);
        assert_eq!(get(&["--speed-time", "10"]).lowest_speed_time, 10.0);
        for bad in ["0", "0.0", "-1", "soon"] {
            let argv = ["haul", "get", "--lowest-speed-time", bad, "u"];
            assert!(Cli::try_parse_from(argv).is_err(), "{bad}");
        }
    }

    #[test]
    fn aria2c_and_wget_spellings_set_the_same_fields() {
        assert_eq!(get(&["-x", "8"]).max_per_host, Some(8));
        assert_eq!(
            get(&["--max-connection-per-server", "7"]).max_per_host,
            Some(7)
        );
        assert_eq!(get(&["-k", "1M"]).min_split_size, 1 << 20);
        assert_eq!(get(&["--max-concurrent-downloads", "3"]).jobs, 3);
        assert_eq!(get(&["-t", "2"]).max_tries, 2);
        assert_eq!(get(&["--tries", "9"]).max_tries, 9);
        assert_eq!(get(&["-U", "ua/1"]).user_agent.as_deref(), Some("ua/1"));
        assert_eq!(get(&["-P", "p"]).dir, PathBuf::from("p"));
        assert_eq!(get(&["--directory-prefix", "q"]).dir, PathBuf::from("q"));
        assert_eq!(get(&["-o", "f.bin"]).out.as_deref(), Some("f.bin"));
        assert_eq!(get(&["--out", "g.bin"]).out.as_deref(), Some("g.bin"));
        assert!(get(&["-c"]).resume && get(&["--continue"]).resume);
        assert!(!get(&[]).resume);
    }

    #[test]
    fn defaults_are_the_librarys_constants() {
        use crate::settings::DEFAULT_MIN_SPLIT_SIZE;

        let args = get(&[]);
        assert_eq!(args.min_split_size, DEFAULT_MIN_SPLIT_SIZE);
        assert_eq!(args.jobs, DEFAULT_JOBS as usize);
        assert_eq!(args.max_tries, DEFAULT_MAX_TRIES);
        assert_eq!(args.connect_timeout, DEFAULT_CONNECT_TIMEOUT.as_secs_f64());
    }

    #[test]
    fn max_speed_is_off_by_default_and_takes_the_aria2_name_too() {
        assert_eq!(get(&[]).max_speed, 0);
        assert_eq!(get(&["--max-speed", "500K"]).max_speed, 500 << 10);
        assert_eq!(
            get(&["--max-overall-download-limit", "10M"]).max_speed,
            10 << 20
        );
        assert!(Cli::try_parse_from(["haul", "get", "--max-speed", "10Mbps", "u"]).is_err());
    }
}
