//! `haul status`: what the manifests of a directory amount to, from the
//! records on disk alone (no network): counts by state, the list the runs
//! recorded and the shards of it that never started, each unfinished job;
//! or the jobs of a list as the runs recorded them (`-i LIST`). Nothing is
//! held per job: the records and the list are streamed.

use std::path::Path;

use anyhow::{bail, Context};

use crate::cli::StatusArgs;
use crate::shard::Shard;
use crate::store::manifest::{JobRecord, RecordView, Records};
use crate::store::runs::{Judged, ListInfo};
use crate::ui::status::StatusReport;
use crate::ui::{self, lines};

use super::{check_dir, checked_list_jobs, EXISTS, EXIT_FAILED, EXIT_OK, OVERWRITE_HINT};

/// `haul status`: the counts first, then the unfinished jobs, each from its
/// own pass over the manifests on disk, so no record is held. Exits 0 only
/// when everything the list names is done (see [`StatusReport::judge`]).
pub(super) fn status(args: StatusArgs) -> anyhow::Result<u8> {
    check_dir(&args.dir)?;
    if let Some(list) = &args.input {
        return status_against_list(&args, list);
    }
    let (judged, list_jobs, order) = judge_runs(&args.dir, args.shard)?;
    // The counts are taken as the manifest is indexed; only if some path
    // has more than one record there do they need a pass of their own.
    let mut report = StatusReport::default();
    let count = |rec: &RecordView| report.count(rec.progress());
    let opened = match args.shard {
        Some(shard) => Records::open_with(&args.dir, Some(shard), count)?,
        None => Records::open_in_order_with(&args.dir, order, count)?,
    };
    let Some((mut records, counted)) = opened else {
        bail!("no haul manifest in {}", args.dir.display());
    };
    if !counted {
        report = StatusReport::default();
        records.for_each(|rec| report.count(rec.progress()))?;
    }
    report.judge(judged, list_jobs);
    // With every job done the pass over the unfinished ones would read
    // every line to list nothing: a finished million-URL directory answers
    // from the counts alone.
    let unfinished = report.jobs > report.done;
    let mut out = StdoutText::default();
    let mut first = true;
    if args.json {
        out.write(&lines::status_json_head(&report));
        if unfinished {
            records.for_each_unfinished(|mut rec| {
                hint_overwrite(&mut rec);
                if let Some(entry) = lines::status_json_failure(&rec, &mut first) {
                    out.write(&entry);
                }
            })?;
        }
        out.write(lines::STATUS_JSON_TAIL);
    } else {
        out.write(&lines::status_headline(&report));
        if unfinished {
            records.for_each_unfinished(|mut rec| {
                hint_overwrite(&mut rec);
                if let Some(line) = lines::status_line(&rec) {
                    out.write(&line);
                }
            })?;
        }
    }
    out.finish()?;
    Ok(if report.complete {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// `haul status -i LIST`: the list's jobs as the manifests in the
/// directory record them (any run's or shard's; a job none recorded is
/// `unrecorded`), counts first, then each job not done. The list is read
/// twice after its check, so nothing per job is held.
fn status_against_list(args: &StatusArgs, list: &str) -> anyhow::Result<u8> {
    let records = Records::open_all_with(&args.dir, |_| {})?.map(|(records, _)| records);
    let lookup = |path: &str| -> anyhow::Result<Option<JobRecord>> {
        Ok(match &records {
            Some(records) => records.get(path)?,
            None => None,
        })
    };
    let mut report = StatusReport::default();
    let mut list_jobs = 0u64;
    let (jobs, name) = checked_list_jobs(list)?;
    for job in jobs {
        let job = job.with_context(|| format!("cannot read {name}"))?;
        list_jobs += 1;
        if let Some(rec) = lookup(job.path.as_str())? {
            report.count(rec.progress());
        }
    }
    report.judge(Judged::default(), Some(list_jobs));
    let mut out = StdoutText::default();
    let mut first = true;
    if args.json {
        out.write(&lines::status_json_head(&report));
    } else {
        out.write(&lines::status_headline(&report));
        if report.unrecorded > 0 {
            out.write(&format!(
                "list {name}: {} in no manifest yet\n",
                ui::count(report.unrecorded as usize, "job")
            ));
        }
    }
    if !report.complete {
        let (jobs, _) = checked_list_jobs(list)?;
        for job in jobs {
            let job = job.with_context(|| format!("cannot read {name}"))?;
            let rec = lookup(job.path.as_str())?;
            match (rec, args.json) {
                (Some(mut rec), json) => {
                    hint_overwrite(&mut rec);
                    let text = if json {
                        lines::status_json_failure(&rec, &mut first)
                    } else {
                        lines::status_line(&rec)
                    };
                    if let Some(text) = text {
                        out.write(&text);
                    }
                }
                (None, false) => out.write(&format!(
                    "{:<8} {}  (no run in this directory recorded it)\n",
                    "none", job.path
                )),
                (None, true) => {}
            }
        }
    }
    if args.json {
        out.write(lines::STATUS_JSON_TAIL);
    }
    out.finish()?;
    Ok(if report.complete {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// What the lists the runs in `dir` recorded say (for one shard, only
/// its own), how many jobs its manifests should hold, and the order to
/// read them in (strays first: see [`crate::store::runs::Judged::read_order`]).
pub(super) fn judge_runs(
    dir: &Path,
    shard: Option<Shard>,
) -> anyhow::Result<(Judged, Option<u64>, Vec<Option<Shard>>)> {
    let runs = crate::store::runs::read(dir)?;
    if let Some(shard) = shard {
        // One shard's own view: its part of the list, nothing of the others.
        let own = runs.into_iter().find(|r| r.shard == Some(shard));
        let stamp = own.and_then(|r| r.stamp);
        let jobs = stamp.as_ref().and_then(|s| s.shard).map(|s| s.jobs);
        let judged = Judged {
            list: stamp.map(|s| ListInfo {
                fingerprint: s.fingerprint,
                jobs: s.jobs,
                shards: Some(shard.count()),
            }),
            ..Judged::default()
        };
        return Ok((judged, jobs, vec![Some(shard)]));
    }
    let judged = crate::store::runs::judge(&runs);
    let jobs = judged.list.as_ref().map(|l| l.jobs);
    let order = judged.read_order(&runs);
    Ok((judged, jobs, order))
}

/// A failure that refusing to overwrite caused names the flag that allows it.
fn hint_overwrite(rec: &mut JobRecord) {
    if let Some(error) = &mut rec.last_error {
        if error.ends_with(EXISTS) {
            error.push_str(OVERWRITE_HINT);
        }
    }
}

/// Text written to stdout as it comes; a closed pipe (`| head`) stops the
/// writing but is not an error, as in [`to_stdout`].
struct StdoutText {
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
    failed: Option<std::io::Error>,
}

impl Default for StdoutText {
    fn default() -> StdoutText {
        StdoutText {
            out: std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock()),
            failed: None,
        }
    }
}

impl StdoutText {
    fn write(&mut self, text: &str) {
        use std::io::Write;
        if self.failed.is_none() {
            self.failed = self.out.write_all(text.as_bytes()).err();
        }
    }

    fn finish(mut self) -> anyhow::Result<()> {
        use std::io::Write;
        let result = match self.failed.take() {
            Some(err) => Err(err),
            None => self.out.flush(),
        };
        match result {
            Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(err).context("cannot write to standard output")
            }
            _ => Ok(()),
        }
    }
}
