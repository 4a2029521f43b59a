//! The manifest's single owner: an actor on its own thread that appends the
//! records workers send and syncs them in groups.
//!
//! Workers sync their `.part` data before they send a record, so the
//! manifest never claims bytes that are not on disk. One fsync covers every
//! record that arrived while the last one ran (group commit), which keeps the
//! cost per update flat however many jobs run.

use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use super::EngineError;
use crate::store::manifest::{JobRecord, Manifest, ManifestError};

enum Msg {
    Save(JobRecord),
    SaveSynced(JobRecord, oneshot::Sender<Result<(), String>>),
}

/// A cheap handle workers use to persist their job's record.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Msg>,
}

/// Joins the actor once every [`Recorder`] is dropped; the manifest is
/// compacted and closed by then.
pub struct RecorderThread(JoinHandle<Result<(), ManifestError>>);

impl Recorder {
    /// Starts the actor; it owns `manifest` until every handle is dropped.
    pub fn spawn(manifest: Manifest) -> std::io::Result<(Recorder, RecorderThread)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = std::thread::Builder::new()
            .name("haul-manifest".into())
            .spawn(move || actor(manifest, rx))?;
        Ok((Recorder { tx }, RecorderThread(handle)))
    }

    /// Records a checkpoint; durable at the actor's next sync, moments later.
    pub fn save(&self, rec: JobRecord) {
        // A closed channel means the actor already failed; its error is
        // reported when the run ends.
        let _ = self.tx.send(Msg::Save(rec));
    }

    /// Records a state change and waits until it is on disk.
    pub async fn save_synced(&self, rec: JobRecord) -> Result<(), String> {
        let (done_tx, done_rx) = oneshot::channel();
        self.tx
            .send(Msg::SaveSynced(rec, done_tx))
            .map_err(|_| "the manifest writer has stopped".to_string())?;
        done_rx
            .await
            .map_err(|_| "the manifest writer has stopped".to_string())?
    }
}

impl RecorderThread {
    /// Waits for the actor to compact and close the manifest.
    pub async fn join(self) -> Result<(), EngineError> {
        let handle = self.0;
        match tokio::task::spawn_blocking(move || handle.join()).await {
            Ok(Ok(result)) => result.map_err(EngineError::Manifest),
            _ => Err(EngineError::WriterPanicked),
        }
    }
}

fn actor(
    mut manifest: Manifest,
    mut rx: mpsc::UnboundedReceiver<Msg>,
) -> Result<(), ManifestError> {
    let mut failure: Option<String> = None;
    while let Some(first) = rx.blocking_recv() {
        let mut waiting = Vec::new();
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let mut result = Ok(());
        for msg in batch {
            let rec = match msg {
                Msg::Save(rec) => rec,
                Msg::SaveSynced(rec, done) => {
                    waiting.push(done);
                    rec
                }
            };
            if result.is_ok() {
                result = manifest.update(rec);
            }
        }
        if result.is_ok() {
            result = manifest.sync();
        }
        if let Err(err) = &result {
            failure.get_or_insert_with(|| crate::error::chain(err));
        }
        for done in waiting {
            let _ = done.send(match &failure {
                Some(msg) => Err(msg.clone()),
                None => Ok(()),
            });
        }
        // Once a write failed the journal may be torn mid-line; stop writing
        // and let close() report it rather than append after garbage.
        if let Err(err) = result {
            drain_with_error(&mut rx, failure.as_deref().unwrap_or(""));
            return Err(err);
        }
    }
    manifest.close()
}

fn drain_with_error(rx: &mut mpsc::UnboundedReceiver<Msg>, msg: &str) {
    while let Some(m) = rx.blocking_recv() {
        if let Msg::SaveSynced(_, done) = m {
            let _ = done.send(Err(msg.to_string()));
        }
    }
}
