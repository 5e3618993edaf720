//! The point records of a LAS or LAZ file as pieces: the chunks of a LAZ
//! file's chunk table (usually 50,000 points each), runs of
//! [`LAS_PIECE`] records of a LAS file. The pieces of a request are
//! decoded in parallel, each one by one thread from start to end: it reads
//! the piece's bytes from the file into its own buffer, decompresses them a
//! block of records at a time into another, and converts each block while
//! it is in cache straight into the piece's rows of the columns handed out
//! ([`PieceRows`]). Only the reads take turns on the file, overlapping the
//! other threads' decoding; no piece is copied again, and
//! memory holds the request's columns and two buffers a thread, whatever
//! the size of the file or of the request (a LAZ chunk is read whole,
//! however large).

use crate::cloud::{Column, PointCloud, with_column};
use crate::error::{Error, Location, Result};
use laz::LazVlr;
use laz::laszip::ChunkTable;
use nalgebra::{Point3, Vector3};
use std::io::{BufReader, Seek, SeekFrom};
use std::mem::MaybeUninit;
use std::path::Path;

/// Records of a LAS file in one piece: enough work to spread over threads
/// in requests of [`crate::io::CHUNK`] points, and a buffer of a few MB a
/// thread.
pub(super) const LAS_PIECE: usize = 50_000;

/// One piece: its points and where its bytes are in the file.
#[derive(Debug, Clone, Copy)]
pub(super) struct Piece {
    pub(super) points: usize,
    /// The offset of its first byte in the file.
    pub(super) offset: u64,
    pub(super) bytes: usize,
}

/// The pieces of an uncompressed file of `total` records of `record_len`
/// bytes from `data_start` on.
pub(super) fn las_pieces(total: usize, record_len: usize, data_start: u64) -> Vec<Piece> {
    (0..total)
        .step_by(LAS_PIECE)
        .map(|first| {
            let points = LAS_PIECE.min(total - first);
            Piece {
                points,
                offset: data_start + (first * record_len) as u64,
                bytes: points * record_len,
            }
        })
        .collect()
}

/// The chunks of a LAZ file whose point data starts at `data_start`, as
/// pieces holding the header's `total` points. A chunk table that holds
/// fewer points than the header declares, or whose chunks reach past the
/// file's `size` bytes, is refused; chunks past the declared points are
/// not read.
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
        pieces.push(Piece {
            points: count,
            offset: first_chunk.saturating_add(bytes),
            bytes: usize::try_from(entry.byte_count).unwrap_or(usize::MAX),
        });
        bytes = bytes.saturating_add(entry.byte_count);
        points += count;
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

/// The pieces from `next` that hold `points` points: at least one, the
/// last one whole.
pub(super) fn holding(pieces: &[Piece], next: usize, points: usize) -> &[Piece] {
    let mut held = 0;
    let end = pieces[next..]
        .iter()
        .position(|piece| {
            held += piece.points;
            held >= points
        })
        .map_or(pieces.len(), |at| next + at + 1);
    &pieces[next..end]
}

/// The first `n` values of `values`, which keep the others.
fn take_front<'a, T>(values: &mut &'a mut [T], n: usize) -> &'a mut [T] {
    let (head, tail) = std::mem::take(values).split_at_mut(n);
    *values = tail;
    head
}

/// `values` cut into consecutive runs of `sizes` values (which they hold).
fn cut<T>(mut values: &mut [T], sizes: impl Iterator<Item = usize>) -> Vec<&mut [T]> {
    sizes.map(|size| take_front(&mut values, size)).collect()
}

/// Writes `values` into `rows`, in order; true when they filled them all.
fn write_rows<T>(rows: &mut [MaybeUninit<T>], values: impl Iterator<Item = T>) -> bool {
    let mut written = 0;
    for (row, value) in rows.iter_mut().zip(values) {
        row.write(value);
        written += 1;
    }
    written == rows.len()
}

/// One piece's rows of the columns of a request, which the thread that
/// decodes the piece writes: the columns' room past their values, written
/// once, by that thread (not first zeroed, which cost a pass over the
/// memory and a second write to it, out of cache).
pub(super) struct PieceRows<'a> {
    positions: &'a mut [MaybeUninit<Point3<f64>>],
    normals: Option<&'a mut [MaybeUninit<Vector3<f32>>]>,
    /// In the order of the cloud's attributes.
    attributes: Vec<AttributeRows<'a>>,
}

impl<'a> PieceRows<'a> {
    /// The first `n` rows, which the piece's next `n` records fill; these
    /// rows keep the others.
    pub(super) fn take_front(&mut self, n: usize) -> PieceRows<'a> {
        PieceRows {
            positions: take_front(&mut self.positions, n),
            normals: self.normals.as_mut().map(|normals| take_front(normals, n)),
            attributes: self
                .attributes
                .iter_mut()
                .map(|rows| rows.take_front(n))
                .collect(),
        }
    }

    /// Writes the positions; true when `values` filled them all.
    pub(super) fn put_positions(&mut self, values: impl Iterator<Item = Point3<f64>>) -> bool {
        write_rows(self.positions, values)
    }

    /// Writes the normals; true when `values` filled them all, or when the
    /// columns have no normals and `values` is `None`.
    pub(super) fn put_normals(
        &mut self,
        values: Option<impl Iterator<Item = Vector3<f32>>>,
    ) -> bool {
        match (&mut self.normals, values) {
            (Some(rows), Some(values)) => write_rows(rows, values),
            (rows, values) => rows.is_none() && values.is_none(),
        }
    }

    /// The rows of each attribute, in the cloud's order.
    pub(super) fn attributes(&mut self) -> &mut [AttributeRows<'a>] {
        &mut self.attributes
    }
}

macro_rules! attribute_rows {
    ($($variant:ident: $type:ty),*) => {
        /// A piece's rows of one attribute column, of the column's type.
        pub(super) enum AttributeRows<'a> {
            $($variant(&'a mut [MaybeUninit<$type>]),)*
        }

        $(impl RowValue for $type {
            fn rows<'r>(rows: &'r mut AttributeRows<'_>) -> Option<&'r mut [MaybeUninit<Self>]> {
                match rows {
                    AttributeRows::$variant(rows) => Some(rows),
                    _ => None,
                }
            }
        })*

        impl<'a> AttributeRows<'a> {
            /// The room of `column` for `points` more values, cut into the
            /// rows of each piece of `pieces`.
            fn cut(column: &'a mut Column, points: usize, pieces: &[Piece]) -> Vec<Self> {
                let sizes = pieces.iter().map(|piece| piece.points);
                match column {
                    $(Column::$variant(values) => cut(&mut values.spare_capacity_mut()[..points], sizes)
                        .into_iter()
                        .map(AttributeRows::$variant)
                        .collect(),)*
                }
            }

            /// The first `n` rows; these rows keep the others.
            fn take_front(&mut self, n: usize) -> Self {
                match self {
                    $(AttributeRows::$variant(rows) => AttributeRows::$variant(take_front(rows, n)),)*
                }
            }

            /// Writes `values`, of the column's own type; true when they
            /// filled the rows (false when they are of another type).
            pub(super) fn put<T: RowValue>(&mut self, values: impl Iterator<Item = T>) -> bool {
                T::rows(self).is_some_and(|rows| write_rows(rows, values))
            }

            /// Writes `values`, each converted to the column's type:
            /// exactly, for every LAS field (`f64` holds them all, and each
            /// column has its field's type); true when they filled the rows.
            pub(super) fn fill(&mut self, values: impl Iterator<Item = f64>) -> bool {
                match self {
                    $(AttributeRows::$variant(rows) => {
                        write_rows(rows, values.map(|value| value as $type))
                    })*
                }
            }
        }
    };
}

/// A type of the values of [`AttributeRows`], so that a field whose type
/// is known is stored as it is, not through `f64`.
pub(super) trait RowValue: Sized {
    /// The rows, when they hold this type.
    fn rows<'r>(rows: &'r mut AttributeRows<'_>) -> Option<&'r mut [MaybeUninit<Self>]>;
}

attribute_rows!(I8: i8, U8: u8, I16: i16, U16: u16, I32: i32, U32: u32, F32: f32, F64: f64);

/// Room in `cloud`'s columns for the points of `pieces` (exactly: more
/// would be memory never used), cut into the rows of each piece. The
/// columns count the rows only once written ([`commit_rows`]).
pub(super) fn piece_rows<'a>(cloud: &'a mut PointCloud, pieces: &[Piece]) -> Vec<PieceRows<'a>> {
    let points = pieces.iter().map(|piece| piece.points).sum();
    cloud.positions.reserve_exact(points);
    if let Some(normals) = &mut cloud.normals {
        normals.reserve_exact(points);
    }
    for attribute in &mut cloud.attributes {
        with_column!(&mut attribute.values, values => values.reserve_exact(points));
    }
    let sizes = || pieces.iter().map(|piece| piece.points);
    let mut normals = cloud
        .normals
        .as_mut()
        .map(|normals| cut(&mut normals.spare_capacity_mut()[..points], sizes()).into_iter());
    let mut attributes: Vec<_> = cloud
        .attributes
        .iter_mut()
        .map(|attribute| AttributeRows::cut(&mut attribute.values, points, pieces).into_iter())
        .collect();
    cut(&mut cloud.positions.spare_capacity_mut()[..points], sizes())
        .into_iter()
        .map(|positions| PieceRows {
            positions,
            normals: normals.as_mut().and_then(Iterator::next),
            attributes: attributes.iter_mut().filter_map(Iterator::next).collect(),
        })
        .collect()
}

/// Counts the `points` rows past the values of each column of `cloud` as
/// values.
///
/// # Safety
/// Every one of those rows was written: [`piece_rows`] gave them all to
/// pieces, and each piece's writes reported every row filled.
pub(super) unsafe fn commit_rows(cloud: &mut PointCloud, points: usize) {
    // SAFETY: the rows are written (the caller's promise) and within the
    // capacity (they were given out of the spare capacity); the values are
    // plain numbers, with no drop.
    unsafe {
        cloud.positions.set_len(cloud.positions.len() + points);
        if let Some(normals) = &mut cloud.normals {
            normals.set_len(normals.len() + points);
        }
        for attribute in &mut cloud.attributes {
            with_column!(&mut attribute.values, values => values.set_len(values.len() + points));
        }
    }
}
