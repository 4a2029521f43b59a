//! Helpers shared by the integration tests: the fault-injecting HTTP server,
//! seeded bodies, and running the real binary. Nothing here imports haul's
//! library: the tests see haul only as a program on the other end of HTTP.

pub mod bodies;
pub mod cli;
pub mod heavy;
pub mod hostile;
pub mod json;
pub mod ranges;
pub mod server;
pub mod term;
pub mod tls;
pub mod tmpfs;
pub mod wait;
