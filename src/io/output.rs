//! The output file's format, told by its extension, and one writer for
//! every format, so that the pipeline writes PLY, LAS, LAZ or text alike.

use super::PlyEncoding;
use super::las_write::LasWriter;
use super::ply_write::PlyVertexWriter;
use super::text_write::TextWriter;
use crate::cloud::{Attribute, ScalarKind};
use crate::error::{Error, Result};
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
        match self {
            OutputWriter::Ply(writer) => writer.write_chunk(columns),
            OutputWriter::Las(writer) => writer.write_chunk(columns),
            OutputWriter::Text(writer) => writer.write_chunk(columns),
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
        if self.broken {
            return Err(refusal(path, "writing stopped at an earlier error"));
        }
        check_chunk(path, &self.schema, columns, (self.written, self.count))
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

/// Checks a chunk against a writer's schema, and that it fits in the
/// `count` points declared when `written` are already written; returns its
/// rows.
fn check_chunk(
    path: &Path,
    schema: &[(String, ScalarKind)],
    columns: &[Attribute],
    (written, count): (usize, usize),
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
    if rows > count - written {
        return Err(invalid(format!(
            "{} points given, {count} declared",
            written + rows
        )));
    }
    Ok(rows)
}
