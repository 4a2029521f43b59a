//! A tmpfs mounted for one test: a disk of a chosen size that can fill up,
//! be made read-only, or hold 100,000 small files without the host disk's
//! cost per file. Mounting needs root (CI runs as root); callers fall back
//! to something an unprivileged user can do when `mount` returns None.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted at a path for the life of the value.
pub struct Tmpfs {
    at: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as mount(8) takes it, e.g. "3m") at `at`;
    /// None if this machine does not let us mount.
    pub fn mount(at: &Path, opts: &str) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                opts,
                "haul-test",
                &at.display().to_string(),
            ])
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs {
            at: at.to_path_buf(),
        })
    }

    pub fn remount(&self, opts: &str) {
        let status = Command::new("mount")
            .args([
                "-o",
                &format!("remount,{opts}"),
                &self.at.display().to_string(),
            ])
            .status()
            .expect("run mount");
        assert!(status.success(), "remount {opts} failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.at).status();
    }
}
