//! Reading LAS 1.0–1.4 and LAZ files (point formats 0–10) with the `las`
//! crate, chunk by chunk: a LAZ file is decompressed one chunk of points at
//! a time (by laz-rs, its chunks decoded in parallel), so memory holds one
//! chunk, as for PLY.
//!
//! Positions become `f64` through the header's scale and offset, so that
//! UTM-sized coordinates keep their millimetres; every standard field and
//! every described extra-bytes field becomes a typed attribute.

use super::las_pieces::{Piece, las_pieces, laz_pieces, next_group, read_group, split};
use crate::cloud::{Attribute, Column, PointCloud, Precision, ScalarKind};
use crate::error::{Error, Location, Result};
use las::{PointData, PointDataBuilder};
use laz::laszip::ChunkTableEntry;
use nalgebra::{Point3, Vector3};
use rayon::prelude::*;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

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
    /// descriptor says so.
    fn value(&self, record: &[u8]) -> f64 {
        let size = extra_type(self.code).map_or(0, |(_, size)| size);
        let mut a = [0u8; 8];
        a[..size].copy_from_slice(&record[self.offset..self.offset + size]);
        let raw = match self.code {
            1 => f64::from(a[0]),
            2 => f64::from(a[0] as i8),
            3 => f64::from(u16::from_le_bytes([a[0], a[1]])),
            4 => f64::from(i16::from_le_bytes([a[0], a[1]])),
            5 => f64::from(u32::from_le_bytes([a[0], a[1], a[2], a[3]])),
            6 => f64::from(i32::from_le_bytes([a[0], a[1], a[2], a[3]])),
            7 => u64::from_le_bytes(a) as f64,
            8 => i64::from_le_bytes(a) as f64,
            9 => f64::from(f32::from_le_bytes([a[0], a[1], a[2], a[3]])),
            _ => f64::from_le_bytes(a),
        };
        match self.transform {
            Some((scale, offset)) => raw * scale + offset,
            None => raw,
        }
    }

    /// Appends the field's values in `records` to `column`.
    fn decode(&self, records: &[u8], stride: usize, column: &mut Column) {
        let records = records.chunks_exact(stride);
        let value = |record| self.value(record);
        match column {
            Column::F64(values) => values.extend(records.map(value)),
            Column::F32(values) => values.extend(records.map(|r| value(r) as f32)),
            Column::U8(values) => values.extend(records.map(|r| value(r) as u8)),
            Column::I8(values) => values.extend(records.map(|r| value(r) as i8)),
            Column::U16(values) => values.extend(records.map(|r| value(r) as u16)),
            Column::I16(values) => values.extend(records.map(|r| value(r) as i16)),
            Column::U32(values) => values.extend(records.map(|r| value(r) as u32)),
            Column::I32(values) => values.extend(records.map(|r| value(r) as i32)),
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

/// A LAS or LAZ file read chunk by chunk, a group of pieces at a time
/// (see [`super::las_pieces`]).
pub struct LasReader {
    path: PathBuf,
    /// The file, at the bytes of the next piece.
    file: BufReader<File>,
    records: Records,
    pieces: Vec<Piece>,
    /// The first piece not yet read.
    next: usize,
    /// The bytes of the group of pieces being decoded, reused.
    bytes: Vec<u8>,
    /// Points decoded but not yet handed out (fewer than a piece).
    rest: PointCloud,
    total: usize,
    read: usize,
    /// True after decompression panicked (the decoder's state is unknown)
    /// or a read stopped part way into a group (the file's position is).
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

/// How the point records of one file become points.
struct Records {
    /// An empty buffer of the file's records (format and transforms),
    /// cloned as each thread's scratch.
    template: PointData,
    extra: Vec<ExtraField>,
    /// The extra-bytes fields `nx ny nz` (their positions in `extra`),
    /// when all three are there: the normals, written so by mlsproj (or
    /// anyone).
    normals: Option<[usize; 3]>,
    /// The compression of a LAZ file.
    laz: Option<laz::LazVlr>,
    /// Whether the attributes are decoded (see [`LasReader::skip_attributes`]).
    attributes: bool,
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
            file.seek(SeekFrom::Start(data_start))
                .map_err(|error| Error::io(path, error))?;
            (None, las_pieces(total, record_len))
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
        let records = Records {
            template,
            extra,
            normals,
            laz,
            attributes: true,
            selection: laz::DecompressionSelection::all(),
        };
        let rest = records.decode(&records.template);
        Ok(LasReader {
            path: path.to_path_buf(),
            file,
            records,
            pieces,
            next: 0,
            bytes: Vec::new(),
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
        self.records.attributes = false;
        self.rest = self.records.decode(&self.records.template);
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
        let mut chunk = if self.rest.len() > rows {
            let rest = self.rest.slice(rows..self.rest.len());
            let chunk = self.rest.slice(0..rows);
            self.rest = rest;
            chunk
        } else {
            let empty = self.rest.slice(0..0);
            std::mem::replace(&mut self.rest, empty)
        };
        let missing = rows - chunk.len();
        reserve(&mut chunk, missing);
        while chunk.len() < rows {
            let first = self.read + chunk.len();
            let group = next_group(&self.pieces, self.next, rows - chunk.len());
            let at = |index| Location::Element {
                element: "point".to_string(),
                index,
            };
            let complete = !group.is_empty()
                && read_group(&mut self.file, group, &mut self.bytes).map_err(|error| {
                    // The file stands part way into a group: no later
                    // read could find its records' boundaries.
                    self.broken = true;
                    Error::io(&self.path, error)
                })?;
            if !complete {
                self.broken = true;
                return Err(Error::format(
                    &self.path,
                    at(first),
                    format!(
                        "the file ends before its last point ({} declared)",
                        self.total
                    ),
                ));
            }
            let decoded = self.records.decode_pieces(group, &self.bytes);
            self.next += group.len();
            let pieces = match decoded {
                Ok(pieces) => pieces,
                Err((piece, error)) => {
                    self.broken = true;
                    let index = first + group[..piece].iter().map(|p| p.points).sum::<usize>();
                    return Err(Error::format(&self.path, at(index), error));
                }
            };
            for piece in pieces {
                let wanted = rows - chunk.len();
                if piece.len() > wanted {
                    chunk.append(&piece.slice(0..wanted));
                    self.rest = piece.slice(wanted..piece.len());
                } else {
                    chunk.append(&piece);
                }
            }
        }
        self.read += rows;
        Ok(chunk)
    }
}

/// Makes room for `additional` more points in every column of `cloud`, so
/// that appending the pieces of a large request does not move it.
fn reserve(cloud: &mut PointCloud, additional: usize) {
    cloud.positions.reserve(additional);
    if let Some(normals) = &mut cloud.normals {
        normals.reserve(additional);
    }
    for attribute in &mut cloud.attributes {
        crate::cloud::with_column!(&mut attribute.values, values => values.reserve(additional));
    }
}

impl Records {
    /// The points of the pieces of `group`, whose bytes are `bytes`, each
    /// decoded (decompressed, for LAZ) and converted on one thread; a
    /// fault names the piece (its position in the group) and what is wrong.
    fn decode_pieces(
        &self,
        group: &[Piece],
        bytes: &[u8],
    ) -> std::result::Result<Vec<PointCloud>, (usize, String)> {
        let jobs: Vec<(usize, &[u8], usize)> = split(group, bytes)
            .into_iter()
            .zip(group)
            .enumerate()
            .map(|(at, (bytes, piece))| (at, bytes, piece.points))
            .collect();
        jobs.into_par_iter()
            .map_init(
                || self.template.clone(),
                |scratch, (at, bytes, points)| {
                    self.decode_piece(scratch, bytes, points)
                        .map_err(|error| (at, error))
                },
            )
            .collect()
    }

    /// The `points` points of one piece, its `bytes` decoded into
    /// `scratch`.
    fn decode_piece(
        &self,
        scratch: &mut PointData,
        bytes: &[u8],
        points: usize,
    ) -> std::result::Result<PointCloud, String> {
        let records = scratch.resize_for(points);
        match &self.laz {
            None => records.copy_from_slice(bytes),
            Some(vlr) => {
                let chunk = [ChunkTableEntry {
                    point_count: points as u64,
                    byte_count: bytes.len() as u64,
                }];
                // laz-rs panics on some corrupt compressed data instead of
                // failing: the panic is caught and the reader not used
                // again.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    laz::par_decompress_selective(bytes, records, vlr, &chunk, self.selection)
                }))
                .map_err(|_| "the compressed points are corrupt".to_string())?
                .map_err(|error| match error {
                    laz::LasZipError::IoError(error)
                        if error.kind() == std::io::ErrorKind::UnexpectedEof =>
                    {
                        "the compressed points end before the count the header declares (or are corrupt)".to_string()
                    }
                    error => format!("the compressed points are corrupt: {error}"),
                })?;
            }
        }
        Ok(self.decode(scratch))
    }

    /// The standard fields and the extra bytes (but the normals) of
    /// `data` as attributes.
    fn attributes(&self, data: &PointData) -> Vec<Attribute> {
        let format = data.format();
        let mut attributes = Vec::new();
        let mut push = |name: &str, values: Column| {
            attributes.push(Attribute {
                name: name.to_string(),
                values,
            });
        };
        push("intensity", Column::U16(data.intensity().collect()));
        push("return_number", Column::U8(data.return_number().collect()));
        push(
            "number_of_returns",
            Column::U8(data.number_of_returns().collect()),
        );
        push(
            "classification",
            Column::U8(data.classification().collect()),
        );
        push(
            "scan_angle",
            Column::F32(data.scan_angle_degrees().collect()),
        );
        push("user_data", Column::U8(data.user_data().collect()));
        push(
            "point_source_id",
            Column::U16(data.point_source_id().collect()),
        );
        if let Some(times) = data.gps_time() {
            push("gps_time", Column::F64(times.collect()));
        }
        if let Some(rgb) = data.rgb() {
            let (mut red, mut green, mut blue) = (Vec::new(), Vec::new(), Vec::new());
            for (r, g, b) in rgb {
                red.push(r);
                green.push(g);
                blue.push(b);
            }
            push("red", Column::U16(red));
            push("green", Column::U16(green));
            push("blue", Column::U16(blue));
        }
        if format.has_nir
            && let Some(nir) = data.nir()
        {
            push("nir", Column::U16(nir.collect()));
        }
        for (at, field) in self.extra.iter().enumerate() {
            if self.normals.is_some_and(|axes| axes.contains(&at)) {
                continue;
            }
            let mut column = super::scalar::empty_column(field.kind(), data.len());
            field.decode(data.raw_bytes(), data.record_len(), &mut column);
            push(&field.name, column);
        }
        attributes
    }

    /// The points of `data` as a cloud (without attributes when they are
    /// skipped).
    fn decode(&self, data: &PointData) -> PointCloud {
        let positions = data
            .x()
            .zip(data.y())
            .zip(data.z())
            .map(|((x, y), z)| Point3::new(x, y, z))
            .collect();
        let attributes = if self.attributes {
            self.attributes(data)
        } else {
            Vec::new()
        };
        let normals = self.normals.map(|axes| {
            let [x, y, z] = axes.map(|at| &self.extra[at]);
            data.raw_bytes()
                .chunks_exact(data.record_len())
                .map(|r| Vector3::new(x.value(r) as f32, y.value(r) as f32, z.value(r) as f32))
                .collect()
        });
        PointCloud {
            positions,
            normals,
            colours: None,
            attributes,
            precision: Precision::Double,
            // Extra bytes of any type; mlsproj's own outputs write float.
            normal_precision: Precision::Single,
        }
    }
}
