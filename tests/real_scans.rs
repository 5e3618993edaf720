//! Real scans in, nothing lost: the CGAL sample scans in `tests/data` and
//! `assets` smoothed end to end by the binary, and a particle file's own attributes
//! carried to the output with their types (or left out on request).

mod common;
mod job;

use common::{Sphere, noisy_cloud, particles, real};
use job::{Job, attribute, column, count, statuses, xyz_columns};
use mlsproj::io::colour_columns;
use mlsproj::{Attribute, Column, PointCloud, Status};

/// Smooths the sample scan `name` (`particles: Cloud`, `Nearest(30)`) with
/// the binary and checks what must hold on any scan: exit 0, every point
/// written once, in input order, at the input's precision; nearly all
/// `ok` (any others sit on thin or sparse parts); moves of about the scan
/// noise, which is far smaller than the model: RMS under 1% of the
/// bounding box diagonal (0.04–0.4% on the four scans) and none over 5%
/// (at most 1.9%, on oni's thin parts). Returns input and output.
fn smooth(name: &str) -> (PointCloud, PointCloud) {
    let path = real(name);
    let job = Job::new();
    let (_, output) = job.output(&format!(
        "cloud: {path:?}, particles: Cloud, support: Nearest(30)"
    ));
    let input = mlsproj::io::read_points(&path).unwrap();
    assert_eq!(output.len(), input.len(), "{name}: every point written");
    assert_eq!(output.precision, input.precision, "{name}");
    let Column::U32(index) = column(&output, "index") else {
        panic!("{name}: index is uint")
    };
    assert!(
        index.iter().enumerate().all(|(i, &v)| v as usize == i),
        "{name}: input order"
    );
    let ok = count(&output, &[Status::Ok]);
    assert!(
        ok as f64 >= 0.99 * input.len() as f64,
        "{name}: {ok} of {} ok",
        input.len()
    );
    let (lo, hi) = mlsproj::cloud::finite_bounds(&input.positions).unwrap();
    let diagonal = (hi - lo).norm();
    let moves: Vec<f64> = input
        .positions
        .iter()
        .zip(&output.positions)
        .map(|(a, b)| (a - b).norm())
        .collect();
    let rms = common::rms(moves.iter().copied());
    let largest = moves.iter().copied().fold(0.0, f64::max);
    assert!(
        rms < 0.01 * diagonal && largest < 0.05 * diagonal,
        "{name}: moves RMS {rms}, largest {largest}, diagonal {diagonal}"
    );
    (input, output)
}

#[test]
fn kitten_xyz_is_smoothed_end_to_end() {
    smooth("kitten.xyz");
}

#[test]
fn hippo1_ply_is_smoothed_end_to_end() {
    smooth("hippo1.ply");
}

#[test]
fn oni_ply_is_smoothed_end_to_end() {
    smooth("oni.ply");
}

/// With `particles: Cloud` the particles are the cloud's own points, so
/// b9's colours are the particles' own and pass through unchanged, as does
/// its int `label`.
#[test]
fn b9_training_is_smoothed_keeping_its_colours_and_labels() {
    let (input, output) = smooth("b9_training.ply");
    assert!(input.colours.is_some());
    assert_eq!(output.colours, input.colours);
    let label = column(&input, "label");
    assert!(matches!(label, Column::I32(_)));
    assert_eq!(column(&output, "label"), label);
}

/// Particles in each pass-through job.
const PARTICLES: usize = 200;

/// A job with `cloud.ply` (a noisy sphere coloured (9, 9, 9), so that
/// averaged colours are told apart from the particles' own) and
/// `particles.ply`: `x y z` float, then `extra`. Returns the job and the
/// config fields that run it.
fn pass_through_job(extra: &[Attribute]) -> (Job, String) {
    let job = Job::new();
    let cloud = noisy_cloud(&Sphere::unit(), 3000, 0.005, 1).positions;
    let mut columns = xyz_columns(&cloud);
    columns.extend(colour_columns(&vec![[9; 3]; cloud.len()]));
    job.write_ply("cloud.ply", &columns);

    let mut columns = xyz_columns(&particles(&Sphere::unit(), PARTICLES, 0.02, 2, |_| true));
    columns.extend_from_slice(extra);
    job.write_ply("particles.ply", &columns);
    let fields = r#"cloud: "cloud.ply", particles: File("particles.ply")"#.to_owned();
    (job, fields)
}

/// The particles' own colours: every particle a different one.
fn own_colours() -> Vec<[u8; 3]> {
    (0..PARTICLES)
        .map(|i| [i as u8, 255 - i as u8, (i * 7 % 256) as u8])
        .collect()
}

/// A label and an intensity, as a scanner's classifier writes them.
fn label_and_intensity() -> [Attribute; 2] {
    [
        attribute(
            "label",
            Column::I32((0..PARTICLES as i32).map(|i| i * 1000 - 7).collect()),
        ),
        attribute(
            "intensity",
            Column::F32((0..PARTICLES).map(|i| i as f32 * 0.25 + 0.125).collect()),
        ),
    ]
}

/// The particles' own colours, a label and an intensity.
fn scanner_attributes() -> Vec<Attribute> {
    let mut columns = colour_columns(&own_colours());
    columns.extend(label_and_intensity());
    columns
}

#[test]
fn particle_attributes_pass_through_with_their_types_and_values() {
    let (job, fields) = pass_through_job(&scanner_attributes());
    let (_, output) = job.output(&fields);
    assert!(statuses(&output).iter().all(|&s| s == Status::Ok.code()));
    assert_eq!(output.colours, Some(own_colours()), "own colours win");
    for attribute in label_and_intensity() {
        assert_eq!(column(&output, &attribute.name), &attribute.values);
    }
}

/// `attributes: false` leaves out labels and intensity; the particles'
/// own colours are not among those attributes and stay.
#[test]
fn attributes_false_leaves_them_out_but_keeps_the_particles_colours() {
    let (job, fields) = pass_through_job(&scanner_attributes());
    let (_, output) = job.output(&format!("{fields}, attributes: false"));
    for attribute in label_and_intensity() {
        let name = attribute.name;
        assert!(output.attributes.iter().all(|a| a.name != name), "{name}");
    }
    assert_eq!(output.colours, Some(own_colours()));
}

/// A particle attribute named like a computed property (here beside the
/// colours averaged from the cloud) is renamed `input_NAME`, and prefixed
/// again when another attribute already has that name: every property
/// arrives, under a unique name, with its type.
#[test]
fn attributes_named_like_computed_ones_arrive_under_unique_names() {
    let values = |offset: f32| Column::F32((0..PARTICLES).map(|i| i as f32 + offset).collect());
    let extra = [
        attribute("status", Column::U8(vec![200; PARTICLES])),
        attribute("index", Column::U32(vec![70_000; PARTICLES])),
        attribute("red", values(0.5)),
        attribute("input_red", values(0.25)),
    ];
    let (job, fields) = pass_through_job(&extra);
    let (_, output) = job.output(&fields);
    let renamed = [
        "input_status",
        "input_index",
        "input_input_red",
        "input_red",
    ];
    for (attribute, name) in extra.iter().zip(renamed) {
        assert_eq!(column(&output, name), &attribute.values, "{name}");
    }
    assert_eq!(output.colours, Some(vec![[9; 3]; PARTICLES]), "averaged");
}
