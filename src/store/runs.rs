//! The runs whose state an output directory holds (its own `.haul/` and
//! each `shard-K-of-N/`), the lists they recorded ([`super::list_stamp`]),
//! and what they say together: the list the directory is for, the shards
//! of it that never started, and the state directories that do not fit.
//!
//! The list is the one most state directories recorded (a tie goes to the
//! larger N): a stray `shard-0-of-1/` left by a wrong job array is one
//! directory against the N of the real plan, so it is reported, never
//! taken for the plan. State from a haul before list stamps has none and
//! votes for nothing. This module reads stamps and judges them; it counts
//! no records (see [`super::manifest::Records`]).

use std::path::Path;

use serde::Serialize;

use super::list_stamp::{self, ListStamp, ListStampError};
use crate::shard::Shard;

/// One state directory and the list it recorded, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// None: the directory's own `.haul/`.
    pub shard: Option<Shard>,
    pub stamp: Option<ListStamp>,
}

impl Run {
    /// The state directory's name under the output directory.
    pub fn dir_name(&self) -> String {
        match self.shard {
            Some(shard) => format!(".haul/{}", shard.dir_name()),
            None => ".haul".to_string(),
        }
    }
}

/// Every state directory of `out_dir` that exists: its own first, then
/// the shards' in [`super::shards_present`] order.
pub fn read(out_dir: &Path) -> Result<Vec<Run>, ListStampError> {
    let shards = super::shards_present(out_dir).map_err(|source| ListStampError::Io {
        op: "list",
        path: super::haul_dir(out_dir),
        source,
    })?;
    let mut runs = Vec::new();
    for shard in std::iter::once(None).chain(shards.into_iter().map(Some)) {
        let dir = super::state_dir(out_dir, shard);
        let exists = match shard {
            Some(_) => true,
            // The own state has a manifest or a stamp; `.haul/` alone only
            // holds the shards'.
            None => {
                dir.join(list_stamp::LIST_STAMP_NAME).exists()
                    || dir.join("manifest.json").exists()
                    || dir.join("journal.jsonl").exists()
            }
        };
        if exists {
            runs.push(Run {
                shard,
                stamp: list_stamp::read(&dir)?,
            });
        }
    }
    Ok(runs)
}

/// The list a directory is for, as its runs recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListInfo {
    pub fingerprint: String,
    /// Jobs of the whole list.
    pub jobs: u64,
    /// N, for a list run as N shards; null for one run without `--shard`.
    pub shards: Option<u64>,
}

/// A state directory that does not fit the list, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stray {
    /// Under the output directory, e.g. `.haul/shard-0-of-1`.
    pub dir: String,
    pub why: String,
    /// Its state came from another list, so what it holds may not be the
    /// list's: completion cannot be vouched for.
    #[serde(skip)]
    pub other_list: bool,
}

/// What the runs say together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Judged {
    pub list: Option<ListInfo>,
    /// Shards of the list whose state directory does not exist.
    pub missing: Vec<Shard>,
    pub strays: Vec<Stray>,
}

impl Judged {
    /// The state directories in the order their records should be read:
    /// strays first, so that among records that are not done the list's
    /// own runs have the last word (a done record wins wherever it is).
    pub fn read_order(&self, runs: &[Run]) -> Vec<Option<Shard>> {
        let stray = |run: &Run| self.strays.iter().any(|s| s.dir == run.dir_name());
        let (strays, own): (Vec<&Run>, Vec<&Run>) = runs.iter().partition(|r| stray(r));
        strays.into_iter().chain(own).map(|r| r.shard).collect()
    }
}

/// A list as run: its fingerprint, its jobs, and N (None: no `--shard`).
type Plan = (String, u64, Option<u64>);

/// The list most runs recorded, the shards of it missing, and the runs
/// that do not fit it.
pub fn judge(runs: &[Run]) -> Judged {
    let key = |run: &Run| {
        run.stamp.as_ref().map(|s| {
            let n = s.shard.map(|s| s.count);
            (s.fingerprint.clone(), s.jobs, n)
        })
    };
    let mut votes: Vec<(Plan, usize)> = Vec::new();
    for run in runs {
        let Some(k) = key(run) else { continue };
        match votes.iter_mut().find(|(v, _)| *v == k) {
            Some((_, n)) => *n += 1,
            None => votes.push((k, 1)),
        }
    }
    let Some(((fingerprint, jobs, shards), _)) = votes
        .into_iter()
        .max_by_key(|((_, _, n), votes)| (*votes, n.unwrap_or(0)))
    else {
        return Judged::default();
    };
    let missing = match shards {
        Some(n) => (0..n)
            .filter_map(|k| Shard::new(k, n))
            .filter(|shard| !runs.iter().any(|r| r.shard == Some(*shard)))
            .collect(),
        None => Vec::new(),
    };
    let mut strays = Vec::new();
    for run in runs {
        let n = run.shard.map(|s| s.count());
        // A run with no stamp (an older haul) is taken at its N alone.
        let other_list = run
            .stamp
            .as_ref()
            .is_some_and(|stamp| stamp.fingerprint != fingerprint || stamp.jobs != jobs);
        let why = if n != shards {
            let theirs = match n {
                Some(n) => format!("run as shard {} of {n}", shard_k(run)),
                None => "run without --shard".to_string(),
            };
            let list_n = match shards {
                Some(n) => format!("{n} shards"),
                None => "one run without --shard".to_string(),
            };
            format!("{theirs}, but the list is run as {list_n}")
        } else if let Some(stamp) = run.stamp.as_ref().filter(|_| other_list) {
            format!("recorded another list ({})", stamp.describe())
        } else {
            continue;
        };
        strays.push(Stray {
            dir: run.dir_name(),
            why,
            other_list,
        });
    }
    Judged {
        list: Some(ListInfo {
            fingerprint,
            jobs,
            shards,
        }),
        missing,
        strays,
    }
}

fn shard_k(run: &Run) -> u64 {
    run.shard.map_or(0, |s| s.index())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(k: u64, n: u64, print: &str, jobs: u64) -> Run {
        let shard = Shard::new(k, n);
        Run {
            shard,
            stamp: Some(ListStamp::new(print.repeat(64), jobs, shard, jobs / n)),
        }
    }

    #[test]
    fn the_plan_most_runs_recorded_wins_and_the_rest_is_named() {
        // Shards 0..6 of 8 ran, shard 7 never did, and a wrong array left
        // shard 0 of 1 over the same list.
        let mut runs: Vec<Run> = (0..7).map(|k| run(k, 8, "a", 400)).collect();
        runs.insert(0, run(0, 1, "a", 400));
        let judged = judge(&runs);
        let list = judged.list.clone().expect("a list");
        assert_eq!((list.jobs, list.shards), (400, Some(8)));
        assert_eq!(judged.missing, [Shard::new(7, 8).expect("valid")]);
        assert_eq!(judged.strays.len(), 1, "{judged:?}");
        let stray = &judged.strays[0];
        assert_eq!(stray.dir, ".haul/shard-0-of-1");
        assert_eq!(
            stray.why,
            "run as shard 0 of 1, but the list is run as 8 shards"
        );
        assert!(!stray.other_list);
        let order = judged.read_order(&runs);
        assert_eq!(order[0], Shard::new(0, 1), "strays are read first");
        assert_eq!(order.len(), 8);
    }

    #[test]
    fn a_tie_goes_to_the_larger_n_and_another_list_is_a_stray() {
        let runs = [run(0, 1, "a", 400), run(1, 2, "a", 400)];
        let judged = judge(&runs);
        assert_eq!(judged.list.as_ref().and_then(|l| l.shards), Some(2));
        assert_eq!(judged.missing, [Shard::new(0, 2).expect("valid")]);

        let runs = [
            run(0, 3, "a", 400),
            run(1, 3, "a", 400),
            run(2, 3, "b", 410),
            Run {
                shard: Shard::new(1, 4),
                stamp: None,
            },
        ];
        let judged = judge(&runs);
        assert!(judged.missing.is_empty(), "{judged:?}");
        assert_eq!(judged.strays.len(), 2, "{judged:?}");
        assert!(!judged.strays[1].other_list, "no stamp: judged by its N");
        assert_eq!(judged.strays[0].dir, ".haul/shard-2-of-3");
        assert!(judged.strays[0].other_list);
        assert!(judged.strays[0]
            .why
            .starts_with("recorded another list (410 jobs"));
        let old = Run {
            shard: None,
            stamp: None,
        };
        assert_eq!(judge(&[old]), Judged::default());
    }
}
