//! Reading E57 files (ASTM E2807, terrestrial scanners) with the `e57`
//! crate: every scan of the file, in file order, each moved by its pose into
//! the file's coordinates, with the position of the scanner that took it.
//!
//! The scanner positions let normals be turned toward the scanner that saw
//! each point: a point's `scan_index` attribute (u16) indexes the list of
//! scanner positions that [`read_e57`] returns.

use crate::cloud::{Attribute, Column, PointCloud, Precision};
use crate::error::{Error, Location, Result};
use e57::{CartesianCoordinate, E57Reader};
use nalgebra::Point3;
use std::path::Path;

/// The points of every scan of an E57 file, and where each scanner stood.
#[derive(Debug, Clone)]
pub struct Scans {
    /// The points; attributes `scan_index` (u16), and where any scan has
    /// them `intensity` (f32, as stored: not normalised), `row` and
    /// `column` (i32, −1 for scans without them). Points without valid
    /// Cartesian coordinates (a direction only) are kept with NaN
    /// positions so that rows and columns stay whole.
    pub cloud: PointCloud,
    /// The position of the scanner of each scan (the translation of its
    /// pose: the scanner sits at its scan's origin), in file coordinates.
    pub scanners: Vec<Point3<f64>>,
}

/// A fault of the `e57` crate as a one-line refusal naming the file.
fn e57_error(path: &Path, error: e57::Error) -> Error {
    let text = error.to_string();
    let line = text.lines().next().unwrap_or("unreadable E57 file");
    Error::format(path, Location::File, line.to_string())
}

/// Reads every scan of an E57 file whole: the crate's point iterator
/// borrows the file, so it cannot be kept between chunks.
pub fn read_e57(path: &Path) -> Result<Scans> {
    let mut reader = E57Reader::from_file(path).map_err(|error| e57_error(path, error))?;
    let scans = reader.pointclouds();
    if scans.len() > usize::from(u16::MAX) + 1 {
        return Err(Error::format(
            path,
            Location::File,
            format!("{} scans; at most 65536 can be told apart", scans.len()),
        ));
    }
    let size = std::fs::metadata(path)
        .map_err(|error| Error::io(path, error))?
        .len();
    let declared: u64 = scans.iter().map(|scan| scan.records).sum();
    // Every point takes at least a bit in the file.
    if declared / 8 > size {
        return Err(Error::format(
            path,
            Location::File,
            format!(
                "the scans declare {declared} points, more than the file's {size} bytes can hold"
            ),
        ));
    }
    let any_colour = scans.iter().any(|scan| scan.has_color());
    let any_intensity = scans.iter().any(|scan| scan.has_intensity());
    let any_grid = scans.iter().any(|scan| scan.has_row_column());
    let mut positions = Vec::new();
    let mut colours = Vec::new();
    let mut intensity = Vec::new();
    let (mut rows, mut columns) = (Vec::new(), Vec::new());
    let mut scan_index = Vec::new();
    let mut scanners = Vec::with_capacity(scans.len());
    for (index, scan) in scans.iter().enumerate() {
        scanners.push(scan.transform.as_ref().map_or(Point3::origin(), |pose| {
            Point3::new(pose.translation.x, pose.translation.y, pose.translation.z)
        }));
        let mut points = reader
            .pointcloud_simple(scan)
            .map_err(|error| e57_error(path, error))?;
        points.apply_pose(true);
        points.intensity_to_color(false);
        points.normalize_intensity(false);
        points.normalize_color(true);
        for point in points {
            let point = point.map_err(|error| e57_error(path, error))?;
            positions.push(match point.cartesian {
                CartesianCoordinate::Valid { x, y, z } => Point3::new(x, y, z),
                _ => Point3::new(f64::NAN, f64::NAN, f64::NAN),
            });
            if any_colour {
                colours.push(point.color.map_or([0; 3], |c| {
                    [c.red, c.green, c.blue].map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
                }));
            }
            if any_intensity {
                intensity.push(point.intensity.unwrap_or(f32::NAN));
            }
            if any_grid {
                rows.push(if scan.has_row_column() {
                    point.row as i32
                } else {
                    -1
                });
                columns.push(if scan.has_row_column() {
                    point.column as i32
                } else {
                    -1
                });
            }
            scan_index.push(index as u16);
        }
    }
    let mut attributes = vec![Attribute {
        name: "scan_index".to_string(),
        values: Column::U16(scan_index),
    }];
    if any_intensity {
        attributes.push(Attribute {
            name: "intensity".to_string(),
            values: Column::F32(intensity),
        });
    }
    if any_grid {
        attributes.push(Attribute {
            name: "row".to_string(),
            values: Column::I32(rows),
        });
        attributes.push(Attribute {
            name: "column".to_string(),
            values: Column::I32(columns),
        });
    }
    Ok(Scans {
        cloud: PointCloud {
            positions,
            normals: None,
            colours: any_colour.then_some(colours),
            attributes,
            precision: Precision::Double,
            normal_precision: Precision::Single,
        },
        scanners,
    })
}
