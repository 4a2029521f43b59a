//! The other runs' manifests in this run's output directory (its own
//! `.haul/` for a shard, the other `shard-K-of-N/`s), for one question: is
//! a file whose final name is in the way haul's own, finished by another
//! run? A list run with another N, or without `--shard`, after its shards
//! finished then skips those files instead of refusing them as "exists
//! and was not downloaded by haul" (issue 13).
//!
//! Asked only for a file this run's manifest does not hold as done and
//! whose final name exists, so a run with no such file opens nothing; the
//! manifests are opened read-only on the first question and kept as their
//! path indexes, never as records. A record vouches for a file under the
//! rule the run's own records follow (`engine::is_complete`). A manifest
//! that cannot be read vouches for nothing: the file is then refused as
//! before, and nothing is overwritten.

use std::path::{Path, PathBuf};

use crate::shard::Shard;
use crate::store::manifest::{JobRecord, Records};

/// The other state directories of one output directory, opened as needed.
pub(crate) struct Siblings {
    out_dir: PathBuf,
    /// Their state directories (`None`: the output directory's own).
    dirs: Vec<Option<Shard>>,
    records: Opened,
}

enum Opened {
    Not,
    Yes(Records),
    /// Opening failed, or there were none after all: asked no more.
    Nothing,
}

impl Siblings {
    /// The state directories of `out_dir` that may hold `own`'s files, as
    /// they are now (a shard directory made later is not seen). The other
    /// shards of the same N are left out: their files are never this
    /// shard's, so the usual array of N shards running side by side asks
    /// nothing and pays nothing.
    pub(crate) fn find(out_dir: &Path, own: Option<Shard>) -> Siblings {
        // A directory that cannot be listed has no siblings to offer.
        let shards = crate::store::shards_present(out_dir).unwrap_or_default();
        let own_dir = crate::store::haul_dir(out_dir);
        let root = own.is_some() && crate::store::manifest::present(&own_dir);
        let dirs = root
            .then_some(None)
            .into_iter()
            .chain(
                shards
                    .into_iter()
                    .filter(|s| own.is_none_or(|own| own.count() != s.count()))
                    .map(Some),
            )
            .collect();
        Siblings {
            out_dir: out_dir.to_path_buf(),
            dirs,
            records: Opened::Not,
        }
    }

    /// None: nothing to ask.
    #[cfg(test)]
    pub(crate) fn none() -> Siblings {
        Siblings {
            out_dir: PathBuf::new(),
            dirs: Vec::new(),
            records: Opened::Nothing,
        }
    }

    /// Whether there is any other run to ask.
    pub(crate) fn is_empty(&self) -> bool {
        self.dirs.is_empty() || matches!(self.records, Opened::Nothing)
    }

    /// Another run's `Done` record of `path`, if one has it.
    pub(crate) fn done(&mut self, path: &str) -> Option<JobRecord> {
        if let Opened::Not = self.records {
            let dirs = self.dirs.iter().copied();
            self.records = match Records::open_in_order_with(&self.out_dir, dirs, |_| {}) {
                Ok(Some((records, _))) => Opened::Yes(records),
                Ok(None) | Err(_) => Opened::Nothing,
            };
        }
        match &self.records {
            Opened::Yes(records) => records.find_done(path).ok().flatten(),
            _ => None,
        }
    }
}
