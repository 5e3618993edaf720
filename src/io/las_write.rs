//! Writing LAS 1.4 and LAZ files, streamed chunk by chunk and committed
//! atomically like PLY.
//!
//! Columns named as a standard LAS field (`intensity`, `return_number`,
//! `number_of_returns`, `classification`, `scan_angle`, `user_data`,
//! `point_source_id`, `gps_time`, `red green blue`, `nir`) go into that
//! field, converted to its type (rounded and clamped to its range; 8-bit
//! `red green blue` are scaled to 16 bits by 257); every other column goes
//! into the extra bytes, described under its name and with its type, so
//! that no extra-bytes name repeats a standard field's. The point format
//! is 6, 7 with colour, 8 with colour and `nir`.

use super::atomic::AtomicFile;
use super::las::{DESCRIPTOR_BYTES, EXTRA_BYTES_RECORD, EXTRA_BYTES_USER, Target};
use super::output::{RowLedger, refusal};
use super::scalar::Scalar;
use crate::cloud::with_column;
use crate::cloud::{Attribute, Column, ScalarKind, finite_bounds};
use crate::error::{Error, Result};
use las::point::{Classification, Format};
use las::{Builder, Color, Point, Transform, Vector, Version, Vlr};
use nalgebra::Point3;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The extra-bytes `data_type` code of a column type.
fn extra_code(kind: ScalarKind) -> u8 {
    match kind {
        ScalarKind::U8 => 1,
        ScalarKind::I8 => 2,
        ScalarKind::U16 => 3,
        ScalarKind::I16 => 4,
        ScalarKind::U32 => 5,
        ScalarKind::I32 => 6,
        ScalarKind::F32 => 9,
        ScalarKind::F64 => 10,
    }
}

/// One descriptor of the extra-bytes VLR (LAS 1.4, table 24).
fn descriptor(name: &str, kind: ScalarKind) -> [u8; DESCRIPTOR_BYTES] {
    let mut bytes = [0u8; DESCRIPTOR_BYTES];
    bytes[2] = extra_code(kind);
    bytes[4..4 + name.len()].copy_from_slice(name.as_bytes());
    let description = b"written by mlsproj";
    bytes[160..160 + description.len()].copy_from_slice(description);
    bytes
}

/// Scale and offset for one axis from the first chunk's extent `[lo, hi]`:
/// room for sixteen times that extent (at least a thousandth of the
/// distance from the origin) at the finest power-of-ten scale that `i32`
/// holds, so that a unit sphere keeps 10⁻⁸ and UTM coordinates keep far
/// below their millimetres.
fn axis_transform(lo: f64, hi: f64) -> Transform {
    let centre = 0.5 * (lo + hi);
    let reach = (16.0 * (hi - lo)).max(1e-3 * centre.abs());
    let reach = if reach > 0.0 { reach } else { 1.0 };
    let scale = 10f64.powf((reach / f64::from(i32::MAX)).log10().ceil());
    Transform {
        scale,
        offset: (centre / scale).round() * scale,
    }
}

/// Streams a LAS or LAZ file; see the module's documentation.
pub struct LasWriter {
    path: PathBuf,
    file: Option<AtomicFile>,
    rows: RowLedger,
    targets: Vec<Target>,
    format: Format,
    vlrs: Vec<Vlr>,
    /// Created with the first chunk, whose extent sets scale and offset.
    writer: Option<las::Writer<BufWriter<File>>>,
}

impl std::fmt::Debug for LasWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LasWriter")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .finish()
    }
}

/// A fault of the `las` crate while writing, naming the output.
fn las_error(path: &Path, error: las::Error) -> Error {
    match error {
        las::Error::Io(error) => Error::io(path, error),
        error => Error::Invalid(format!("{}: {error}", path.display())),
    }
}

impl LasWriter {
    /// Starts writing `count` points with the columns of `schema` (which
    /// must include `x y z`) to `path`, LAZ when `compressed`; `comments`
    /// go into a VLR (user `mlsproj`, record 1) as lines of text.
    pub fn create(
        path: &Path,
        schema: &[(String, ScalarKind)],
        count: usize,
        compressed: bool,
        comments: &[String],
    ) -> Result<Self> {
        let invalid = |message: String| Error::Invalid(format!("{}: {message}", path.display()));
        let targets: Vec<Target> = schema.iter().map(|(name, _)| Target::of(name)).collect();
        for axis in 0..3 {
            if !targets.contains(&Target::Axis(axis)) {
                return Err(invalid("a LAS file needs columns x, y and z".to_string()));
            }
        }
        for (index, (name, _)) in schema.iter().enumerate() {
            if schema[..index].iter().any(|(earlier, _)| earlier == name) {
                return Err(invalid(format!("column '{name}' is given twice")));
            }
            if name.len() > 32 && targets[index] == Target::Extra {
                return Err(invalid(format!(
                    "'{name}' is longer than the 32 bytes of an extra-bytes name"
                )));
            }
        }
        let colour = (0..3).all(|channel| targets.contains(&Target::Colour(channel)));
        let nir = colour && targets.contains(&Target::Nir);
        let mut format = Format::new(match (colour, nir) {
            (true, true) => 8,
            (true, false) => 7,
            _ => 6,
        })
        .map_err(|error| las_error(path, error))?;
        format.is_compressed = compressed;
        let mut targets = targets;
        let mut descriptors = Vec::new();
        for ((name, kind), target) in schema.iter().zip(&mut targets) {
            // Colour channels without all three, or nir without colour,
            // have no field in the chosen format.
            if matches!(target, Target::Colour(_)) && !colour || *target == Target::Nir && !nir {
                *target = Target::Extra;
            }
            if *target == Target::Extra {
                descriptors.extend(descriptor(name, *kind));
                format.extra_bytes += super::scalar::size_of_kind(*kind) as u16;
            }
        }
        let mut vlrs = Vec::new();
        if !descriptors.is_empty() {
            vlrs.push(Vlr {
                user_id: EXTRA_BYTES_USER.to_string(),
                record_id: EXTRA_BYTES_RECORD,
                description: "extra bytes".to_string(),
                data: descriptors,
            });
        }
        if !comments.is_empty() {
            vlrs.push(Vlr {
                user_id: super::las::PROVENANCE_USER.to_string(),
                record_id: super::las::PROVENANCE_RECORD,
                description: "provenance".to_string(),
                data: comments.join("\n").into_bytes(),
            });
        }
        Ok(LasWriter {
            path: path.to_path_buf(),
            file: Some(AtomicFile::create(path)?),
            rows: RowLedger::new(schema, count),
            targets,
            format,
            vlrs,
            writer: None,
        })
    }

    /// A refused request, naming the output file.
    fn invalid(&self, message: impl std::fmt::Display) -> Error {
        refusal(&self.path, message)
    }

    /// Starts the `las` writer with scale and offset from `positions`.
    fn start(&mut self, positions: &[Point3<f64>]) -> Result<()> {
        let (lo, hi) = finite_bounds(positions).unwrap_or((Point3::origin(), Point3::origin()));
        let mut builder = Builder::default();
        builder.version = Version::new(1, 4);
        builder.point_format = self.format;
        builder.generating_software = format!("mlsproj {}", env!("CARGO_PKG_VERSION"));
        builder.transforms = Vector {
            x: axis_transform(lo.x, hi.x),
            y: axis_transform(lo.y, hi.y),
            z: axis_transform(lo.z, hi.z),
        };
        builder.vlrs = self.vlrs.clone();
        let header = builder
            .into_header()
            .map_err(|error| las_error(&self.path, error))?;
        let file = match &self.file {
            Some(file) => file.handle()?,
            None => return Err(self.invalid("the file is already finished")),
        };
        let writer = las::Writer::new(BufWriter::with_capacity(1 << 20, file), header)
            .map_err(|error| las_error(&self.path, error))?;
        self.writer = Some(writer);
        Ok(())
    }

    /// Appends the rows of `columns`, which must follow the schema (same
    /// names and types, in order) and have equal lengths.
    pub fn write_chunk(&mut self, columns: &[Attribute]) -> Result<()> {
        let rows = self.rows.admit(&self.path, columns)?;
        let outcome = self.write_rows(columns, rows);
        self.rows.record(rows, outcome)
    }

    /// Encodes and writes `rows` points.
    fn write_rows(&mut self, columns: &[Attribute], rows: usize) -> Result<()> {
        let value = |column: &Column, row: usize| -> f64 {
            with_column!(column, values => values[row].to_f64())
        };
        let axis = |index: usize| {
            let at = self.targets.iter().position(|t| *t == Target::Axis(index));
            at.map(|at| &columns[at].values)
        };
        let (Some(x), Some(y), Some(z)) = (axis(0), axis(1), axis(2)) else {
            return Err(self.invalid("a LAS file needs columns x, y and z"));
        };
        if self.writer.is_none() {
            let positions: Vec<Point3<f64>> = (0..rows)
                .map(|row| Point3::new(value(x, row), value(y, row), value(z, row)))
                .collect();
            self.start(&positions)?;
        }
        let path = self.path.clone();
        let targets = self.targets.clone();
        let Some(writer) = self.writer.as_mut() else {
            return Err(self.invalid("the file is already finished"));
        };
        for row in 0..rows {
            // Formats 6 to 8 all have a GPS time.
            let mut point = Point {
                gps_time: Some(0.0),
                ..Point::default()
            };
            let mut colour = [0u16; 3];
            let mut position = [0.0; 3];
            for (column, target) in columns.iter().zip(&targets) {
                let values = &column.values;
                let v = value(values, row);
                let clamp = |max: f64| v.round().clamp(0.0, max);
                match target {
                    Target::Axis(index) => position[*index] = v,
                    Target::Intensity => point.intensity = clamp(65535.0) as u16,
                    Target::ReturnNumber => point.return_number = clamp(15.0) as u8,
                    Target::NumberOfReturns => point.number_of_returns = clamp(15.0) as u8,
                    Target::Classification => {
                        let class = clamp(255.0) as u8;
                        point.classification =
                            Classification::new(class).unwrap_or(Classification::Reserved(class));
                    }
                    Target::ScanAngle => point.scan_angle = v.clamp(-180.0, 180.0) as f32,
                    Target::UserData => point.user_data = clamp(255.0) as u8,
                    Target::PointSourceId => point.point_source_id = clamp(65535.0) as u16,
                    Target::GpsTime => point.gps_time = Some(v),
                    Target::Colour(channel) => {
                        colour[*channel] = if values.kind() == ScalarKind::U8 {
                            (v as u16) * 257
                        } else {
                            clamp(65535.0) as u16
                        };
                    }
                    Target::Nir => point.nir = Some(clamp(65535.0) as u16),
                    Target::Extra => with_column!(values, typed => point
                        .extra_bytes
                        .extend_from_slice(typed[row].to_le_array().as_ref())),
                }
            }
            if position.iter().all(|c| c.is_finite()) {
                [point.x, point.y, point.z] = position;
            } else {
                // LAS has no NaN: the point is kept at the offset and
                // marked withheld (deleted), its status column saying why.
                let transforms = writer.header().transforms();
                [point.x, point.y, point.z] = [
                    transforms.x.offset,
                    transforms.y.offset,
                    transforms.z.offset,
                ];
                point.is_withheld = true;
            }
            if self.format.has_color {
                point.color = Some(Color::new(colour[0], colour[1], colour[2]));
            }
            if self.format.has_nir && point.nir.is_none() {
                point.nir = Some(0);
            }
            writer
                .write_point(point)
                .map_err(|error| las_error(&path, error))?;
        }
        Ok(())
    }

    /// Closes the file and renames it over its target; fails unless exactly
    /// the declared number of points was written.
    pub fn finish(mut self) -> Result<()> {
        self.rows.check_complete(&self.path, "points")?;
        if self.writer.is_none() {
            self.start(&[])?;
        }
        if let Some(writer) = self.writer.take() {
            let mut inner = writer
                .into_inner()
                .map_err(|error| las_error(&self.path, error))?;
            inner
                .flush()
                .map_err(|error| Error::io(&self.path, error))?;
        }
        match self.file.take() {
            Some(file) => file.commit(),
            None => Err(self.invalid("the file is already finished")),
        }
    }
}
