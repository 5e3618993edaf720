//! Reading LAS 1.0–1.4 and LAZ files (point formats 0–10) with the `las`
//! crate, chunk by chunk: a LAZ file is decompressed one chunk of points at
//! a time (by laz-rs, its chunks decoded in parallel), so memory holds one
//! chunk, as for PLY.
//!
//! Positions become `f64` through the header's scale and offset, so that
//! UTM-sized coordinates keep their millimetres; every standard field and
//! every described extra-bytes field becomes a typed attribute.

use super::las_pieces::{
    AttributeRows, Piece, PieceRows, commit_rows, holding, las_pieces, laz_pieces, piece_rows,
};
use super::scalar::{Scalar, empty_column};
use crate::cloud::{Attribute, PointCloud, Precision, ScalarKind};
use crate::error::{Error, Location, Result};
use las::point::Format;
use las::{PointData, PointDataBuilder};
use laz::record::{
    LayeredPointRecordDecompressor, RecordDecompressor, SequentialPointRecordDecompressor,
};
use laz::{DecompressionSelection, LazVlr};
use nalgebra::{Point3, Vector3};
use rayon::prelude::*;
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// The first bytes of every LAS and LAZ file.
pub(crate) const SIGNATURE: &[u8; 4] = b"LASF";

/// `user_id` and `record_id` of the VLR in which mlsproj writes its
/// outputs' provenance, one line of text each.
pub(super) const PROVENANCE_USER: &str = "mlsproj";
pub(super) const PROVENANCE_RECORD: u16 = 1;

/// `user_id` and `record_id` of the VLR that describes the extra bytes.
pub(crate) const EXTRA_BYTES_USER: &str = "LASF_Spec";
pub(crate) const EXTRA_BYTES_RECORD: u16 = 4;

/// Bytes of one extra-bytes descriptor in that VLR.
pub(crate) const DESCRIPTOR_BYTES: usize = 192;

/// The LAS extra-bytes `data_type` codes 1–10 as the column types that hold
/// them (64-bit integers, which no column holds, as `f64`), with their size.
pub(crate) fn extra_type(code: u8) -> Option<(ScalarKind, usize)> {
    Some(match code {
        1 => (ScalarKind::U8, 1),
        2 => (ScalarKind::I8, 1),
        3 => (ScalarKind::U16, 2),
        4 => (ScalarKind::I16, 2),
        5 => (ScalarKind::U32, 4),
        6 => (ScalarKind::I32, 4),
        7 | 8 => (ScalarKind::F64, 8),
        9 => (ScalarKind::F32, 4),
        10 => (ScalarKind::F64, 8),
        _ => return None,
    })
}

/// The names of the standard LAS fields as attributes, in the order they
/// are read; an extra-bytes field never takes one of these names.
pub(crate) const STANDARD_FIELDS: [&str; 12] = [
    "intensity",
    "return_number",
    "number_of_returns",
    "classification",
    "scan_angle",
    "user_data",
    "point_source_id",
    "gps_time",
    "red",
    "green",
    "blue",
    "nir",
];

/// Where a column goes in a LAS point, or where an attribute read from
/// one comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Target {
    Axis(usize),
    Intensity,
    ReturnNumber,
    NumberOfReturns,
    Classification,
    ScanAngle,
    UserData,
    PointSourceId,
    GpsTime,
    Colour(usize),
    Nir,
    Extra,
}

impl Target {
    /// The standard field a column name stands for, if any.
    pub(super) fn of(name: &str) -> Target {
        match name {
            "x" => Target::Axis(0),
            "y" => Target::Axis(1),
            "z" => Target::Axis(2),
            "intensity" => Target::Intensity,
            "return_number" => Target::ReturnNumber,
            "number_of_returns" => Target::NumberOfReturns,
            "classification" => Target::Classification,
            "scan_angle" => Target::ScanAngle,
            "user_data" => Target::UserData,
            "point_source_id" => Target::PointSourceId,
            "gps_time" => Target::GpsTime,
            "red" => Target::Colour(0),
            "green" => Target::Colour(1),
            "blue" => Target::Colour(2),
            "nir" => Target::Nir,
            _ => Target::Extra,
        }
    }
}

/// The standard fields of point format `format` as attributes: their
/// names, in the order of [`STANDARD_FIELDS`], and where they are.
fn standard_fields(format: &Format) -> impl Iterator<Item = (&'static str, Target)> + '_ {
    STANDARD_FIELDS
        .into_iter()
        .map(|name| (name, Target::of(name)))
        .filter(|(_, field)| match field {
            Target::GpsTime => format.has_gps_time,
            Target::Colour(_) => format.has_color,
            Target::Nir => format.has_nir,
            _ => true,
        })
}

/// The column type of a standard field: its own, `f32` degrees for the
/// scan angle, and 16 bits for colours, as the file stores them.
fn standard_kind(field: Target) -> ScalarKind {
    match field {
        Target::ReturnNumber
        | Target::NumberOfReturns
        | Target::Classification
        | Target::UserData => ScalarKind::U8,
        Target::ScanAngle => ScalarKind::F32,
        Target::GpsTime => ScalarKind::F64,
        _ => ScalarKind::U16,
    }
}

/// Writes the values of the standard field `field` in `data` into `rows`;
/// true when they filled them (false for a field the format lacks).
fn fill_standard(field: Target, data: &PointData, rows: &mut AttributeRows) -> bool {
    match field {
        Target::Intensity => rows.put(data.intensity()),
        Target::ReturnNumber => rows.put(data.return_number()),
        Target::NumberOfReturns => rows.put(data.number_of_returns()),
        Target::Classification => rows.put(data.classification()),
        Target::ScanAngle => rows.put(data.scan_angle_degrees()),
        Target::UserData => rows.put(data.user_data()),
        Target::PointSourceId => rows.put(data.point_source_id()),
        Target::GpsTime => data.gps_time().is_some_and(|times| rows.put(times)),
        Target::Colour(channel) => data
            .rgb()
            .is_some_and(|rgb| rows.put(rgb.map(|(r, g, b)| [r, g, b][channel]))),
        Target::Nir => data.nir().is_some_and(|nir| rows.put(nir)),
        // Not standard fields: positions and extra bytes are read apart.
        Target::Axis(_) | Target::Extra => false,
    }
}

/// Where the values of an attribute column come from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// A standard field, with its name.
    Standard(&'static str, Target),
    /// A field of the extra bytes: its position in `Records::extra`.
    Extra(usize),
}

/// One described field of the extra bytes: where it is in the record and
/// how it is decoded.
#[derive(Debug, Clone)]
struct ExtraField {
    name: String,
    /// The `data_type` code (1–10).
    code: u8,
    /// Offset in the point record.
    offset: usize,
    /// `scale` and `offset` to apply when the descriptor gives them (the
    /// value is then `f64`).
    transform: Option<(f64, f64)>,
}

impl ExtraField {
    /// The column type the values are kept in.
    fn kind(&self) -> ScalarKind {
        match (self.transform, extra_type(self.code)) {
            (Some(_), _) | (None, None) => ScalarKind::F64,
            (None, Some((kind, _))) => kind,
        }
    }

    /// The field's value in `record`, scaled and offset when the
    /// descriptor says so. Each type loads its own size, so that a value
    /// costs a load and a conversion.
    #[inline(always)]
    fn value(&self, record: &[u8]) -> f64 {
        fn load<T: Scalar>(bytes: &[u8]) -> f64 {
            T::from_le_slice(&bytes[..size_of::<T>()]).to_f64()
        }
        let bytes = &record[self.offset..];
        let eight = || bytes[..8].try_into().unwrap_or_default();
        let raw = match self.code {
            1 => load::<u8>(bytes),
            2 => load::<i8>(bytes),
            3 => load::<u16>(bytes),
            4 => load::<i16>(bytes),
            5 => load::<u32>(bytes),
            6 => load::<i32>(bytes),
            7 => u64::from_le_bytes(eight()) as f64,
            8 => i64::from_le_bytes(eight()) as f64,
            9 => load::<f32>(bytes),
            _ => load::<f64>(bytes),
        };
        match self.transform {
            Some((scale, offset)) => raw * scale + offset,
            None => raw,
        }
    }
}

/// Reads the extra-bytes descriptors of the header; fields the file does
/// not describe (data type 0, deprecated arrays) are skipped, and a
/// description that does not fit the records is refused.
fn extra_fields(path: &Path, header: &las::Header, record_len: usize) -> Result<Vec<ExtraField>> {
    let extra = usize::from(header.point_format().extra_bytes);
    let Some(vlr) = header
        .all_vlrs()
        .find(|vlr| vlr.user_id == EXTRA_BYTES_USER && vlr.record_id == EXTRA_BYTES_RECORD)
    else {
        return Ok(Vec::new());
    };
    let mut offset = record_len - extra;
    let mut fields = Vec::new();
    let mut names: Vec<String> = STANDARD_FIELDS.map(String::from).to_vec();
    for descriptor in vlr.data.chunks_exact(DESCRIPTOR_BYTES) {
        let code = descriptor[2];
        let options = descriptor[3];
        let size = match code {
            0 => usize::from(options),
            1..=10 => extra_type(code).map_or(0, |(_, size)| size),
            11..=30 => {
                extra_type((code - 1) % 10 + 1).map_or(0, |(_, size)| size)
                    * usize::from((code - 1) / 10 + 1)
            }
            _ => {
                return Err(Error::format(
                    path,
                    Location::File,
                    format!("extra-bytes descriptor with unknown data type {code}"),
                ));
            }
        };
        if offset + size > record_len {
            return Err(Error::format(
                path,
                Location::File,
                format!(
                    "the extra-bytes descriptors describe more than the {extra} extra bytes of a point"
                ),
            ));
        }
        if (1..=10).contains(&code) {
            let raw_name = &descriptor[4..36];
            let end = raw_name.iter().position(|b| *b == 0).unwrap_or(32);
            let name = super::property_name(&String::from_utf8_lossy(&raw_name[..end]), &names);
            let f64_at = |at: usize| {
                f64::from_le_bytes(descriptor[at..at + 8].try_into().unwrap_or_default())
            };
            let transform = (options & 0b1_1000 != 0).then(|| {
                let scale = if options & 0b1000 != 0 {
                    f64_at(112)
                } else {
                    1.0
                };
                let shift = if options & 0b1_0000 != 0 {
                    f64_at(136)
                } else {
                    0.0
                };
                (scale, shift)
            });
            names.push(name.clone());
            fields.push(ExtraField {
                name,
                code,
                offset,
                transform,
            });
        }
        offset += size;
    }
    Ok(fields)
}

/// The compression of a LAZ file, from its `laszip encoded` VLR: refused
/// when its items do not add up to the point records (laz-rs asserts they
/// do) or when its points are not in chunks (only LASzip 1 wrote such
/// files; chunks are what can be decoded in parallel).
fn laszip_vlr(path: &Path, header: &las::Header, record_len: usize) -> Result<laz::LazVlr> {
    let refuse = |message: String| Error::format(path, Location::File, message);
    let Some(vlr) = header
        .all_vlrs()
        .find(|vlr| vlr.user_id == "laszip encoded" && vlr.record_id == 22204)
    else {
        return Err(refuse(
            "compressed, but without a 'laszip encoded' VLR".into(),
        ));
    };
    // The compressor (u16), 32 more bytes of settings, the item count, then
    // 6 bytes an item (type, size, version, each u16).
    let data = &vlr.data;
    let items = (|| {
        let count = usize::from(u16::from_le_bytes([*data.get(32)?, *data.get(33)?]));
        let items = data.get(34..34 + 6 * count)?;
        Some(
            items
                .chunks_exact(6)
                .map(|item| usize::from(u16::from_le_bytes([item[2], item[3]])))
                .sum::<usize>(),
        )
    })()
    .ok_or_else(|| refuse("the 'laszip encoded' VLR is too short".into()))?;
    if items != record_len {
        return Err(refuse(format!(
            "the LAZ items take {items} bytes a point, the header's records {record_len}"
        )));
    }
    // 2: points in chunks; 3: layered, in chunks.
    let compressor = u16::from_le_bytes([data[0], data[1]]);
    if !matches!(compressor, 2 | 3) {
        return Err(refuse(format!(
            "LAZ compressor {compressor} is not supported (points in chunks, 2 or 3, are)"
        )));
    }
    laz::LazVlr::from_buffer(data)
        .map_err(|error| refuse(format!("the 'laszip encoded' VLR is unreadable: {error}")))
}

/// Refuses a LAZ file whose chunk table declares more chunks than it has
/// bytes: laz-rs allocates the table first (16 bytes a chunk), so a corrupt
/// count would exhaust memory. The table is found as laz-rs finds it: at
/// the offset stored at the start of the point data, or, when that offset
/// was never written, at the offset stored in the file's last 8 bytes.
fn check_chunk_table(
    path: &Path,
    file: &mut BufReader<File>,
    data_start: u64,
    size: u64,
) -> Result<()> {
    let bad = |message: &str| Error::format(path, Location::File, message.to_string());
    let mut word = [0u8; 8];
    let read_at = |file: &mut BufReader<File>, at: SeekFrom, bytes: &mut [u8]| {
        file.seek(at).and_then(|_| file.read_exact(bytes)).ok()
    };
    read_at(file, SeekFrom::Start(data_start), &mut word)
        .ok_or_else(|| bad("the file ends before its compressed points"))?;
    let mut table = i64::from_le_bytes(word);
    if table <= data_start as i64 {
        read_at(file, SeekFrom::End(-8), &mut word)
            .ok_or_else(|| bad("the file ends before its chunk table"))?;
        table = i64::from_le_bytes(word);
    }
    let mut counts = [0u8; 8];
    let table = u64::try_from(table).unwrap_or(u64::MAX);
    if table <= data_start || read_at(file, SeekFrom::Start(table), &mut counts).is_none() {
        return Err(bad("the LAZ chunk table is missing or outside the file"));
    }
    let chunks = u64::from(u32::from_le_bytes([
        counts[4], counts[5], counts[6], counts[7],
    ]));
    if chunks > size {
        return Err(bad(&format!(
            "the LAZ chunk table declares {chunks} chunks, more than the file's {size} bytes can hold"
        )));
    }
    Ok(())
}

/// Refuses a LAS 1.4 file whose extended VLRs declare more bytes than the
/// file has: the `las` crate allocates each one's declared length (a u64)
/// before reading it.
fn check_evlrs(
    path: &Path,
    file: &mut BufReader<File>,
    raw: &las::raw::Header,
    size: u64,
) -> Result<()> {
    let Some(evlr) = raw.evlr else {
        return Ok(());
    };
    let mut at = evlr.start_of_first_evlr;
    for _ in 0..evlr.number_of_evlrs {
        // 60 bytes of header; the record's length at byte 20.
        let mut header = [0u8; 60];
        file.seek(SeekFrom::Start(at))
            .and_then(|_| file.read_exact(&mut header))
            .map_err(|_| {
                Error::format(
                    path,
                    Location::File,
                    "the file ends inside its extended VLRs",
                )
            })?;
        let length = u64::from_le_bytes(header[20..28].try_into().unwrap_or_default());
        at = at.saturating_add(60).saturating_add(length);
        if at > size {
            return Err(Error::format(
                path,
                Location::File,
                format!("an extended VLR declares {length} bytes, more than the file holds"),
            ));
        }
    }
    Ok(())
}

/// A LAS or LAZ file read chunk by chunk, its pieces decoded in parallel
/// (see [`super::las_pieces`]).
pub struct LasReader {
    path: PathBuf,
    /// The file, which each thread seeks to its piece's bytes.
    file: Mutex<File>,
    records: Records,
    pieces: Vec<Piece>,
    /// The first piece not yet read.
    next: usize,
    /// Points decoded but not yet handed out (fewer than a piece).
    rest: PointCloud,
    total: usize,
    read: usize,
    /// True after a fault: reading stops there (the request's later pieces
    /// may have been decoded already, and the points after the fault
    /// cannot be placed), and later requests are refused.
    broken: bool,
    /// The lines of mlsproj's provenance VLR (user `mlsproj`, record 1).
    comments: Vec<String>,
}

impl std::fmt::Debug for LasReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LasReader")
            .field("path", &self.path)
            .field("total", &self.total)
            .field("read", &self.read)
            .finish()
    }
}

/// A fault of the `las` crate as a one-line refusal naming the file.
fn las_error(path: &Path, error: las::Error) -> Error {
    match error {
        las::Error::Io(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::format(path, Location::File, "the file ends inside its header")
        }
        las::Error::Io(error) => Error::io(path, error),
        error => Error::format(path, Location::File, error.to_string()),
    }
}

/// A thread's buffers for decoding a piece.
struct Scratch {
    /// The piece's bytes, as in the file.
    bytes: Vec<u8>,
    /// A block of its records, decoded.
    records: PointData,
}

/// Why a piece could not be decoded.
enum PieceFault {
    /// Its bytes could not be read.
    Read(std::io::Error),
    /// They are not records of the file's format.
    Corrupt(String),
}

/// Reads the bytes of `piece` from `file` into `bytes`.
fn read_piece(file: &Mutex<File>, piece: &Piece, bytes: &mut Vec<u8>) -> std::io::Result<()> {
    bytes.resize(piece.bytes, 0);
    let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
    file.seek(SeekFrom::Start(piece.offset))?;
    file.read_exact(bytes)
}

/// How the point records of one file become points.
struct Records {
    /// An empty buffer of the file's records (format and transforms),
    /// cloned as a thread's scratch.
    template: PointData,
    /// The buffers of the threads decoding pieces, taken for a piece and
    /// given back: kept from piece to piece and from request to request,
    /// so that reading and decoding write into memory already mapped, and
    /// in cache (a fresh buffer a piece cost its page faults each time).
    scratch: Mutex<Vec<Scratch>>,
    extra: Vec<ExtraField>,
    /// The extra-bytes fields `nx ny nz` (their positions in `extra`),
    /// when all three are there: the normals, written so by mlsproj (or
    /// anyone).
    normals: Option<[usize; 3]>,
    /// The attribute columns, in order: every standard field of the
    /// format, then the extra-bytes fields but the normals; none when they
    /// are skipped (see [`LasReader::skip_attributes`]).
    sources: Vec<Source>,
    /// The compression of a LAZ file.
    laz: Option<laz::LazVlr>,
    /// The layers of a LAZ file that are decompressed.
    selection: laz::DecompressionSelection,
}

impl LasReader {
    /// Opens a LAS or LAZ file and reads its header (and a LAZ file's chunk
    /// table); a file whose points cannot fit in it is refused here rather
    /// than when reading them.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|error| Error::io(path, error))?;
        let size = file
            .metadata()
            .map_err(|error| Error::io(path, error))?
            .len();
        // The header is checked before the `las` crate reads it, and the
        // chunk table's count before laz-rs does: both allocate what the
        // file declares.
        let mut file = BufReader::with_capacity(1 << 16, file);
        let raw = las::raw::Header::read_from(&mut file).map_err(|error| las_error(path, error))?;
        check_evlrs(path, &mut file, &raw, size)?;
        let data_start = u64::from(raw.offset_to_point_data);
        file.rewind().map_err(|error| Error::io(path, error))?;
        let header = las::Header::new(&mut file).map_err(|error| las_error(path, error))?;
        let template = PointDataBuilder::new().for_header(&header).build();
        let record_len = template.record_len();
        let total = header.number_of_points();
        let format = header.point_format();
        // LAZ stores at least a few bits a point; LAS the whole record.
        let least = if format.is_compressed {
            1
        } else {
            record_len as u64 * 8
        };
        if total.saturating_mul(least) / 8 > size {
            return Err(Error::format(
                path,
                Location::File,
                format!(
                    "the header declares {total} points, more than the file's {size} bytes can hold"
                ),
            ));
        }
        let total = usize::try_from(total).unwrap_or(usize::MAX);
        let (laz, pieces) = if format.is_compressed {
            let vlr = laszip_vlr(path, &header, record_len)?;
            check_chunk_table(path, &mut file, data_start, size)?;
            let pieces = laz_pieces(path, &mut file, data_start, &vlr, total, size)?;
            (Some(vlr), pieces)
        } else {
            (None, las_pieces(total, record_len, data_start))
        };
        let extra = extra_fields(path, &header, record_len)?;
        let comments = header
            .all_vlrs()
            .find(|vlr| vlr.user_id == PROVENANCE_USER && vlr.record_id == PROVENANCE_RECORD)
            .map(|vlr| {
                String::from_utf8_lossy(&vlr.data)
                    .lines()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let axis = |name: &str| extra.iter().position(|field| field.name == name);
        let normals = match (axis("nx"), axis("ny"), axis("nz")) {
            (Some(x), Some(y), Some(z)) => Some([x, y, z]),
            _ => None,
        };
        let sources = standard_fields(format)
            .map(|(name, field)| Source::Standard(name, field))
            .chain(
                (0..extra.len())
                    .filter(|at| !normals.is_some_and(|axes| axes.contains(at)))
                    .map(Source::Extra),
            )
            .collect();
        let records = Records {
            template,
            scratch: Mutex::new(Vec::new()),
            extra,
            normals,
            sources,
            laz,
            selection: laz::DecompressionSelection::all(),
        };
        let rest = records.empty();
        Ok(LasReader {
            path: path.to_path_buf(),
            file: Mutex::new(file.into_inner()),
            records,
            pieces,
            next: 0,
            rest,
            total,
            read: 0,
            broken: false,
            comments,
        })
    }

    /// The lines of the file's mlsproj provenance VLR (where a tile output
    /// records the job it belongs to); none for other files.
    pub fn comments(&self) -> &[String] {
        &self.comments
    }

    /// Number of points the header declares.
    pub fn len(&self) -> usize {
        self.total
    }

    /// True when the file has no point.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Positions are scaled integers that `f32` cannot hold at UTM sizes.
    pub fn precision(&self) -> Precision {
        Precision::Double
    }

    /// Reads positions and normals only, for a cloud whose attributes play
    /// no part: a LAZ file of point format 6–10 then decompresses only the
    /// layers of `x y z` (and the extra bytes, when they hold the normals),
    /// and no attribute column is made. Called before the first read.
    pub fn skip_attributes(&mut self) {
        use laz::DecompressionSelection as Layers;
        let mut layers = Layers::XY_RETURNS_CHANNEL | Layers::Z;
        if self.records.normals.is_some() {
            layers |= Layers::ALL_EXTRA_BYTES;
        }
        self.records.selection = Layers(layers);
        self.records.sources.clear();
        self.rest = self.records.empty();
    }

    /// The next up to `max` points: positions, and as attributes `intensity`
    /// (u16), `return_number`, `number_of_returns`, `classification` and
    /// `user_data` (u8), `scan_angle` (f32, degrees), `point_source_id`
    /// (u16), `gps_time` (f64, when the format has it), `red green blue`
    /// (u16, kept at 16 bits, when it has colour), `nir` (u16) and every
    /// described extra-bytes field under its (sanitised) name, except
    /// `nx ny nz` (all three), which are the normals.
    pub fn read_chunk(&mut self, max: usize) -> Result<PointCloud> {
        if self.broken {
            return Err(Error::format(
                &self.path,
                Location::File,
                "reading stopped at an earlier fault",
            ));
        }
        let rows = max.min(self.total - self.read);
        let mut chunk = std::mem::replace(&mut self.rest, self.records.empty());
        if chunk.len() < rows {
            // The pieces that complete the request, the last one whole.
            let missing = rows - chunk.len();
            let pieces = holding(&self.pieces, self.next, missing);
            let points = pieces.iter().map(|piece| piece.points).sum();
            let first = self.read + chunk.len();
            // The pieces add up to the header's count (they are made so).
            debug_assert!(points >= missing, "the pieces hold the request");
            let rows = piece_rows(&mut chunk, pieces);
            let decoded = self.records.decode_pieces(&self.file, pieces, rows);
            self.next += pieces.len();
            match decoded {
                // SAFETY: every piece wrote all its rows (decode_pieces
                // says so only then), and the pieces had all the rows.
                Ok(()) => unsafe { commit_rows(&mut chunk, points) },
                Err((piece, fault)) => {
                    self.broken = true;
                    let at = Location::Element {
                        element: "point".to_string(),
                        index: first + pieces[..piece].iter().map(|p| p.points).sum::<usize>(),
                    };
                    return Err(match fault {
                        PieceFault::Read(error)
                            if error.kind() == std::io::ErrorKind::UnexpectedEof =>
                        {
                            Error::format(
                                &self.path,
                                at,
                                format!(
                                    "the file ends before its last point ({} declared)",
                                    self.total
                                ),
                            )
                        }
                        PieceFault::Read(error) => Error::io(&self.path, error),
                        PieceFault::Corrupt(message) => Error::format(&self.path, at, message),
                    });
                }
            }
        }
        // The points of the last piece beyond the request wait for the next
        // (the chunk keeps their room: at most one piece's, 5% of a
        // request with LASzip's 50,000-point chunks).
        if chunk.len() > rows {
            self.rest = chunk.split_off(rows);
        }
        self.read += rows;
        Ok(chunk)
    }
}

/// Records decoded and converted at a time by a thread: few enough
/// (170 kB of sphere_large's 42-byte records) to stay in the core's cache
/// between being decompressed and being read once for each column.
const BLOCK: usize = 4096;

/// laz-rs's decompressor of one chunk, `bytes`, as its parallel
/// decompressor makes one for each chunk, decompressing the layers of
/// `selection`: driven here a block of records at a time.
fn chunk_decompressor<'a>(
    vlr: &LazVlr,
    bytes: &'a [u8],
    selection: DecompressionSelection,
) -> std::result::Result<Box<dyn RecordDecompressor<Cursor<&'a [u8]>> + 'a>, String> {
    let input = Cursor::new(bytes);
    let mut decompressor: Box<dyn RecordDecompressor<Cursor<&'a [u8]>> + 'a> =
        match vlr.items().first().map(|item| (item, item.version())) {
            Some((_, 1 | 2)) => Box::new(SequentialPointRecordDecompressor::new(input)),
            Some((_, 3 | 4)) => Box::new(LayeredPointRecordDecompressor::new(input)),
            Some((item, version)) => {
                return Err(format!(
                    "LAZ item {:?} of compression version {version} is not supported",
                    item.item_type()
                ));
            }
            None => return Err("the 'laszip encoded' VLR lists no item".into()),
        };
    decompressor
        .set_fields_from(vlr.items())
        .map_err(|error| format!("the LAZ items cannot be decompressed: {error}"))?;
    decompressor.set_selection(selection);
    Ok(decompressor)
}

impl Records {
    /// A cloud of no point with the file's columns (but those skipped).
    fn empty(&self) -> PointCloud {
        let attributes = self
            .sources
            .iter()
            .map(|source| {
                let (name, kind) = match *source {
                    Source::Standard(name, field) => (name, standard_kind(field)),
                    Source::Extra(at) => (self.extra[at].name.as_str(), self.extra[at].kind()),
                };
                Attribute {
                    name: name.to_string(),
                    values: empty_column(kind, 0),
                }
            })
            .collect();
        PointCloud {
            positions: Vec::new(),
            normals: self.normals.map(|_| Vec::new()),
            colours: None,
            attributes,
            precision: Precision::Double,
            // Extra bytes of any type; mlsproj's own outputs write float.
            normal_precision: Precision::Single,
        }
    }

    /// Decodes `pieces` of `file` into their `rows`, each piece on one
    /// thread; a fault names the piece (its position in `pieces`) and what
    /// is wrong.
    fn decode_pieces(
        &self,
        file: &Mutex<File>,
        pieces: &[Piece],
        rows: Vec<PieceRows<'_>>,
    ) -> std::result::Result<(), (usize, PieceFault)> {
        rows.into_par_iter()
            .zip(pieces)
            .enumerate()
            .try_for_each(|(at, (rows, piece))| {
                let taken = self
                    .scratch
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .pop();
                let mut scratch = taken.unwrap_or_else(|| Scratch {
                    bytes: Vec::new(),
                    records: self.template.clone(),
                });
                let decoded = read_piece(file, piece, &mut scratch.bytes)
                    .map_err(PieceFault::Read)
                    .and_then(|()| {
                        self.decode_piece(&mut scratch.records, &scratch.bytes, piece.points, rows)
                            .map_err(PieceFault::Corrupt)
                    });
                self.scratch
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(scratch);
                decoded.map_err(|fault| (at, fault))
            })
    }

    /// Decodes the `points` points of one piece, its `bytes`, into its
    /// `rows` (which it writes all, or fails), [`BLOCK`] records at a time
    /// through `scratch`: each block is decompressed (LAZ) or copied (LAS)
    /// there and converted while in cache.
    fn decode_piece(
        &self,
        scratch: &mut PointData,
        bytes: &[u8],
        points: usize,
        mut rows: PieceRows<'_>,
    ) -> std::result::Result<(), String> {
        let mut decompressor = match &self.laz {
            Some(vlr) => Some(chunk_decompressor(vlr, bytes, self.selection)?),
            None => None,
        };
        let record_len = scratch.record_len();
        let mut done = 0;
        while done < points {
            let block = (points - done).min(BLOCK);
            let records = scratch.resize_for(block);
            match &mut decompressor {
                None => records.copy_from_slice(&bytes[done * record_len..][..block * record_len]),
                // laz-rs panics on some corrupt compressed data instead of
                // failing: the panic is caught and the reader not used
                // again.
                Some(decompressor) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    decompressor.decompress_many(records)
                }))
                .map_err(|_| "the compressed points are corrupt".to_string())?
                .map_err(|error| {
                    if error.kind() == std::io::ErrorKind::UnexpectedEof {
                        "the compressed points end before the count the header declares (or are corrupt)".to_string()
                    } else {
                        format!("the compressed points are corrupt: {error}")
                    }
                })?,
            }
            if !self.convert(scratch, rows.take_front(block)) {
                return Err("the records do not fit the columns read".into());
            }
            done += block;
        }
        Ok(())
    }

    /// Converts the records of `data` into their `rows`: positions through
    /// the header's scale and offset (the first 12 bytes of every format's
    /// record), the normals and the attributes; true when every row of
    /// every column is written (the rows were made for these columns, so
    /// always).
    fn convert(&self, data: &PointData, mut rows: PieceRows<'_>) -> bool {
        let records = || data.raw_bytes().chunks_exact(data.record_len());
        let transforms = data.transforms();
        let axes = [transforms.x, transforms.y, transforms.z];
        let mut written = rows.put_positions(records().map(|record| {
            let xyz: &[u8; 12] = record[..12].try_into().unwrap_or(&[0; 12]);
            let raw =
                |at: usize| i32::from_le_bytes([xyz[at], xyz[at + 1], xyz[at + 2], xyz[at + 3]]);
            Point3::new(
                axes[0].direct(raw(0)),
                axes[1].direct(raw(4)),
                axes[2].direct(raw(8)),
            )
        }));
        written &= rows.put_normals(self.normals.map(|axes| {
            let [x, y, z] = axes.map(|at| &self.extra[at]);
            records().map(|record| {
                Vector3::new(
                    x.value(record) as f32,
                    y.value(record) as f32,
                    z.value(record) as f32,
                )
            })
        }));
        let attributes = rows.attributes();
        written &= attributes.len() == self.sources.len();
        for (source, rows) in self.sources.iter().zip(attributes) {
            written &= match *source {
                Source::Standard(_, field) => fill_standard(field, data, rows),
                Source::Extra(at) => {
                    let field = &self.extra[at];
                    rows.fill(records().map(|record| field.value(record)))
                }
            };
        }
        written
    }
}
