//! haul: a resumable, parallel, verifying HTTP(S) download manager.
//!
//! The library holds the engine and everything it needs; `main.rs` is a thin
//! shell around [`app`]. Arrows point one way: `engine` uses `http`, `store`,
//! `verify` and `event`; `ui` only reads `event`.

pub mod event;
