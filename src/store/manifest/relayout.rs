//! A snapshot that is valid JSON but not in the one-record-a-line layout
//! (edited by hand or by `jq`), rewritten into that layout so the index can
//! point into it.

use std::io::{self, BufReader, Read};
use std::path::Path;

use super::lines::{Blob, SnapshotWriter};
use super::{io_err, JobRecord, ManifestError, FORMAT_VERSION};

/// Reads a snapshot that is not in the one-record-a-line layout (edited by
/// hand or by `jq`) as any JSON document, one job at a time, rewriting each
/// record into `out`: a whole-file buffer plus a Vec of every record would
/// triple the memory of a long list. Returns the format version.
struct SnapshotSeed<'a>(&'a mut SnapshotWriter<Vec<u8>>);

impl<'de> serde::de::DeserializeSeed<'de> for SnapshotSeed<'_> {
    type Value = u64;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for SnapshotSeed<'_> {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a haul manifest snapshot")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        let mut version = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "version" => version = Some(map.next_value::<u64>()?),
                // The version comes first: jobs of a format this haul does
                // not know are skipped, so the error names the version
                // rather than calling the file corrupt.
                "jobs" if version == Some(FORMAT_VERSION) => {
                    map.next_value_seed(JobsSeed(&mut *self.0))?
                }
                "jobs" if version.is_none() => {
                    return Err(serde::de::Error::custom(
                        "\"version\" must come before \"jobs\"",
                    ));
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        version.ok_or_else(|| serde::de::Error::missing_field("version"))
    }
}

struct JobsSeed<'a>(&'a mut SnapshotWriter<Vec<u8>>);

impl<'de> serde::de::DeserializeSeed<'de> for JobsSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for JobsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of job records")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut body = Vec::new();
        while let Some(rec) = seq.next_element::<JobRecord>()? {
            body.clear();
            serde_json::to_writer(&mut body, &rec).map_err(serde::de::Error::custom)?;
            self.0.record(&body).map_err(serde::de::Error::custom)?;
        }
        Ok(())
    }
}

/// A [`Blob`] read from the start as a stream.
struct BlobReader<'a> {
    blob: &'a Blob,
    at: u64,
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.blob.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// Rewrites a snapshot in any JSON layout into the one-record-a-line
/// layout, in memory. Errors as loading it did before: corrupt, or of an
/// unknown version.
pub(super) fn relayout_snapshot(blob: &Blob, path: &Path) -> Result<Vec<u8>, ManifestError> {
    let corrupt = |source| ManifestError::CorruptSnapshot {
        path: path.to_path_buf(),
        source,
    };
    let mut out = SnapshotWriter::new(Vec::new()).map_err(io_err("read manifest", path))?;
    let reader = BufReader::with_capacity(64 * 1024, BlobReader { blob, at: 0 });
    let mut de = serde_json::Deserializer::from_reader(reader);
    let version = serde::de::DeserializeSeed::deserialize(SnapshotSeed(&mut out), &mut de)
        .map_err(corrupt)?;
    de.end().map_err(corrupt)?;
    if version != FORMAT_VERSION {
        return Err(ManifestError::UnknownVersion {
            path: path.to_path_buf(),
            found: version,
            expected: FORMAT_VERSION,
        });
    }
    out.finish().map_err(io_err("read manifest", path))
}
