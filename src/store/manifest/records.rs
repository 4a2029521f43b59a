//! Reading manifests without writing them (`haul status`, `haul verify`,
//! `--write-sums`): every path's latest record, streamed from disk, with
//! nothing per record in memory but the index.
//!
//! An output directory may hold several manifests: its own and one per
//! `--shard K/N` run. A path that more than one records (N changed between
//! runs) counts once: a `Done` record is kept over any other, else the
//! later manifest's wins. Settling that takes one more pass and a second
//! index, over the paths of all of them (same collision rule as the
//! manifest's own index: a hash is only a suspicion until the paths are
//! compared).

use std::collections::HashMap;
use std::path::Path;

use super::index::{Found, HashKeyed, Loc, PathHasher};
use super::store::body_state;
use super::{JobRecord, JobState, Manifest, ManifestError, RecordView, Store};
use crate::shard::Shard;

/// One manifest's files and its index.
#[derive(Debug)]
pub(super) struct Part {
    store: Store,
    index: super::Index,
    /// The snapshot was read twice (see [`Store::index`]).
    relaid: bool,
}

impl Part {
    pub(super) fn index(
        mut store: Store,
        on_line: &mut dyn FnMut(&RecordView),
    ) -> Result<Part, ManifestError> {
        let (index, _, relaid) = store.index(on_line)?;
        Ok(Part {
            store,
            index,
            relaid,
        })
    }
}

/// Which manifest's record a path keeps, and where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Choice {
    part: u32,
    done: bool,
    loc: Loc,
}

/// The record each path keeps, over every manifest.
#[derive(Default)]
struct Chosen {
    hasher: PathHasher,
    primary: HashKeyed<Choice>,
    overflow: HashMap<String, Choice>,
}

impl Chosen {
    /// The choice of a path known to be here.
    fn known(&self, path: &str) -> Option<Choice> {
        if let Some(&choice) = self.overflow.get(path) {
            return Some(choice);
        }
        self.primary.get(&self.hasher.hash(path)).copied()
    }
}

/// The manifests of one output directory, opened for reading only.
pub struct Records {
    stores: Vec<Store>,
    indexes: Vec<super::Index>,
    chosen: Option<Chosen>,
}

impl Records {
    pub(super) fn of(parts: Vec<Part>) -> Records {
        let (stores, indexes) = parts.into_iter().map(|p| (p.store, p.index)).unzip();
        Records {
            stores,
            indexes,
            chosen: None,
        }
    }

    /// The manifest of `out_dir`'s own run (`None`) or of one shard's.
    /// Ok(None) if there is none.
    pub fn open(out_dir: &Path, shard: Option<Shard>) -> Result<Option<Records>, ManifestError> {
        Ok(Records::open_with(out_dir, shard, |_| {})?.map(|(records, _)| records))
    }

    /// [`Records::open`], showing `on_line` every record line as the
    /// manifest is indexed. The bool is true if those were exactly the
    /// records [`Records::for_each`] visits (every path had one line): a
    /// caller that only sums them up can then skip that pass.
    pub fn open_with(
        out_dir: &Path,
        shard: Option<Shard>,
        mut on_line: impl FnMut(&RecordView),
    ) -> Result<Option<(Records, bool)>, ManifestError> {
        let Some(part) = Manifest::read_only(out_dir, shard, &mut on_line)? else {
            return Ok(None);
        };
        let exact = !part.relaid && part.index.lines_are_paths();
        Ok(Some((Records::of(vec![part]), exact)))
    }

    /// Every manifest in `out_dir`: its own and each `--shard` run's (in
    /// [`crate::store::shards_present`] order), with `on_line` and the bool
    /// as in [`Records::open_with`]. Ok(None) if there is none.
    pub fn open_all_with(
        out_dir: &Path,
        on_line: impl FnMut(&RecordView),
    ) -> Result<Option<(Records, bool)>, ManifestError> {
        let shards = crate::store::shards_present(out_dir).map_err(|source| ManifestError::Io {
            op: "list",
            path: crate::store::haul_dir(out_dir),
            source,
        })?;
        let order = std::iter::once(None).chain(shards.into_iter().map(Some));
        Records::open_in_order_with(out_dir, order, on_line)
    }

    /// The manifests of these state directories of `out_dir` (`None`: its
    /// own), as [`Records::open_all_with`] does it. Among records of one
    /// path none of which is `Done`, the later manifest's wins: a caller
    /// puts last the runs it trusts most.
    pub fn open_in_order_with(
        out_dir: &Path,
        order: impl IntoIterator<Item = Option<Shard>>,
        mut on_line: impl FnMut(&RecordView),
    ) -> Result<Option<(Records, bool)>, ManifestError> {
        let mut parts = Vec::new();
        for shard in order {
            if let Some(part) = Manifest::read_only(out_dir, shard, &mut on_line)? {
                parts.push(part);
            }
        }
        let exact = match parts.as_slice() {
            [part] => !part.relaid && part.index.lines_are_paths(),
            _ => false,
        };
        Ok((!parts.is_empty()).then(|| (Records::of(parts), exact)))
    }

    /// `path`'s record, chosen over every manifest as [`Records::for_each`]
    /// chooses: a `Done` one over any other, else the later manifest's. One
    /// index lookup and at most one line read per manifest, no walk.
    pub fn get(&self, path: &str) -> Result<Option<JobRecord>, ManifestError> {
        let mut buf = Vec::new();
        let mut found: Option<JobRecord> = None;
        for (store, index) in self.stores.iter().zip(&self.indexes) {
            if found
                .as_ref()
                .is_some_and(|rec| rec.state == JobState::Done)
            {
                break;
            }
            let loc = match index.find(path) {
                Found::Exact(loc) => loc,
                Found::Probable(loc) if store.owns(loc, path, &mut buf)? => loc,
                Found::Probable(_) | Found::Absent => continue,
            };
            found = Some(store.record_at(loc, &mut buf)?);
        }
        Ok(found)
    }

    /// `path`'s `Done` record, if any manifest has one.
    pub fn find_done(&self, path: &str) -> Result<Option<JobRecord>, ManifestError> {
        Ok(self.get(path)?.filter(|rec| rec.state == JobState::Done))
    }

    /// Calls `f` with every path's record once: manifest by manifest, each
    /// in the order its paths were registered. Can be called again (a
    /// second pass reads the files again).
    pub fn for_each(&mut self, f: impl FnMut(JobRecord)) -> Result<(), ManifestError> {
        self.visit(|_| true, f)
    }

    /// [`Records::for_each`] for the records not `Done` only: the others
    /// are not decoded past their state.
    pub fn for_each_unfinished(&mut self, f: impl FnMut(JobRecord)) -> Result<(), ManifestError> {
        self.visit(|state| state != JobState::Done, f)
    }

    fn visit(
        &mut self,
        wanted: impl Fn(JobState) -> bool,
        mut f: impl FnMut(JobRecord),
    ) -> Result<(), ManifestError> {
        if self.stores.len() > 1 && self.chosen.is_none() {
            self.chosen = Some(self.choose()?);
        }
        for (part, (store, index)) in self.stores.iter().zip(&mut self.indexes).enumerate() {
            let chosen = self.chosen.as_ref();
            store.walk_read(index, |loc, body| {
                let state = body_state(body).map_err(|e| store.changed(loc, e))?;
                if !wanted(state) {
                    return Ok(());
                }
                let rec: JobRecord =
                    serde_json::from_slice(body).map_err(|e| store.changed(loc, e))?;
                let keep = chosen.is_none_or(|chosen| {
                    chosen
                        .known(&rec.path)
                        .is_some_and(|c| (c.part, c.loc) == (part as u32, loc))
                });
                if keep {
                    f(rec);
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Settles which manifest's record each path keeps.
    fn choose(&mut self) -> Result<Chosen, ManifestError> {
        let mut chosen = Chosen::default();
        let mut buf = Vec::new();
        let stores = &self.stores;
        for (part, (store, index)) in stores.iter().zip(&mut self.indexes).enumerate() {
            store.walk_read(index, |loc, body| {
                let rec: JobRecord =
                    serde_json::from_slice(body).map_err(|e| store.changed(loc, e))?;
                let new = Choice {
                    part: part as u32,
                    done: rec.state == JobState::Done,
                    loc,
                };
                let keep_old = |old: Choice| old.done;
                if let Some(old) = chosen.overflow.get_mut(&rec.path) {
                    if !keep_old(*old) {
                        *old = new;
                    }
                    return Ok(());
                }
                let hash = chosen.hasher.hash(&rec.path);
                match chosen.primary.get_mut(&hash) {
                    None => {
                        chosen.primary.insert(hash, new);
                    }
                    Some(old) => {
                        if stores[old.part as usize].owns(old.loc, &rec.path, &mut buf)? {
                            if !keep_old(*old) {
                                *old = new;
                            }
                        } else {
                            chosen.overflow.insert(rec.path, new);
                        }
                    }
                }
                Ok(())
            })?;
        }
        Ok(chosen)
    }
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("Records")
            .field("manifests", &self.stores.len())
            .finish()
    }
}
