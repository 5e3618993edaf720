//! Reading and writing point files: PLY (ascii, binary little- and
//! big-endian) and text clouds (`.xyz`, `.pts`, `.txt`, `.csv`).
//!
//! PLY headers are parsed and written with ply-rs-bw; bodies are decoded and
//! encoded here, a property at a time over large blocks, because per-element
//! property maps are far too slow for clouds of many millions of points.
//! Outputs are written atomically (see [`write_ply`]) and never over an
//! input or a device ([`check_output`]).

pub(crate) mod atomic;
mod paths;
mod ply_layout;
mod ply_read;
mod ply_write;
mod reader;
mod record;
mod scalar;
mod xyz;

pub use atomic::NAMED_TEMP_VARIABLE;
#[cfg(unix)]
pub use atomic::remove_temps_on_signals;
pub use paths::{check_not_input, check_output, tile_path};
pub use ply_read::PlyVertexReader;
pub use ply_write::{PlyVertexWriter, schema_of, write_ply};
pub use reader::{CHUNK, Kept, PointReader};
pub use record::{Record, colour_columns, file_columns, output_columns, position_columns};

use crate::cloud::PointCloud;
use crate::config::Encoding;
use crate::error::{Error, Location, Result};
use std::fs::File;
use std::io::{BufRead, Read};
use std::path::Path;

/// Most properties (PLY) or columns (text) of a point file: far more than
/// any scanner writes, and few enough that a malicious header cannot make
/// the per-property work or memory explode.
pub const MAX_PROPERTIES: usize = 4096;

/// Longest line of a text cloud or an ascii PLY body: a row of
/// [`MAX_PROPERTIES`] long numbers fits; a file without line ends (a
/// symlink to `/dev/zero`) is refused instead of read into memory.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Reads one line into `line` (cleared first), at most
/// [`MAX_LINE_BYTES`]; returns the bytes read (0 at the end), or an error
/// message for a longer line.
fn read_line(source: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<Option<usize>> {
    line.clear();
    let read = source
        .take(MAX_LINE_BYTES as u64 + 1)
        .read_until(b'\n', line)?;
    if line.len() > MAX_LINE_BYTES {
        return Ok(None);
    }
    Ok(Some(read))
}

/// Bytes of body encoded or decoded at once: large enough to make the
/// per-property dispatch negligible, small enough to stay in cache.
const BLOCK_BYTES: usize = 1 << 21;

/// PLY body encodings for output: binary for size and speed, ascii for
/// inspection and for tools that read nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlyEncoding {
    /// `binary_little_endian`, the native order of nearly all machines.
    #[default]
    BinaryLittleEndian,
    /// `ascii`, values as text; floats written in their shortest exact form.
    Ascii,
}

/// The config's output encoding.
impl From<Encoding> for PlyEncoding {
    fn from(encoding: Encoding) -> Self {
        match encoding {
            Encoding::Binary => PlyEncoding::BinaryLittleEndian,
            Encoding::Ascii => PlyEncoding::Ascii,
        }
    }
}

/// Reads a point file, choosing the reader by content so that a PLY file is
/// recognised whatever its name.
///
/// A file starting with the line `ply` is read as PLY (see
/// [`PlyVertexReader`]). Otherwise the extensions `.xyz`, `.pts`, `.txt` and
/// `.csv` (any case) are text clouds; anything else is an error.
///
/// # Text clouds
///
/// One point per line, values separated by whitespace, commas or both.
/// Blank lines and lines starting with `#` or `//` are ignored. Lines before
/// the first point that are not all numbers (column names such as `X Y Z`)
/// or that are a single non-negative integer (the point count of `.pts`)
/// are skipped, as are such count lines between the scans of a `.pts`;
/// after the first point, every line must have the same number of values,
/// all numbers (`nan` and `inf` are kept). Empty values between commas are
/// ignored (`1,,2,3` is `1 2 3`). Positions are kept as
/// `f64` ([`crate::Precision::Double`]). The columns are read by their count:
///
/// | count | columns |
/// |-------|---------|
/// | 3 | `x y z` |
/// | 4 | `x y z intensity` |
/// | 6 | `x y z red green blue` if columns 4–6 are all integers in 0..=255 (and not all unit axis vectors such as `0 0 1`, which are normals); else `x y z nx ny nz` |
/// | 7 | `x y z intensity red green blue` (the PTS convention) |
/// | 9 | `x y z red green blue nx ny nz` if columns 4–6 are colours by the rule for 6; else `x y z nx ny nz red green blue` |
/// | other ≥ 3 | `x y z`, then `f64` attributes `field_3`, `field_4`, … (0-based column numbers) |
/// | < 3 | error |
///
/// Intensity becomes an `f32` attribute `intensity`, normals `f32`. Colour
/// columns of the 7- and 9-column layouts that are not integers in 0..=255
/// are scaled by 255 when all lie in 0..=1, else kept as `f64` attributes
/// `red green blue`.
pub fn read_points(path: &Path) -> Result<PointCloud> {
    let mut reader = PointReader::open(path)?;
    reader.read_chunk(reader.len())
}

/// True when `path` starts with the line `ply`; an empty or unreadable
/// file is an error naming it.
fn is_ply(path: &Path) -> Result<bool> {
    let mut start = Vec::with_capacity(4);
    File::open(path)
        .and_then(|file| file.take(4).read_to_end(&mut start))
        .map_err(|error| Error::io(path, error))?;
    if start.is_empty() {
        return Err(Error::format(path, Location::File, "empty file"));
    }
    Ok(start.starts_with(b"ply\n") || start.starts_with(b"ply\r"))
}

/// Reads a text cloud, or refuses a file that is neither PLY nor text.
fn read_text(path: &Path) -> Result<PointCloud> {
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("xyz" | "pts" | "txt" | "csv") => xyz::read_text(path),
        Some("ply") => Err(Error::format(
            path,
            Location::Line(1),
            "not a PLY file: the first line is not 'ply'",
        )),
        _ => Err(Error::format(
            path,
            Location::File,
            "unsupported format: expected a PLY file or a text cloud (.xyz, .pts, .txt, .csv)",
        )),
    }
}

/// Writes `text` to `path` atomically (a temporary file renamed into
/// place), as every output is written.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    let mut file = atomic::AtomicFile::create(path)?;
    file.write_all(text.as_bytes())?;
    file.commit()
}
