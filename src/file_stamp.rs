//! What a file looked like when a first pass read it: its length and
//! modification time. The two-pass readers (a URL list, a sums file) check
//! it again after the second pass, so a file changed in place between them
//! is an error rather than jobs run unchecked.

use std::fs::File;
use std::io;
use std::time::SystemTime;

#[derive(Debug, PartialEq)]
pub struct FileStamp(u64, Option<SystemTime>);

impl FileStamp {
    pub fn of(file: &File) -> io::Result<FileStamp> {
        let meta = file.metadata()?;
        Ok(FileStamp(meta.len(), meta.modified().ok()))
    }
}
