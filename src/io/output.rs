//! The output file's format, told by its extension, and one writer for
//! every format, so that the pipeline writes PLY, LAS, LAZ or text alike.

use super::las_write::LasWriter;
use super::ply_write::PlyVertexWriter;
use super::scalar::size_of_kind;
use super::text_write::TextWriter;
use super::{CHUNK, PIECE_BYTES, PlyEncoding};
use crate::cloud::{Attribute, ScalarKind};
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::ops::Range;
use std::path::Path;

/// The formats mlsproj writes, by the output's extension (any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// `.ply`, in the configured encoding.
    Ply,
    /// `.las`, or `.laz` when `compressed`.
    Las {
        /// LAZ rather than LAS.
        compressed: bool,
    },
    /// `.xyz` and `.txt` (values separated by spaces), `.csv` (commas).
    Text {
        /// The character between values.
        separator: char,
    },
}

impl OutputFormat {
    /// The format of an output path; an extension mlsproj does not write
    /// is refused, so that a run can check it before any work.
    pub fn from_path(path: &Path) -> Result<Self> {
        let extension = path
            .extension()
            .and_then(|extension| extension.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("ply") => Ok(OutputFormat::Ply),
            Some("las") => Ok(OutputFormat::Las { compressed: false }),
            Some("laz") => Ok(OutputFormat::Las { compressed: true }),
            Some("xyz" | "txt") => Ok(OutputFormat::Text { separator: ' ' }),
            Some("csv") => Ok(OutputFormat::Text { separator: ',' }),
            _ => Err(Error::Invalid(format!(
                "{}: unknown output format: expected .ply, .las, .laz, .xyz, .txt or .csv",
                path.display()
            ))),
        }
    }
}

/// Streams an output file in the format of its extension; every variant
/// writes atomically (no file unless finished with the declared count).
#[derive(Debug)]
pub enum OutputWriter {
    /// A PLY file.
    Ply(PlyVertexWriter),
    /// A LAS or LAZ file.
    Las(Box<LasWriter>),
    /// A text file.
    Text(TextWriter),
}

impl OutputWriter {
    /// Starts writing `count` points with the columns of `schema` to
    /// `path`, in the format of its extension; `encoding` applies to PLY
    /// only, `comments` (provenance) go into the header of each format.
    pub fn create(
        path: &Path,
        schema: &[(String, ScalarKind)],
        count: usize,
        encoding: PlyEncoding,
        comments: &[String],
    ) -> Result<Self> {
        Ok(match OutputFormat::from_path(path)? {
            OutputFormat::Ply => OutputWriter::Ply(PlyVertexWriter::create(
                path, schema, count, encoding, comments,
            )?),
            OutputFormat::Las { compressed } => OutputWriter::Las(Box::new(LasWriter::create(
                path, schema, count, compressed, comments,
            )?)),
            OutputFormat::Text { separator } => OutputWriter::Text(TextWriter::create(
                path, schema, count, separator, comments,
            )?),
        })
    }

    /// Appends the rows of `columns`, which must follow the schema (same
    /// names and types, in order) and have equal lengths.
    pub fn write_chunk(&mut self, columns: &[Attribute]) -> Result<()> {
        self.write_rows(Rows::Columns(columns))
    }

    /// Appends `rows`: PLY and text files build (for [`Rows::Built`]) and
    /// encode them in pieces on every core; a LAS writer, whose compressed
    /// chunks and header bounds follow the points in order, takes them a
    /// read chunk ([`CHUNK`]) at a time (a pass of up to 2²⁴ rows built
    /// whole would hold all its columns at once).
    pub fn write_rows(&mut self, rows: Rows<'_>) -> Result<()> {
        match self {
            OutputWriter::Ply(writer) => writer.write_rows(rows),
            OutputWriter::Las(writer) => match rows {
                Rows::Columns(columns) => writer.write_chunk(columns),
                Rows::Built { count, build } => super::ranges(count, CHUNK)
                    .try_for_each(|rows| writer.write_chunk(&build(rows))),
            },
            OutputWriter::Text(writer) => writer.write_rows(rows),
        }
    }

    /// Completes the file and renames it over its target.
    pub fn finish(self) -> Result<()> {
        match self {
            OutputWriter::Ply(writer) => writer.finish(),
            OutputWriter::Las(writer) => writer.finish(),
            OutputWriter::Text(writer) => writer.finish(),
        }
    }
}

/// Rows to append to an output.
#[derive(Clone, Copy)]
pub enum Rows<'a> {
    /// Columns following the writer's schema, of equal lengths.
    Columns(&'a [Attribute]),
    /// `count` rows whose columns `build` makes for any range of `0..count`:
    /// the writer builds each piece just before encoding it, while it is in
    /// cache, and holds no columns for the whole chunk.
    Built {
        /// The number of rows.
        count: usize,
        /// The columns of a range of the rows, following the schema.
        build: &'a (dyn Fn(Range<usize>) -> Vec<Attribute> + Sync),
    },
}

/// Turns rows `range` of columns (which follow the schema) into the bytes
/// of a file's body, independently of the other rows: how PLY and text
/// bodies are encoded, so that pieces of a chunk are encoded in parallel.
pub(crate) type Encode<'a> = &'a (dyn Fn(&[Attribute], Range<usize>, &mut Vec<u8>) + Sync);

/// Pieces encoded together while the pieces before them are written: each
/// core has several, and the two windows in memory take 8 MiB of binary
/// records (text lines, two to three times longer, as much more).
const WINDOW: usize = 16;

/// The rows a writer has written against the count its header declared,
/// and whether a failed write left its file unknown: the one chunk rule of
/// every writer (PLY, LAS/LAZ, text).
#[derive(Debug)]
pub(crate) struct RowLedger {
    schema: Vec<(String, ScalarKind)>,
    count: usize,
    written: usize,
    broken: bool,
}

impl RowLedger {
    /// A writer of `count` rows of `schema`, none written yet.
    pub(crate) fn new(schema: &[(String, ScalarKind)], count: usize) -> Self {
        RowLedger {
            schema: schema.to_vec(),
            count,
            written: 0,
            broken: false,
        }
    }

    /// The rows of a chunk about to be written to `path`, checked against
    /// the schema and the declared count; refused after a failed write.
    pub(crate) fn admit(&self, path: &Path, columns: &[Attribute]) -> Result<usize> {
        self.check_usable(path)?;
        let rows = check_columns(path, &self.schema, columns)?;
        self.check_room(path, rows)?;
        Ok(rows)
    }

    /// Fails after a failed write: the file's contents are then unknown.
    fn check_usable(&self, path: &Path) -> Result<()> {
        if self.broken {
            return Err(refusal(path, "writing stopped at an earlier error"));
        }
        Ok(())
    }

    /// Fails unless `rows` more rows fit in the declared count.
    fn check_room(&self, path: &Path, rows: usize) -> Result<()> {
        if rows > self.count - self.written {
            return Err(refusal(
                path,
                format!(
                    "{} points given, {} declared",
                    self.written + rows,
                    self.count
                ),
            ));
        }
        Ok(())
    }

    /// Writes `rows` to `path` through `write`, encoded by `encode`: pieces
    /// of about [`PIECE_BYTES`] are built and encoded in parallel, a
    /// window of them at a time, and written in order while the next
    /// window is encoded, so that a chunk's body costs about its encoding
    /// divided among the cores. The rows are checked as by
    /// [`RowLedger::admit`] and recorded as by [`RowLedger::record`].
    pub(crate) fn write_encoded(
        &mut self,
        path: &Path,
        rows: Rows<'_>,
        encode: Encode<'_>,
        write: impl FnMut(&[u8]) -> Result<()> + Send,
    ) -> Result<()> {
        let count = match rows {
            Rows::Columns(columns) => self.admit(path, columns)?,
            Rows::Built { count, .. } => {
                self.check_usable(path)?;
                self.check_room(path, count)?;
                count
            }
        };
        let piece = |range: Range<usize>, bytes: &mut Vec<u8>| match rows {
            Rows::Columns(columns) => {
                encode(columns, range, bytes);
                Ok(())
            }
            Rows::Built { build, .. } => {
                let columns = build(range.clone());
                let built = check_columns(path, &self.schema, &columns)?;
                if built != range.len() {
                    return Err(refusal(
                        path,
                        format!("{built} rows built for the {} asked", range.len()),
                    ));
                }
                encode(&columns, 0..built, bytes);
                Ok(())
            }
        };
        let record_bytes: usize = self
            .schema
            .iter()
            .map(|(_, kind)| size_of_kind(*kind))
            .sum();
        let piece_rows = (PIECE_BYTES / record_bytes.max(1)).max(1);
        let outcome = write_in_order(count, piece_rows, piece, write);
        self.record(count, outcome)
    }

    /// Records the outcome of writing `rows` admitted rows: counted when it
    /// succeeded, the writer broken when it failed.
    pub(crate) fn record(&mut self, rows: usize, outcome: Result<()>) -> Result<()> {
        self.broken = outcome.is_err();
        outcome?;
        self.written += rows;
        Ok(())
    }

    /// Fails unless exactly the declared rows (`unit`: "points",
    /// "vertices") were written to `path`, with no failed write.
    pub(crate) fn check_complete(&self, path: &Path, unit: &str) -> Result<()> {
        if self.broken {
            return Err(refusal(path, "writing stopped at an earlier error"));
        }
        if self.written != self.count {
            return Err(refusal(
                path,
                format!(
                    "{} {unit} written, but {} were declared",
                    self.written, self.count
                ),
            ));
        }
        Ok(())
    }
}

/// A refused request to write `path`.
pub(crate) fn refusal(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{}: {message}", path.display()))
}

/// Encodes rows `0..count` in pieces of `piece_rows` with `encode`, a
/// window of pieces in parallel, and hands the pieces' bytes to `write` in
/// order, the window before while the next is encoded. The buffers are
/// reused from window to window: no allocation per row, and memory for two
/// windows whatever the count.
fn write_in_order(
    count: usize,
    piece_rows: usize,
    encode: impl Fn(Range<usize>, &mut Vec<u8>) -> Result<()> + Sync,
    mut write: impl FnMut(&[u8]) -> Result<()> + Send,
) -> Result<()> {
    let pieces: Vec<Range<usize>> = super::ranges(count, piece_rows).collect();
    let mut encoding = vec![Vec::new(); WINDOW.min(pieces.len())];
    let mut encoded = encoding.clone();
    let mut ready = 0;
    for window in pieces.chunks(WINDOW) {
        let (written, done) = rayon::join(
            || encoded[..ready].iter().try_for_each(|bytes| write(bytes)),
            || {
                encoding
                    .par_iter_mut()
                    .zip(window)
                    .try_for_each(|(bytes, range)| {
                        bytes.clear();
                        encode(range.clone(), bytes)
                    })
            },
        );
        written?;
        done?;
        std::mem::swap(&mut encoding, &mut encoded);
        ready = window.len();
    }
    encoded[..ready].iter().try_for_each(|bytes| write(bytes))
}

/// Checks columns against a writer's schema; returns their rows.
fn check_columns(
    path: &Path,
    schema: &[(String, ScalarKind)],
    columns: &[Attribute],
) -> Result<usize> {
    let invalid = |message: String| refusal(path, message);
    if columns.len() != schema.len() {
        return Err(invalid(format!(
            "{} columns given for {} properties",
            columns.len(),
            schema.len()
        )));
    }
    let rows = columns.first().map_or(0, |column| column.values.len());
    for (column, (name, kind)) in columns.iter().zip(schema) {
        if column.name != *name || column.values.kind() != *kind {
            return Err(invalid(format!(
                "column '{}' ({:?}) given for property '{name}' ({kind:?})",
                column.name,
                column.values.kind()
            )));
        }
        if column.values.len() != rows {
            return Err(invalid(format!(
                "column '{}' has {} values, the first {rows}",
                column.name,
                column.values.len()
            )));
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Column;

    #[test]
    fn pieces_are_written_in_order_across_windows() {
        // 143 pieces: several windows, the last piece short.
        let mut written = Vec::new();
        write_in_order(
            1000,
            7,
            |range, bytes| {
                bytes.extend(range.map(|row| row as u8));
                Ok(())
            },
            |bytes| {
                written.extend_from_slice(bytes);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(written, (0..1000).map(|row| row as u8).collect::<Vec<_>>());
    }

    #[test]
    fn built_rows_are_checked_against_the_schema_and_the_count() {
        let path = Path::new("out.ply");
        let schema = [("x".to_string(), ScalarKind::U8)];
        let encode: Encode<'_> = &|_, _, _| {};
        let write = |_: &[u8]| Ok(());
        let write_built = |ledger: &mut RowLedger, count, values: &[u8]| {
            let build = |_| {
                vec![Attribute {
                    name: "x".to_string(),
                    values: Column::U8(values.to_vec()),
                }]
            };
            ledger.write_encoded(
                path,
                Rows::Built {
                    count,
                    build: &build,
                },
                encode,
                write,
            )
        };
        let mut ledger = RowLedger::new(&schema, 2);
        let short = write_built(&mut ledger, 2, &[1]).unwrap_err();
        assert!(
            short.to_string().contains("1 rows built for the 2 asked"),
            "{short}"
        );
        assert!(write_built(&mut ledger, 2, &[1, 2]).is_err(), "broken");
        let mut ledger = RowLedger::new(&schema, 2);
        assert!(write_built(&mut ledger, 3, &[1, 2, 3]).is_err(), "too many");
        write_built(&mut ledger, 2, &[1, 2]).unwrap();
        ledger.check_complete(path, "points").unwrap();
    }
}
