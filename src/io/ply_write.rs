//! Writing PLY files with one `vertex` element, streamed chunk by chunk and
//! committed atomically, so that huge results need not be held in memory and
//! an interrupted run never leaves a plausible-looking partial file.

use super::PlyEncoding;
use super::atomic::AtomicFile;
use super::output::{RowLedger, Rows};
use super::scalar::{ply_type, put_fields, size_of_kind};
use super::text_write::{ValueForm, encode_lines};
use crate::cloud::with_column;
use crate::cloud::{Attribute, ScalarKind};
use crate::error::{Error, Result};
use ply_rs_bw::ply::{DefaultElement, ElementDef, Encoding, Header, PropertyDef, PropertyType};
use ply_rs_bw::writer::Writer;
use std::fs::File;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// True for names the PLY header grammar reads back as one property name.
fn is_property_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Where a writer's bytes go.
#[derive(Debug)]
enum Target {
    /// An output, put in place by [`PlyVertexWriter::finish`].
    Output(AtomicFile),
    /// A file already open, such as an unnamed temporary file that is read
    /// back afterwards; `path` names it in messages.
    Open { file: File, path: PathBuf },
}

impl Target {
    fn path(&self) -> &Path {
        match self {
            Target::Output(file) => file.path(),
            Target::Open { path, .. } => path,
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        match self {
            Target::Output(file) => file.write_all(bytes),
            Target::Open { file, path } => file.write_all(bytes).map_err(|e| Error::io(&*path, e)),
        }
    }
}

/// Streams a PLY file with a single `vertex` element: the header (with the
/// final count) is written at creation, then rows chunk by chunk.
///
/// The file is written beside its target and renamed over it by
/// [`PlyVertexWriter::finish`] only when exactly the declared number of
/// vertices was written; dropping the writer earlier leaves no file. (A
/// writer of a file already open, [`PlyVertexWriter::create_in`], writes
/// into it.)
#[derive(Debug)]
pub struct PlyVertexWriter {
    file: Target,
    rows: RowLedger,
    body: Body,
}

/// How rows are encoded in the body.
#[derive(Debug)]
struct Body {
    encoding: PlyEncoding,
    /// Byte offset of each property in a binary record.
    offsets: Vec<usize>,
    /// Bytes of a binary record.
    stride: usize,
}

impl Body {
    /// Appends rows `rows` of `columns` (which follow the schema) to
    /// `bytes`: binary records, each property at its offset, or text
    /// lines, values separated by spaces, floats in their shortest exact
    /// form so that reading them back gives the same bits.
    fn encode(&self, columns: &[Attribute], rows: Range<usize>, bytes: &mut Vec<u8>) {
        match self.encoding {
            PlyEncoding::BinaryLittleEndian => {
                let start = bytes.len();
                // Every byte is overwritten: the properties tile the record.
                bytes.resize(start + rows.len() * self.stride, 0);
                for (column, &offset) in columns.iter().zip(&self.offsets) {
                    with_column!(&column.values, values => {
                        put_fields(&mut bytes[start..], self.stride, offset, &values[rows.clone()])
                    });
                }
            }
            PlyEncoding::Ascii => encode_lines(columns, rows, ' ', ValueForm::Pointed, bytes),
        }
    }
}

impl PlyVertexWriter {
    /// Starts writing `count` vertices with the properties of `schema` (in
    /// order) to `path`. Fails when a name cannot appear in a PLY header
    /// or appears twice, when a comment has a line break, or when the
    /// output folder does not exist.
    pub fn create(
        path: &Path,
        schema: &[(String, ScalarKind)],
        count: usize,
        encoding: PlyEncoding,
        comments: &[String],
    ) -> Result<Self> {
        let header = header_bytes(path, schema, count, encoding, comments)?;
        let file = Target::Output(AtomicFile::create(path)?);
        Self::start(file, &header, schema, count, encoding)
    }

    /// [`PlyVertexWriter::create`] writing into `file`, open for writing at
    /// its start: no rename at [`PlyVertexWriter::finish`], which only
    /// checks the count (for an unnamed temporary file, read back through
    /// another handle on it). `path` names it in messages.
    pub fn create_in(
        file: File,
        path: &Path,
        schema: &[(String, ScalarKind)],
        count: usize,
        encoding: PlyEncoding,
        comments: &[String],
    ) -> Result<Self> {
        let header = header_bytes(path, schema, count, encoding, comments)?;
        let file = Target::Open {
            file,
            path: path.to_path_buf(),
        };
        Self::start(file, &header, schema, count, encoding)
    }

    /// A writer of `file` after writing the header.
    fn start(
        mut file: Target,
        header: &[u8],
        schema: &[(String, ScalarKind)],
        count: usize,
        encoding: PlyEncoding,
    ) -> Result<Self> {
        file.write_all(header)?;
        let mut offsets = Vec::with_capacity(schema.len());
        let mut stride = 0;
        for (_, kind) in schema {
            offsets.push(stride);
            stride += size_of_kind(*kind);
        }
        Ok(PlyVertexWriter {
            file,
            rows: RowLedger::new(schema, count),
            body: Body {
                encoding,
                offsets,
                stride,
            },
        })
    }

    /// Appends the rows of `columns`, which must follow the schema (same
    /// names and types, in order) and have equal lengths; more rows than the
    /// declared count is an error.
    pub fn write_chunk(&mut self, columns: &[Attribute]) -> Result<()> {
        self.write_rows(Rows::Columns(columns))
    }

    /// Appends `rows` (see [`Rows`]), built and encoded in pieces on every
    /// core.
    pub fn write_rows(&mut self, rows: Rows<'_>) -> Result<()> {
        let path = self.file.path().to_path_buf();
        let body = &self.body;
        let file = &mut self.file;
        self.rows.write_encoded(
            &path,
            rows,
            &|columns, range, bytes| body.encode(columns, range, bytes),
            |bytes| file.write_all(bytes),
        )
    }

    /// Checks that the declared number of vertices was written, then
    /// replaces the target with the finished file (a file given to
    /// [`PlyVertexWriter::create_in`] is left as it is).
    pub fn finish(self) -> Result<()> {
        self.rows.check_complete(self.file.path(), "vertices")?;
        match self.file {
            Target::Output(file) => file.commit(),
            Target::Open { .. } => Ok(()),
        }
    }
}

/// The header of a PLY file of `count` vertices of `schema`, checked: a
/// name must read back as one property name and appear once, a comment
/// must be one line. `path` names the file in messages.
fn header_bytes(
    path: &Path,
    schema: &[(String, ScalarKind)],
    count: usize,
    encoding: PlyEncoding,
    comments: &[String],
) -> Result<Vec<u8>> {
    let invalid = |message: String| Error::Invalid(format!("{}: {message}", path.display()));
    for (index, (name, _)) in schema.iter().enumerate() {
        if !is_property_name(name) {
            return Err(invalid(format!(
                "'{name}' is not a valid PLY property name"
            )));
        }
        if schema[..index].iter().any(|(earlier, _)| earlier == name) {
            return Err(invalid(format!("property '{name}' is given twice")));
        }
    }
    if let Some(comment) = comments.iter().find(|c| c.contains(['\n', '\r'])) {
        return Err(invalid(format!("comment {comment:?} has a line break")));
    }

    let mut vertex = ElementDef::new("vertex".to_string());
    vertex.count = count;
    for (name, kind) in schema {
        let property = PropertyDef::new(name.clone(), PropertyType::Scalar(ply_type(*kind)));
        vertex.properties.insert(name.clone(), property);
    }
    let mut header = Header::new();
    header.encoding = match encoding {
        PlyEncoding::BinaryLittleEndian => Encoding::BinaryLittleEndian,
        PlyEncoding::Ascii => Encoding::Ascii,
    };
    header.comments = comments.to_vec();
    header.elements.insert(vertex.name.clone(), vertex);
    let mut bytes = Vec::new();
    Writer::<DefaultElement>::new()
        .write_header(&mut bytes, &header)
        .map_err(|error| Error::io(path, error))?;
    Ok(bytes)
}

/// The PLY properties (name and type) that write `columns`, in order.
pub fn schema_of(columns: &[Attribute]) -> Vec<(String, ScalarKind)> {
    columns
        .iter()
        .map(|column| (column.name.clone(), column.values.kind()))
        .collect()
}

/// Writes `columns` as the properties (in order, names as given, types from
/// the column variants) of a single `vertex` element to `path`, atomically:
/// on any error, e.g. columns of different lengths, no file is left behind.
pub fn write_ply(
    path: &Path,
    columns: &[Attribute],
    encoding: PlyEncoding,
    comments: &[String],
) -> Result<()> {
    let schema = schema_of(columns);
    let count = columns.first().map_or(0, |column| column.values.len());
    let mut writer = PlyVertexWriter::create(path, &schema, count, encoding, comments)?;
    writer.write_chunk(columns)?;
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Column;

    fn column(name: &str, values: Column) -> Attribute {
        Attribute {
            name: name.to_string(),
            values,
        }
    }

    #[test]
    fn property_names_follow_the_header_grammar() {
        assert!(is_property_name("x"));
        assert!(is_property_name("_scalar-1"));
        assert!(!is_property_name(""));
        assert!(!is_property_name("1x"));
        assert!(!is_property_name("a b"));
    }

    #[test]
    fn binary_rows_are_packed_little_endian() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.ply");
        let columns = [
            column("x", Column::F32(vec![1.0, 2.0])),
            column("label", Column::I16(vec![-2, 3])),
        ];
        write_ply(&path, &columns, PlyEncoding::BinaryLittleEndian, &[]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let header = "ply\nformat binary_little_endian 1.0\nelement vertex 2\n\
                      property float x\nproperty short label\nend_header\n";
        let (head, body) = bytes.split_at(header.len());
        assert_eq!(head, header.as_bytes());
        let mut expected = Vec::new();
        for (x, label) in [(1.0f32, -2i16), (2.0, 3)] {
            expected.extend(x.to_le_bytes());
            expected.extend(label.to_le_bytes());
        }
        assert_eq!(body, expected);
    }

    #[test]
    fn chunks_must_match_schema_and_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.ply");
        let schema = [("x".to_string(), ScalarKind::F64)];
        let mut writer =
            PlyVertexWriter::create(&path, &schema, 2, PlyEncoding::Ascii, &[]).unwrap();
        assert!(
            writer
                .write_chunk(&[column("y", Column::F64(vec![1.0]))])
                .is_err()
        );
        assert!(
            writer
                .write_chunk(&[column("x", Column::F32(vec![1.0]))])
                .is_err()
        );
        assert!(
            writer
                .write_chunk(&[column("x", Column::F64(vec![1.0; 3]))])
                .is_err()
        );
        writer
            .write_chunk(&[column("x", Column::F64(vec![1.5]))])
            .unwrap();
        let err = writer.finish().unwrap_err();
        assert!(err.to_string().contains("1 vertices written"), "{err}");
        assert!(!path.exists());
    }

    #[test]
    fn bad_names_and_comments_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.ply");
        let twice = [
            ("x".to_string(), ScalarKind::F32),
            ("x".to_string(), ScalarKind::F32),
        ];
        let create = |schema: &[(String, ScalarKind)], comments: &[String]| {
            PlyVertexWriter::create(&path, schema, 0, PlyEncoding::Ascii, comments)
        };
        assert!(create(&twice, &[]).is_err());
        assert!(create(&[("a b".to_string(), ScalarKind::U8)], &[]).is_err());
        assert!(create(&twice[..1], &["two\nlines".to_string()]).is_err());
        assert!(!path.exists());
    }
}
