//! The manifest's single owner: an actor that appends the records workers
//! send and syncs them in groups, and reconciles the jobs that join a run
//! after it started.
//!
//! The actor is a task on the run's runtime, not a thread of its own: while
//! the disk syncs quickly (a tmpfs, a cache that acknowledges at once) it
//! takes each batch on the event loop, as `PartWriter::land` writes a small
//! file there, and its acks wake workers on the same runtime. A thread of
//! its own cost a futex wake-up and a context switch each way per batch:
//! on 50,000 files of 1 KiB it woke 16,800 times and used a fifth of
//! haul's CPU. On a slower disk each batch goes to the blocking pool, so
//! no worker waits behind the disk, and so does any batch that may compact
//! the manifest or load another run's (see `Owned::long_work`).
//!
//! Workers sync their `.part` data before they send a record, so the
//! manifest never claims bytes that are not on disk. One fsync covers every
//! record that arrived while the last one ran (group commit), which keeps the
//! cost per update flat however many jobs run.
//!
//! A finished file's rename is done here too ([`Recorder::finish`]), by
//! whoever syncs the journal, right after the fsync that makes its
//! "done" durable: the rename can never run ahead of that record, and a
//! small file's end costs its worker one wait instead of a wait for the
//! record and another trip to the blocking pool for the rename.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use super::{reconcile, EngineError, JobSpec, Reconciled, Siblings};
use crate::event::JobId;
use crate::store::manifest::{JobRecord, Manifest, ManifestError};
use crate::store::sync_cost::SyncCost;

enum Msg {
    /// Append; `durable` asks for an fsync before the batch is done.
    Save {
        rec: JobRecord,
        durable: bool,
    },
    SaveSynced(JobRecord, oneshot::Sender<Result<(), RecordError>>),
    /// Like `SaveSynced`, then renames `part` to `to` once the record is on
    /// disk, and `data` (the open `.part`, if not yet synced) too.
    Finish {
        rec: JobRecord,
        part: PathBuf,
        to: PathBuf,
        data: Option<std::fs::File>,
        done: oneshot::Sender<Result<(), FinishError>>,
    },
    /// Matches jobs with the manifest and appends the records of new ones.
    Reconcile {
        jobs: Vec<(JobId, Arc<JobSpec>)>,
        out_dir: PathBuf,
        done: oneshot::Sender<Result<Reconciled, RecordError>>,
    },
}

/// Why a record a worker waited on is not on disk. Its [`crate::error::chain`]
/// is the text users see after "cannot record PATH as done: ".
#[derive(Debug, Clone, thiserror::Error)]
pub enum RecordError {
    /// The actor is gone (it failed earlier, or the run is ending).
    #[error("the manifest writer has stopped")]
    Stopped,
    /// Appending to the journal failed (a full disk, mostly), or a record
    /// could not be read back from it; shared by
    /// every record of the batch.
    #[error(transparent)]
    Append(Arc<ManifestError>),
    /// The journal's fsync failed; every later sync reports the same error.
    #[error("cannot sync the manifest journal")]
    Sync(#[source] Arc<std::io::Error>),
}

/// Why a finished file did not get its final name.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    /// Its "done" record is not on disk, so it was not renamed.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The record is on disk; the rename failed.
    #[error("cannot rename the .part to its final name")]
    Rename(#[source] std::io::Error),
    /// The record is on disk; the `.part`'s data could not be synced, so
    /// it was not renamed.
    #[error("cannot sync the .part")]
    Sync(#[source] std::io::Error),
}

/// A cheap handle workers use to persist their job's record.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Msg>,
}

/// Joins the actor once every [`Recorder`] is dropped; the manifest is
/// compacted and closed by then.
pub struct RecorderTask(tokio::task::JoinHandle<Result<Vec<String>, ManifestError>>);

impl Recorder {
    /// Starts the actor on the current runtime; it owns `manifest` (and
    /// the other runs' records that jobs arriving later are reconciled
    /// with) until every handle is dropped.
    pub(crate) fn spawn(
        manifest: Manifest,
        siblings: Siblings,
    ) -> Result<(Recorder, RecorderTask), EngineError> {
        let journal = JournalSync::new(manifest.journal_handle()?);
        Self::spawn_with(manifest, siblings, journal)
    }

    fn spawn_with(
        manifest: Manifest,
        siblings: Siblings,
        journal: JournalSync,
    ) -> Result<(Recorder, RecorderTask), EngineError> {
        // A slow fsync runs on a thread of its own: while it waits for the
        // disk, appends go on, so a kill loses only what was not yet
        // written, never a backlog queued behind it (see `JournalSync`).
        let journal = Arc::new(journal);
        let (sync_tx, sync_rx) = std::sync::mpsc::channel::<Acks>();
        let for_syncer = journal.clone();
        let syncer = std::thread::Builder::new()
            .name("haul-fsync".into())
            .spawn(move || syncer(&for_syncer, sync_rx))
            .map_err(EngineError::Spawn)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let owned = Owned {
            manifest,
            siblings,
            losses: Losses::default(),
        };
        let fsync = Fsync {
            journal,
            tx: sync_tx,
            thread: syncer,
        };
        let handle = tokio::spawn(actor(owned, fsync, rx));
        Ok((Recorder { tx }, RecorderTask(handle)))
    }

    /// Records a checkpoint; durable at the actor's next sync, moments later.
    pub fn save(&self, rec: JobRecord) {
        // A closed channel means the actor already failed; its error is
        // reported when the run ends.
        let _ = self.tx.send(Msg::Save { rec, durable: true });
    }

    /// Records progress that only has to survive a killed process, not a
    /// crashed machine: appended without an fsync of its own (the boot id
    /// in the record tells a later run whether to trust it).
    pub fn save_written(&self, rec: JobRecord) {
        let _ = self.tx.send(Msg::Save {
            rec,
            durable: false,
        });
    }

    /// Records a state change and waits until it is on disk.
    pub async fn save_synced(&self, rec: JobRecord) -> Result<(), RecordError> {
        let (done_tx, done_rx) = oneshot::channel();
        self.tx
            .send(Msg::SaveSynced(rec, done_tx))
            .map_err(|_| RecordError::Stopped)?;
        done_rx.await.map_err(|_| RecordError::Stopped)?
    }

    /// Records a finished file's "done" state, and once that is on disk
    /// renames its complete `part` to `to`. `data` is the `.part`, open,
    /// when its bytes are written but not synced (a small file: see
    /// `PartWriter::land`): it is synced after the journal, together with
    /// the others of its group, and before the rename.
    pub async fn finish(
        &self,
        rec: JobRecord,
        part: PathBuf,
        to: PathBuf,
        data: Option<std::fs::File>,
    ) -> Result<(), FinishError> {
        let (done, finished) = oneshot::channel();
        self.tx
            .send(Msg::Finish {
                rec,
                part,
                to,
                data,
                done,
            })
            .map_err(|_| RecordError::Stopped)?;
        finished.await.map_err(|_| RecordError::Stopped)?
    }

    /// Reconciles jobs that arrive while the run goes on (see
    /// `engine::reconcile`). Their new records are appended without a sync
    /// of their own: a pending record claims no bytes.
    pub(super) async fn reconcile(
        &self,
        jobs: Vec<(JobId, Arc<JobSpec>)>,
        out_dir: &Path,
    ) -> Result<Reconciled, RecordError> {
        let (done, found) = oneshot::channel();
        let out_dir = out_dir.to_path_buf();
        self.tx
            .send(Msg::Reconcile {
                jobs,
                out_dir,
                done,
            })
            .map_err(|_| RecordError::Stopped)?;
        found.await.map_err(|_| RecordError::Stopped)?
    }
}

impl RecorderTask {
    /// Waits for the actor to compact and close the manifest; returns what
    /// it could not write, as warnings (see `actor`).
    pub async fn join(self) -> Result<Vec<String>, EngineError> {
        match self.0.await {
            Ok(result) => result.map_err(EngineError::Manifest),
            Err(_) => Err(EngineError::WriterPanicked),
        }
    }
}

/// A worker waiting for the next fsync of the journal.
enum Ack {
    Synced(oneshot::Sender<Result<(), RecordError>>),
    /// Waits for the rename that follows the fsync as well (and for the
    /// sync of `data`, before it).
    Promote {
        part: PathBuf,
        to: PathBuf,
        data: Option<std::fs::File>,
        done: oneshot::Sender<Result<(), FinishError>>,
    },
}

impl Ack {
    /// Answers with `err`: the record is not known to be on disk, so
    /// nothing is renamed.
    fn fail(self, err: RecordError) {
        match self {
            Ack::Synced(done) => {
                let _ = done.send(Err(err));
            }
            Ack::Promote { done, .. } => {
                let _ = done.send(Err(FinishError::Record(err)));
            }
        }
    }

    /// Answers after a successful fsync, renaming first if asked.
    fn synced(self) {
        match self {
            Ack::Synced(done) => {
                let _ = done.send(Ok(()));
            }
            Ack::Promote {
                part,
                to,
                data,
                done,
            } => {
                let synced = data.map(|file| crate::store::part::sync_data_timed(&file));
                if let Some(Err(err)) = synced {
                    let _ = done.send(Err(FinishError::Sync(err)));
                    return;
                }
                let renamed = crate::store::part::promote_blocking(&part, &to);
                let _ = done.send(renamed.map_err(FinishError::Rename));
            }
        }
    }
}

/// Acks waiting for the next fsync of the journal.
type Acks = Vec<Ack>;

/// What the actor owns, moved to the blocking pool and back with a batch
/// taken there.
struct Owned {
    manifest: Manifest,
    siblings: Siblings,
    losses: Losses,
}

impl Owned {
    /// Whether `msgs` may take long whatever the disk: a compaction
    /// (rewriting every record) or a look-up in another run's manifest
    /// (loaded whole on the first one).
    fn long_work(&self, msgs: &[Msg]) -> bool {
        let mut records = 0;
        for msg in msgs {
            records += match msg {
                // At most a new record per job: none is adopted from
                // another run when there is none.
                Msg::Reconcile { jobs, .. } if self.siblings.is_empty() => jobs.len(),
                Msg::Reconcile { .. } => return true,
                _ => 1,
            };
        }
        self.manifest.may_compact_within(records)
    }

    fn take(&mut self, msgs: Vec<Msg>, journal: &JournalSync, sync_tx: &SyncSender) {
        let mut batch = Batch::default();
        for msg in msgs {
            batch.apply(&mut self.manifest, &mut self.siblings, msg);
        }
        batch.end(&mut self.manifest, journal, sync_tx, &mut self.losses);
    }
}

/// Where the actor hands a slow disk's fsyncs.
type SyncSender = std::sync::mpsc::Sender<Acks>;

/// The journal's fsync and the thread a slow one goes to.
struct Fsync {
    journal: Arc<JournalSync>,
    tx: SyncSender,
    thread: JoinHandle<()>,
}

async fn actor(
    mut owned: Owned,
    fsync: Fsync,
    mut rx: mpsc::UnboundedReceiver<Msg>,
) -> Result<Vec<String>, ManifestError> {
    let dir = owned.manifest.dir().to_path_buf();
    let writer_lost = move |source| ManifestError::Io {
        op: "run the manifest writer for",
        path: dir,
        source,
    };
    let Fsync {
        journal,
        tx: sync_tx,
        thread: syncer,
    } = fsync;
    while let Some(first) = rx.recv().await {
        // What is queued now, and no more: a steady flood of records must
        // not hold back the sync that acks the first ones.
        let mut msgs = vec![first];
        while let Ok(more) = rx.try_recv() {
            msgs.push(more);
        }
        // A quick disk's appends, syncs and renames cost less than the trip
        // to the pool; a slow one's, or long work, must not hold a worker of
        // the runtime.
        if journal.cost.quick() && !owned.long_work(&msgs) {
            owned.take(msgs, &journal, &sync_tx);
        } else {
            let (journal, sync_tx) = (journal.clone(), sync_tx.clone());
            let taken = tokio::task::spawn_blocking(move || {
                owned.take(msgs, &journal, &sync_tx);
                owned
            });
            owned = match taken.await {
                Ok(owned) => owned,
                Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                Err(err) => return Err(writer_lost(std::io::Error::other(err))),
            };
        }
    }
    drop(sync_tx);
    let closed = tokio::task::spawn_blocking(move || close(owned, journal, syncer));
    match closed.await {
        Ok(closed) => closed,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => Err(writer_lost(std::io::Error::other(err))),
    }
}

/// Waits for the last fsync, then compacts and closes the manifest;
/// returns what could not be written, as warnings.
fn close(
    owned: Owned,
    journal: Arc<JournalSync>,
    syncer: JoinHandle<()>,
) -> Result<Vec<String>, ManifestError> {
    let Owned {
        manifest, losses, ..
    } = owned;
    let synced = match syncer.join() {
        Err(_) => Err(std::io::Error::other("the manifest syncer crashed")),
        Ok(()) => Arc::try_unwrap(journal)
            .map_err(|_| std::io::Error::other("the manifest syncer is still running"))
            .and_then(JournalSync::into_result),
    };
    let journal = manifest.dir().join("journal.jsonl");
    synced.map_err(|source| ManifestError::Io {
        op: "sync manifest journal",
        path: journal,
        source,
    })?;
    let mut warnings: Vec<String> = losses.warning().into_iter().collect();
    // Compaction only makes the next load shorter: the synced journal holds
    // every record, so a full disk here is worth a warning, not a failed run.
    if let Err(err) = manifest.close() {
        warnings.push(format!(
            "the manifest was not compacted ({}); its journal holds every record \
             and the next run compacts it",
            crate::error::chain(&err)
        ));
    }
    Ok(warnings)
}

/// Records that could not be appended over the whole run. A failed append
/// (a full disk) is cut back off the journal by `update`, so the journal
/// stays whole and later appends may succeed again: the run goes on, the
/// records lost are counted, and the job waiting on a lost record learns
/// it failed.
#[derive(Default)]
struct Losses {
    lost: usize,
    first: Option<String>,
}

impl Losses {
    fn warning(&self) -> Option<String> {
        let msg = self.first.as_ref()?;
        Some(format!(
            "{} manifest update(s) could not be written ({msg}); \
             the next run may fetch again the bytes they recorded",
            self.lost
        ))
    }
}

/// The messages taken at once, between two syncs.
#[derive(Default)]
struct Batch {
    waiting: Acks,
    sync: bool,
    lost: usize,
    failure: Option<Arc<ManifestError>>,
}

impl Batch {
    fn apply(&mut self, manifest: &mut Manifest, siblings: &mut Siblings, msg: Msg) {
        match msg {
            Msg::Save { rec, durable } => {
                self.sync |= durable;
                self.append(manifest, rec);
            }
            Msg::SaveSynced(rec, done) => {
                self.waiting.push(Ack::Synced(done));
                self.sync = true;
                self.append(manifest, rec);
            }
            Msg::Finish {
                rec,
                part,
                to,
                data,
                done,
            } => {
                self.waiting.push(Ack::Promote {
                    part,
                    to,
                    data,
                    done,
                });
                self.sync = true;
                self.append(manifest, rec);
            }
            Msg::Reconcile {
                jobs,
                out_dir,
                done,
            } => {
                // The look-ups read from disk: what this batch staged first.
                self.flush(manifest);
                // A record that cannot be read back fails the jobs that
                // arrived with it; the run goes on with the others.
                let mut found = reconcile(manifest, jobs, &out_dir, siblings)
                    .map_err(|err| RecordError::Append(Arc::new(err)));
                if let Ok(found) = &mut found {
                    for &i in &found.changed {
                        let spec = &found.queue[i].spec;
                        let rec = JobRecord::pending(spec.path.to_string(), spec.url.to_string());
                        self.append(manifest, rec);
                    }
                    for rec in std::mem::take(&mut found.adopted) {
                        self.append(manifest, rec);
                    }
                }
                let _ = done.send(found);
            }
        }
    }

    fn append(&mut self, manifest: &mut Manifest, rec: JobRecord) {
        if let Err(err) = manifest.stage(rec) {
            self.lost += 1;
            self.failure.get_or_insert_with(|| Arc::new(err));
        }
        if manifest.staged_enough() {
            self.flush(manifest);
        }
    }

    /// Writes what was staged, one write for the batch; a failure loses
    /// every record staged since the last flush.
    fn flush(&mut self, manifest: &mut Manifest) {
        let staged = manifest.staged();
        if let Err(err) = manifest.flush() {
            self.lost += staged;
            self.failure.get_or_insert_with(|| Arc::new(err));
        }
    }

    /// Acks the batch: after the next fsync, or at once with the error that
    /// lost some of its records.
    fn end(
        mut self,
        manifest: &mut Manifest,
        journal: &JournalSync,
        sync_tx: &SyncSender,
        losses: &mut Losses,
    ) {
        self.flush(manifest);
        losses.lost += self.lost;
        match self.failure {
            Some(err) => {
                for ack in self.waiting {
                    ack.fail(RecordError::Append(err.clone()));
                }
                losses
                    .first
                    .get_or_insert_with(|| crate::error::chain(&*err));
            }
            None if self.sync => {
                // Everything this batch appended precedes the fsync that
                // answers its acks, so they are honest.
                if journal.cost.quick() {
                    journal.sync(self.waiting);
                } else {
                    let _ = sync_tx.send(self.waiting);
                }
            }
            None => {}
        }
    }
}

/// The journal's fsync, and the error that ends every later one, shared by
/// the actor and the fsync thread: while fsyncs are quick (a tmpfs, a cache
/// that acknowledges at once) the actor runs them itself, as waking the
/// fsync thread and being woken by it cost more than the fsync (4 % of
/// haul's CPU on 10,000 files of 1 KiB); a slower one goes to the thread,
/// so the actor keeps appending meanwhile.
struct JournalSync {
    journal: std::fs::File,
    failure: std::sync::Mutex<Option<Arc<std::io::Error>>>,
    cost: SyncCost,
}

impl JournalSync {
    fn new(journal: std::fs::File) -> Self {
        JournalSync {
            journal,
            failure: std::sync::Mutex::new(None),
            cost: SyncCost::new(),
        }
    }

    /// fsyncs the journal once for all of `acks` (group commit), then
    /// answers them.
    fn sync(&self, acks: Acks) {
        let failure = {
            let mut failure = self
                .failure
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if failure.is_none() {
                *failure = self.cost.sync_data(&self.journal).err().map(Arc::new);
            }
            failure.clone()
        };
        for ack in acks {
            match &failure {
                Some(err) => ack.fail(RecordError::Sync(err.clone())),
                None => ack.synced(),
            }
        }
    }

    /// The fsync error, if one came, once nothing else shares it.
    fn into_result(self) -> std::io::Result<()> {
        let failure = self
            .failure
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The acks may still share the error: then a copy with its kind and
        // message (all an io::Error's Display shows) goes up instead.
        failure.map_or(Ok(()), |err| {
            Err(Arc::try_unwrap(err)
                .unwrap_or_else(|shared| std::io::Error::new(shared.kind(), shared.to_string())))
        })
    }
}

/// fsyncs the journal whenever the actor asks, once for every request
/// queued meanwhile.
fn syncer(journal: &JournalSync, rx: std::sync::mpsc::Receiver<Acks>) {
    while let Ok(first) = rx.recv() {
        let mut acks = first;
        while let Ok(more) = rx.try_recv() {
            acks.extend(more);
        }
        journal.sync(acks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::manifest::JobState;

    /// What a later run would load for `path`, read while the run goes on.
    fn loaded(dir: &Path, path: &str) -> Option<JobRecord> {
        let records = Manifest::load_readonly(dir).ok().flatten()?;
        records.into_iter().find(|r| r.path == path)
    }

    /// `a.bin.part` holding "abc", and the "done" record that vouches for
    /// it; with the part's path and its final one.
    fn a_complete_part(dir: &Path) -> std::io::Result<(JobRecord, PathBuf, PathBuf)> {
        let (part, to) = (dir.join("a.bin.part"), dir.join("a.bin"));
        std::fs::write(&part, b"abc")?;
        let done = JobRecord {
            state: JobState::Done,
            bytes_done: 3,
            total: Some(3),
            ..JobRecord::pending("a.bin".into(), "http://h/a.bin".into())
        };
        Ok((done, part, to))
    }

    #[tokio::test]
    async fn a_finished_file_gets_its_name_only_once_done_is_on_disk(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let (recorder, task) = Recorder::spawn(Manifest::open(dir.path())?, Siblings::none())?;
        let (done, part, to) = a_complete_part(dir.path())?;
        recorder
            .finish(done, part.clone(), to.clone(), None)
            .await?;
        assert_eq!(std::fs::read(&to)?, b"abc");
        assert!(!part.exists());
        let state = loaded(dir.path(), "a.bin").map(|r| r.state);
        assert_eq!(state, Some(JobState::Done), "the record precedes the name");

        // A rename that fails is reported as such: the record stays done.
        let gone = JobRecord {
            path: "b.bin".into(),
            ..loaded(dir.path(), "a.bin").ok_or("a.bin was recorded")?
        };
        let (part, to) = (dir.path().join("b.bin.part"), dir.path().join("b.bin"));
        let err = recorder.finish(gone, part, to.clone(), None).await.err();
        assert!(matches!(err, Some(FinishError::Rename(_))), "{err:?}");
        assert!(!to.exists());
        let state = loaded(dir.path(), "b.bin").map(|r| r.state);
        assert_eq!(state, Some(JobState::Done));

        drop(recorder);
        assert_eq!(task.join().await?, Vec::<String>::new());
        Ok(())
    }

    #[tokio::test]
    async fn a_slow_disk_s_batch_is_taken_off_the_event_loop_and_lands_the_same(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let manifest = Manifest::open(dir.path())?;
        let journal = JournalSync::new(manifest.journal_handle()?);
        journal.cost.seem_slow();
        let (recorder, task) = Recorder::spawn_with(manifest, Siblings::none(), journal)?;
        let (done, part, to) = a_complete_part(dir.path())?;
        // Unsynced data, as a small file's: the pool syncs it too.
        let data = std::fs::File::open(&part)?;
        recorder
            .finish(done, part.clone(), to.clone(), Some(data))
            .await?;
        assert_eq!(std::fs::read(&to)?, b"abc");
        assert!(!part.exists());
        let state = loaded(dir.path(), "a.bin").map(|r| r.state);
        assert_eq!(state, Some(JobState::Done));
        drop(recorder);
        assert_eq!(task.join().await?, Vec::<String>::new());
        Ok(())
    }

    #[test]
    fn the_actor_syncs_itself_only_while_syncs_are_quick() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let journal = JournalSync::new(std::fs::File::create(dir.path().join("journal.jsonl"))?);
        assert!(journal.cost.quick(), "no sync yet: the first is tried here");
        let (done, answer) = oneshot::channel();
        journal.sync(vec![Ack::Synced(done)]);
        assert!(matches!(answer.blocking_recv(), Ok(Ok(()))));
        journal.cost.seem_slow();
        assert!(
            !journal.cost.quick(),
            "a slow disk's syncs go to the fsync thread"
        );
        journal.into_result()?;
        Ok(())
    }

    #[test]
    fn record_errors_read_as_the_messages_they_replace() {
        let text = |err: RecordError| crate::error::chain(&err);
        assert_eq!(
            text(RecordError::Stopped),
            "the manifest writer has stopped"
        );
        let io = std::io::Error::other("no space left on device");
        assert_eq!(
            text(RecordError::Sync(Arc::new(io))),
            "cannot sync the manifest journal: no space left on device"
        );
        let append = ManifestError::Io {
            op: "append to",
            path: "dl/.haul/journal.jsonl".into(),
            source: std::io::Error::other("no space left on device"),
        };
        let before = crate::error::chain(&append);
        assert_eq!(text(RecordError::Append(Arc::new(append))), before);
    }
}
