//! The output record: the columns mlsproj writes for each particle
//! (position, normal, curvatures, residual, neighbours, steps, status,
//! index, colours, then the particle file's own attributes), and the same
//! columns read back from a point file (for `merge`).

use std::collections::HashSet;
use std::ops::Range;

use nalgebra::{Point3, Vector3};

use crate::cloud::{Attribute, Column, PointCloud, Precision};
use crate::config::Quality;
use crate::projection::Projected;

/// An output column.
fn named(name: &str, values: Column) -> Attribute {
    Attribute {
        name: name.to_owned(),
        values,
    }
}

/// `x y z` columns of `positions`, as double or float: how mlsproj writes
/// positions (also for callers writing point files of their own).
pub fn position_columns(
    positions: impl Iterator<Item = Point3<f64>> + Clone,
    precision: Precision,
) -> Vec<Attribute> {
    ["x", "y", "z"]
        .into_iter()
        .enumerate()
        .map(|(axis, name)| {
            let values = positions.clone().map(|p| p[axis]);
            named(
                name,
                match precision {
                    Precision::Double => Column::F64(values.collect()),
                    Precision::Single => Column::F32(values.map(|v| v as f32).collect()),
                },
            )
        })
        .collect()
}

/// `nx ny nz` as float.
fn normal_columns(normals: impl Iterator<Item = Vector3<f64>> + Clone) -> Vec<Attribute> {
    ["nx", "ny", "nz"]
        .into_iter()
        .enumerate()
        .map(|(axis, name)| {
            named(
                name,
                Column::F32(normals.clone().map(|n| n[axis] as f32).collect()),
            )
        })
        .collect()
}

/// `red green blue` uchar columns of `colours`, as mlsproj writes them.
pub fn colour_columns(colours: &[[u8; 3]]) -> Vec<Attribute> {
    ["red", "green", "blue"]
        .into_iter()
        .enumerate()
        .map(|(channel, name)| {
            named(
                name,
                Column::U8(colours.iter().map(|c| c[channel]).collect()),
            )
        })
        .collect()
}

/// A point file's properties as output columns, in the order mlsproj
/// writes them: position, normal, then the other properties, the colours
/// after `index` (where [`output_columns`] puts them).
pub fn file_columns(points: &PointCloud) -> Vec<Attribute> {
    let mut columns = position_columns(points.positions.iter().copied(), points.precision);
    if let Some(normals) = &points.normals {
        columns.extend(normal_columns(normals.iter().map(|n| n.cast::<f64>())));
    }
    let mut colours = points.colours.as_deref().map(colour_columns);
    for attribute in &points.attributes {
        columns.push(attribute.clone());
        if attribute.name == "index" {
            columns.extend(colours.take().unwrap_or_default());
        }
    }
    columns.extend(colours.unwrap_or_default());
    columns
}

/// Names of the properties mlsproj computes (colours included, whether or
/// not they are written, so that an attribute's output name does not depend
/// on the cloud); a particle attribute with one of these names is renamed
/// (see [`output_columns`]). `quality` joins them when it is written.
const COMPUTED: [&str; 16] = [
    "x",
    "y",
    "z",
    "nx",
    "ny",
    "nz",
    "mean_curvature",
    "gaussian_curvature",
    "residual",
    "neighbours",
    "steps",
    "status",
    "index",
    "red",
    "green",
    "blue",
];

/// How a job writes its output record: settings fixed for the whole
/// output, so that every chunk has the same properties.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record {
    /// Precision of `x y z`: double when an input is.
    pub positions: Precision,
    /// Precision of the computed floats (curvatures, residual, quality):
    /// float unless the cloud's scale would overflow or underflow it
    /// (see [`crate::cloud::values_precision`]).
    pub values: Precision,
    /// Average the cloud's colours onto the particles (they have none).
    pub average_colours: bool,
    /// Pass the particles' other attributes through.
    pub attributes: bool,
    /// The computed property also written as `quality`.
    pub quality: Quality,
}

/// The output's vertex properties, in order: position, normal, curvatures,
/// residual, neighbours, steps, status, quality (when asked), index,
/// colours (the particles' own, or averaged from the cloud), then, when
/// asked, the particles' other attributes with their types. `projected`
/// are the results of rows `rows` of `particles`, whose colours and
/// attributes they carry (a piece of a chunk is written so, without
/// copying the chunk's particles).
///
/// An attribute named like a computed property is renamed `input_<name>`,
/// prefixed again while that clashes with another attribute (a float `red`
/// beside an `input_red` becomes `input_input_red`), so that every name
/// written is unique and nothing is dropped. Names are checked through a
/// set: a file with hundreds of thousands of properties costs linear time.
pub fn output_columns(
    record: &Record,
    particles: &PointCloud,
    rows: Range<usize>,
    projected: &[Projected],
    index: Vec<u32>,
) -> Vec<Attribute> {
    debug_assert_eq!(rows.len(), projected.len(), "a result for each row");
    let value = |f: &dyn Fn(&Projected) -> f64| match record.values {
        Precision::Single => Column::F32(projected.iter().map(|p| f(p) as f32).collect()),
        Precision::Double => Column::F64(projected.iter().map(f).collect()),
    };
    let mut columns = position_columns(projected.iter().map(|p| p.position), record.positions);
    columns.extend(normal_columns(projected.iter().map(|p| p.normal)));
    columns.push(named("mean_curvature", value(&|p| p.mean_curvature)));
    columns.push(named(
        "gaussian_curvature",
        value(&|p| p.gaussian_curvature),
    ));
    columns.push(named("residual", value(&|p| p.residual)));
    columns.push(named(
        "neighbours",
        Column::U32(projected.iter().map(|p| p.neighbour_count).collect()),
    ));
    columns.push(named(
        "steps",
        Column::U8(projected.iter().map(|p| p.steps).collect()),
    ));
    columns.push(named(
        "status",
        Column::U8(projected.iter().map(|p| p.status.code()).collect()),
    ));
    let quality: Option<fn(&Projected) -> f64> = match record.quality {
        Quality::None => None,
        Quality::MeanCurvature => Some(|p| p.mean_curvature),
        Quality::GaussianCurvature => Some(|p| p.gaussian_curvature),
        Quality::Residual => Some(|p| p.residual),
        Quality::Status => Some(|p| f64::from(p.status.code())),
        Quality::Neighbours => Some(|p| f64::from(p.neighbour_count)),
    };
    if let Some(quality) = quality {
        columns.push(named("quality", value(&quality)));
    }
    columns.push(named("index", Column::U32(index)));
    let colours: Option<Vec<[u8; 3]>> = match (&particles.colours, record.average_colours) {
        (Some(own), _) => Some(own[rows.clone()].to_vec()),
        (None, true) => Some(projected.iter().map(|p| p.colour).collect()),
        (None, false) => None,
    };
    if let Some(colours) = colours {
        columns.extend(colour_columns(&colours));
    }
    let passed = if record.attributes {
        &particles.attributes[..]
    } else {
        &[]
    };
    let mut computed: HashSet<&str> = COMPUTED.into_iter().collect();
    if quality.is_some() {
        computed.insert("quality");
    }
    let mut taken: HashSet<String> = computed.iter().map(|name| name.to_string()).collect();
    taken.extend(passed.iter().map(|a| a.name.clone()));
    for attribute in passed {
        let mut name = attribute.name.clone();
        if computed.contains(name.as_str()) {
            while taken.contains(&name) {
                name.insert_str(0, "input_");
            }
            taken.insert(name.clone());
        }
        columns.push(Attribute {
            name,
            values: attribute.values.slice(rows.clone()),
        });
    }
    columns
}
