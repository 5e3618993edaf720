//! Reading and writing point files: PLY (ascii, binary little- and
//! big-endian), LAS and LAZ, text clouds (`.xyz`, `.pts`, `.txt`, `.csv`)
//! both ways; E57 and PCD read only. The output's format follows its
//! extension ([`OutputFormat`], [`OutputWriter`]).
//!
//! PLY headers are parsed and written with ply-rs-bw; bodies are decoded and
//! encoded here, a property at a time over large blocks, because per-element
//! property maps are far too slow for clouds of many millions of points.
//! Outputs are written atomically (see [`write_ply`]) and never over an
//! input or a device ([`check_output`]).

pub(crate) mod atomic;
mod e57;
mod las;
mod las_pieces;
mod las_write;
mod output;
mod paths;
mod pcd;
mod ply_layout;
mod ply_read;
mod ply_write;
mod reader;
mod record;
mod scalar;
mod text_write;
mod xyz;

pub use atomic::NAMED_TEMP_VARIABLE;
#[cfg(unix)]
pub use atomic::remove_temps_on_signals;
pub use e57::{Scans, read_e57};
pub use las::LasReader;
pub use output::{OutputFormat, OutputWriter, Rows};
pub(crate) use paths::unnamed_temp_beside;
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

/// `0..len` in consecutive ranges of at most `step`: at least one, empty
/// for an empty `len`, so that an empty source still writes its (empty)
/// output with every property named.
pub(crate) fn ranges(len: usize, step: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let step = step.max(1);
    (0..len.div_ceil(step).max(1)).map(move |i| i * step..len.min((i + 1) * step))
}

/// Bytes of body encoded or decoded at once: large enough to make the
/// per-property dispatch negligible, small enough to stay in cache.
const BLOCK_BYTES: usize = 1 << 21;

/// Bytes of records decoded, or built and encoded, as one piece on one
/// core: the records and the rows they fill or come from stay in its cache
/// (1 MiB of L2).
const PIECE_BYTES: usize = 1 << 18;

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

/// Reads a point file, choosing the reader by content so that a PLY, LAS
/// or E57 file is recognised whatever its name.
///
/// A file starting with the line `ply` is read as PLY (see
/// [`PlyVertexReader`]), one starting with `LASF` as LAS or LAZ (see
/// [`LasReader`]), one starting with `ASTM-E57` as E57 (see [`read_e57`]).
/// Otherwise the extension (any case) decides: `.pcd` is PCD (ascii,
/// binary or binary_compressed; `x y z` positions, `normal_x normal_y
/// normal_z` normals, packed `rgb`/`rgba` colours, every other field an
/// attribute of its type), `.xyz`, `.pts`, `.txt` and `.csv` are text
/// clouds; anything else is an error.
///
/// # Text clouds
///
/// One point per line, values separated by whitespace (tabs too), commas,
/// semicolons or a mix. Blank lines and lines starting with `#` or `//`
/// are ignored. Lines before the first point that are not all numbers
/// (column names such as `X Y Z`) or that are a single non-negative
/// integer (the point count of `.pts`) are skipped, as are such count lines
/// between the scans of a `.pts`; after the first point, every line must
/// have the same number of values, all numbers (`nan` and `inf` are kept).
/// Empty values between separators are ignored (`1,,2,3` is `1 2 3`). A
/// file without a point is an error naming the first line that is not
/// one. Positions are kept as `f64` ([`crate::Precision::Double`]).
///
/// The columns are decided once per file, not per row. When the last line
/// before the first point (a comment too, its `#` or `//` removed) has one
/// name per column and names `x y z`, the names decide (any case):
/// `x y z`; `nx ny nz` or `normal_x …` (all three) normals; `red green
/// blue`, `r g b` or `diffuse_*` (all three) colours, as by the rule for
/// colour columns below; `intensity` or `i` an `f32` attribute; every other
/// column an `f64` attribute under its name. Otherwise the count decides:
///
/// | count | columns |
/// |-------|---------|
/// | 3 | `x y z` |
/// | 4 | `x y z intensity` |
/// | 6 | `x y z red green blue` when columns 4–6 are colours by the rule below; else `x y z nx ny nz` |
/// | 7 | `x y z intensity red green blue` (the PTS convention) |
/// | 9 | `x y z red green blue nx ny nz` when columns 4–6 are colours by the rule below; else `x y z nx ny nz red green blue` |
/// | other ≥ 3 | `x y z`, then `f64` attributes `field_3`, `field_4`, … (0-based column numbers) |
/// | < 3 | error |
///
/// Columns 4–6 are colours, not normals, when they are integers in 0..=255
/// and not all unit axis vectors (`0 0 1` rows are normals of an
/// axis-aligned surface), or when they all lie in 0..=1 and are not all
/// unit vectors (length within 1%, or zero): such colours are scaled by
/// 255. Intensity becomes an `f32` attribute `intensity`, normals `f32`.
/// Colour columns that are known to be colours (named, or of the 7- and
/// 9-column layouts) and are not integers in 0..=255 are scaled by 255
/// when all lie in 0..=1, else kept as `f64` attributes `red green blue`.
pub fn read_points(path: &Path) -> Result<PointCloud> {
    let mut reader = PointReader::open(path)?;
    reader.read_chunk(reader.len())
}

/// What the first bytes of a file say it is.
pub(crate) enum Signature {
    /// The line `ply`.
    Ply,
    /// `LASF`: LAS or LAZ.
    Las,
    /// `ASTM-E57`.
    E57,
    /// Anything else: told by the extension.
    Other,
}

/// Reads the signature of `path`; an empty or unreadable file is an error
/// naming it.
pub(crate) fn signature(path: &Path) -> Result<Signature> {
    let mut start = Vec::with_capacity(8);
    File::open(path)
        .and_then(|file| file.take(8).read_to_end(&mut start))
        .map_err(|error| Error::io(path, error))?;
    if start.is_empty() {
        return Err(Error::format(path, Location::File, "empty file"));
    }
    Ok(
        if start.starts_with(b"ply\n") || start.starts_with(b"ply\r") {
            Signature::Ply
        } else if start.starts_with(las::SIGNATURE) {
            Signature::Las
        } else if start.starts_with(b"ASTM-E57") {
            Signature::E57
        } else {
            Signature::Other
        },
    )
}

/// Reads a PCD or text cloud, or refuses a file whose signature does not
/// match its extension or whose extension is unknown.
/// Returns the cloud and its comments (a text cloud's `# …` lines before
/// the first point; none for PCD).
pub(crate) fn read_by_extension(path: &Path) -> Result<(PointCloud, Vec<String>)> {
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase);
    let wrong = |what: &str| Err(Error::format(path, Location::File, format!("not {what}")));
    match extension.as_deref() {
        Some("xyz" | "pts" | "txt" | "csv") => xyz::read_text_with_comments(path),
        Some("pcd") => pcd::read_pcd(path).map(|cloud| (cloud, Vec::new())),
        Some("ply") => Err(Error::format(
            path,
            Location::Line(1),
            "not a PLY file: the first line is not 'ply'",
        )),
        Some("las" | "laz") => wrong("a LAS file: it does not start with 'LASF'"),
        Some("e57") => wrong("an E57 file: it does not start with 'ASTM-E57'"),
        _ => Err(Error::format(
            path,
            Location::File,
            "unsupported format: expected PLY, LAS, LAZ, E57, PCD or a text cloud (.xyz, .pts, .txt, .csv)",
        )),
    }
}

/// A name for a property read from a file that the PLY header grammar
/// reads back and that is not among `taken`: characters other than ASCII
/// letters, digits, `_` and `-` become `_`, a leading digit gets a `_`,
/// and a taken name gets `_` appended until it is free.
pub(crate) fn property_name(raw: &str, taken: &[String]) -> String {
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    while taken.contains(&name) {
        name.push('_');
    }
    name
}

/// Writes `text` to `path` atomically (a temporary file renamed into
/// place), as every output is written.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    let mut file = atomic::AtomicFile::create(path)?;
    file.write_all(text.as_bytes())?;
    file.commit()
}
