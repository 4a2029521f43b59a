//! What the manifest keeps in memory per job: a hash of its path and where
//! the latest record line for it starts, 16 bytes plus table overhead. The
//! record itself stays on disk and is read back when asked for.
//!
//! A hash says nothing for sure: two different paths may share one. The
//! first path with a given hash owns its slot in `primary`; any other path
//! with the same hash goes to `overflow`, keyed by the exact string. Who
//! owns a slot is settled by reading the record the slot points at and
//! comparing its path, so two different paths are never merged.

use std::collections::hash_map::Entry;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;

/// Where a record line starts, packed in a u64: the top bit says which file
/// (journal or snapshot), the next one is a walk's "already visited" mark,
/// the rest is the byte offset of the record's `{`.
pub(super) type Loc = u64;

const JOURNAL_BIT: u64 = 1 << 63;
const MARK_BIT: u64 = 1 << 62;
const OFFSET_MASK: u64 = MARK_BIT - 1;

/// A record line in the snapshot at `offset`.
pub(super) fn in_snapshot(offset: u64) -> Loc {
    offset & OFFSET_MASK
}

/// A record line in the journal at `offset`.
pub(super) fn in_journal(offset: u64) -> Loc {
    (offset & OFFSET_MASK) | JOURNAL_BIT
}

/// True if `loc` is in the journal.
pub(super) fn is_journal(loc: Loc) -> bool {
    loc & JOURNAL_BIT != 0
}

/// The byte offset of `loc` in its file.
pub(super) fn offset(loc: Loc) -> u64 {
    loc & OFFSET_MASK
}

/// True if a walk already visited the path that `loc` belongs to.
pub(super) fn is_marked(loc: Loc) -> bool {
    loc & MARK_BIT != 0
}

/// `loc` with the walk's mark set.
pub(super) fn marked(loc: Loc) -> Loc {
    loc | MARK_BIT
}

pub(super) use crate::hash_keyed::HashKeyed;

#[cfg(test)]
thread_local! {
    /// Test hook: every path hashes to this value on this thread, so that
    /// collisions can be forced.
    pub(super) static FORCED_HASH: std::cell::Cell<Option<u64>> =
        const { std::cell::Cell::new(None) };
}

/// Hashes paths with a key chosen per process, so a list cannot be crafted
/// to make its paths collide.
#[derive(Debug, Clone, Default)]
pub(super) struct PathHasher(RandomState);

impl PathHasher {
    pub(super) fn hash(&self, path: &str) -> u64 {
        #[cfg(test)]
        if let Some(forced) = FORCED_HASH.with(std::cell::Cell::get) {
            return forced;
        }
        self.0.hash_one(path)
    }
}

/// Where a path's latest record is, as far as the index alone can say.
pub(super) enum Found {
    /// The path is in the overflow: the location is certain.
    Exact(Loc),
    /// The path's hash owns a slot: the location is the path's only if the
    /// record there has this path.
    Probable(Loc),
    /// No record of this path.
    Absent,
}

/// Path hash -> location of the latest record line; see the module docs.
#[derive(Default)]
pub(super) struct Index {
    hasher: PathHasher,
    primary: HashKeyed<Loc>,
    overflow: HashMap<String, Loc>,
    /// How many times a path was pointed at a later line: while none was,
    /// every line indexed is its path's only one.
    repeats: u64,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("records", &self.len())
            .field("collisions", &self.overflow.len())
            .finish()
    }
}

impl Index {
    /// Number of paths.
    pub(super) fn len(&self) -> usize {
        self.primary.len() + self.overflow.len()
    }

    pub(super) fn hash(&self, path: &str) -> u64 {
        self.hasher.hash(path)
    }

    /// Where `path`'s record may be; see [`Found`].
    pub(super) fn find(&self, path: &str) -> Found {
        if let Some(&loc) = self.overflow.get(path) {
            return Found::Exact(loc);
        }
        match self.primary.get(&self.hash(path)) {
            Some(&loc) => Found::Probable(loc),
            None => Found::Absent,
        }
    }

    /// The slot of a path the index is known to hold (one read from the
    /// manifest's own files): it is in the overflow, or it owns its hash.
    pub(super) fn known_mut(&mut self, path: &str) -> Option<&mut Loc> {
        if !self.overflow.is_empty() && self.overflow.contains_key(path) {
            return self.overflow.get_mut(path);
        }
        let hash = self.hash(path);
        self.primary.get_mut(&hash)
    }

    /// Points `path` at `loc`. `owns` is asked, only when `path`'s hash
    /// already has a slot, whether the record that slot points at is
    /// `path`'s (the caller reads it from disk).
    pub(super) fn set<E>(
        &mut self,
        path: &str,
        loc: Loc,
        owns: impl FnOnce(Loc) -> Result<bool, E>,
    ) -> Result<(), E> {
        if let Some(slot) = self.overflow.get_mut(path) {
            *slot = loc;
            self.repeats += 1;
            return Ok(());
        }
        let hash = self.hash(path);
        // One probe of the table, not a look-up and then an insert: a
        // million-line manifest spent a sixth of its opening in the second.
        match self.primary.entry(hash) {
            Entry::Vacant(vacant) => {
                vacant.insert(loc);
            }
            Entry::Occupied(mut slot) => {
                if owns(*slot.get())? {
                    *slot.get_mut() = loc;
                    self.repeats += 1;
                } else {
                    self.overflow.insert(path.to_string(), loc);
                }
            }
        }
        Ok(())
    }

    /// True if no path was ever pointed at a second line.
    pub(super) fn lines_are_paths(&self) -> bool {
        self.repeats == 0
    }

    /// Every location, to re-point or unmark them all at once.
    pub(super) fn locs_mut(&mut self) -> impl Iterator<Item = &mut Loc> {
        self.primary.values_mut().chain(self.overflow.values_mut())
    }

    /// Clears the marks a walk left.
    pub(super) fn unmark_all(&mut self) {
        for loc in self.locs_mut() {
            *loc &= !MARK_BIT;
        }
    }
}
