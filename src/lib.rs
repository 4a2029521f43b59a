//! haul: a resumable, parallel, verifying HTTP(S) download manager.
//!
//! As a library: build a [`Downloader`] with [`Downloader::builder`] (typed
//! setters, `haul get`'s defaults, one fallible
//! [`build`](DownloaderBuilder::build)), [`add`](Downloader::add) checked
//! [`Job`]s, then run it and watch its [`Event`]s until it ends with a
//! [`Report`]. Errors are an [`Error`]. To add jobs while it runs, feed it a
//! stream with [`run_stream`](Downloader::run_stream).
//!
//! ```no_run
//! # async fn demo() -> Result<(), haul::Error> {
//! use haul::{Downloader, Job};
//!
//! let mut dl = Downloader::builder("out").jobs(4).split(8).max_per_host(8).build()?;
//! dl.add(Job::new("https://example.org/data.tar")?.out("data/data.tar")?);
//! dl.add(Job::new("https://example.org/a.iso")?
//!     .sha256_hex("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")?);
//! let (mut events, run) = dl.spawn();
//! while let Some(event) = events.recv().await {
//!     println!("{event:?}");
//! }
//! let report = run.await.expect("the run task")?;
//! println!("{} done, {} failed", report.done, report.failed);
//! # Ok(()) }
//! ```
//!
//! The crate is also the `haul` binary's: `main.rs` is a thin shell around
//! the private `app` module. Arrows point one way: `engine` uses `http`,
//! `store`, `verify` and `event`; `ui` only reads `event`; only `app` knows
//! both sides. `settings` is the one wiring of settings to the engine and
//! the HTTP client, for the command line (`cli` -> `config`) and the library
//! (`api`) alike.

#![warn(missing_docs)]

mod api;
mod app;
mod cli;
mod config;
mod config_file;
mod demo;
mod engine;
mod error;
pub mod event;
mod exit;
mod file_stamp;
mod hash_keyed;
mod hooks;
mod http;
mod list;
mod list_fingerprint;
mod man;
mod naming;
mod netrc;
mod plan;
mod safe_url;
pub mod serve;
mod settings;
mod shard;
mod size;
mod store;
mod sums;
mod ui;
mod verify;

pub use api::{Downloader, DownloaderBuilder, Error, Job};
pub use event::{Event, JobId, Report};
pub use settings::{
    Setting, SettingError, DEFAULT_CONNECT_TIMEOUT, DEFAULT_JOBS, DEFAULT_LOWEST_SPEED,
    DEFAULT_LOWEST_SPEED_TIME, DEFAULT_MAX_RETRY_WAIT, DEFAULT_MAX_TRIES, DEFAULT_MIN_SPLIT_SIZE,
    DEFAULT_RETRY_WAIT, DEFAULT_STALL_TIMEOUT,
};

/// What the `haul` binary needs: not part of the library's API.
#[doc(hidden)]
pub mod cli_support {
    pub use crate::app::run;
    pub use crate::config_file::{parse_args_from_env, ArgsError};
    pub use crate::exit::EXIT_USAGE;
}

/// The parsers the fuzz targets (`fuzz/fuzz_targets`) drive: not part of
/// the library's API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::list::parse_list;
    pub use crate::naming::{name_from_url, output_path, sanitize_component, RelPath};
    pub use crate::plan::plan_with_duplicates;
    pub use crate::store::manifest::parse_state;
    pub use crate::sums::{format_sums, parse_sums, SumEntry};
}
