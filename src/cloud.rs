//! The in-memory point set: positions, optional normals and colours, and any
//! other per-point property of the file, kept with its type so that it can
//! be written back unchanged.

use nalgebra::{Point3, Vector3};
use rayon::prelude::*;

/// True when every coordinate of `p` is finite: scanners write NaN or
/// infinite coordinates for points they could not measure.
pub fn is_finite_point(p: &Point3<f64>) -> bool {
    p.iter().all(|c| c.is_finite())
}

/// The centroid of the finite points of a cloud, summed point by point in
/// file order, so that a cloud read whole and one read in chunks (a tile's
/// pass over the file) get the same value to the last bit. The sum runs
/// over offsets from the first finite point: a scan at 10⁶ m keeps its
/// millimetres. It keeps the points' bounding box too.
#[derive(Debug, Clone, Copy, Default)]
pub struct CentroidSum {
    reference: Option<Point3<f64>>,
    sum: Vector3<f64>,
    count: usize,
    bounds: Option<(Point3<f64>, Point3<f64>)>,
}

impl CentroidSum {
    /// The sum over the finite points of `positions`, in their order.
    pub fn of(positions: &[Point3<f64>]) -> Self {
        let mut sum = Self::default();
        for p in positions {
            sum.add(p);
        }
        sum
    }

    /// Adds `p` when it is finite; returns whether it was.
    pub fn add(&mut self, p: &Point3<f64>) -> bool {
        let finite = is_finite_point(p);
        if finite {
            let reference = *self.reference.get_or_insert(*p);
            self.sum += p - reference;
            self.count += 1;
            self.bounds = Some(
                self.bounds
                    .map_or((*p, *p), |(lo, hi)| (lo.inf(p), hi.sup(p))),
            );
        }
        finite
    }

    /// The diagonal of the finite points' bounding box (0 when none was
    /// added).
    pub fn diagonal(&self) -> f64 {
        self.bounds.map_or(0.0, |(lo, hi)| (hi - lo).norm())
    }

    /// The finite points' bounding box `(min, max)`, `None` when none was
    /// added.
    pub fn bounds(&self) -> Option<(Point3<f64>, Point3<f64>)> {
        self.bounds
    }

    /// The centroid of the finite points added, the origin when none was.
    pub fn centroid(&self) -> Point3<f64> {
        self.reference.unwrap_or_else(Point3::origin) + self.sum / self.count.max(1) as f64
    }
}

/// The values at `indices`: a gather of random reads, so worth every
/// thread.
pub(crate) fn pick<T: Copy + Send + Sync>(values: &[T], indices: &[u32]) -> Vec<T> {
    indices.par_iter().map(|&i| values[i as usize]).collect()
}

/// Axis-aligned bounding box `(min, max)` of the finite points among
/// `positions`, or `None` when there is none. On every thread: a pass
/// over a cloud of millions is the first step of building its index.
pub fn finite_bounds(positions: &[Point3<f64>]) -> Option<(Point3<f64>, Point3<f64>)> {
    positions
        .par_iter()
        .filter(|p| is_finite_point(p))
        .map(|p| (*p, *p))
        .reduce_with(|(lo, hi), (other_lo, other_hi)| (lo.inf(&other_lo), hi.sup(&other_hi)))
}

/// Points sampled to find the cloud's body ([`body_bounds`]).
const BODY_SAMPLE: usize = 8192;

/// Share of the sampled points left out at each end of each axis to find
/// the cloud's body: more than the garbage a damaged file holds, less
/// than any part of a real scan.
const BODY_TAIL: f64 = 0.01;

/// The box the cloud's body lies in: a sample of the finite points'
/// range on each axis without a hundredth at each end, widened on every
/// side by the widest such range. A real scan lies within it (its far
/// ends are at most a body's width past the rest); points at 1e20 or
/// 3e38 (a damaged file's garbage) do not, and the search leaves them out
/// of what it centres and sizes its cells on. `None` without a finite
/// point.
pub fn body_bounds(positions: &[Point3<f64>]) -> Option<(Point3<f64>, Point3<f64>)> {
    let step = positions.len().div_ceil(BODY_SAMPLE).max(1);
    let sample: Vec<&Point3<f64>> = positions
        .iter()
        .step_by(step)
        .filter(|p| is_finite_point(p))
        .collect();
    if sample.is_empty() {
        return None;
    }
    let ends = [0, 1, 2].map(|axis| {
        trimmed_range(
            &mut sample.iter().map(|p| p[axis]).collect::<Vec<_>>(),
            BODY_TAIL,
        )
    });
    let widest = ends
        .iter()
        .map(|(low, high)| high - low)
        .fold(0.0, f64::max);
    Some((
        Point3::from(ends.map(|(low, _)| low - widest)),
        Point3::from(ends.map(|(_, high)| high + widest)),
    ))
}

/// The least and greatest of `values` (not empty) once the `tail` share
/// of them at each end is left out, by two selections (`values` is
/// reordered).
pub(crate) fn trimmed_range(values: &mut [f64], tail: f64) -> (f64, f64) {
    let cut = (values.len() as f64 * tail) as usize;
    let top = values.len() - 1 - cut;
    let (_, &mut high, _) = values.select_nth_unstable_by(top, f64::total_cmp);
    let (_, &mut low, _) = values[..=top].select_nth_unstable_by(cut, f64::total_cmp);
    (low, high)
}

/// True when `p` lies in the box from `low` to `high` (faces included).
pub(crate) fn box_holds(low: &Vector3<f64>, high: &Vector3<f64>, p: &Vector3<f64>) -> bool {
    (0..3).all(|axis| (low[axis]..=high[axis]).contains(&p[axis]))
}

/// Precision of the positions as stored in the file; the output keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// 32-bit floats (`float` / `float32`), or text.
    #[default]
    Single,
    /// 64-bit floats (`double` / `float64`).
    Double,
}

/// The precision that holds the computed values of a cloud whose bounding
/// box has diagonal `extent` and whose largest coordinate is `magnitude`:
/// float while both lie within 1e-30..1e30 (residuals scale with the
/// extent, curvatures with its inverse, and float holds 1e±38), double
/// beyond, where float would write them as infinity or zero.
pub fn values_precision(extent: f64, magnitude: f64) -> Precision {
    const FLOAT_SAFE: std::ops::RangeInclusive<f64> = 1e-30..=1e30;
    let safe = |v: f64| v == 0.0 || FLOAT_SAFE.contains(&v);
    if safe(extent) && safe(magnitude) {
        Precision::Single
    } else {
        Precision::Double
    }
}

/// The scalar types of PLY, named by their Rust types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarKind {
    /// PLY `char`: `i8`.
    I8,
    /// PLY `uchar`: `u8`.
    U8,
    /// PLY `short`: `i16`.
    I16,
    /// PLY `ushort`: `u16`.
    U16,
    /// PLY `int`: `i32`.
    I32,
    /// PLY `uint`: `u32`.
    U32,
    /// PLY `float`: `f32`.
    F32,
    /// PLY `double`: `f64`.
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
    /// `char` values.
    I8(Vec<i8>),
    /// `uchar` values.
    U8(Vec<u8>),
    /// `short` values.
    I16(Vec<i16>),
    /// `ushort` values.
    U16(Vec<u16>),
    /// `int` values.
    I32(Vec<i32>),
    /// `uint` values.
    U32(Vec<u32>),
    /// `float` values.
    F32(Vec<f32>),
    /// `double` values.
    F64(Vec<f64>),
}

/// Calls `$body` with `$values` bound to the inner `Vec` of a [`Column`],
/// whatever its type: the one place that spells out the eight variants.
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
pub(crate) use with_column;

/// Builds a column of the same type as `$column` from `$body`, with
/// `$values` bound to its inner `Vec`.
macro_rules! map_column {
    ($column:expr, $values:ident => $body:expr) => {
        match $column {
            Column::I8($values) => Column::I8($body),
            Column::U8($values) => Column::U8($body),
            Column::I16($values) => Column::I16($body),
            Column::U16($values) => Column::U16($body),
            Column::I32($values) => Column::I32($body),
            Column::U32($values) => Column::U32($body),
            Column::F32($values) => Column::F32($body),
            Column::F64($values) => Column::F64($body),
        }
    };
}

impl Column {
    /// A copy of the values in `range`.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Column {
        map_column!(self, values => values[range.clone()].to_vec())
    }

    /// The values where `keep` holds.
    pub fn filter(&self, keep: &[bool]) -> Column {
        map_column!(self, values => pick_where(values, keep))
    }

    /// Appends `other[range]`, a column of the same type (callers append
    /// chunks of one file, or files whose schemas they compared).
    pub fn extend_from(&mut self, other: &Column, range: std::ops::Range<usize>) {
        macro_rules! same {
            ($($variant:ident),*) => {
                match (self, other) {
                    $((Column::$variant(to), Column::$variant(from)) => {
                        to.extend_from_slice(&from[range]);
                    })*
                    (to, from) => debug_assert!(false, "{:?} extended by {:?}", to.kind(), from.kind()),
                }
            };
        }
        same!(I8, U8, I16, U16, I32, U32, F32, F64)
    }

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

    /// Every value as `f64` (exact for every type but 64-bit integers,
    /// which PLY has none of).
    #[allow(clippy::useless_conversion, reason = "the identity for f64 columns")]
    pub fn to_f64(&self) -> Vec<f64> {
        with_column!(self, values => values.iter().map(|&v| f64::from(v)).collect())
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
    /// Precision of the normals in the file (held as float, which their
    /// use needs; `info` reports the file's).
    pub normal_precision: Precision,
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

    /// A copy of the points in `range`, with every property.
    pub fn slice(&self, range: std::ops::Range<usize>) -> PointCloud {
        PointCloud {
            positions: self.positions[range.clone()].to_vec(),
            normals: self.normals.as_ref().map(|n| n[range.clone()].to_vec()),
            colours: self.colours.as_ref().map(|c| c[range.clone()].to_vec()),
            attributes: self
                .attributes
                .iter()
                .map(|a| Attribute {
                    name: a.name.clone(),
                    values: a.values.slice(range.clone()),
                })
                .collect(),
            precision: self.precision,
            normal_precision: self.normal_precision,
        }
    }

    /// Splits the cloud in two at point `at`: keeps the points before it
    /// and returns the others, with every property (as `Vec::split_off`).
    pub fn split_off(&mut self, at: usize) -> PointCloud {
        PointCloud {
            positions: self.positions.split_off(at),
            normals: self.normals.as_mut().map(|n| n.split_off(at)),
            colours: self.colours.as_mut().map(|c| c.split_off(at)),
            attributes: self
                .attributes
                .iter_mut()
                .map(|a| Attribute {
                    name: a.name.clone(),
                    values: map_column!(&mut a.values, values => values.split_off(at)),
                })
                .collect(),
            precision: self.precision,
            normal_precision: self.normal_precision,
        }
    }

    /// Appends the points of `other`, which must come from the same file
    /// (the same properties).
    pub fn append(&mut self, other: &PointCloud) {
        debug_assert!(
            self.normals.is_some() == other.normals.is_some()
                && self.colours.is_some() == other.colours.is_some()
                && self.attributes.len() == other.attributes.len()
                && self
                    .attributes
                    .iter()
                    .zip(&other.attributes)
                    .all(|(a, b)| a.name == b.name && a.values.kind() == b.values.kind()),
            "points of another file appended"
        );
        self.positions.extend_from_slice(&other.positions);
        if let (Some(to), Some(from)) = (&mut self.normals, &other.normals) {
            to.extend_from_slice(from);
        }
        if let (Some(to), Some(from)) = (&mut self.colours, &other.colours) {
            to.extend_from_slice(from);
        }
        for (to, from) in self.attributes.iter_mut().zip(&other.attributes) {
            to.values.extend_from(&from.values, 0..from.values.len());
        }
    }

    /// The points for which `keep` holds, with every property.
    pub fn filter(&self, keep: &[bool]) -> PointCloud {
        PointCloud {
            positions: pick_where(&self.positions, keep),
            normals: self.normals.as_deref().map(|n| pick_where(n, keep)),
            colours: self.colours.as_deref().map(|c| pick_where(c, keep)),
            attributes: self
                .attributes
                .iter()
                .map(|a| Attribute {
                    name: a.name.clone(),
                    values: a.values.filter(keep),
                })
                .collect(),
            precision: self.precision,
            normal_precision: self.normal_precision,
        }
    }
}

/// The values where `keep` holds.
fn pick_where<T: Copy>(values: &[T], keep: &[bool]) -> Vec<T> {
    values
        .iter()
        .zip(keep)
        .filter(|(_, k)| **k)
        .map(|(v, _)| *v)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_centroid_counts_finite_points_duplicates_included() {
        let mut sum = CentroidSum::default();
        let points = [
            Point3::new(0.0, 0.0, 0.0),
            Point3::new(f64::NAN, 0.0, 0.0),
            Point3::new(3.0, 0.0, 0.0),
            Point3::new(3.0, 0.0, 0.0),
            Point3::new(0.0, f64::INFINITY, 0.0),
        ];
        let finite: Vec<bool> = points.iter().map(|p| sum.add(p)).collect();
        assert_eq!(finite, [true, false, true, true, false]);
        assert_eq!(sum.centroid(), Point3::new(2.0, 0.0, 0.0));
        assert_eq!(CentroidSum::default().centroid(), Point3::origin());
        // Far from the origin, offsets keep what a raw sum rounds away
        // (4e15 · 3 + 3 is not a double; the offsets 0 + 1 + 2 are exact).
        let mut far = CentroidSum::default();
        for x in [4e15, 4e15 + 1.0, 4e15 + 2.0] {
            far.add(&Point3::new(x, 0.0, 0.0));
        }
        assert_eq!(far.centroid().x, 4e15 + 1.0);
    }
}
