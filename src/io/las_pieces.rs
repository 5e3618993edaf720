//! The point records of a LAS or LAZ file as pieces: the chunks of a LAZ
//! file's chunk table (usually 50,000 points each), runs of
//! [`LAS_PIECE`] records of a LAS file. Pieces are read a group at a time
//! and decoded in parallel, each one decompressed and converted to columns
//! by the thread that decodes it while its records are still in cache, so
//! that reading the group's bytes is the only sequential step.

use crate::error::{Error, Location, Result};
use laz::LazVlr;
use laz::laszip::ChunkTable;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// Records of a LAS file in one piece: enough work to spread over threads
/// in groups of [`crate::io::CHUNK`] points, few enough to stay in cache
/// between being read and converted.
pub(super) const LAS_PIECE: usize = 50_000;

/// Points of a group of pieces read and decoded at once: bounds the
/// memory of the compressed bytes and of the decoded pieces not yet
/// appended, whatever the size of the file or of the request, except that
/// a group holds at least one whole piece (a LAZ chunk larger than this is
/// read whole).
pub(super) const GROUP_POINTS: usize = 1 << 20;

/// One piece: its points and the bytes they take in the file.
#[derive(Debug, Clone, Copy)]
pub(super) struct Piece {
    pub(super) points: usize,
    pub(super) bytes: usize,
}

/// The pieces of an uncompressed file of `total` records of `record_len`
/// bytes.
pub(super) fn las_pieces(total: usize, record_len: usize) -> Vec<Piece> {
    (0..total)
        .step_by(LAS_PIECE)
        .map(|first| {
            let points = LAS_PIECE.min(total - first);
            Piece {
                points,
                bytes: points * record_len,
            }
        })
        .collect()
}

/// The chunks of a LAZ file whose point data starts at `data_start`, as
/// pieces holding the header's `total` points, with `file` left at the
/// first chunk's bytes. A chunk table that holds fewer points than the
/// header declares, or whose chunks reach past the file's `size` bytes, is
/// refused; chunks past the declared points are not read.
pub(super) fn laz_pieces(
    path: &Path,
    file: &mut BufReader<std::fs::File>,
    data_start: u64,
    vlr: &LazVlr,
    total: usize,
    size: u64,
) -> Result<Vec<Piece>> {
    let refuse = |message: String| Error::format(path, Location::File, message);
    file.seek(SeekFrom::Start(data_start))
        .map_err(|error| Error::io(path, error))?;
    // laz-rs panics on some corrupt tables instead of failing.
    let table = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ChunkTable::read_from(&mut *file, vlr)
    }))
    .map_err(|_| refuse("the LAZ chunk table is corrupt".into()))?
    .map_err(|error| refuse(format!("the LAZ chunk table cannot be read: {error}")))?;
    let first_chunk = data_start + ChunkTable::OFFSET_SIZE as u64;
    file.seek(SeekFrom::Start(first_chunk))
        .map_err(|error| Error::io(path, error))?;
    let mut pieces = Vec::new();
    let (mut points, mut bytes) = (0usize, 0u64);
    // A table of fixed-size chunks gives each the chunk size: the last one
    // holds what the header declares beyond the others.
    for entry in table.as_ref() {
        if points == total {
            break;
        }
        let count = usize::try_from(entry.point_count)
            .unwrap_or(usize::MAX)
            .min(total - points);
        bytes = bytes.saturating_add(entry.byte_count);
        points += count;
        pieces.push(Piece {
            points: count,
            bytes: usize::try_from(entry.byte_count).unwrap_or(usize::MAX),
        });
    }
    if points < total {
        return Err(refuse(format!(
            "the LAZ chunk table holds {points} points, the header declares {total}"
        )));
    }
    if first_chunk.saturating_add(bytes) > size {
        return Err(refuse(format!(
            "the LAZ chunks take {bytes} bytes, more than the file holds after its header"
        )));
    }
    Ok(pieces)
}

/// The pieces of the next group, from `next`: at least one, and as many as
/// give up to `points` points (at most [`GROUP_POINTS`]).
pub(super) fn next_group(pieces: &[Piece], next: usize, points: usize) -> &[Piece] {
    let want = points.min(GROUP_POINTS);
    let mut held = 0;
    let end = pieces[next..]
        .iter()
        .position(|piece| {
            held += piece.points;
            held >= want
        })
        .map_or(pieces.len(), |at| next + at + 1);
    &pieces[next..end]
}

/// Reads the bytes of `group` from `file` into `buffer`; false when the
/// file ends first.
pub(super) fn read_group(
    file: &mut impl Read,
    group: &[Piece],
    buffer: &mut Vec<u8>,
) -> std::io::Result<bool> {
    let bytes = group.iter().map(|piece| piece.bytes).sum();
    buffer.resize(bytes, 0);
    match file.read_exact(buffer) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(error) => Err(error),
    }
}

/// `bytes` cut into the bytes of each piece of `group`.
pub(super) fn split<'a>(group: &[Piece], mut bytes: &'a [u8]) -> Vec<&'a [u8]> {
    group
        .iter()
        .map(|piece| {
            let (head, tail) = bytes.split_at(piece.bytes);
            bytes = tail;
            head
        })
        .collect()
}
