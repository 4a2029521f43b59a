//! The one loop that moves an answer's body into the `.part`, for the
//! single stream and every range of a split file: read a chunk ([`Body`]),
//! keep what the answer vouches for, hand it to the [`PartWriter`] (the
//! chunk itself, not a copy), count what the kernel has taken, sync on the
//! writer's clock, pace, and judge the speed.
//!
//! What differs between the two paths is the [`Sink`]'s, and small: a
//! range asks its plan how much is still its own (a thief may have taken
//! its tail) and records each write once it lands, since another run
//! resumes it from those offsets; a stream keeps reading past its end to
//! catch a body longer than announced, and records only what it synced, since it
//! resumes from the whole `.part` or the synced prefix alone.

use std::time::Duration;

use super::body::Body;
use super::limit::Cut;
use super::Stop;
use crate::error::DownloadError;
use crate::store::part::PartWriter;

/// What to do with a chunk that arrived.
pub(super) struct Admit {
    /// How many of its bytes to write.
    pub keep: u64,
    /// They complete what was asked: a flush is due, and a speed verdict
    /// is not worth making on the last chunk.
    pub filled: bool,
    /// Read no further: the rest of the body belongs to someone else.
    pub stop: bool,
    /// Why the rest of it was dropped, if it was.
    pub cut: Option<Cut>,
}

/// Where one body's bytes go: a single stream or one range of a split.
pub(super) trait Sink {
    /// The file offset the next byte goes to.
    fn pos(&self) -> u64;
    /// Judges `len` more bytes arriving at `pos()`.
    fn admit(&mut self, len: u64) -> Admit;
    /// `kept` bytes went to the writer at `pos()`: count them (and report
    /// progress, as the path needs). The writer hashes them once written.
    fn wrote(&mut self, kept: u64);
    /// After each write: the writer's bytes up to [`PartWriter::landed`]
    /// are in the kernel, and may be recorded.
    fn landed(&mut self, _file: &PartWriter) {}
    /// What was asked is filled: every byte must reach the kernel.
    async fn flush(&mut self, file: &mut PartWriter) -> Result<(), DownloadError>;
    /// The checkpoint clock struck: sync, then record what is durable.
    async fn sync(&mut self, file: &mut PartWriter) -> Result<(), DownloadError>;
    /// The error a cut chunk fails the attempt with.
    fn cut(&self, cut: Cut) -> DownloadError;
    fn io_err(&self, source: std::io::Error) -> DownloadError;
    /// The body ended: whether it ended where it should.
    fn ended(&mut self) -> Result<(), DownloadError>;
}

/// Pours `body` into `file` through `sink` until the body ends, the sink
/// has what it asked for, or the attempt fails. Bytes written stay written
/// whatever happens: the caller flushes or syncs them and counts them.
pub(super) async fn pour<S: Sink>(
    sink: &mut S,
    mut body: Body<'_>,
    file: &mut PartWriter,
    checkpoint_every: Duration,
) -> Result<(), Stop> {
    while let Some(chunk) = body.next(sink.pos()).await? {
        let len = chunk.len() as u64;
        let admit = sink.admit(len);
        let kept = chunk.slice(..admit.keep as usize);
        file.write(kept).await.map_err(|e| sink.io_err(e))?;
        sink.wrote(admit.keep);
        sink.landed(file);
        if admit.filled {
            sink.flush(file).await?;
        }
        if file.sync_due(checkpoint_every) {
            sink.sync(file).await?;
        }
        // Every byte that arrived counts, kept or not.
        body.pace(len).await?;
        // Reported even when what was asked is filled: the server is lying,
        // and the retry costs only a backoff (a stream's confirms the end
        // with a 416).
        if let Some(cut) = admit.cut {
            return Err(Stop::Failed(sink.cut(cut)));
        }
        if admit.stop {
            return Ok(());
        }
        // After the write: what did arrive is kept for the next attempt.
        if !admit.filled {
            body.record(admit.keep)?;
        }
    }
    sink.ended().map_err(Stop::Failed)
}
