//! The plan: turns a list's entries into the engine's jobs, settling each
//! output path, dropping repeated URLs and refusing two jobs that would
//! write the same file (or a file where another needs a directory).
//!
//! It sits above the list parser (a leaf, which knows nothing of the
//! engine) and below the command line and the library, which both plan
//! their lists here. It does no I/O.

use std::collections::HashMap;
use std::fmt;

use crate::engine::JobSpec;
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
    let mut by_url: HashMap<String, usize> = HashMap::new();
    let mut by_path: HashMap<RelPath, usize> = HashMap::new();
    // Every directory some job needs, with the first job that needs it.
    let mut dirs: HashMap<String, usize> = HashMap::new();

    for entry in entries {
        let path = naming::output_path(&entry.url, entry.dir.as_deref(), entry.out.as_deref())
            .map_err(|error| ListError::Name {
                origin: entry.origin.clone(),
                error,
            })?;

        let mut key = entry.url.clone();
        key.set_fragment(None);
        if let Some(&first) = by_url.get(key.as_str()) {
            let kept = &jobs[first];
            duplicates.push(Duplicate {
                origin: entry.origin,
                kept: kept.origin.clone(),
                path,
                kept_path: kept.path.clone(),
            });
            continue;
        }

        if let Some(&other) = by_path.get(&path) {
            let other = &jobs[other];
            return Err(ListError::PathConflict {
                origin: entry.origin,
                path,
                other: other.origin.clone(),
                other_url: SafeUrl::new(&other.url).to_string(),
            });
        }
        // This job's file is a directory another job needs.
        if let Some(&other) = dirs.get(path.as_str()) {
            let other = &jobs[other];
            return Err(prefix_error(&entry.origin, &path, other));
        }
        // One of this job's directories is another job's file.
        let ancestors = ancestors(&path);
        for dir in &ancestors {
            if let Ok(as_file) = RelPath::parse(dir) {
                if let Some(&other) = by_path.get(&as_file) {
                    let other = &jobs[other];
                    return Err(prefix_error(&entry.origin, &path, other));
                }
            }
        }

        let index = jobs.len();
        by_url.insert(key.into(), index);
        by_path.insert(path.clone(), index);
        for dir in ancestors {
            dirs.entry(dir).or_insert(index);
        }
        jobs.push(JobSpec {
            url: entry.url,
            mirrors: entry.mirrors,
            path,
            checksum: entry.checksum,
            headers: entry.headers,
            origin: entry.origin,
        });
    }
    Ok(Plan { jobs, duplicates })
}

fn prefix_error(origin: &Origin, path: &RelPath, other: &JobSpec) -> ListError {
    ListError::PathPrefix {
        origin: origin.clone(),
        path: path.clone(),
        other: other.origin.clone(),
        other_path: other.path.clone(),
        other_url: SafeUrl::new(&other.url).to_string(),
    }
}

/// The directories above a path: `a/b/c` gives `a` and `a/b`.
fn ancestors(path: &RelPath) -> Vec<String> {
    let s = path.as_str();
    s.match_indices('/')
        .map(|(at, _)| s[..at].to_owned())
        .collect()
}

#[cfg(test)]
mod tests;
