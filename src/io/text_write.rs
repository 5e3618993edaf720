//! Writing text point files (`.xyz`, `.txt`, `.csv`): comment lines, a
//! header line naming the columns, then one point per line, streamed chunk
//! by chunk and committed atomically like PLY.

use super::atomic::AtomicFile;
use super::output::{RowLedger, Rows};
use crate::cloud::with_column;
use crate::cloud::{Attribute, ScalarKind};
use crate::error::{Error, Result};
use std::fmt::Write as _;
use std::io::Write as _;
use std::ops::Range;
use std::path::Path;

/// Streams a text point file. Floats are written in their shortest form
/// that reads back to the same value, so a round trip is exact.
#[derive(Debug)]
pub struct TextWriter {
    file: AtomicFile,
    rows: RowLedger,
    separator: char,
}

/// How [`encode_lines`] writes a value.
#[derive(Debug, Clone, Copy)]
pub(super) enum ValueForm {
    /// `Display`: a float equal to an integer written without its point.
    Plain,
    /// `Debug`: a float always with its decimal point (ascii PLY, whose
    /// readers may take `1` for an integer).
    Pointed,
}

/// Appends rows `rows` of `columns` to `bytes` as lines of values, each
/// written in `form`, separated by `separator`: a text file's lines and an
/// ascii PLY's.
pub(super) fn encode_lines(
    columns: &[Attribute],
    rows: Range<usize>,
    separator: char,
    form: ValueForm,
    bytes: &mut Vec<u8>,
) {
    let mut separator_bytes = [0; 4];
    let separator = separator.encode_utf8(&mut separator_bytes).as_bytes();
    for row in rows {
        for (index, column) in columns.iter().enumerate() {
            if index > 0 {
                bytes.extend_from_slice(separator);
            }
            // Writing into a `Vec` cannot fail.
            let _ = with_column!(&column.values, values => match form {
                ValueForm::Plain => write!(bytes, "{}", values[row]),
                ValueForm::Pointed => write!(bytes, "{:?}", values[row]),
            });
        }
        bytes.push(b'\n');
    }
}

impl TextWriter {
    /// Starts writing `count` points with the columns of `schema` to
    /// `path`, values separated by `separator`; each comment becomes a
    /// line `# comment` before the header line (which the text reader
    /// takes as column names).
    pub fn create(
        path: &Path,
        schema: &[(String, ScalarKind)],
        count: usize,
        separator: char,
        comments: &[String],
    ) -> Result<Self> {
        let invalid = |message: String| Error::Invalid(format!("{}: {message}", path.display()));
        if let Some(comment) = comments.iter().find(|c| c.contains(['\n', '\r'])) {
            return Err(invalid(format!("comment {comment:?} has a line break")));
        }
        for (index, (name, _)) in schema.iter().enumerate() {
            if name.is_empty() || name.contains(|c: char| c == separator || c.is_whitespace()) {
                return Err(invalid(format!("'{name}' cannot name a text column")));
            }
            if schema[..index].iter().any(|(earlier, _)| earlier == name) {
                return Err(invalid(format!("column '{name}' is given twice")));
            }
        }
        let mut head = String::new();
        for comment in comments {
            let _ = writeln!(head, "# {comment}");
        }
        let names: Vec<&str> = schema.iter().map(|(name, _)| name.as_str()).collect();
        head.push_str(&names.join(&separator.to_string()));
        head.push('\n');
        let mut file = AtomicFile::create(path)?;
        file.write_all(head.as_bytes())?;
        Ok(TextWriter {
            file,
            rows: RowLedger::new(schema, count),
            separator,
        })
    }

    /// Appends `rows` (see [`Rows`]), built and encoded in pieces on every
    /// core.
    pub fn write_rows(&mut self, rows: Rows<'_>) -> Result<()> {
        let path = self.file.path().to_path_buf();
        let separator = self.separator;
        let file = &mut self.file;
        self.rows.write_encoded(
            &path,
            rows,
            &|columns, range, bytes| {
                encode_lines(columns, range, separator, ValueForm::Plain, bytes)
            },
            |bytes| file.write_all(bytes),
        )
    }

    /// Renames the file over its target; fails unless exactly the declared
    /// number of points was written.
    pub fn finish(self) -> Result<()> {
        self.rows.check_complete(self.file.path(), "points")?;
        self.file.commit()
    }
}
