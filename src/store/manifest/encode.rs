//! A record as the one JSON line the journal keeps, written as serde's
//! derived `Serialize` writes it, byte for byte (a property test holds the
//! two together), with the field names as literals: serde escapes each name
//! again for every record, and on many small files that was 2 % of haul's
//! instructions (two records a file, twelve names each).

use serde::Serialize;

use super::JobRecord;

/// Appends `rec` to `out` as one JSON object, without a newline.
pub(super) fn record(rec: &JobRecord, out: &mut Vec<u8>) -> serde_json::Result<()> {
    field(out, b"{\"path\":", &rec.path)?;
    field(out, b",\"url\":", &rec.url)?;
    field(out, b",\"state\":", &rec.state)?;
    field(out, b",\"bytes_done\":", &rec.bytes_done)?;
    field(out, b",\"total\":", &rec.total)?;
    field(out, b",\"etag\":", &rec.etag)?;
    field(out, b",\"last_modified\":", &rec.last_modified)?;
    field(out, b",\"attempts\":", &rec.attempts)?;
    field(out, b",\"last_error\":", &rec.last_error)?;
    field(out, b",\"sha256\":", &rec.sha256)?;
    field(out, b",\"boot_id\":", &rec.boot_id)?;
    if let Some(segments) = &rec.segments {
        field(out, b",\"segments\":", segments)?;
    }
    out.push(b'}');
    Ok(())
}

/// `name` (with its quotes, colon and any comma before it), then `value`.
fn field(out: &mut Vec<u8>, name: &[u8], value: &impl Serialize) -> serde_json::Result<()> {
    out.extend_from_slice(name);
    serde_json::to_writer(&mut *out, value)
}
