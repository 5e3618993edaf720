//! Reading PCD files (the Point Cloud Library's format, v0.5–0.7): `ascii`,
//! `binary` and `binary_compressed` (LZF) bodies, every field with its type.
//!
//! No crate reads `binary_compressed` with arbitrary fields, so the reader
//! is written here: the header is a few keyword lines, the bodies are
//! packed records (ascii rows are packed as they are parsed) or, once
//! decompressed, one block per field. The file is read whole: a compressed
//! body can only be decompressed whole.
//!
//! Fields `x y z` are positions, `normal_x normal_y normal_z` normals,
//! `rgb`/`rgba` (a packed `0x00RRGGBB` in a float or uint) colours; every
//! other field is an attribute with its type (a field of `COUNT` n becomes
//! `name_0` … `name_{n-1}`; the padding field `_` is dropped).

use super::scalar::{
    LittleEndian, Scalar, extend_fields, parse_into, size_of_kind, with_scalar_type,
};
use crate::cloud::{Attribute, Column, PointCloud, Precision, ScalarKind};
use crate::error::{Error, Location, Result};
use nalgebra::{Point3, Vector3};
use std::path::Path;

/// A compressed body inflating more than this many times its size is
/// refused: LZF cannot compress further, so the header lies.
const MAX_LZF_RATIO: usize = 300;

/// How a value is stored: as a column type, or as a 64-bit integer, which
/// no column type holds and is read as `f64` (exact up to 2^53).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stored {
    Plain(ScalarKind),
    I64,
    U64,
}

impl Stored {
    /// The column type the values are kept in.
    fn kind(self) -> ScalarKind {
        match self {
            Stored::Plain(kind) => kind,
            Stored::I64 | Stored::U64 => ScalarKind::F64,
        }
    }
}

/// One scalar of a field (a field with `COUNT` n has n of them) as stored
/// in a packed record.
#[derive(Debug, Clone)]
struct Value {
    name: String,
    /// How the value is stored in a binary record.
    stored: Stored,
    /// Offset in the packed record.
    offset: usize,
    /// Offset of its field (of all `COUNT` values) in the packed record,
    /// and the field's bytes: a compressed body stores field by field.
    field: (usize, usize),
}

/// The header keywords needed to read the body.
#[derive(Debug)]
struct Header {
    values: Vec<Value>,
    stride: usize,
    points: usize,
    data: String,
    /// Bytes of the file the header takes (the body starts there).
    length: usize,
}

/// Parses the header; `bytes` is the whole file.
fn parse_header(path: &Path, bytes: &[u8]) -> Result<Header> {
    let mut fields: Vec<String> = Vec::new();
    let mut sizes: Vec<usize> = Vec::new();
    let mut types: Vec<char> = Vec::new();
    let mut counts: Option<Vec<usize>> = None;
    let (mut width, mut height, mut points) = (None, None, None);
    let mut at = 0;
    let mut line_number = 0;
    let data = loop {
        line_number += 1;
        let bad = |message: String| Error::format(path, Location::Line(line_number), message);
        if at >= bytes.len() {
            return Err(bad("the header ends without a DATA line".to_string()));
        }
        let end = bytes[at..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(bytes.len(), |i| at + i + 1);
        let line = std::str::from_utf8(&bytes[at..end])
            .map_err(|_| bad("the header line is not text".to_string()))?
            .trim();
        at = end;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_ascii_whitespace();
        let key = words.next().unwrap_or_default().to_ascii_uppercase();
        let rest: Vec<&str> = words.collect();
        let number = |word: &str| {
            word.parse::<usize>()
                .map_err(|_| bad(format!("{key}: '{word}' is not a count")))
        };
        match key.as_str() {
            "VERSION" | "VIEWPOINT" => {}
            "FIELDS" | "COLUMNS" => fields = rest.iter().map(|s| s.to_string()).collect(),
            "SIZE" => sizes = rest.iter().map(|w| number(w)).collect::<Result<_>>()?,
            "TYPE" => {
                types = rest
                    .iter()
                    .map(|w| match *w {
                        "I" | "U" | "F" => Ok(w.chars().next().unwrap_or('F')),
                        _ => Err(bad(format!("TYPE: '{w}' is not I, U or F"))),
                    })
                    .collect::<Result<_>>()?
            }
            "COUNT" => counts = Some(rest.iter().map(|w| number(w)).collect::<Result<_>>()?),
            "WIDTH" | "HEIGHT" | "POINTS" => {
                let [word] = rest.as_slice() else {
                    return Err(bad(format!("{key} takes one count")));
                };
                let value = Some(number(word)?);
                match key.as_str() {
                    "WIDTH" => width = value,
                    "HEIGHT" => height = value,
                    _ => points = value,
                }
            }
            "DATA" => match rest.as_slice() {
                [data @ ("ascii" | "binary" | "binary_compressed")] => break data.to_string(),
                _ => {
                    return Err(bad(format!(
                        "DATA '{}' is not ascii, binary or binary_compressed",
                        rest.join(" ")
                    )));
                }
            },
            _ => return Err(bad(format!("unknown header keyword '{key}'"))),
        }
    };
    let bad = |message: String| Error::format(path, Location::File, message);
    let counts = counts.unwrap_or_else(|| vec![1; fields.len()]);
    if fields.is_empty()
        || sizes.len() != fields.len()
        || types.len() != fields.len()
        || counts.len() != fields.len()
    {
        return Err(bad(format!(
            "FIELDS, SIZE, TYPE and COUNT name {}, {}, {} and {} fields",
            fields.len(),
            sizes.len(),
            types.len(),
            counts.len()
        )));
    }
    let points = match (points, width, height) {
        (Some(points), _, _) => points,
        (None, Some(width), Some(height)) => width.saturating_mul(height),
        _ => {
            return Err(bad(
                "the header gives neither POINTS nor WIDTH and HEIGHT".to_string()
            ));
        }
    };
    let mut values = Vec::new();
    let mut offset = 0usize;
    for (((name, size), kind), count) in fields.iter().zip(&sizes).zip(&types).zip(&counts) {
        let stored = match (kind, size) {
            ('I', 1) => Stored::Plain(ScalarKind::I8),
            ('U', 1) => Stored::Plain(ScalarKind::U8),
            ('I', 2) => Stored::Plain(ScalarKind::I16),
            ('U', 2) => Stored::Plain(ScalarKind::U16),
            ('I', 4) => Stored::Plain(ScalarKind::I32),
            ('U', 4) => Stored::Plain(ScalarKind::U32),
            ('F', 4) => Stored::Plain(ScalarKind::F32),
            ('F', 8) => Stored::Plain(ScalarKind::F64),
            ('I', 8) => Stored::I64,
            ('U', 8) => Stored::U64,
            _ => {
                return Err(bad(format!(
                    "field '{name}': no type {kind} of {size} bytes"
                )));
            }
        };
        if *count == 0 || *count > 1 << 16 {
            return Err(bad(format!("field '{name}': COUNT {count}")));
        }
        let field = (offset, size * count);
        for element in 0..*count {
            values.push(Value {
                name: if *count == 1 {
                    name.clone()
                } else {
                    format!("{name}_{element}")
                },
                stored,
                offset,
                field,
            });
            offset += size;
        }
    }
    Ok(Header {
        values,
        stride: offset,
        points,
        data,
        length: at,
    })
}

/// Decompresses an LZF block (liblzf's format, as PCL writes it) of
/// exactly `expected` bytes; `None` when the data is corrupt.
fn lzf_decompress(input: &[u8], expected: usize) -> Option<Vec<u8>> {
    let mut output = Vec::with_capacity(expected);
    let mut at = 0;
    while at < input.len() {
        let control = usize::from(input[at]);
        at += 1;
        if control < 32 {
            // A literal run of control + 1 bytes.
            let run = input.get(at..at + control + 1)?;
            output.extend_from_slice(run);
            at += control + 1;
        } else {
            // A back reference: length in the top 3 bits (7: one more byte).
            let mut length = control >> 5;
            if length == 7 {
                length += usize::from(*input.get(at)?);
                at += 1;
            }
            length += 2;
            let back = ((control & 0x1f) << 8) + usize::from(*input.get(at)?) + 1;
            at += 1;
            let start = output.len().checked_sub(back)?;
            for index in start..start + length {
                output.push(output[index]);
            }
        }
        if output.len() > expected {
            return None;
        }
    }
    (output.len() == expected).then_some(output)
}

/// The body as packed records (row-major, true), or for
/// `binary_compressed` as one block per field (column-major, false).
fn body(path: &Path, header: &Header, bytes: &[u8]) -> Result<(Vec<u8>, bool)> {
    let body = &bytes[header.length..];
    let needed = header.points.checked_mul(header.stride);
    let bad = |message: String| Error::format(path, Location::File, message);
    match header.data.as_str() {
        "binary" => {
            let needed = needed.filter(|n| *n <= body.len()).ok_or_else(|| {
                bad(format!(
                    "the body holds {} bytes, not the {} points of {} bytes the header declares",
                    body.len(),
                    header.points,
                    header.stride
                ))
            })?;
            Ok((body[..needed].to_vec(), true))
        }
        "binary_compressed" => {
            let word = |at: usize| {
                body.get(at..at + 4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            };
            let (Some(compressed), Some(size)) = (word(0), word(4)) else {
                return Err(bad("the compressed body ends before its sizes".to_string()));
            };
            if Some(size) != needed {
                return Err(bad(format!(
                    "the compressed body inflates to {size} bytes, not the {} points of {} bytes the header declares",
                    header.points, header.stride
                )));
            }
            let data = body.get(8..8 + compressed).ok_or_else(|| {
                bad(format!(
                    "the file ends inside the {compressed} compressed bytes"
                ))
            })?;
            if size > compressed.saturating_mul(MAX_LZF_RATIO).max(1 << 16) {
                return Err(bad(format!(
                    "{compressed} compressed bytes cannot inflate to {size}"
                )));
            }
            let inflated = lzf_decompress(data, size)
                .ok_or_else(|| bad("the compressed body is corrupt".to_string()))?;
            Ok((inflated, false))
        }
        _ => Ok((ascii_records(path, header, bytes)?, true)),
    }
}

/// Parses the ascii rows into little-endian packed records.
fn ascii_records(path: &Path, header: &Header, bytes: &[u8]) -> Result<Vec<u8>> {
    let text = &bytes[header.length..];
    let header_lines = bytes[..header.length]
        .iter()
        .filter(|b| **b == b'\n')
        .count();
    // At least two bytes (a digit and a separator) a value.
    let most = text.len() / (2 * header.values.len()).max(1) + 1;
    let mut records = Vec::with_capacity(header.points.min(most) * header.stride);
    let mut rows = 0;
    for (index, line) in text.split(|b| *b == b'\n').enumerate() {
        let line_number = header_lines + index + 1;
        let bad = |message: String| Error::format(path, Location::Line(line_number), message);
        let line = std::str::from_utf8(line.trim_ascii())
            .map_err(|_| bad("the line is not text".to_string()))?;
        if line.is_empty() {
            continue;
        }
        if rows == header.points {
            return Err(bad(format!(
                "more rows than the {} points the header declares",
                header.points
            )));
        }
        let start = records.len();
        records.resize(start + header.stride, 0);
        let mut tokens = line.split_ascii_whitespace();
        for value in &header.values {
            let token = tokens.next().ok_or_else(|| {
                bad(format!(
                    "{} values, but the header declares {}",
                    line.split_ascii_whitespace().count(),
                    header.values.len()
                ))
            })?;
            // Packed as the column type: 64-bit integers as f64.
            let kind = value.stored.kind();
            let at = start + value.offset;
            if !parse_into(kind, token, &mut records[at..at + size_of_kind(kind)]) {
                return Err(bad(format!(
                    "'{token}' is not a value of field '{}'",
                    value.name
                )));
            }
        }
        if tokens.next().is_some() {
            return Err(bad(format!(
                "more values than the {} the header declares",
                header.values.len()
            )));
        }
        rows += 1;
    }
    if rows < header.points {
        return Err(Error::format(
            path,
            Location::File,
            format!(
                "{rows} rows, but the header declares {} points",
                header.points
            ),
        ));
    }
    Ok(records)
}

/// The values of one field of every point, as a column of its type;
/// `stored` is how the record holds it (ascii rows are packed as the
/// column type).
fn column(stored: Stored, data: &[u8], stride: usize, offset: usize) -> Column {
    let records = || data.chunks_exact(stride);
    let word =
        |record: &[u8]| -> [u8; 8] { record[offset..offset + 8].try_into().unwrap_or_default() };
    match stored {
        Stored::I64 => Column::F64(
            records()
                .map(|r| i64::from_le_bytes(word(r)) as f64)
                .collect(),
        ),
        Stored::U64 => Column::F64(
            records()
                .map(|r| u64::from_le_bytes(word(r)) as f64)
                .collect(),
        ),
        Stored::Plain(kind) => with_scalar_type!(kind, T => {
            let mut values: Vec<T> = Vec::with_capacity(data.len() / stride.max(1));
            extend_fields::<T, LittleEndian>(&mut values, data, stride, offset);
            T::into_column(values)
        }),
    }
}

/// Reads a PCD file whole (see the module's documentation).
pub(crate) fn read_pcd(path: &Path) -> Result<PointCloud> {
    let bytes = std::fs::read(path).map_err(|error| Error::io(path, error))?;
    let header = parse_header(path, &bytes)?;
    let ascii = header.data == "ascii";
    let (data, row_major) = body(path, &header, &bytes)?;
    let points = header.points;
    let mut columns: Vec<(String, Column)> = header
        .values
        .iter()
        .map(|value| {
            let stored = if ascii {
                Stored::Plain(value.stored.kind())
            } else {
                value.stored
            };
            let column = if row_major {
                column(stored, &data, header.stride, value.offset)
            } else {
                let (field_offset, field_size) = value.field;
                let block = &data[points * field_offset..points * (field_offset + field_size)];
                column(stored, block, field_size, value.offset - field_offset)
            };
            (value.name.clone(), column)
        })
        .collect();
    let mut take = |name: &str| {
        let at = columns.iter().position(|(n, _)| n == name)?;
        Some(columns.remove(at).1)
    };
    let as_f64 = Column::to_f64;
    let (Some(x), Some(y), Some(z)) = (take("x"), take("y"), take("z")) else {
        return Err(Error::format(
            path,
            Location::File,
            "the fields have no x, y and z",
        ));
    };
    let precision = if [&x, &y, &z].iter().any(|c| c.kind() == ScalarKind::F64) {
        Precision::Double
    } else {
        Precision::Single
    };
    let positions = as_f64(&x)
        .into_iter()
        .zip(as_f64(&y))
        .zip(as_f64(&z))
        .map(|((x, y), z)| Point3::new(x, y, z))
        .collect();
    let normals = match (take("normal_x"), take("normal_y"), take("normal_z")) {
        (Some(a), Some(b), Some(c)) => Some(
            as_f64(&a)
                .into_iter()
                .zip(as_f64(&b))
                .zip(as_f64(&c))
                .map(|((a, b), c)| Vector3::new(a as f32, b as f32, c as f32))
                .collect(),
        ),
        (a, b, c) => {
            // Fewer than three: kept as attributes.
            for (name, column) in [("normal_x", a), ("normal_y", b), ("normal_z", c)] {
                if let Some(column) = column {
                    columns.push((name.to_string(), column));
                }
            }
            None
        }
    };
    let colours = ["rgb", "rgba"].iter().find_map(|name| {
        let at = columns
            .iter()
            .position(|(n, c)| n == name && matches!(c, Column::F32(_) | Column::U32(_)))?;
        let packed: Vec<u32> = match columns.remove(at).1 {
            Column::F32(values) => values.iter().map(|v| v.to_bits()).collect(),
            Column::U32(values) => values,
            _ => Vec::new(),
        };
        Some(
            packed
                .iter()
                .map(|v| [(v >> 16) as u8, (v >> 8) as u8, *v as u8])
                .collect(),
        )
    });
    let mut attributes: Vec<Attribute> = Vec::new();
    for (name, values) in columns {
        if name == "_" {
            continue;
        }
        let taken: Vec<String> = attributes.iter().map(|a| a.name.clone()).collect();
        attributes.push(Attribute {
            name: super::property_name(&name, &taken),
            values,
        });
    }
    Ok(PointCloud {
        positions,
        normals,
        colours,
        attributes,
        precision,
        normal_precision: Precision::Single,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lzf_literals_and_back_references_inflate() {
        // "abc" literal, then a back reference of length 6 at distance 3.
        let input = [2, b'a', b'b', b'c', (4 << 5), 2];
        assert_eq!(lzf_decompress(&input, 9).unwrap(), b"abcabcabc");
        assert!(lzf_decompress(&input, 8).is_none());
        assert!(lzf_decompress(&[(1 << 5), 9], 3).is_none());
        assert!(lzf_decompress(&[5, 1], 6).is_none());
    }
}
