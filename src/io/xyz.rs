//! Reading text point clouds (`.xyz`, `.pts`, `.txt`, `.csv`): one point per
//! line. The column rule is documented on [`super::read_points`].

use super::{MAX_LINE_BYTES, MAX_PROPERTIES, read_line};
use crate::cloud::{Attribute, Column, PointCloud, Precision};
use crate::error::{Error, Location, Result};
use nalgebra::{Point3, Vector3};
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

/// The values of a line: separated by whitespace (tabs too), commas,
/// semicolons or a mix.
fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c == ',' || c == ';' || c.is_ascii_whitespace())
        .filter(|token| !token.is_empty())
}

/// What a named column of a header line holds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Position(usize),
    Normal(usize),
    Colour(usize),
    Intensity,
    Other,
}

/// The role of a column name (any case, common aliases).
fn role(name: &str) -> Role {
    match name.to_ascii_lowercase().as_str() {
        "x" | "px" | "point_x" => Role::Position(0),
        "y" | "py" | "point_y" => Role::Position(1),
        "z" | "pz" | "point_z" => Role::Position(2),
        "nx" | "normal_x" | "normalx" | "n_x" => Role::Normal(0),
        "ny" | "normal_y" | "normaly" | "n_y" => Role::Normal(1),
        "nz" | "normal_z" | "normalz" | "n_z" => Role::Normal(2),
        "red" | "r" | "diffuse_red" | "color_red" => Role::Colour(0),
        "green" | "g" | "diffuse_green" | "color_green" => Role::Colour(1),
        "blue" | "b" | "diffuse_blue" | "color_blue" => Role::Colour(2),
        "intensity" | "i" | "scalar_intensity" => Role::Intensity,
        _ => Role::Other,
    }
}

/// The column names of a header line (a comment's `#` or `//` removed),
/// when it names `x y z` once each among `count` names. Names are
/// separated like values, except that a line with commas, semicolons or
/// tabs is split at those only, so names may hold spaces (CloudCompare's
/// `//X,Y,Z,Scalar field`).
fn header_names(line: &str, count: usize) -> Option<Vec<String>> {
    let line = line.trim_start_matches('#').trim_start_matches("//");
    let names: Vec<String> = if line.contains([',', ';', '\t']) {
        line.split([',', ';', '\t'])
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_string)
            .collect()
    } else {
        tokens(line).map(str::to_string).collect()
    };
    let named = |axis| {
        names
            .iter()
            .filter(|name| role(name) == Role::Position(axis))
            .count()
            == 1
    };
    (names.len() == count && (0..3).all(named)).then_some(names)
}

/// Reads a text cloud by the column rule of [`super::read_points`].
#[cfg(test)]
pub(crate) fn read_text(path: &Path) -> Result<PointCloud> {
    read_text_with_comments(path).map(|(cloud, _)| cloud)
}

/// [`read_text`], and the comment lines `# …` before the first point
/// (without `# `): where mlsproj's text outputs record their provenance.
pub(crate) fn read_text_with_comments(path: &Path) -> Result<(PointCloud, Vec<String>)> {
    let pts = path
        .extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("pts"));
    let file = File::open(path).map_err(|error| Error::io(path, error))?;
    let mut source = BufReader::with_capacity(1 << 16, file);
    let mut line = Vec::new();
    let mut number = 0;
    let mut row = Vec::new();
    let mut columns: Vec<Vec<f64>> = Vec::new();
    let mut first_row = 0;
    // Lines before the first point: the last may name the columns; the
    // first that is no comment is named when no point follows.
    let mut before: Vec<String> = Vec::new();
    let mut unread: Option<(usize, String)> = None;
    loop {
        let read = read_line(&mut source, &mut line).map_err(|error| Error::io(path, error))?;
        number += 1;
        let at_line = |message: String| Error::format(path, Location::Line(number), message);
        match read {
            Some(0) => break,
            Some(_) => {}
            None => {
                return Err(at_line(format!(
                    "the line is longer than {MAX_LINE_BYTES} bytes"
                )));
            }
        }
        let text = std::str::from_utf8(line.trim_ascii())
            .map_err(|_| at_line("the line is not text".to_string()))?;
        let comment = text.starts_with('#') || text.starts_with("//");
        if columns.is_empty() && !text.is_empty() {
            before.push(text.to_string());
            if !comment && unread.is_none() {
                unread = Some((number, text.to_string()));
            }
        }
        if text.is_empty() || comment {
            continue;
        }
        row.clear();
        let bad = tokens(text).find(|token| match token.parse::<f64>() {
            Ok(value) => {
                row.push(value);
                false
            }
            Err(_) => true,
        });
        let count_line = bad.is_none()
            && matches!(row.as_slice(), [count] if *count >= 0.0 && count.fract() == 0.0);
        if columns.is_empty() {
            // Header lines: column names, or a point count as in `.pts`.
            if bad.is_some() || count_line {
                continue;
            }
            if row.len() < 3 {
                return Err(at_line(format!(
                    "{} values; a point needs at least 3 (x y z)",
                    row.len()
                )));
            }
            if row.len() > MAX_PROPERTIES {
                return Err(at_line(format!(
                    "{} values, more than the {MAX_PROPERTIES} columns mlsproj reads",
                    row.len()
                )));
            }
            columns = vec![Vec::new(); row.len()];
            first_row = number;
            before.pop();
        } else if count_line && pts {
            // The point count of the next scan of a multi-scan `.pts`.
            continue;
        }
        if let Some(token) = bad {
            return Err(at_line(format!("'{token}' is not a number")));
        }
        if row.len() != columns.len() {
            return Err(at_line(format!(
                "{} values, but line {first_row} has {}",
                row.len(),
                columns.len()
            )));
        }
        for (column, value) in columns.iter_mut().zip(&row) {
            column.push(*value);
        }
    }
    if columns.is_empty() {
        return Err(match unread {
            Some((line, text)) => {
                let shown: String = text.chars().take(60).collect();
                Error::format(
                    path,
                    Location::Line(line),
                    format!("no point in the file: '{shown}' is not a point (x y z …)"),
                )
            }
            None => Error::format(path, Location::File, "no point in the file"),
        });
    }
    let names = before
        .last()
        .and_then(|line| header_names(line, columns.len()));
    let comments = before
        .iter()
        .filter_map(|line| line.strip_prefix("# "))
        .map(str::to_owned)
        .collect();
    let cloud = match names {
        Some(names) => cloud_from_named_columns(&names, columns),
        None => cloud_from_columns(columns),
    };
    Ok((cloud, comments))
}

/// Rows of three equally long columns.
fn triples<'a>([a, b, c]: [&'a [f64]; 3]) -> impl Iterator<Item = [f64; 3]> + 'a {
    a.iter().zip(b).zip(c).map(|((a, b), c)| [*a, *b, *c])
}

/// The columns as colours when every value is an integer in 0..=255.
fn byte_colours(columns: [&[f64]; 3]) -> Option<Vec<[u8; 3]>> {
    let byte = |value: f64| {
        (value.fract() == 0.0 && (0.0..=255.0).contains(&value)).then_some(value as u8)
    };
    triples(columns)
        .map(|row| {
            let [r, g, b] = row.map(byte);
            Some([r?, g?, b?])
        })
        .collect()
}

/// The columns as colours scaled from 0..1 when every value is in 0..=1 and
/// some value is not an integer (so 0/1-only columns stay unscaled).
fn unit_colours(columns: [&[f64]; 3]) -> Option<Vec<[u8; 3]>> {
    let unit = columns
        .iter()
        .all(|column| column.iter().all(|value| (0.0..=1.0).contains(value)));
    let fractional = columns
        .iter()
        .any(|column| column.iter().any(|value| value.fract() != 0.0));
    (unit && fractional).then(|| {
        triples(columns)
            .map(|row| row.map(|value| (value * 255.0).round() as u8))
            .collect()
    })
}

/// True when every finite row is a unit vector (length within 1%) or
/// zero (a normal some files write for "unknown").
fn unit_vectors(columns: [&[f64]; 3]) -> bool {
    triples(columns).all(|[a, b, c]| {
        let squared = a * a + b * b + c * c;
        !squared.is_finite() || squared == 0.0 || (squared - 1.0).abs() <= 0.02
    })
}

/// Three unnamed columns as colours rather than normals: integers in
/// 0..=255 that are not all unit axis vectors (`0 0 1` rows are normals of
/// an axis-aligned surface, since such colours would be nearly black), or
/// values in 0..=1 that are not all unit vectors (scaled by 255).
fn colours_not_normals(columns: [&[f64]; 3]) -> Option<Vec<[u8; 3]>> {
    if unit_vectors(columns) {
        let axis_aligned = triples(columns).all(|[a, b, c]| a * a + b * b + c * c == 1.0);
        return byte_colours(columns).filter(|_| !axis_aligned);
    }
    byte_colours(columns).or_else(|| unit_colours(columns))
}

/// The columns as `f32` normals.
fn normals(columns: [&[f64]; 3]) -> Vec<Vector3<f32>> {
    triples(columns)
        .map(|[a, b, c]| Vector3::new(a as f32, b as f32, c as f32))
        .collect()
}

/// The column as the `f32` attribute `intensity`.
fn intensity(values: &[f64]) -> Attribute {
    Attribute {
        name: "intensity".to_string(),
        values: Column::F32(values.iter().map(|value| *value as f32).collect()),
    }
}

/// Sets columns known to be colours: bytes, or 0..1 floats scaled, else
/// kept as `f64` attributes `red green blue`.
fn set_colours(cloud: &mut PointCloud, columns: [&[f64]; 3]) {
    match byte_colours(columns).or_else(|| unit_colours(columns)) {
        Some(colours) => cloud.colours = Some(colours),
        None => {
            for (name, values) in ["red", "green", "blue"].into_iter().zip(columns) {
                cloud.attributes.push(Attribute {
                    name: name.to_string(),
                    values: Column::F64(values.to_vec()),
                });
            }
        }
    }
}

/// Maps the columns of a text cloud to a [`PointCloud`] by their count.
fn cloud_from_columns(columns: Vec<Vec<f64>>) -> PointCloud {
    let mut cloud = PointCloud {
        precision: Precision::Double,
        normal_precision: Precision::Double,
        ..PointCloud::default()
    };
    let [x, y, z, rest @ ..] = columns.as_slice() else {
        return cloud;
    };
    cloud.positions = triples([x, y, z]).map(Point3::from).collect();
    match rest {
        [] => {}
        [i] => cloud.attributes.push(intensity(i)),
        [a, b, c] => match colours_not_normals([a, b, c]) {
            Some(colours) => cloud.colours = Some(colours),
            None => cloud.normals = Some(normals([a, b, c])),
        },
        [i, r, g, b] => {
            cloud.attributes.push(intensity(i));
            set_colours(&mut cloud, [r, g, b]);
        }
        [a, b, c, d, e, f] => match colours_not_normals([a, b, c]) {
            Some(colours) => {
                cloud.colours = Some(colours);
                cloud.normals = Some(normals([d, e, f]));
            }
            None => {
                cloud.normals = Some(normals([a, b, c]));
                set_colours(&mut cloud, [d, e, f]);
            }
        },
        fields => {
            cloud.attributes = fields
                .iter()
                .zip(3..)
                .map(|(values, index)| Attribute {
                    name: format!("field_{index}"),
                    values: Column::F64(values.clone()),
                })
                .collect();
        }
    }
    cloud
}

/// Maps columns named by a header line (see [`role`]) to a
/// [`PointCloud`]: normals need all three, colours all three (bytes, or
/// 0..1 scaled, else `f64` attributes `red green blue`); every other column
/// is an `f64` attribute under its name, `intensity` an `f32` one.
fn cloud_from_named_columns(names: &[String], columns: Vec<Vec<f64>>) -> PointCloud {
    let mut cloud = PointCloud {
        precision: Precision::Double,
        ..PointCloud::default()
    };
    let roles: Vec<Role> = names.iter().map(|name| role(name)).collect();
    let find = |wanted: Role| roles.iter().position(|role| *role == wanted);
    let triple = |make: fn(usize) -> Role| -> Option<[usize; 3]> {
        Some([find(make(0))?, find(make(1))?, find(make(2))?])
    };
    let column = |index: usize| columns[index].as_slice();
    let mut used = vec![false; columns.len()];
    if let Some(position) = triple(Role::Position) {
        cloud.positions = triples(position.map(column)).map(Point3::from).collect();
        for index in position {
            used[index] = true;
        }
    }
    if let Some(normal) = triple(Role::Normal) {
        cloud.normals = Some(normals(normal.map(column)));
        for index in normal {
            used[index] = true;
        }
    }
    if let Some(colour) = triple(Role::Colour) {
        set_colours(&mut cloud, colour.map(column));
        for index in colour {
            used[index] = true;
        }
    }
    for (index, values) in columns.iter().enumerate() {
        if used[index] {
            continue;
        }
        used[index] = true;
        let taken: Vec<String> = cloud.attributes.iter().map(|a| a.name.clone()).collect();
        if roles[index] == Role::Intensity && !taken.iter().any(|name| name == "intensity") {
            cloud.attributes.push(intensity(values));
        } else {
            cloud.attributes.push(Attribute {
                name: super::property_name(&names[index], &taken),
                values: Column::F64(values.clone()),
            });
        }
    }
    cloud
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud(columns: &[&[f64]]) -> PointCloud {
        cloud_from_columns(columns.iter().map(|c| c.to_vec()).collect())
    }

    #[test]
    fn six_columns_are_colours_only_when_bytes_and_not_axis_normals() {
        let xyz: [&[f64]; 3] = [&[0.0, 1.0], &[0.0, 1.0], &[0.0, 1.0]];
        let with =
            |extra: [&[f64]; 3]| cloud(&[xyz[0], xyz[1], xyz[2], extra[0], extra[1], extra[2]]);
        let coloured = with([&[255.0, 0.0], &[10.0, 0.0], &[0.0, 0.0]]);
        assert_eq!(coloured.colours, Some(vec![[255, 10, 0], [0, 0, 0]]));
        assert!(coloured.normals.is_none());
        let axis = with([&[0.0, 1.0], &[0.0, 0.0], &[1.0, 0.0]]);
        assert!(axis.colours.is_none());
        assert_eq!(axis.normals.unwrap()[1], Vector3::new(1.0, 0.0, 0.0));
        let unit = with([&[0.6, 0.0], &[0.0, 0.6], &[0.8, 0.8]]);
        assert!(unit.normals.is_some() && unit.colours.is_none());
        let not_unit = with([&[0.5, 0.0], &[0.5, 0.6], &[0.75, 0.8]]);
        assert_eq!(not_unit.colours, Some(vec![[128, 128, 191], [0, 153, 204]]));
        assert!(not_unit.normals.is_none());
        let skewed = with([&[-0.5, 0.0], &[0.5, 0.6], &[0.75, 0.8]]);
        assert!(skewed.normals.is_some() && skewed.colours.is_none());
    }

    #[test]
    fn header_names_decide_the_columns() {
        let names = header_names("//X,Y,Z,R,G,B,Scalar field", 7).unwrap();
        let columns = (0..7).map(|c| vec![f64::from(c) / 10.0]).collect();
        let cloud = cloud_from_named_columns(&names, columns);
        assert_eq!(cloud.positions[0], Point3::new(0.0, 0.1, 0.2));
        assert_eq!(cloud.colours, Some(vec![[77, 102, 128]]));
        assert_eq!(cloud.attributes[0].name, "Scalar_field");
        assert!(header_names("a b c", 3).is_none());
        assert!(header_names("x y z nx", 3).is_none());
        let named = header_names("nz y x ny z nx", 6).unwrap();
        let columns = (0..6).map(|c| vec![f64::from(c)]).collect();
        let cloud = cloud_from_named_columns(&named, columns);
        assert_eq!(cloud.positions[0], Point3::new(2.0, 1.0, 4.0));
        assert_eq!(cloud.normals.unwrap()[0], Vector3::new(5.0, 3.0, 0.0));
    }

    #[test]
    fn semicolons_tabs_and_files_without_points() {
        let dir = tempfile::tempdir().unwrap();
        let semi = dir.path().join("semi.csv");
        std::fs::write(&semi, "x;y;z\n1;2;3\n4\t5\t6\n").unwrap();
        assert_eq!(read_text(&semi).unwrap().len(), 2);
        let none = dir.path().join("none.xyz");
        std::fs::write(&none, "# comment\nhello there\n").unwrap();
        let err = read_text(&none).unwrap_err().to_string();
        assert!(
            err.contains("line 2") && err.contains("hello there"),
            "{err}"
        );
    }

    #[test]
    fn seven_columns_scale_unit_colours_and_keep_others() {
        let c = |v: f64| vec![v];
        let scaled =
            cloud_from_columns(vec![c(1.0), c(2.0), c(3.0), c(9.0), c(0.5), c(1.0), c(0.0)]);
        assert_eq!(scaled.colours, Some(vec![[128, 255, 0]]));
        let odd = cloud_from_columns(vec![
            c(1.0),
            c(2.0),
            c(3.0),
            c(9.0),
            c(300.0),
            c(1.0),
            c(0.0),
        ]);
        assert!(odd.colours.is_none());
        let names: Vec<_> = odd.attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["intensity", "red", "green", "blue"]);
    }

    #[test]
    fn other_counts_become_numbered_fields() {
        let c = |v: f64| vec![v];
        let five = cloud_from_columns(vec![c(1.0), c(2.0), c(3.0), c(4.0), c(5.0)]);
        let names: Vec<_> = five.attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["field_3", "field_4"]);
        assert_eq!(five.attributes[1].values, Column::F64(vec![5.0]));
    }
}
