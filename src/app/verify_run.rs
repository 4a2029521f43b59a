//! `haul verify` and `get --write-sums`: what to hash and where its sums
//! go, wired to the verifier. Nothing here holds a list of files: the
//! manifest (or the sums file, checked whole first) is streamed to the
//! hashing threads, and a sums file written is sorted in bounded memory
//! ([`SortedSums`]).

use std::fs::File;
use std::path::Path;

use anyhow::{bail, Context};

use crate::cli::VerifyArgs;
use crate::engine::JobSpec;
use crate::naming::RelPath;
use crate::shard::Shard;
use crate::store::manifest::{JobRecord, JobState, Records};
use crate::sums::{check_sums_file, CheckedSums, SumsFileError};
use crate::ui::{self, lines};
use crate::verify::{verify, Expected, SortedSums, Unfinished, VerifyItem, VerifyOutcome};

use super::{check_dir, EXIT_FAILED, EXIT_OK};

/// `haul verify`: hashes every file the manifest records as done (or the
/// sums file lists), prints each outcome and the counts, and writes the
/// sums of the files that matched if asked.
pub(super) async fn verify_cmd(args: VerifyArgs) -> anyhow::Result<u8> {
    check_dir(&args.dir)?;
    let source = match &args.input {
        Some(list) => Source::list(&args.dir, list)?,
        None => Source::open(&args.dir, args.checksums.as_deref(), args.done_only)?,
    };
    let dir = args.dir.clone();
    let (quiet, json) = (args.quiet, args.json);
    let write_sums = args.write_sums.clone();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (summary, sums) = tokio::task::spawn_blocking(move || {
        let mut sums = write_sums
            .as_deref()
            .map(|dest| (SortedSums::new(dest), None));
        let summary = verify(
            &dir,
            threads,
            |send| source.feed(send),
            |item, outcome| {
                if let (
                    Some((sorted, spill_error @ None)),
                    VerifyOutcome::Ok,
                    Expected::Sha256(digest),
                ) = (&mut sums, outcome, item.expected)
                {
                    if let Ok(path) = RelPath::parse(&item.path) {
                        *spill_error = sorted.push(path, digest).err();
                    }
                }
                if json {
                    ui::json::verify_result(item, outcome)
                } else {
                    lines::verify_result(item, outcome, quiet)
                }
            },
        );
        (summary, sums)
    })
    .await
    .context("the verify run crashed")?;
    let mut summary = summary?;
    // Without a list, the runs' records of it tell which shards never ran.
    if args.input.is_none() && args.checksums.is_none() && !args.done_only {
        let (judged, ..) = super::status_run::judge_runs(&args.dir, None)?;
        for shard in &judged.missing {
            if json {
                ui::json::verify_shard_not_started(shard);
            } else {
                lines::verify_shard_not_started(shard);
            }
        }
        summary.shards_not_started = judged.missing.len();
    }
    if json {
        ui::json::verify_summary(&summary);
    } else {
        lines::verify_summary(&summary, quiet);
    }
    if let (Some(dest), Some((sorted, spill_error))) = (&args.write_sums, sums) {
        spill_error
            .map_or_else(|| sorted.write_to(dest), Err)
            .with_context(|| format!("cannot write sums file {}", dest.display()))?;
    }
    Ok(if summary.problems() > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

/// What to verify: the sums file if given, else every file the manifest
/// records as done.
enum Source {
    /// The manifests; with `true`, unfinished jobs are fed too, to fail.
    Manifest(Records, bool),
    /// A list's jobs, checked whole, and the manifests if there are any.
    List(
        Box<dyn Iterator<Item = std::io::Result<JobSpec>> + Send>,
        Option<Records>,
        String,
    ),
    /// The sums file, checked, and its name.
    Sums(CheckedSums, String),
}

impl Source {
    /// Opens the source and checks it whole before anything is hashed: a
    /// bad sha256 in the manifest refuses the run, as a bad sums line does.
    fn list(dir: &Path, list: &str) -> anyhow::Result<Source> {
        let (jobs, name) = super::checked_list_jobs(list)?;
        let records = Records::open_all_with(dir, |_| {})?.map(|(records, _)| records);
        Ok(Source::List(Box::new(jobs), records, name))
    }

    fn open(dir: &Path, sums: Option<&Path>, done_only: bool) -> anyhow::Result<Source> {
        if let Some(path) = sums {
            let file =
                File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
            let source = path.display().to_string();
            return match check_sums_file(file, &source) {
                Ok(checked) => Ok(Source::Sums(checked, source)),
                Err(SumsFileError::Sums(err)) => Err(err.into()),
                Err(SumsFileError::Read(err)) => {
                    Err(err).with_context(|| format!("cannot read {source}"))
                }
            };
        }
        // Indexing shows every line: only if a done one has a bad sha256
        // can a path's latest record have one, and only then does a pass
        // of its own find which.
        let mut suspect = false;
        let opened = Records::open_all_with(dir, |rec| {
            suspect |=
                rec.state() == JobState::Done && rec.sha256().is_some_and(|hex| !is_digest(hex));
        })?;
        let Some((mut records, _)) = opened else {
            bail!(
                "no haul manifest in {} (nothing downloaded there?); pass --checksums FILE to verify against a sums file",
                dir.display()
            );
        };
        if suspect {
            let mut bad_sum = None;
            records.for_each(|rec| {
                if bad_sum.is_none() && rec.state == JobState::Done && expected(&rec).is_err() {
                    bad_sum = Some(rec.path);
                }
            })?;
            if let Some(path) = bad_sum {
                bail!("manifest in {} has a bad sha256 for {path}", dir.display());
            }
        }
        Ok(Source::Manifest(records, !done_only))
    }

    /// Hands every item to `send`, in the source's order.
    fn feed(self, send: &mut dyn FnMut(VerifyItem)) -> anyhow::Result<()> {
        match self {
            Source::Manifest(mut records, unfinished_too) => records.for_each(|rec| {
                let expected = match unfinished(rec.state) {
                    None => match expected(&rec) {
                        Ok(Some(digest)) => Expected::Sha256(digest),
                        _ => return,
                    },
                    Some(why) if unfinished_too => Expected::Unfinished(why),
                    Some(_) => return,
                };
                send(VerifyItem {
                    path: rec.path,
                    expected,
                });
            })?,
            Source::List(jobs, records, name) => {
                for job in jobs {
                    let job = job.with_context(|| format!("cannot read {name}"))?;
                    let expected = match job.checksum {
                        // The list's sha256 is what the file must be,
                        // whoever fetched it.
                        Some(digest) => Expected::Sha256(digest),
                        None => match &records {
                            Some(records) => from_record(records.get(job.path.as_str())?),
                            None => Expected::Unfinished(Unfinished::NotRecorded),
                        },
                    };
                    send(VerifyItem {
                        path: job.path.to_string(),
                        expected,
                    });
                }
            }
            Source::Sums(checked, source) => checked
                .for_each(|entry| {
                    send(VerifyItem {
                        path: entry.path.to_string(),
                        expected: Expected::Sha256(entry.sha256),
                    })
                })
                .with_context(|| format!("cannot read {source}"))?,
        }
        Ok(())
    }
}

/// Whether `hex` reads as a sha256, as [`expected`] would take it.
fn is_digest(hex: &str) -> bool {
    hex::decode_to_slice(hex, &mut [0u8; 32]).is_ok()
}

/// Why a job in `state` has no file to check, if it has none.
fn unfinished(state: JobState) -> Option<Unfinished> {
    match state {
        JobState::Done => None,
        JobState::Partial => Some(Unfinished::Partial),
        JobState::Pending => Some(Unfinished::Pending),
        JobState::Failed => Some(Unfinished::Failed),
    }
}

/// What a list's job without a checksum is checked against: the sha256
/// its record holds, once done.
fn from_record(rec: Option<JobRecord>) -> Expected {
    let Some(rec) = rec else {
        return Expected::Unfinished(Unfinished::NotRecorded);
    };
    if let Some(why) = unfinished(rec.state) {
        return Expected::Unfinished(why);
    }
    match expected(&rec) {
        Ok(Some(digest)) => Expected::Sha256(digest),
        // A done record's bad sha256 is no sha256 to check against.
        Ok(None) | Err(_) => Expected::Unfinished(Unfinished::NoSha256),
    }
}

/// A record's sha256: None if it has none, an error if it is not 64 hex
/// digits.
fn expected(rec: &JobRecord) -> Result<Option<[u8; 32]>, hex::FromHexError> {
    let Some(hex_sum) = rec.sha256.as_deref() else {
        return Ok(None);
    };
    let mut digest = [0u8; 32];
    hex::decode_to_slice(hex_sum, &mut digest)?;
    Ok(Some(digest))
}

/// `get --write-sums`: every file the run's manifest records as complete and
/// that is still in place, this run's and earlier runs', sorted by name.
pub(super) fn write_done_sums(
    out_dir: &Path,
    shard: Option<Shard>,
    dest: &Path,
) -> anyhow::Result<()> {
    let context = || format!("cannot write sums file {}", dest.display());
    let mut sorted = SortedSums::new(dest);
    if let Some(mut records) = Records::open(out_dir, shard)? {
        let mut spill_error = None;
        records.for_each(|rec| {
            if rec.state != JobState::Done || spill_error.is_some() {
                return;
            }
            let (Ok(Some(digest)), Ok(path)) = (expected(&rec), RelPath::parse(&rec.path)) else {
                return;
            };
            let in_place =
                std::fs::symlink_metadata(path.to_path(out_dir)).is_ok_and(|m| m.is_file());
            if in_place {
                spill_error = sorted.push(path, digest).err();
            }
        })?;
        if let Some(err) = spill_error {
            return Err(err).with_context(context);
        }
    }
    sorted.write_to(dest).with_context(context)
}
