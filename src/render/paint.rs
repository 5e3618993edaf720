//! The colour each point is drawn with, before shading: its own colour, a
//! property through the colour map, or one plain colour.

use crate::cloud::{Column, PointCloud};
use crate::error::{Error, Result};

use super::colour_bar::{ColourRange, RangeRule, colour_map};

/// Colour of points with neither colours of their own nor a property to
/// colour by: a light clay, on which shading reads well.
const PLAIN: [u8; 3] = [215, 205, 190];

/// Colour of points whose property value is NaN or infinite.
const MISSING: [u8; 3] = [128, 128, 128];

/// How points are coloured.
pub(crate) enum Paint<'a> {
    /// One colour for every point.
    Plain,
    /// The points' own `red green blue`.
    Own(&'a [[u8; 3]]),
    /// A scalar property through the colour map over `range`.
    Property {
        name: String,
        values: Vec<f64>,
        range: ColourRange,
    },
}

impl<'a> Paint<'a> {
    /// Colours by `property` when one is named (an error naming it and
    /// listing the cloud's properties when it has no such one), else by the
    /// points' own colours when they have them, else plain.
    pub(crate) fn choose(cloud: &'a PointCloud, property: Option<&str>) -> Result<Self> {
        let Some(name) = property else {
            return Ok(cloud.colours.as_deref().map_or(Paint::Plain, Paint::Own));
        };
        let (values, rule) = scalar_property(cloud, name).ok_or_else(|| {
            Error::Invalid(format!(
                "no property '{name}' to colour by; the points have: {}",
                property_names(cloud).join(", ")
            ))
        })?;
        let range = ColourRange::of(&values, rule).ok_or_else(|| {
            Error::Invalid(format!(
                "property '{name}' has no finite value to colour by"
            ))
        })?;
        Ok(Paint::Property {
            name: name.to_string(),
            values,
            range,
        })
    }

    /// The colour of point `index`.
    pub(crate) fn colour(&self, index: usize) -> [u8; 3] {
        match self {
            Paint::Plain => PLAIN,
            Paint::Own(colours) => colours[index],
            Paint::Property { values, range, .. } => {
                let value = values[index];
                if value.is_finite() {
                    colour_map(range.fraction(value))
                } else {
                    MISSING
                }
            }
        }
    }
}

/// Names of the per-vertex scalars `--colour` accepts, in file order of
/// kind: positions, normals, colours, then every other property.
pub fn property_names(cloud: &PointCloud) -> Vec<String> {
    let mut names: Vec<String> = ["x", "y", "z"].map(String::from).to_vec();
    if cloud.normals.is_some() {
        names.extend(["nx", "ny", "nz"].map(String::from));
    }
    if cloud.colours.is_some() {
        names.extend(["red", "green", "blue"].map(String::from));
    }
    names.extend(cloud.attributes.iter().map(|a| a.name.clone()));
    names
}

/// The values of the per-vertex scalar `name`, one per point, and how to
/// range them: integers by min and max, floats by percentiles.
pub fn scalar_property(cloud: &PointCloud, name: &str) -> Option<(Vec<f64>, RangeRule)> {
    if let Some(axis) = ["x", "y", "z"].iter().position(|n| *n == name) {
        let values = cloud.positions.iter().map(|p| p[axis]).collect();
        return Some((values, RangeRule::Percentiles));
    }
    if let (Some(axis), Some(normals)) = (
        ["nx", "ny", "nz"].iter().position(|n| *n == name),
        &cloud.normals,
    ) {
        let values = normals.iter().map(|n| f64::from(n[axis])).collect();
        return Some((values, RangeRule::Percentiles));
    }
    if let (Some(channel), Some(colours)) = (
        ["red", "green", "blue"].iter().position(|n| *n == name),
        &cloud.colours,
    ) {
        let values = colours.iter().map(|c| f64::from(c[channel])).collect();
        return Some((values, RangeRule::MinMax));
    }
    let column = &cloud.attributes.iter().find(|a| a.name == name)?.values;
    let rule = match column {
        Column::F32(_) | Column::F64(_) => RangeRule::Percentiles,
        _ => RangeRule::MinMax,
    };
    #[allow(clippy::useless_conversion, reason = "the identity for f64")]
    let values = crate::cloud::with_column!(column, values => values.iter().map(|&v| f64::from(v)).collect());
    Some((values, rule))
}
