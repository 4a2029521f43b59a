//! The plan: turns a list's entries into the engine's jobs, settling each
//! output path, dropping repeated URLs and refusing two jobs that would
//! write the same file (or a file where another needs a directory).
//!
//! It sits above the list parser (a leaf, which knows nothing of the
//! engine) and below the command line and the library, which both plan
//! their lists here. Only `list_file`, which plans a list file without
//! holding it, does I/O.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};

use crate::engine::JobSpec;
use crate::hash_keyed::HashKeyed;
use crate::list::{ListEntry, ListError, Origin};
use crate::naming::{self, RelPath};
use crate::safe_url::SafeUrl;

/// A repeated URL that [`plan`] dropped in favour of its first entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Duplicate {
    /// The dropped entry.
    pub origin: Origin,
    /// The entry that was kept.
    pub kept: Origin,
    /// The output path the dropped entry asked for.
    pub path: RelPath,
    /// The output path of the kept entry.
    pub kept_path: RelPath,
}

impl Duplicate {
    /// True when the dropped entry asked for a different file than the kept
    /// one: the user may have wanted two copies, so this is worth a warning.
    pub fn path_differs(&self) -> bool {
        self.path != self.kept_path
    }
}

impl fmt::Display for Duplicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: URL already listed at {}", self.origin, self.kept)?;
        if self.path_differs() {
            write!(
                f,
                "; downloading it once, to '{}' (not '{}')",
                self.kept_path, self.path
            )?;
        }
        Ok(())
    }
}

/// The jobs [`plan_with_duplicates`] settled on and the entries it dropped.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub jobs: Vec<JobSpec>,
    pub duplicates: Vec<Duplicate>,
}

/// Turns entries into jobs; see [`plan_with_duplicates`]. The dropped
/// duplicates are not reported.
pub fn plan(entries: Vec<ListEntry>) -> Result<Vec<JobSpec>, ListError> {
    plan_with_duplicates(entries).map(|plan| plan.jobs)
}

/// Turns entries into jobs, in list order.
///
/// - The output path comes from [`naming::output_path`]; its errors carry the
///   entry's origin.
/// - The same URL twice (ignoring any `#fragment`, which is never sent) is
///   one job; only a line's first URL counts (its mirrors are alternatives,
///   not files of their own, and may well repeat on other lines): the first entry wins with its path, checksum and headers, and
///   later ones are dropped. Dropped entries are returned in
///   `Plan::duplicates`; when one asked for a different path
///   (`Duplicate::path_differs`) the caller should warn, since the user may
///   have expected two copies. Keeping the first rather than failing means a
///   list concatenated from others still runs.
/// - Two different URLs with the same output path are an error naming both
///   origins, as is one job's path being a directory of another's (`a` and
///   `a/b`): the second would fail or clobber the first halfway through a run.
pub fn plan_with_duplicates(entries: Vec<ListEntry>) -> Result<Plan, ListError> {
    let mut jobs: Vec<JobSpec> = Vec::with_capacity(entries.len());
    let mut duplicates = Vec::new();
    let mut check = Check::default();

    for entry in entries {
        let path = entry_path(&entry)?;
        let at = jobs.len() as u64;
        let admitted = check.admit(at, &entry.url, &path, &entry.origin, &mut InMemory(&jobs));
        match admitted.map_err(|err| match err {
            CheckError::List(err) => err,
            CheckError::Lookup(never) => match never {},
        })? {
            Admit::Keep => jobs.push(job(entry, path)),
            Admit::Duplicate { kept } => {
                let kept = &jobs[kept as usize];
                duplicates.push(Duplicate {
                    origin: entry.origin,
                    kept: kept.origin.clone(),
                    path,
                    kept_path: kept.path.clone(),
                });
            }
        }
    }
    Ok(Plan { jobs, duplicates })
}

/// The entry's output path; its errors carry the entry's origin.
pub(crate) fn entry_path(entry: &ListEntry) -> Result<RelPath, ListError> {
    naming::output_path(&entry.url, entry.dir.as_deref(), entry.out.as_deref()).map_err(|error| {
        ListError::Name {
            origin: entry.origin.clone(),
            error,
        }
    })
}

/// The job an entry becomes, at `path`.
pub(crate) fn job(entry: ListEntry, path: RelPath) -> JobSpec {
    JobSpec {
        url: entry.url,
        mirrors: entry.mirrors,
        path,
        checksum: entry.checksum,
        headers: entry.headers,
        origin: entry.origin,
    }
}

/// What the check keeps of a job it let through: its URL and path, found
/// again from where it was (see [`Lookup`]).
pub(crate) struct Kept {
    pub url: url::Url,
    pub path: RelPath,
}

/// Finds a kept job again from its position: its index in a list held in
/// memory, or where its entry starts in a list file. The check keeps only
/// positions, so it re-reads a job to compare it exactly.
pub(crate) trait Lookup {
    type Error;
    fn kept(&mut self, at: u64) -> Result<Kept, Self::Error>;
    /// Where the kept job came from, for an error (may be slow).
    fn origin(&mut self, at: u64) -> Result<Origin, Self::Error>;
}

/// Jobs in memory, by index.
struct InMemory<'a>(&'a [JobSpec]);

impl Lookup for InMemory<'_> {
    type Error = std::convert::Infallible;

    fn kept(&mut self, at: u64) -> Result<Kept, Self::Error> {
        let job = &self.0[at as usize];
        Ok(Kept {
            url: job.url.clone(),
            path: job.path.clone(),
        })
    }

    fn origin(&mut self, at: u64) -> Result<Origin, Self::Error> {
        Ok(self.0[at as usize].origin.clone())
    }
}

/// What [`Check::admit`] decided for one entry.
#[derive(Debug, PartialEq)]
pub(crate) enum Admit {
    Keep,
    /// A repeated URL: the job at `kept` has it.
    Duplicate {
        kept: u64,
    },
}

#[derive(Debug)]
pub(crate) enum CheckError<E> {
    /// The list is wrong: a path conflict.
    List(ListError),
    /// A kept job could not be found again.
    Lookup(E),
}

/// The duplicate and conflict checks of [`plan_with_duplicates`], keeping
/// per key (URL, output path, needed directory) only a 64-bit hash and the
/// position of the job that owns it: about 16 bytes, where the strings of
/// a long list would cost hundreds. A hash found is only a suspicion: the
/// owner is looked up again and compared exactly. When it differs (two
/// strings with one hash) the new key goes to an exact overflow map, so
/// two different URLs or paths are never taken for one.
#[derive(Default)]
pub(crate) struct Check {
    by_url: Keys,
    by_path: Keys,
    /// Every directory some job needs, with the first job that needs it.
    dirs: Keys,
    /// The directories of the job kept last, known to be in `dirs`: the
    /// jobs of one directory usually follow each other, and each would
    /// otherwise read a job again to tell its directory is known.
    last_dirs: Vec<String>,
}

impl Check {
    /// Checks the entry at `at` against the jobs kept so far and, unless
    /// it repeats one's URL, keeps it.
    pub(crate) fn admit<L: Lookup>(
        &mut self,
        at: u64,
        url: &url::Url,
        path: &RelPath,
        origin: &Origin,
        lookup: &mut L,
    ) -> Result<Admit, CheckError<L::Error>> {
        let key = url_key(url);
        if let Some(kept) = self
            .by_url
            .find(key, lookup, |kept| url_key(&kept.url) == key)?
        {
            return Ok(Admit::Duplicate { kept });
        }
        let path_str = path.as_str();
        if let Some(other) = self
            .by_path
            .find(path_str, lookup, |kept| kept.path.as_str() == path_str)?
        {
            let kept = lookup.kept(other).map_err(CheckError::Lookup)?;
            return Err(CheckError::List(ListError::PathConflict {
                origin: origin.clone(),
                path: path.clone(),
                other: lookup.origin(other).map_err(CheckError::Lookup)?,
                other_url: SafeUrl::new(&kept.url).to_string(),
            }));
        }
        // This job's file is a directory another job needs.
        if let Some(other) = self
            .dirs
            .find(path_str, lookup, |kept| is_under(&kept.path, path_str))?
        {
            return Err(prefix_error(origin, path, other, lookup));
        }
        // One of this job's directories is another job's file.
        let ancestors = ancestors(path);
        for dir in &ancestors {
            if let Some(other) = self
                .by_path
                .find(dir, lookup, |kept| kept.path.as_str() == dir)?
            {
                return Err(prefix_error(origin, path, other, lookup));
            }
        }

        self.by_url.insert(key, at);
        self.by_path.insert(path_str, at);
        // A directory's owner may be this job, which its lookup does not
        // hold yet (a list in memory) and need not read again.
        let mut lookup = WithCurrent {
            at,
            url,
            path,
            rest: lookup,
        };
        for dir in &ancestors {
            if self.last_dirs.contains(dir) {
                continue;
            }
            let known = self
                .dirs
                .find(dir, &mut lookup, |kept| is_under(&kept.path, dir))?;
            if known.is_none() {
                self.dirs.insert(dir, at);
            }
        }
        self.last_dirs = ancestors;
        Ok(Admit::Keep)
    }
}

/// A lookup that also knows the job being admitted.
struct WithCurrent<'a, L> {
    at: u64,
    url: &'a url::Url,
    path: &'a RelPath,
    rest: &'a mut L,
}

impl<L: Lookup> Lookup for WithCurrent<'_, L> {
    type Error = L::Error;

    fn kept(&mut self, at: u64) -> Result<Kept, Self::Error> {
        if at == self.at {
            return Ok(Kept {
                url: self.url.clone(),
                path: self.path.clone(),
            });
        }
        self.rest.kept(at)
    }

    fn origin(&mut self, at: u64) -> Result<Origin, Self::Error> {
        self.rest.origin(at)
    }
}

/// A URL as a key: without its `#fragment`, which is never sent.
fn url_key(url: &url::Url) -> &str {
    &url[..url::Position::AfterQuery]
}

/// Whether `dir` is one of the directories above `path`.
fn is_under(path: &RelPath, dir: &str) -> bool {
    path.as_str()
        .strip_prefix(dir)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// Keys of one kind, each with the position of the job that owns it.
#[derive(Default)]
struct Keys {
    hashed: HashKeyed<u64>,
    /// Keys whose hash another key already owns in `hashed`.
    overflow: HashMap<String, u64>,
}

impl Keys {
    /// The position of the job that owns `key`, checked with `owns`.
    fn find<L: Lookup>(
        &self,
        key: &str,
        lookup: &mut L,
        owns: impl Fn(&Kept) -> bool,
    ) -> Result<Option<u64>, CheckError<L::Error>> {
        if let Some(&at) = self.hashed.get(&key_hash(key)) {
            if owns(&lookup.kept(at).map_err(CheckError::Lookup)?) {
                return Ok(Some(at));
            }
        }
        Ok(self.overflow.get(key).copied())
    }

    /// Records `key`, which [`Keys::find`] did not find, for the job at `at`.
    fn insert(&mut self, key: &str, at: u64) {
        match self.hashed.entry(key_hash(key)) {
            Entry::Vacant(slot) => {
                slot.insert(at);
            }
            Entry::Occupied(_) => {
                self.overflow.insert(key.to_owned(), at);
            }
        }
    }
}

/// The 64-bit hash a key is kept by (SipHash with fixed keys: the same
/// within a run, which is all the check needs).
fn key_hash(key: &str) -> u64 {
    #[cfg(test)]
    if tests::COLLIDE.get() {
        return 7;
    }
    let mut hasher = std::hash::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

fn prefix_error<L: Lookup>(
    origin: &Origin,
    path: &RelPath,
    other: u64,
    lookup: &mut L,
) -> CheckError<L::Error> {
    let (kept, other) = match (lookup.kept(other), lookup.origin(other)) {
        (Ok(kept), Ok(other)) => (kept, other),
        (Err(err), _) | (_, Err(err)) => return CheckError::Lookup(err),
    };
    CheckError::List(ListError::PathPrefix {
        origin: origin.clone(),
        path: path.clone(),
        other,
        other_path: kept.path,
        other_url: SafeUrl::new(&kept.url).to_string(),
    })
}

/// The directories above a path: `a/b/c` gives `a` and `a/b`.
fn ancestors(path: &RelPath) -> Vec<String> {
    let s = path.as_str();
    s.match_indices('/')
        .map(|(at, _)| s[..at].to_owned())
        .collect()
}

pub(crate) mod list_file;

#[cfg(test)]
mod tests;
