//! What a PLY header declares, in the form the body decoder needs: its
//! elements and their properties, and the layout of the vertex record
//! (which property goes to positions, normals, colours or an attribute, at
//! which offset of the packed record).

use super::scalar::{
    ByteOrder, Scalar, empty_column, extend_fields, fields, is_float, kind_of, size_of_kind,
    with_scalar_type,
};
use super::{MAX_PROPERTIES, PIECE_BYTES};
use crate::cloud::with_column;
use crate::cloud::{Attribute, PointCloud, Precision, ScalarKind};
use crate::error::{Error, Location, Result};
use nalgebra::{Point3, Vector3};
use ply_rs_bw::parser::ParseError;
use ply_rs_bw::ply::{ElementDef, Encoding, Header, PropertyType};
use rayon::prelude::*;
use std::path::Path;

/// Property names read as positions, normals and colours.
pub(super) const POSITION: [&str; 3] = ["x", "y", "z"];
pub(super) const NORMAL: [&str; 3] = ["nx", "ny", "nz"];
pub(super) const COLOURS: [[&str; 3]; 2] = [
    ["red", "green", "blue"],
    ["diffuse_red", "diffuse_green", "diffuse_blue"],
];

/// How one property is stored in a record.
#[derive(Debug, Clone, Copy)]
pub(super) enum Shape {
    Scalar(ScalarKind),
    /// A length of type `len`, then that many values of type `item`.
    List {
        len: ScalarKind,
        item: ScalarKind,
    },
}

/// One property of an element, as declared in the header.
#[derive(Debug)]
pub(super) struct Property {
    pub(super) name: String,
    pub(super) shape: Shape,
}

/// One element of the header (vertex, face, …) in the form the body
/// walkers need.
#[derive(Debug)]
pub(super) struct Element {
    pub(super) name: String,
    pub(super) count: usize,
    pub(super) properties: Vec<Property>,
}

impl Element {
    /// Converts a header element; list lengths must have an integer type.
    pub(super) fn new(path: &Path, def: &ElementDef) -> Result<Self> {
        if def.properties.len() > MAX_PROPERTIES {
            return Err(Error::format(
                path,
                Location::File,
                format!(
                    "element '{}' has {} properties, more than the {MAX_PROPERTIES} mlsproj reads",
                    def.name,
                    def.properties.len()
                ),
            ));
        }
        let properties = def
            .properties
            .values()
            .map(|property| {
                let shape = match &property.data_type {
                    PropertyType::Scalar(scalar) => Shape::Scalar(kind_of(scalar)),
                    PropertyType::List(len, item) if !is_float(kind_of(len)) => Shape::List {
                        len: kind_of(len),
                        item: kind_of(item),
                    },
                    PropertyType::List(..) => {
                        return Err(Error::format(
                            path,
                            Location::File,
                            format!(
                                "list '{}' of element '{}' has a floating-point length type",
                                property.name, def.name
                            ),
                        ));
                    }
                };
                Ok(Property {
                    name: property.name.clone(),
                    shape,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Element {
            name: def.name.clone(),
            count: def.count,
            properties,
        })
    }

    /// Bytes of one binary record, or `None` when lists make it vary.
    pub(super) fn record_size(&self) -> Option<usize> {
        self.properties
            .iter()
            .map(|property| match property.shape {
                Shape::Scalar(kind) => Some(size_of_kind(kind)),
                Shape::List { .. } => None,
            })
            .sum()
    }

    /// The fewest bytes a record can take in the file, to bound how many
    /// records the rest of a file can hold (ascii: a digit and a separator
    /// per value).
    pub(super) fn min_record_size(&self, encoding: Encoding) -> usize {
        let bytes: usize = match encoding {
            Encoding::Ascii => 2 * self.properties.len(),
            Encoding::BinaryLittleEndian | Encoding::BinaryBigEndian => self
                .properties
                .iter()
                .map(|property| match property.shape {
                    Shape::Scalar(kind) | Shape::List { len: kind, .. } => size_of_kind(kind),
                })
                .sum(),
        };
        bytes.max(1)
    }
}

/// Where a decoded vertex property goes in the [`PointCloud`].
#[derive(Debug, Clone, Copy)]
pub(super) enum Slot {
    Position(usize),
    Normal(usize),
    Colour(usize),
    Attribute(usize),
}

/// A scalar vertex property: its offset in the packed record, its type and
/// its destination.
#[derive(Debug)]
pub(super) struct Field {
    pub(super) offset: usize,
    pub(super) kind: ScalarKind,
    pub(super) slot: Slot,
}

/// The mapping of vertex properties into a [`PointCloud`], and the packed
/// record (all scalar properties, in file order) it decodes from.
#[derive(Debug)]
pub(super) struct VertexLayout {
    pub(super) fields: Vec<Field>,
    pub(super) stride: usize,
    pub(super) attributes: Vec<(String, ScalarKind)>,
    pub(super) normals: bool,
    pub(super) colours: bool,
    pub(super) precision: Precision,
    /// Precision of the normals in the file (they are read as float).
    pub(super) normal_precision: Precision,
}

/// Index of `name` among three axis or channel names.
pub(super) fn axis_of(names: &[&str; 3], name: &str) -> Option<usize> {
    names.iter().position(|candidate| *candidate == name)
}

impl VertexLayout {
    /// Maps the vertex properties: `x y z` to positions, `nx ny nz` (all
    /// three) to normals, `red green blue` (or `diffuse_*`, all three uchar)
    /// to colours, every other scalar to an attribute; lists are skipped.
    pub(super) fn new(path: &Path, vertex: &Element) -> Result<Self> {
        let scalar = |name: &str| {
            vertex
                .properties
                .iter()
                .find(|property| property.name == name)
                .and_then(|property| match property.shape {
                    Shape::Scalar(kind) => Some(kind),
                    Shape::List { .. } => None,
                })
        };
        let mut precision = Precision::Single;
        for axis in POSITION {
            match scalar(axis) {
                None => {
                    return Err(Error::format(
                        path,
                        Location::File,
                        format!("the vertex element has no scalar property '{axis}'"),
                    ));
                }
                Some(ScalarKind::F64) => precision = Precision::Double,
                Some(_) => {}
            }
        }
        let normals = NORMAL.iter().all(|name| scalar(name).is_some());
        let normal_precision = if NORMAL
            .iter()
            .any(|name| scalar(name) == Some(ScalarKind::F64))
        {
            Precision::Double
        } else {
            Precision::Single
        };
        let colour_names = COLOURS.iter().find(|names| {
            names
                .iter()
                .all(|name| scalar(name) == Some(ScalarKind::U8))
        });

        let mut fields = Vec::new();
        let mut attributes = Vec::new();
        let mut offset = 0;
        for property in &vertex.properties {
            let Shape::Scalar(kind) = property.shape else {
                continue;
            };
            let name = property.name.as_str();
            let slot = if let Some(axis) = axis_of(&POSITION, name) {
                Slot::Position(axis)
            } else if let Some(axis) = axis_of(&NORMAL, name).filter(|_| normals) {
                Slot::Normal(axis)
            } else if let Some(channel) = colour_names.and_then(|names| axis_of(names, name)) {
                Slot::Colour(channel)
            } else {
                attributes.push((property.name.clone(), kind));
                Slot::Attribute(attributes.len() - 1)
            };
            fields.push(Field { offset, kind, slot });
            offset += size_of_kind(kind);
        }
        Ok(VertexLayout {
            fields,
            stride: offset,
            attributes,
            normals,
            colours: colour_names.is_some(),
            precision,
            normal_precision,
        })
    }

    /// A cloud with this layout's parts and no point yet.
    pub(super) fn empty_cloud(&self, capacity: usize) -> PointCloud {
        PointCloud {
            positions: Vec::with_capacity(capacity),
            normals: self.normals.then(|| Vec::with_capacity(capacity)),
            colours: self.colours.then(|| Vec::with_capacity(capacity)),
            attributes: self
                .attributes
                .iter()
                .map(|(name, kind)| Attribute {
                    name: name.clone(),
                    values: empty_column(*kind, capacity),
                })
                .collect(),
            precision: self.precision,
            normal_precision: self.normal_precision,
        }
    }

    /// Appends the packed records of `block` (byte order `O`) to `cloud`:
    /// positions, normals and colours piece by piece on every core, each
    /// piece into its own rows, while one task appends the attributes.
    pub(super) fn decode<O: ByteOrder>(&self, block: &[u8], cloud: &mut PointCloud) {
        let start = cloud.positions.len();
        let end = start + block.len() / self.stride;
        let PointCloud {
            positions,
            normals,
            colours,
            attributes,
            ..
        } = cloud;
        // Grown on every core: the first touch of a large cloud's new
        // pages (a page fault and a zeroed page each) costs more than the
        // decoding.
        let rows = end - start;
        positions.par_extend(rayon::iter::repeat_n(Point3::origin(), rows));
        if let Some(normals) = normals {
            normals.par_extend(rayon::iter::repeat_n(Vector3::zeros(), rows));
        }
        if let Some(colours) = colours {
            colours.par_extend(rayon::iter::repeat_n([0; 3], rows));
        }
        let piece_rows = (PIECE_BYTES / self.stride).max(1);
        let mut normals = normals
            .as_mut()
            .map(|normals| normals[start..].chunks_mut(piece_rows));
        let mut colours = colours
            .as_mut()
            .map(|colours| colours[start..].chunks_mut(piece_rows));
        let pieces: Vec<Piece<'_>> = block
            .chunks(piece_rows * self.stride)
            .zip(positions[start..].chunks_mut(piece_rows))
            .map(|(records, positions)| Piece {
                records,
                positions,
                normals: normals.as_mut().and_then(Iterator::next),
                colours: colours.as_mut().and_then(Iterator::next),
            })
            .collect();
        rayon::join(
            || self.decode_attributes::<O>(block, attributes),
            || {
                pieces
                    .into_par_iter()
                    .for_each(|piece| self.decode_piece::<O>(piece))
            },
        );
    }

    /// Decodes the positions, normals and colours of one piece.
    fn decode_piece<O: ByteOrder>(&self, piece: Piece<'_>) {
        let Piece {
            records,
            positions,
            mut normals,
            mut colours,
        } = piece;
        let stride = self.stride;
        for &Field { offset, kind, slot } in &self.fields {
            match slot {
                Slot::Position(axis) => with_scalar_type!(kind, T => {
                    let values = fields::<T, O>(records, stride, offset);
                    for (position, value) in positions.iter_mut().zip(values) {
                        position[axis] = value.to_f64();
                    }
                }),
                Slot::Normal(axis) => {
                    if let Some(normals) = normals.as_deref_mut() {
                        with_scalar_type!(kind, T => {
                            let values = fields::<T, O>(records, stride, offset);
                            for (normal, value) in normals.iter_mut().zip(values) {
                                normal[axis] = value.to_f64() as f32;
                            }
                        })
                    }
                }
                Slot::Colour(channel) => {
                    if let Some(colours) = colours.as_deref_mut() {
                        let values = fields::<u8, O>(records, stride, offset);
                        for (colour, value) in colours.iter_mut().zip(values) {
                            colour[channel] = value;
                        }
                    }
                }
                // Appended by `decode_attributes`.
                Slot::Attribute(_) => {}
            }
        }
    }

    /// Appends the attributes of the packed records of `block`.
    fn decode_attributes<O: ByteOrder>(&self, block: &[u8], attributes: &mut [Attribute]) {
        for &Field { offset, slot, .. } in &self.fields {
            if let Slot::Attribute(index) = slot
                && let Some(attribute) = attributes.get_mut(index)
            {
                with_column!(&mut attribute.values, values => {
                    extend_fields::<_, O>(values, block, self.stride, offset)
                })
            }
        }
    }
}

/// The records of one piece of a block and the rows of the cloud they
/// fill, decoded beside the other pieces.
struct Piece<'a> {
    records: &'a [u8],
    positions: &'a mut [Point3<f64>],
    normals: Option<&'a mut [Vector3<f32>]>,
    colours: Option<&'a mut [[u8; 3]]>,
}

/// Converts a ply-rs-bw header error (which may lack a line number, e.g.
/// for invalid UTF-8) into ours, at `line` when it has none.
pub(super) fn header_error(path: &Path, error: &ParseError, line: usize) -> Error {
    let text = error.to_string();
    let first = text.lines().next().unwrap_or_default();
    let message = match error.line() {
        Some(number) => first
            .strip_prefix(&format!("Line {number}: "))
            .unwrap_or(first),
        None => first,
    };
    Error::format(
        path,
        Location::Line(error.line().unwrap_or(line).max(1)),
        format!("invalid PLY header: {message}"),
    )
}

/// ply-rs-bw keeps elements and properties in maps, so a name declared twice
/// silently merges and the body would be misread; detect it by counting the
/// header lines the parsed header accounts for.
pub(super) fn check_header_lines(path: &Path, header: &Header, lines: usize) -> Result<()> {
    let declared: usize = header
        .elements
        .values()
        .map(|element| 1 + element.properties.len())
        .sum();
    // `ply`, `format` and `end_header`, then comments, obj_info and elements.
    let accounted = 3 + header.comments.len() + header.obj_infos.len() + declared;
    if accounted == lines {
        Ok(())
    } else {
        Err(Error::format(
            path,
            Location::File,
            "invalid PLY header: an element or property name is declared twice \
             (or the format line is repeated)",
        ))
    }
}
