//! `list.json`: which list a run's state came from, kept beside its
//! manifest (`OUT_DIR/.haul/` or `OUT_DIR/.haul/shard-K-of-N/`).
//!
//! A manifest only knows the jobs that reached it; the list's fingerprint
//! and job count, and a shard's K/N and its own count, let `haul status`
//! tell what is missing: shards that never started, jobs no manifest
//! holds yet, a stray shard directory from another N or another list. The
//! file is written whole through a temporary file and a rename, before the
//! run's first request; the manifest's own format is left alone. This
//! module reads and writes the file; it decides nothing about downloads.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::shard::Shard;

/// The file's name inside a state directory.
pub const LIST_STAMP_NAME: &str = "list.json";

const TMP_NAME: &str = "list.json.tmp";

/// Format version written; any other is refused as unreadable.
const VERSION: u64 = 1;

/// What a run recorded of its list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListStamp {
    pub version: u64,
    /// [`crate::list_fingerprint::ListFingerprint`] of the whole list, hex.
    pub fingerprint: String,
    /// Jobs of the whole list, every shard's.
    pub jobs: u64,
    /// The run's shard and its part of the list; absent without `--shard`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardStamp>,
}

/// A shard's place in its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardStamp {
    /// K.
    pub index: u64,
    /// N.
    pub count: u64,
    /// Jobs of the list that are this shard's.
    pub jobs: u64,
}

impl ListStamp {
    /// A run over a list of `jobs` jobs fingerprinted `fingerprint`; for a
    /// shard, `shard_jobs` of them are its own.
    pub fn new(fingerprint: String, jobs: u64, shard: Option<Shard>, shard_jobs: u64) -> ListStamp {
        ListStamp {
            version: VERSION,
            fingerprint,
            jobs,
            shard: shard.map(|s| ShardStamp {
                index: s.index(),
                count: s.count(),
                jobs: shard_jobs,
            }),
        }
    }

    /// Whether `other` was made from the same list (the shard is the state
    /// directory's, so it cannot differ there).
    pub fn same_list(&self, other: &ListStamp) -> bool {
        self.fingerprint == other.fingerprint && self.jobs == other.jobs
    }

    /// The list as people read it: its job count and a short fingerprint.
    pub fn describe(&self) -> String {
        let short: String = self.fingerprint.chars().take(12).collect();
        format!("{} jobs, fingerprint {short}", self.jobs)
    }
}

/// A `list.json` that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ListStampError {
    #[error("cannot {op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a list record this haul reads", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// The stamp in `state_dir`; Ok(None) if there is none (a state directory
/// from a haul before stamps, or a run that never started).
pub fn read(state_dir: &Path) -> Result<Option<ListStamp>, ListStampError> {
    let path = state_dir.join(LIST_STAMP_NAME);
    let text = match fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ListStampError::Io {
                op: "read",
                path,
                source,
            })
        }
    };
    let stamp: ListStamp =
        serde_json::from_slice(&text).map_err(|source| ListStampError::Unreadable {
            path: path.clone(),
            source,
        })?;
    if stamp.version != VERSION {
        let source = serde::de::Error::custom(format!("format version {}", stamp.version));
        return Err(ListStampError::Unreadable { path, source });
    }
    Ok(Some(stamp))
}

/// What [`record`] found in the state directory before it wrote.
#[derive(Debug, PartialEq)]
pub enum Previous {
    /// Nothing, or the same list: nothing to say.
    Same,
    /// Another list's stamp, now replaced.
    Other(ListStamp),
    /// A stamp that did not read, now replaced.
    Unreadable,
}

/// Makes `stamp` the one of `state_dir` (which exists), writing only if it
/// differs from what is there: through a temporary file, a sync, a rename
/// and a sync of the directory, so a kill leaves the old stamp or the new.
pub fn record(state_dir: &Path, stamp: &ListStamp) -> Result<Previous, ListStampError> {
    let previous = match read(state_dir) {
        Ok(Some(old)) if old == *stamp => return Ok(Previous::Same),
        Ok(Some(old)) if old.same_list(stamp) => Previous::Same,
        Ok(Some(old)) => Previous::Other(old),
        Ok(None) => Previous::Same,
        Err(ListStampError::Unreadable { .. }) => Previous::Unreadable,
        Err(err) => return Err(err),
    };
    let (tmp, path) = (state_dir.join(TMP_NAME), state_dir.join(LIST_STAMP_NAME));
    let io = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| ListStampError::Io { op, path, source }
    };
    // A struct of numbers and strings always serialises.
    let mut text = serde_json::to_vec(stamp).unwrap_or_default();
    text.push(b'\n');
    // A temporary file left by a kill is ours to replace; created anew
    // (O_EXCL), a symbolic link planted in its place is never followed.
    if let Err(e) = fs::remove_file(&tmp) {
        if e.kind() != io::ErrorKind::NotFound {
            return Err(io("remove", &tmp)(e));
        }
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(io("create", &tmp))?;
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .map_err(io("write", &tmp))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(io("rename into", &path))?;
    super::sync_dir(state_dir).map_err(io("sync", state_dir))?;
    Ok(previous)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_is_written_once_and_replaced_only_by_another_list() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(read(dir.path()).expect("none yet"), None);
        let shard = Shard::new(1, 4);
        let first = ListStamp::new("ab".repeat(32), 400, shard, 97);
        assert_eq!(record(dir.path(), &first).expect("write"), Previous::Same);
        let text = fs::read_to_string(dir.path().join(LIST_STAMP_NAME)).expect("written");
        assert_eq!(
            text,
            format!(
                "{{\"version\":1,\"fingerprint\":\"{}\",\"jobs\":400,\
                 \"shard\":{{\"index\":1,\"count\":4,\"jobs\":97}}}}\n",
                "ab".repeat(32)
            )
        );
        assert_eq!(record(dir.path(), &first).expect("again"), Previous::Same);
        let second = ListStamp::new("cd".repeat(32), 410, shard, 99);
        assert_eq!(
            record(dir.path(), &second).expect("replace"),
            Previous::Other(first)
        );
        assert_eq!(read(dir.path()).expect("read"), Some(second.clone()));
        assert!(!dir.path().join(TMP_NAME).exists());

        fs::write(dir.path().join(LIST_STAMP_NAME), "{\"version\":9}").expect("garble");
        assert!(matches!(
            read(dir.path()),
            Err(ListStampError::Unreadable { .. })
        ));
        assert_eq!(
            record(dir.path(), &second).expect("replace"),
            Previous::Unreadable
        );
        let unsharded = ListStamp::new("ef".repeat(32), 3, None, 3);
        record(dir.path(), &unsharded).expect("replace");
        let text = fs::read_to_string(dir.path().join(LIST_STAMP_NAME)).expect("written");
        assert!(!text.contains("shard"), "{text}");
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_link_is_replaced_never_written_through() {
        let dir = tempfile::tempdir().expect("temp dir");
        let victim = dir.path().join("victim");
        fs::write(&victim, "keep").expect("write");
        std::os::unix::fs::symlink(&victim, dir.path().join(TMP_NAME)).expect("link");
        std::os::unix::fs::symlink(&victim, dir.path().join(LIST_STAMP_NAME)).expect("link");
        let stamp = ListStamp::new("ab".repeat(32), 1, None, 1);
        record(dir.path(), &stamp).expect("write");
        assert_eq!(fs::read_to_string(&victim).expect("read"), "keep");
        assert_eq!(read(dir.path()).expect("read"), Some(stamp));
    }
}
