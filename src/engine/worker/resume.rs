//! Where a job resumes: the length of the `.part` against what the manifest
//! vouches for ([`resume_offset`], pure), the final file in the way, a file
//! recorded as done but killed before its rename, and the re-hash of the
//! prefix kept (on the blocking pool, through [`PrefixHash`]).
//!
//! Without a validator there is no way to tell a changed file from ours, so
//! nothing is resumed; a split file resumes range by range in `split`.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::Worker;
use crate::error::DownloadError;
use crate::store::manifest::{JobRecord, JobState};
use crate::store::part::part_len_blocking;
use crate::store::prefix_hash::PrefixHash;

impl Worker {
    /// Decides where to resume and re-hashes the prefix kept. Returns true
    /// when the file is already complete on disk and only needs its rename.
    pub(super) async fn prepare(&mut self) -> Result<bool, DownloadError> {
        let io = |path: &PathBuf| {
            let path = path.clone();
            move |source| DownloadError::Io { path, source }
        };
        // The `.part`'s length only counts with a validator to resume under
        // or a "done" to promote. A job never started (most of a long list)
        // skips that look, and what is left (a stat of the final name, the
        // parents made or found) is a few cached metadata calls, done here
        // as an event loop like nginx does them: the trip to the blocking
        // pool and back cost more than the calls. On 2,000 small files it
        // was half of the run's context switches (10,500 of them against
        // 5,700 without it). A resume, which reads a length and may re-hash
        // a prefix, still makes the trip.
        let (final_path, part) = (self.final_path.clone(), self.part_path.clone());
        let (root, rel) = (self.shared.cfg.out_dir.clone(), self.spec.path.clone());
        let rec = &self.rec;
        let part_counts =
            rec.etag.is_some() || rec.last_modified.is_some() || rec.state == JobState::Done;
        // A file in the way is refused, unless overwriting is allowed; a
        // directory that held no files when the run began has none.
        let look_final = !self.shared.cfg.allow_overwrite && !self.shared.fresh_out_dir;
        let look = move || {
            crate::store::part::make_parents_blocking(&root, &rel)?;
            let final_exists = look_final && std::fs::symlink_metadata(&final_path).is_ok();
            let len = if part_counts {
                part_len_blocking(&part)?
            } else {
                0
            };
            Ok((final_exists, len))
        };
        let looked = if part_counts {
            tokio::task::spawn_blocking(look)
                .await
                .map_err(std::io::Error::other)
                .and_then(|r| r)
        } else {
            look()
        };
        let (final_exists, on_disk) = looked.map_err(io(&self.part_path))?;
        if final_exists && self.rec.state != JobState::Done && !self.shared.cfg.allow_overwrite {
            return Err(DownloadError::Exists {
                path: self.spec.path.to_string(),
            });
        }

        // Recorded as done but killed before the rename: the complete .part
        // is still there; promote it if it hashes to what was recorded, and
        // otherwise trust none of it.
        if self.rec.segments.is_some() && self.rec.state != JobState::Done {
            // A split file resumes range by range; see `segmented`.
            self.rec.state = JobState::Partial;
            return Ok(false);
        }
        let mut offset = resume_offset(&self.rec, on_disk, self.shared.boot_id.as_deref());
        // A small file's "done" may reach the disk before its bytes (their
        // sync joins the rename; see `PartWriter::land`): a "done" `.part`
        // counts whole and verified, or not at all.
        if self.rec.state == JobState::Done {
            if let (Some(recorded), true) =
                (self.rec.sha256.clone(), Some(on_disk) == self.rec.total)
            {
                self.hash_prefix(on_disk).await?;
                if hex::encode(self.hasher.clone().finalize()) == recorded {
                    return Ok(true);
                }
            }
            offset = 0;
        }

        self.hasher = Sha256::new();
        self.pos = 0;
        if offset > 0 {
            self.hash_prefix(offset).await?;
        } else {
            self.rec.bytes_done = 0;
        }
        self.rec.state = JobState::Partial;
        Ok(false)
    }

    pub(super) async fn hash_prefix(&mut self, len: u64) -> Result<(), DownloadError> {
        let prefix = PrefixHash::new(&self.part_path);
        prefix
            .extend(len)
            .await
            .map_err(|source| DownloadError::Io {
                path: self.part_path.clone(),
                source,
            })?;
        self.hasher = prefix.hasher();
        self.pos = len;
        Ok(())
    }
}

/// Where to resume a job, given its record and the `.part` length on disk.
///
/// The manifest's `bytes_done` only counts synced bytes. While the kernel has
/// not rebooted since they were written, the page cache survived any kill,
/// so the whole `.part` is good; after a reboot only the synced prefix is.
/// Without a validator there is no way to tell a changed file from ours, so
/// nothing is resumed.
pub(crate) fn resume_offset(rec: &JobRecord, on_disk: u64, boot_id: Option<&str>) -> u64 {
    if rec.etag.is_none() && rec.last_modified.is_none() {
        return 0;
    }
    let same_boot = boot_id.is_some() && rec.boot_id.as_deref() == boot_id;
    let offset = if same_boot {
        on_disk
    } else {
        on_disk.min(rec.bytes_done)
    };
    match rec.total {
        Some(total) if offset > total => 0,
        _ => offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(bytes_done: u64, total: Option<u64>, boot: Option<&str>) -> JobRecord {
        JobRecord {
            state: JobState::Partial,
            bytes_done,
            total,
            etag: Some("\"e\"".into()),
            attempts: 1,
            boot_id: boot.map(str::to_string),
            ..JobRecord::pending("a".into(), "http://h/a".into())
        }
    }

    #[test]
    fn resumes_whole_part_within_the_same_boot() {
        assert_eq!(
            resume_offset(&rec(10, Some(100), Some("b1")), 40, Some("b1")),
            40
        );
    }

    #[test]
    fn resumes_only_synced_bytes_after_a_reboot() {
        assert_eq!(
            resume_offset(&rec(10, Some(100), Some("b1")), 40, Some("b2")),
            10
        );
        assert_eq!(resume_offset(&rec(10, Some(100), None), 40, None), 10);
    }

    #[test]
    fn a_part_cut_short_by_hand_resumes_from_what_is_left() {
        assert_eq!(
            resume_offset(&rec(50, Some(100), Some("b1")), 20, Some("b2")),
            20
        );
    }

    #[test]
    fn never_resumes_without_a_validator_or_past_the_end() {
        let mut r = rec(10, Some(100), Some("b1"));
        r.etag = None;
        assert_eq!(resume_offset(&r, 40, Some("b1")), 0);
        assert_eq!(
            resume_offset(&rec(10, Some(30), Some("b1")), 40, Some("b1")),
            0
        );
    }
}
