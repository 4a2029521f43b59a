//! haul's one integration-test binary (each extra test binary costs a link).
//!
//! `support` holds the fault-injecting HTTP server and the helpers that run
//! the real `haul` binary; `server_selftest` proves the server does what the
//! other tests rely on; the `cli_*` modules drive `haul` as a user would and
//! assert on exit codes, bytes on disk, the server's request log and key
//! substrings of the output, never on exact wording. The one exception is
//! `cli_snapshots`, which pins the exact text users read (help, a small
//! run's plain output) as insta snapshots in `snapshots/`, so a change to
//! it shows up in review.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod support;

mod chaos;
mod cli_careful;
mod cli_config;
mod cli_disk;
mod cli_display;
mod cli_escape;
mod cli_faults;
mod cli_get;
mod cli_grow;
mod cli_h2;
mod cli_help;
mod cli_hooks;
mod cli_identity;
mod cli_input;
mod cli_json;
mod cli_json_golden;
mod cli_load;
mod cli_memory;
mod cli_messages;
mod cli_mirrors;
mod cli_netrc;
mod cli_resume;
mod cli_shard;
mod cli_shard_state;
mod cli_snapshots;
mod cli_speed;
mod cli_split;
mod cli_sums;
mod cli_tls;
mod cli_verify;
mod fault_matrix;
mod hostile;
mod redirects;
mod server_selftest;
