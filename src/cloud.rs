//! The in-memory point set: positions, optional normals and colours, and any
//! other per-point property of the file, kept with its type so that it can
//! be written back unchanged.

use nalgebra::{Point3, Vector3};

/// Precision of the positions as stored in the file; the output keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// 32-bit floats (`float` / `float32`), or text.
    #[default]
    Single,
    /// 64-bit floats (`double` / `float64`).
    Double,
}

/// The scalar types of PLY, named by their Rust types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarKind {
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    F32,
    F64,
}

impl ScalarKind {
    /// The PLY type name (`uchar`, `float`, …).
    pub fn ply_name(self) -> &'static str {
        match self {
            ScalarKind::I8 => "char",
            ScalarKind::U8 => "uchar",
            ScalarKind::I16 => "short",
            ScalarKind::U16 => "ushort",
            ScalarKind::I32 => "int",
            ScalarKind::U32 => "uint",
            ScalarKind::F32 => "float",
            ScalarKind::F64 => "double",
        }
    }
}

/// One per-point property, values in file order, with the file's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    I8(Vec<i8>),
    U8(Vec<u8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    U32(Vec<u32>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// Calls `$body` with `$values` bound to the inner `Vec` of a [`Column`],
/// whatever its type: the one place that spells out the eight variants.
#[macro_export]
macro_rules! with_column {
    ($column:expr, $values:ident => $body:expr) => {
        match $column {
            $crate::cloud::Column::I8($values) => $body,
            $crate::cloud::Column::U8($values) => $body,
            $crate::cloud::Column::I16($values) => $body,
            $crate::cloud::Column::U16($values) => $body,
            $crate::cloud::Column::I32($values) => $body,
            $crate::cloud::Column::U32($values) => $body,
            $crate::cloud::Column::F32($values) => $body,
            $crate::cloud::Column::F64($values) => $body,
        }
    };
}

impl Column {
    /// The scalar type of the values.
    pub fn kind(&self) -> ScalarKind {
        match self {
            Column::I8(_) => ScalarKind::I8,
            Column::U8(_) => ScalarKind::U8,
            Column::I16(_) => ScalarKind::I16,
            Column::U16(_) => ScalarKind::U16,
            Column::I32(_) => ScalarKind::I32,
            Column::U32(_) => ScalarKind::U32,
            Column::F32(_) => ScalarKind::F32,
            Column::F64(_) => ScalarKind::F64,
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        with_column!(self, values => values.len())
    }

    /// True when the column holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A named per-point property that mlsproj does not interpret (labels,
/// intensity, …) and passes through to the output.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// Property name as in the file header.
    pub name: String,
    /// Values, one per point.
    pub values: Column,
}

/// A point set as read from a file. All vectors have the same length.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PointCloud {
    /// Positions in the file's units, as read (non-finite values kept).
    pub positions: Vec<Point3<f64>>,
    /// Per-point normals (`nx ny nz`), when the file has them.
    pub normals: Option<Vec<Vector3<f32>>>,
    /// Per-point colours (`red green blue` as uchar), when the file has them.
    pub colours: Option<Vec<[u8; 3]>>,
    /// Every other per-point scalar property, in file order.
    pub attributes: Vec<Attribute>,
    /// Precision of the positions in the file.
    pub precision: Precision,
}

impl PointCloud {
    /// A cloud of bare positions (single precision on output, no normals,
    /// colours or attributes).
    pub fn from_positions(positions: Vec<Point3<f64>>) -> Self {
        PointCloud {
            positions,
            ..PointCloud::default()
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// True when the set has no point.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }
}
