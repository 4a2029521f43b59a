//! haul's exit codes, one list for the code that returns them (`app`) and
//! the man page that documents them (`man`); README's table says the same.

/// All done.
pub const EXIT_OK: u8 = 0;
/// Some downloads (or verifications) failed; the rest completed. For
/// `status`: not everything the list names is done yet.
pub const EXIT_FAILED: u8 = 1;
/// Bad usage, bad input, or an unusable manifest / lock.
pub const EXIT_USAGE: u8 = 2;
/// Stopped by a signal after saving progress.
pub const EXIT_INTERRUPTED: u8 = 130;
