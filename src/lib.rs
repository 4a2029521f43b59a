//! haul: a resumable, parallel, verifying HTTP(S) download manager.
//!
//! The library holds the engine and everything it needs; `main.rs` is a thin
//! shell around [`app`]. Arrows point one way: `engine` uses `http`, `store`,
//! `verify` and `event`; `ui` only reads `event`; only `app` knows both sides.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod config_file;
pub mod demo;
pub mod engine;
pub mod error;
pub mod event;
pub mod exit;
pub mod hooks;
pub mod http;
pub mod list;
pub mod man;
pub mod naming;
pub mod netrc;
pub mod serve;
pub mod shard;
pub mod size;
pub mod store;
pub mod sums;
pub mod ui;
pub mod verify;
