//! A list file planned in two passes, never held whole: a list of
//! millions costs a fixed few bytes per URL, not its text and its jobs.
//!
//! Pass 1 ([`check`]) reads the whole file before any request: every line
//! parsed, every output path settled and checked as [`plan_with_duplicates`]
//! checks them, keeping only positions (see [`Check`]); a repeated URL's
//! entry is remembered by offset so that pass 2 drops it too. Pass 2
//! ([`Checked::into_source`]) reads the file again from the start and feeds
//! the engine through a bounded channel, so the engine's window holds the
//! reader back. The file stays open between the passes: replacing it by
//! name changes nothing, and an edit in place is caught (see [`Feed`]).
//!
//! [`plan_with_duplicates`]: super::plan_with_duplicates

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use futures::stream::{self, StreamExt};
use tokio::sync::mpsc;

use super::{entry_path, job, Admit, Check, CheckError, Kept, Lookup};
use crate::engine::{JobSource, JobSpec, WINDOW};
use crate::file_stamp::FileStamp;
use crate::list::{ListEntry, ListError, ListReader, Origin, ReadError};

/// Positions of jobs held in memory (the command line's URLs, planned
/// before the file) have this bit set; the others are file offsets.
const IN_MEMORY: u64 = 1 << 63;

/// Jobs go from the reader thread to the engine in chunks: the engine
/// then takes many per wake-up (each arrival is one trip to the manifest's
/// owner), not one.
const CHUNK: usize = 64;

/// Chunks in flight between the reader thread and the engine, beyond the
/// engine's own window.
const CHANNEL: usize = 4;

/// The reader's buffer: one system call per many lines.
const READ_BUFFER: usize = 64 * 1024;

/// Why a list could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum CheckListError {
    /// The file could not be read (or is not UTF-8).
    #[error(transparent)]
    Read(std::io::Error),
    #[error(transparent)]
    List(ListError),
}

/// A list that passed [`check`]: the command line's jobs, and the file to
/// read again.
pub struct Checked {
    /// The jobs of entries given in memory, planned.
    head: Vec<JobSpec>,
    list: Option<CheckedFile>,
    /// Entries seen, repeated ones included.
    entries: usize,
}

struct CheckedFile {
    file: File,
    source: String,
    /// Where the entries pass 1 dropped as repeated URLs start.
    dropped: HashSet<u64>,
    /// Jobs the file holds, once repeated URLs are dropped.
    jobs: usize,
    /// What the file looked like when pass 1 read it.
    stamp: FileStamp,
}

/// Pass 1: plans `head` (entries in memory, first) and then every entry of
/// `file` (named `source` in errors), calling `kept` with each job kept, in
/// order. The errors are those of [`super::plan_with_duplicates`] over the
/// whole list, and the same one wins: a read error, else the first parse
/// error, else the first planning error.
pub fn check(
    head: Vec<ListEntry>,
    file: Option<(File, String)>,
    mut kept: impl FnMut(&JobSpec),
) -> Result<Checked, CheckListError> {
    let mut check = Check::default();
    let mut jobs: Vec<JobSpec> = Vec::new();
    // Planning stops at its first error, but the file is still parsed
    // to the end: a bad line after it is reported instead.
    let mut planning: Result<(), ListError> = Ok(());
    let mut entries = head.len();
    for entry in head {
        if planning.is_err() {
            break;
        }
        let at = IN_MEMORY | jobs.len() as u64;
        let mut lookup = FileLookup {
            head: &jobs,
            file: None,
        };
        match admit(&mut check, at, entry, &mut lookup) {
            Ok(Some(job)) => {
                kept(&job);
                jobs.push(job);
            }
            Ok(None) => {}
            Err(CheckError::List(err)) => planning = Err(err),
            Err(CheckError::Lookup(err)) => return Err(CheckListError::Read(err)),
        }
    }
    let Some((mut file, source)) = file else {
        planning.map_err(CheckListError::List)?;
        return Ok(Checked {
            head: jobs,
            list: None,
            entries,
        });
    };
    file.rewind().map_err(CheckListError::Read)?;
    let stamp = FileStamp::of(&file).map_err(CheckListError::Read)?;
    let mut dropped = HashSet::new();
    let mut listed = 0;
    let mut reader = ListReader::new(BufReader::with_capacity(READ_BUFFER, &file), &source, 0);
    while let Some(item) = reader.next() {
        let (at, entry) = match item {
            Ok(entry) => entry,
            Err(ReadError::Io(err)) => return Err(CheckListError::Read(err)),
            Err(ReadError::List(err)) => {
                reader.read_to_end().map_err(CheckListError::Read)?;
                return Err(CheckListError::List(err));
            }
        };
        entries += 1;
        if planning.is_err() {
            continue;
        }
        let mut lookup = FileLookup {
            head: &jobs,
            file: Some((&file, &source)),
        };
        match admit(&mut check, at, entry, &mut lookup) {
            Ok(Some(job)) => {
                kept(&job);
                listed += 1;
            }
            Ok(None) => {
                dropped.insert(at);
            }
            Err(CheckError::List(err)) => planning = Err(err),
            Err(CheckError::Lookup(err)) => return Err(CheckListError::Read(err)),
        }
    }
    planning.map_err(CheckListError::List)?;
    Ok(Checked {
        head: jobs,
        list: Some(CheckedFile {
            file,
            source,
            dropped,
            jobs: listed,
            stamp,
        }),
        entries,
    })
}

/// One entry through the check: its job if kept, None if a repeated URL.
fn admit<L: Lookup>(
    check: &mut Check,
    at: u64,
    entry: ListEntry,
    lookup: &mut L,
) -> Result<Option<JobSpec>, CheckError<L::Error>> {
    let path = entry_path(&entry).map_err(CheckError::List)?;
    match check.admit(at, &entry.url, &path, &entry.origin, lookup)? {
        Admit::Keep => Ok(Some(job(entry, path))),
        Admit::Duplicate { .. } => Ok(None),
    }
}

/// Finds kept jobs again: in memory, or by reading the entry at its
/// offset in the file.
struct FileLookup<'a> {
    head: &'a [JobSpec],
    file: Option<(&'a File, &'a str)>,
}

impl FileLookup<'_> {
    fn file(&self) -> std::io::Result<(&File, &str)> {
        self.file.ok_or_else(|| changed("no list file"))
    }
}

impl Lookup for FileLookup<'_> {
    type Error = std::io::Error;

    fn kept(&mut self, at: u64) -> std::io::Result<Kept> {
        if at & IN_MEMORY != 0 {
            let job = &self.head[(at & !IN_MEMORY) as usize];
            return Ok(Kept {
                url: job.url.clone(),
                path: job.path.clone(),
            });
        }
        let (file, source) = self.file()?;
        let entry = entry_at(file, source, at)?;
        let path = entry_path(&entry).map_err(|err| changed(&err.to_string()))?;
        Ok(Kept {
            url: entry.url,
            path,
        })
    }

    fn origin(&mut self, at: u64) -> std::io::Result<Origin> {
        if at & IN_MEMORY != 0 {
            return Ok(self.head[(at & !IN_MEMORY) as usize].origin.clone());
        }
        let (file, source) = self.file()?;
        Ok(Origin {
            source: Arc::from(source),
            line: line_at(file, at)?,
        })
    }
}

/// The entry whose URL line starts at byte `at` of `file`.
fn entry_at(file: &File, source: &str, at: u64) -> std::io::Result<ListEntry> {
    let tail = BufReader::with_capacity(1024, ReadAt { file, at });
    match ListReader::new(tail, source, at).next() {
        Some(Ok((_, entry))) => Ok(entry),
        Some(Err(ReadError::Io(err))) => Err(err),
        Some(Err(ReadError::List(err))) => Err(changed(&err.to_string())),
        None => Err(changed("an entry is gone")),
    }
}

/// The 1-based line that starts at byte `at`: counted, since only an
/// error needs it.
fn line_at(file: &File, at: u64) -> std::io::Result<usize> {
    let mut reader = ReadAt { file, at: 0 }.take(at);
    let mut buf = vec![0u8; READ_BUFFER];
    let mut lines = 1;
    loop {
        let read = reader.read(&mut buf)?;
        if read == 0 {
            return Ok(lines);
        }
        lines += buf[..read].iter().filter(|&&byte| byte == b'\n').count();
    }
}

/// Reads a file from an offset without moving its cursor (pass 1 reads
/// on through it meanwhile).
struct ReadAt<'a> {
    file: &'a File,
    at: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.file.read_at(buf, self.at)?;
        self.at += read as u64;
        Ok(read)
    }
}

fn changed(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("the list changed while it was read ({what})"),
    )
}

impl Checked {
    /// Whether the list had no entry at all (only blanks and comments).
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Pass 2 as a plain iterator over every job kept, in list order, for
    /// a reader that runs no engine (`haul verify -i`). Its last item is an
    /// error if the file was not what pass 1 checked.
    pub fn into_jobs(self) -> impl Iterator<Item = std::io::Result<JobSpec>> {
        let head = self.head.into_iter().map(Ok);
        let mut rest = self.list.map(Pass2::new);
        let mut ended = false;
        let rest = std::iter::from_fn(move || {
            let reader = match rest.as_mut()? {
                Ok(reader) => reader,
                Err(_) => return rest.take().and_then(Result::err).map(Err),
            };
            match reader.next() {
                Some(job) => Some(job),
                None if ended => None,
                None => {
                    ended = true;
                    reader.end().err().map(Err)
                }
            }
        });
        head.chain(rest)
    }

    /// Pass 2: every job kept, in list order, through `adjust` (which may
    /// drop a job: `--shard`), as the engine's source; `expected` is how
    /// many `adjust` lets through. The first jobs (up to the engine's
    /// window) are read here, so a short list reaches the engine whole,
    /// announced before any work as it always was; a reader thread feeds
    /// the rest. [`Feed::finish`] tells, after the run, whether the file
    /// was read to its end as pass 1 read it.
    pub fn into_source(
        self,
        mut adjust: impl FnMut(JobSpec) -> Option<JobSpec> + Send + 'static,
        expected: usize,
    ) -> (JobSource, Feed) {
        let mut given: Vec<JobSpec> = self.head.into_iter().filter_map(&mut adjust).collect();
        let Some(list) = self.list else {
            let feed = Feed {
                state: FeedState::Done(Ok(())),
                list: String::new(),
            };
            return (JobSource::from(given), feed);
        };
        let name = list.source.clone();
        let done = |given: Vec<JobSpec>, result| {
            let feed = Feed {
                state: FeedState::Done(result),
                list: name.clone(),
            };
            (JobSource::from(given), feed)
        };
        let mut reader = match Pass2::new(list) {
            Ok(reader) => reader,
            Err(err) => return done(given, Err(err)),
        };
        while given.len() < WINDOW {
            match reader.next() {
                Some(Ok(job)) => given.extend(adjust(job)),
                Some(Err(err)) => return done(given, Err(err)),
                None => {
                    let end = reader.end();
                    return done(given, end);
                }
            }
        }
        let (tx, rx) = mpsc::channel::<Vec<JobSpec>>(CHANNEL);
        let thread = std::thread::Builder::new()
            .name("haul-list".into())
            .spawn(move || {
                let mut chunk = Vec::with_capacity(CHUNK);
                let result = loop {
                    match reader.next() {
                        Some(Ok(job)) => chunk.extend(adjust(job)),
                        Some(Err(err)) => break Err(err),
                        None => break reader.end(),
                    }
                    if chunk.len() == CHUNK && tx.blocking_send(std::mem::take(&mut chunk)).is_err()
                    {
                        // The run is over (cancelled): nothing more is wanted.
                        return Ok(());
                    }
                };
                // The jobs read before an error are good ones: they run.
                if !chunk.is_empty() {
                    let _ = tx.blocking_send(chunk);
                }
                result
            });
        let thread = match thread {
            Ok(thread) => thread,
            Err(err) => return done(given, Err(err)),
        };
        let rest = stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (stream::iter(chunk), rx))
        })
        .flatten();
        let feed = Feed {
            state: FeedState::Thread(thread),
            list: name,
        };
        (JobSource::with_head(given, rest, expected), feed)
    }
}

/// The second reading of a list file: its kept jobs, in order.
struct Pass2 {
    reader: ListReader<BufReader<File>>,
    dropped: HashSet<u64>,
    jobs: usize,
    read: usize,
    stamp: FileStamp,
    failed: bool,
}

impl Pass2 {
    fn new(list: CheckedFile) -> std::io::Result<Pass2> {
        let mut file = list.file;
        file.rewind()?;
        Ok(Pass2 {
            reader: ListReader::new(BufReader::with_capacity(READ_BUFFER, file), &list.source, 0),
            dropped: list.dropped,
            jobs: list.jobs,
            read: 0,
            stamp: list.stamp,
            failed: false,
        })
    }

    /// After the last job: was the file what pass 1 checked?
    fn end(&self) -> std::io::Result<()> {
        if self.read != self.jobs {
            return Err(changed(&format!(
                "{} jobs read, {} checked",
                self.read, self.jobs
            )));
        }
        let now = FileStamp::of(self.reader.get_ref().get_ref())?;
        if now != self.stamp {
            return Err(changed("its size or modification time differs"));
        }
        Ok(())
    }
}

impl Iterator for Pass2 {
    type Item = std::io::Result<JobSpec>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let job = loop {
            let (at, entry) = match self.reader.next()? {
                Ok(entry) => entry,
                Err(ReadError::Io(err)) => break Err(err),
                Err(ReadError::List(err)) => break Err(changed(&err.to_string())),
            };
            if self.dropped.contains(&at) {
                continue;
            }
            // An entry pass 1 never saw is never run unchecked.
            if self.read == self.jobs {
                break Err(changed("it has more entries than were checked"));
            }
            break match entry_path(&entry) {
                Ok(path) => Ok(job(entry, path)),
                Err(err) => Err(changed(&err.to_string())),
            };
        };
        match job {
            Ok(_) => self.read += 1,
            Err(_) => self.failed = true,
        }
        Some(job)
    }
}

/// How the second reading of a list ended, known once the run is over.
pub struct Feed {
    state: FeedState,
    /// The list's name in errors.
    list: String,
}

/// The second reading of a list failed: jobs after that point never ran.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {list} again to its end: the jobs after that point did not run")]
pub struct FeedError {
    list: String,
    #[source]
    source: std::io::Error,
}

enum FeedState {
    /// Read before the run started.
    Done(std::io::Result<()>),
    Thread(std::thread::JoinHandle<std::io::Result<()>>),
}

impl Feed {
    /// Ok if every job of the list went to the engine (or the run stopped
    /// taking them); an error if the file could not be read again as
    /// pass 1 read it: the run then missed jobs and must not pass for
    /// complete. Call it after the run: the thread ends once the engine
    /// drops its source.
    pub fn finish(self) -> Result<(), FeedError> {
        let result = match self.state {
            FeedState::Done(result) => result,
            FeedState::Thread(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the list reader crashed"))),
        };
        result.map_err(|source| FeedError {
            list: self.list,
            source,
        })
    }
}
