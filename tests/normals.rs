//! Estimated, oriented normals for clouds without normals: the fraction of
//! wrong signs against the true normals on shapes with concave regions,
//! thin parts and several components, and the sign rules.
//!
//! Every shape is sampled uniformly by area with Gaussian noise along the
//! normal of σ = 0.1% of its bounding box's diagonal (half the truth sets'
//! σ: these shapes are 10-40k points, not 200k, so a neighbourhood of 30
//! spans a larger share of them), and its normals estimated from the 30
//! nearest. The issue's target is ≤ 0.02% wrong on organic shapes; at
//! 20-40k points one wrong sign is 0.0025-0.005%, so the smooth shapes,
//! the fold, the stacked sheets and the terrain are held to it. The plate
//! thinner than a neighbourhood is not (see its test).

mod common;

use common::Rng;
use mlsproj::config::{Orientation, Support};
use mlsproj::neighbours::NeighbourSearch;
use mlsproj::normals::{DEFAULT_NEIGHBOURS, estimate_oriented};
use mlsproj::{Config, Method, MlsSurface, PointCloud, project_all};
use nalgebra::{Point3, Vector3};

/// Points with their true (outward, or toward the intended side) normals.
#[derive(Default)]
struct Shape {
    points: Vec<Point3<f64>>,
    normals: Vec<Vector3<f64>>,
}

impl Shape {
    /// Adds `count` samples of the parametric patch `at(u, v)`, (u, v) in
    /// [0, 1]², uniform by area (rejection on the area element, whose
    /// largest value `max_area` bounds), moved by noise σ along the normal.
    /// `outward` gives the true normal its sign from the point and the
    /// unsigned normal.
    fn add_patch(
        &mut self,
        rng: &mut Rng,
        count: usize,
        sigma: f64,
        at: impl Fn(f64, f64) -> Point3<f64>,
        outward: impl Fn(&Point3<f64>, &Vector3<f64>) -> bool,
    ) {
        let step = 1e-6;
        let frame = |u: f64, v: f64| {
            let du = (at(u + step, v) - at(u - step, v)) / (2.0 * step);
            let dv = (at(u, v + step) - at(u, v - step)) / (2.0 * step);
            du.cross(&dv)
        };
        let max_area = (0..=64)
            .flat_map(|i| (0..=64).map(move |j| (i as f64 / 64.0, j as f64 / 64.0)))
            .map(|(u, v)| frame(u.clamp(1e-5, 1.0 - 1e-5), v.clamp(1e-5, 1.0 - 1e-5)).norm())
            .fold(0.0, f64::max)
            * 1.2;
        let mut added = 0;
        while added < count {
            let (u, v) = (rng.uniform(), rng.uniform());
            let area = frame(u, v);
            if rng.uniform() * max_area > area.norm() {
                continue;
            }
            let p = at(u, v);
            let mut n = area.normalize();
            if !outward(&p, &n) {
                n = -n;
            }
            self.points.push(p + n * sigma * rng.normal());
            self.normals.push(n);
            added += 1;
        }
    }

    /// Indices of the points whose estimated normal (by `orientation`)
    /// points against the true one (or is zero).
    fn wrong_signs(&self, orientation: Orientation) -> Vec<usize> {
        let estimated = estimate_oriented(&self.points, DEFAULT_NEIGHBOURS, orientation, None)
            .expect("estimates");
        wrong(&estimated, &self.normals)
    }
}

fn wrong(estimated: &[Vector3<f32>], truth: &[Vector3<f64>]) -> Vec<usize> {
    estimated
        .iter()
        .zip(truth)
        .enumerate()
        .filter(|(_, (n, t))| n.cast::<f64>().dot(t) <= 0.0)
        .map(|(i, _)| i)
        .collect()
}

/// σ of the noise: 0.1% of the diagonal `diagonal`.
fn noise(diagonal: f64) -> f64 {
    1e-3 * diagonal
}

fn torus(rng: &mut Rng, centre: Vector3<f64>, count: usize) -> Shape {
    let (major, minor) = (1.0, 0.3);
    let mut shape = Shape::default();
    let tau = std::f64::consts::TAU;
    shape.add_patch(
        rng,
        count,
        noise(2.0 * 1.3 * 2f64.sqrt()),
        |u, v| {
            let (a, b) = (tau * u, tau * v);
            Point3::new(
                (major + minor * b.cos()) * a.cos(),
                (major + minor * b.cos()) * a.sin(),
                minor * b.sin(),
            ) + centre
        },
        |p, n| {
            let q = p.coords - centre;
            let ring = Vector3::new(q.x, q.y, 0.0).normalize() * major;
            n.dot(&(q - ring)) > 0.0
        },
    );
    shape
}

fn sphere(rng: &mut Rng, centre: Vector3<f64>, radius: f64, count: usize) -> Shape {
    let mut shape = Shape::default();
    shape.add_patch(
        rng,
        count,
        noise(2.0 * radius * 3f64.sqrt()),
        |u, v| {
            let (theta, phi) = (std::f64::consts::PI * u, std::f64::consts::TAU * v);
            Point3::from(
                centre
                    + radius
                        * Vector3::new(
                            theta.sin() * phi.cos(),
                            theta.sin() * phi.sin(),
                            theta.cos(),
                        ),
            )
        },
        |p, n| n.dot(&(p.coords - centre)) > 0.0,
    );
    shape
}

/// Asserts that at most `limit` of `points` normals are wrong.
fn assert_wrong_at_most(wrong: &[usize], limit: usize, points: usize) {
    assert!(
        wrong.len() <= limit,
        "{} wrong of {points} ({:.4}%), at most {limit} allowed",
        wrong.len(),
        100.0 * wrong.len() as f64 / points as f64
    );
}

#[test]
fn torus_normals_point_outward() {
    let shape = torus(&mut Rng::new(1), Vector3::zeros(), 40_000);
    let wrong = shape.wrong_signs(Orientation::Auto);
    // ≤ 0.02% of 40,000: 8 points.
    assert_wrong_at_most(&wrong, 8, 40_000);
}

#[test]
fn a_deep_fold_keeps_its_walls_apart() {
    // A sphere with a groove cut 60% of the way to its centre, 0.3 rad
    // wide: its two walls face each other, concave, closer than 0.2 at the
    // bottom. Star-shaped about the centre, so outward is n·p > 0.
    let mut shape = Shape::default();
    let groove = |theta: f64, phi: f64| {
        let phi = phi - std::f64::consts::PI;
        1.0 - 0.6 * (-(phi / 0.3).powi(2)).exp() * theta.sin().powi(2)
    };
    shape.add_patch(
        &mut Rng::new(2),
        40_000,
        noise(2.0 * 3f64.sqrt()),
        |u, v| {
            let (theta, phi) = (std::f64::consts::PI * u, std::f64::consts::TAU * v);
            let r = groove(theta, phi);
            Point3::new(
                r * theta.sin() * phi.cos(),
                r * theta.sin() * phi.sin(),
                r * theta.cos(),
            )
        },
        |p, n| n.dot(&p.coords) > 0.0,
    );
    let wrong = shape.wrong_signs(Orientation::Auto);
    assert_wrong_at_most(&wrong, 8, 40_000);
}

#[test]
fn two_separate_components_each_point_outward() {
    let mut rng = Rng::new(3);
    let mut shape = torus(&mut rng, Vector3::zeros(), 20_000);
    let ball = sphere(&mut rng, Vector3::new(3.0, 0.0, 0.0), 0.5, 10_000);
    shape.points.extend(ball.points);
    shape.normals.extend(ball.normals);
    let wrong = shape.wrong_signs(Orientation::Auto);
    // ≤ 0.02% of 30,000: 6 points.
    assert_wrong_at_most(&wrong, 6, 30_000);
}

/// A flat rectangle [−1, 1]² at height `z`, normals `up` or down.
fn sheet(rng: &mut Rng, z: f64, up: bool, count: usize, sigma: f64) -> Shape {
    let mut shape = Shape::default();
    shape.add_patch(
        rng,
        count,
        sigma,
        |u, v| Point3::new(2.0 * u - 1.0, 2.0 * v - 1.0, z),
        |_, n| (n.z > 0.0) == up,
    );
    shape
}

/// Distance from the 31st nearest point to a point, the median over
/// `shape`: the radius of a PCA neighbourhood (itself and 30 others).
fn neighbourhood_radius(shape: &Shape) -> f64 {
    let mut radii: Vec<f64> = shape
        .points
        .iter()
        .step_by(97)
        .map(|p| {
            let mut d: Vec<f64> = shape.points.iter().map(|q| (q - p).norm()).collect();
            d.select_nth_unstable_by(DEFAULT_NEIGHBOURS, f64::total_cmp);
            d[DEFAULT_NEIGHBOURS]
        })
        .collect();
    let middle = radii.len() / 2;
    *radii.select_nth_unstable_by(middle, f64::total_cmp).1
}

#[test]
fn two_parallel_sheets_closer_than_the_support_both_face_the_viewpoint() {
    // Two open sheets stacked a third of a neighbourhood radius apart (a
    // PCA neighbourhood holds both), seen from above: an edge between them
    // runs along both normals and must not say that they face apart.
    let mut rng = Rng::new(4);
    let sigma = noise(8f64.sqrt());
    let mut shape = sheet(&mut rng, 0.0, true, 10_000, sigma);
    let radius = neighbourhood_radius(&shape);
    let upper = sheet(&mut rng, radius / 3.0, true, 10_000, sigma);
    shape.points.extend(upper.points);
    shape.normals.extend(upper.normals);
    let wrong = shape.wrong_signs(Orientation::ConsistentToward(0.3, -0.2, 5.0));
    assert_wrong_at_most(&wrong, 4, 20_000);
}

/// A closed box [−1, 1]² × [−t/2, t/2], `count` points spread by area,
/// normals outward.
fn plate(rng: &mut Rng, thickness: f64, count: usize, sigma: f64) -> Shape {
    let half = thickness / 2.0;
    let area = 8.0 + 8.0 * thickness;
    let mut shape = Shape::default();
    let share = |face_area: f64| (count as f64 * face_area / area).round() as usize;
    let outward = |p: &Point3<f64>, n: &Vector3<f64>| {
        // Faces of a box centred on the origin.
        n.dot(&p.coords) > 0.0
    };
    for z in [-half, half] {
        shape.add_patch(
            rng,
            share(4.0),
            sigma,
            |u, v| Point3::new(2.0 * u - 1.0, 2.0 * v - 1.0, z),
            outward,
        );
    }
    for x in [-1.0, 1.0] {
        shape.add_patch(
            rng,
            share(2.0 * thickness),
            sigma,
            |u, v| Point3::new(x, 2.0 * u - 1.0, thickness * (v - 0.5)),
            outward,
        );
        shape.add_patch(
            rng,
            share(2.0 * thickness),
            sigma,
            |u, v| Point3::new(2.0 * u - 1.0, x, thickness * (v - 0.5)),
            outward,
        );
    }
    shape
}

/// A closed plate of 40,000 points (seeded by `seed`) 0.9 neighbourhood
/// radius thick, with the radius and the noise σ: a PCA neighbourhood on
/// a face reaches the other face.
fn thin_plate(seed: u64) -> (Shape, f64, f64) {
    let mut rng = Rng::new(seed);
    let sigma = noise(8f64.sqrt());
    let probe = sheet(&mut rng, 0.0, true, 20_000, sigma);
    let radius = neighbourhood_radius(&probe);
    (plate(&mut rng, 0.9 * radius, 40_000, sigma), radius, sigma)
}

#[test]
fn a_plate_thinner_than_the_neighbourhood_keeps_its_faces_apart() {
    // A closed box 0.9 neighbourhood radius thick: every PCA neighbourhood
    // on a face reaches the other face, and so do the graph's edges.
    // Hoppe's cost (1 − |ni·nj|, 0 between the parallel faces) joins the
    // faces directly and signs one of them wrong: 50%. Kept apart, the
    // faces are signed through the rim, whose side faces are one
    // neighbourhood tall and whose PCA normals are a blend. Measured: 300
    // of 40,000 wrong (a patch by one corner) with the forest alone, 178
    // with doubtful normals reached last, 5 once each point is mended by
    // its neighbours' consensus; held to the 0.05% target for thin parts.
    let (shape, ..) = thin_plate(5);
    let wrong = shape.wrong_signs(Orientation::Auto);
    assert_wrong_at_most(&wrong, 20, 40_000);
}

/// An inverted T extruded along y: a base [−1, 1]² × [0, 0.2] and on it a
/// fin [−t/2, t/2] × [−1, 1] × [0.2, 0.8], `thickness` t; `count` points
/// spread by area, normals outward. Also the indices of the fin's two large
/// faces.
fn finned_base(
    rng: &mut Rng,
    thickness: f64,
    count: usize,
    sigma: f64,
) -> (Shape, [std::ops::Range<usize>; 2]) {
    let h = thickness / 2.0;
    let v = Vector3::new;
    // Each rectangle: corner, its two edges, outward normal.
    let mut rectangles = vec![
        (
            v(-1.0, -1.0, 0.0),
            v(2.0, 0.0, 0.0),
            v(0.0, 2.0, 0.0),
            -Vector3::z(),
        ),
        (
            v(-1.0, -1.0, 0.0),
            v(0.0, 2.0, 0.0),
            v(0.0, 0.0, 0.2),
            -Vector3::x(),
        ),
        (
            v(1.0, -1.0, 0.0),
            v(0.0, 2.0, 0.0),
            v(0.0, 0.0, 0.2),
            Vector3::x(),
        ),
        (
            v(-1.0, -1.0, 0.2),
            v(1.0 - h, 0.0, 0.0),
            v(0.0, 2.0, 0.0),
            Vector3::z(),
        ),
        (
            v(h, -1.0, 0.2),
            v(1.0 - h, 0.0, 0.0),
            v(0.0, 2.0, 0.0),
            Vector3::z(),
        ),
        (
            v(-h, -1.0, 0.8),
            v(thickness, 0.0, 0.0),
            v(0.0, 2.0, 0.0),
            Vector3::z(),
        ),
        // The fin's two faces (6 and 7, returned).
        (
            v(-h, -1.0, 0.2),
            v(0.0, 2.0, 0.0),
            v(0.0, 0.0, 0.6),
            -Vector3::x(),
        ),
        (
            v(h, -1.0, 0.2),
            v(0.0, 2.0, 0.0),
            v(0.0, 0.0, 0.6),
            Vector3::x(),
        ),
    ];
    for y in [-1.0, 1.0] {
        let out = v(0.0, y, 0.0);
        rectangles.push((v(-1.0, y, 0.0), v(2.0, 0.0, 0.0), v(0.0, 0.0, 0.2), out));
        rectangles.push((v(-h, y, 0.2), v(thickness, 0.0, 0.0), v(0.0, 0.0, 0.6), out));
    }
    let area: f64 = rectangles
        .iter()
        .map(|(_, a, b, _)| a.cross(b).norm())
        .sum();
    let mut shape = Shape::default();
    let mut faces = Vec::new();
    for (corner, a, b, out) in rectangles {
        let start = shape.points.len();
        shape.add_patch(
            rng,
            (count as f64 * a.cross(&b).norm() / area).round() as usize,
            sigma,
            |s, t| Point3::from(corner + a * s + b * t),
            |_, n| n.dot(&out) > 0.0,
        );
        faces.push(start..shape.points.len());
    }
    (shape, [faces[6].clone(), faces[7].clone()])
}

#[test]
fn a_fin_two_spacings_thick_faces_out_on_both_faces() {
    // The truth set `fins`' thinnest fin, on a base: two point spacings
    // thick, the noise a third of that (3.3σ between its faces; σ 0.6
    // spacings, as in the truth sets), so the fin is one noisy slab with a
    // rim two points wide, which the propagation crosses by a coin toss.
    // Measured on seeds 10-15: before the ray test (src/normals/thin.rs)
    // the worse face of the fin had 39-90% of its normals inward (a face
    // signed wholesale wrong, then partly mended; 79% on this seed), with
    // it 16-33% (33% here). The rest are normals that PCA gets nearly
    // tangent at this thickness; what is held here is that no face comes
    // out mostly inward.
    let mut rng = Rng::new(12);
    let count = 40_000;
    // The shape's area is 12 + 1.2 t.
    let spacing = (12.0 / count as f64).sqrt();
    let thickness = 2.0 * spacing;
    let (shape, fin) = finned_base(&mut rng, thickness, count, thickness / 3.3);
    let wrong = shape.wrong_signs(Orientation::Auto);
    for face in fin {
        let inward = wrong.iter().filter(|&&i| face.contains(&i)).count();
        assert!(
            2 * inward < face.len(),
            "{inward} of a fin face's {} normals point inward",
            face.len()
        );
    }
}

#[test]
fn an_open_sheet_faces_the_viewpoint() {
    // A wavy sheet whose slopes reach 50°, so that some of it faces away
    // from a viewpoint off to one side: a consistent orientation still
    // signs it as one sheet, facing the viewpoint as a whole.
    let mut shape = Shape::default();
    shape.add_patch(
        &mut Rng::new(6),
        20_000,
        noise(8f64.sqrt()),
        |u, v| {
            let (x, y) = (2.0 * u - 1.0, 2.0 * v - 1.0);
            Point3::new(x, y, 0.2 * (6.0 * x).sin())
        },
        |_, n| n.z > 0.0,
    );
    let viewpoint = (4.0, 0.0, 1.0);
    let consistent = shape.wrong_signs(Orientation::ConsistentToward(
        viewpoint.0,
        viewpoint.1,
        viewpoint.2,
    ));
    assert!(consistent.len() <= 4, "{} wrong", consistent.len());
    // Each normal toward the viewpoint on its own signs the slopes that
    // face away wrong.
    let each = shape.wrong_signs(Orientation::Viewpoint(
        viewpoint.0,
        viewpoint.1,
        viewpoint.2,
    ));
    assert!(each.len() > 2_000, "{} wrong", each.len());
}

/// A terrain: rolling hills, normals up.
fn terrain(rng: &mut Rng, count: usize) -> Shape {
    let mut shape = Shape::default();
    shape.add_patch(
        rng,
        count,
        noise(8f64.sqrt()),
        |u, v| {
            let (x, y) = (2.0 * u - 1.0, 2.0 * v - 1.0);
            Point3::new(
                x,
                y,
                0.15 * (3.0 * x).sin() * (2.0 * y).cos() + 0.05 * (7.0 * y).sin(),
            )
        },
        |_, n| n.z > 0.0,
    );
    shape
}

#[test]
fn terrain_faces_up_consistently_and_with_up() {
    let shape = terrain(&mut Rng::new(7), 20_000);
    for orientation in [Orientation::Auto, Orientation::Up] {
        let wrong = shape.wrong_signs(orientation);
        assert!(wrong.len() <= 4, "{orientation:?}: {} wrong", wrong.len());
    }
}

#[test]
fn with_up_every_particle_normal_points_up() {
    // Particles above and below the terrain, on a cloud without normals:
    // every normal written has nz ≥ 0, whatever the fit's frame says.
    let mut rng = Rng::new(8);
    let mut shape = terrain(&mut rng, 20_000);
    // A facade standing on it: there the fitted surface's normal tips
    // either way of the horizon.
    let facade = sheet(&mut rng, 0.0, true, 4_000, noise(8f64.sqrt()));
    shape.points.extend(
        facade
            .points
            .iter()
            .map(|p| Point3::new(0.5 + p.z, p.x, 0.3 * (p.y + 1.0))),
    );
    let cloud = PointCloud {
        positions: shape.points.clone(),
        ..PointCloud::default()
    };
    let particles: Vec<Point3<f64>> = shape
        .points
        .iter()
        .step_by(10)
        .map(|p| p + Vector3::new(0.0, 0.0, rng.range(-0.05, 0.05)))
        .collect();
    let config = Config::parse(
        r#"(cloud: "c.ply", particles: File("p.ply"), output: "o.ply", support: Nearest(30), orientation: Up)"#,
    )
    .expect("parses");
    let surface = MlsSurface::from_config(&cloud, &config).expect("surface");
    let projected = project_all(
        &surface.projector(Method::from(&config), config.orientation, false),
        &particles,
    );
    assert!(projected.iter().all(|p| p.normal.z >= 0.0));
}

#[test]
fn particles_take_their_signs_from_the_estimated_normals() {
    // A torus without normals, smoothed: by default (Auto) every particle
    // normal points out of the tube; away from the centroid, as before
    // estimation, the inner half of the tube points in.
    let shape = torus(&mut Rng::new(9), Vector3::zeros(), 40_000);
    let cloud = PointCloud {
        positions: shape.points.clone(),
        ..PointCloud::default()
    };
    let particles: Vec<Point3<f64>> = shape.points.iter().step_by(10).copied().collect();
    let truth: Vec<Vector3<f64>> = shape.normals.iter().step_by(10).copied().collect();
    let wrong_under = |orientation: &str| {
        let config = Config::parse(&format!(
            r#"(cloud: "c.ply", particles: File("p.ply"), output: "o.ply", support: Nearest(30), orientation: {orientation})"#
        ))
        .expect("parses");
        let surface = MlsSurface::from_config(&cloud, &config).expect("surface");
        let projector = surface.projector(Method::from(&config), config.orientation, false);
        let normals: Vec<Vector3<f32>> = project_all(&projector, &particles)
            .iter()
            .map(|p| p.normal.cast::<f32>())
            .collect();
        wrong(&normals, &truth).len()
    };
    assert_eq!(wrong_under("Auto"), 0);
    assert!(wrong_under("AwayFromCentroid") > 1_000);
}

#[test]
fn degenerate_inputs_give_zero_normals_not_panics() {
    let nan = Point3::new(f64::NAN, 0.0, 0.0);
    let line: Vec<Point3<f64>> = (0..50).map(|i| Point3::new(i as f64, 0.0, 0.0)).collect();
    let cases: Vec<(&str, Vec<Point3<f64>>)> = vec![
        ("empty", vec![]),
        ("one point", vec![Point3::origin()]),
        ("only NaN", vec![nan; 3]),
        ("collinear", line.clone()),
        ("duplicates", vec![Point3::new(1.0, 2.0, 3.0); 40]),
        (
            "fewer than k",
            vec![
                Point3::origin(),
                Point3::new(1.0, 0.0, 0.0),
                Point3::new(0.0, 1.0, 0.0),
                nan,
            ],
        ),
    ];
    for (name, points) in cases {
        for orientation in [
            Orientation::Auto,
            Orientation::Up,
            Orientation::AwayFromCentroid,
        ] {
            let normals =
                estimate_oriented(&points, DEFAULT_NEIGHBOURS, orientation, None).expect(name);
            assert_eq!(normals.len(), points.len(), "{name}");
            for (p, n) in points.iter().zip(&normals) {
                let unit = (n.norm() - 1.0).abs() < 1e-5;
                assert!(unit || *n == Vector3::zeros(), "{name}: {n:?}");
                if !p.x.is_finite() || name != "fewer than k" {
                    assert_eq!(*n, Vector3::zeros(), "{name}: no plane, no normal");
                }
            }
        }
    }
    // Three points span a plane: their normal is ±z.
    let triangle = [
        Point3::origin(),
        Point3::new(1.0, 0.0, 0.0),
        Point3::new(0.0, 1.0, 0.0),
    ];
    let normals =
        estimate_oriented(&triangle, DEFAULT_NEIGHBOURS, Orientation::Up, None).expect("triangle");
    assert!(
        normals.iter().all(|n| (n.z - 1.0).abs() < 1e-6),
        "{normals:?}"
    );
    assert!(estimate_oriented(&triangle, 0, Orientation::Auto, None).is_err());
}

#[test]
fn estimated_normals_face_the_scanner_that_saw_each_point() {
    // Two scans of a sphere from opposite sides (as an E57 file gives
    // them: a `scan_index` per point and the scanners' positions), and a
    // floor seen from below by a third: each normal faces its scanner. A
    // consistent orientation without the scanners turns the floor (an open
    // sheet) up.
    let mut rng = Rng::new(21);
    let mut positions = Vec::new();
    let mut scan = Vec::new();
    let mut facing = Vec::new();
    let scanners = [
        Point3::new(50.0, 0.0, 0.0),
        Point3::new(-50.0, 0.0, 0.0),
        Point3::new(0.0, 0.0, -10.0),
    ];
    while positions.len() < 20_000 {
        let v = Vector3::new(
            rng.range(-1.0, 1.0),
            rng.range(-1.0, 1.0),
            rng.range(-1.0, 1.0),
        );
        let norm = v.norm();
        if !(0.1..=1.0).contains(&norm) {
            continue;
        }
        let p = Point3::from(v / norm);
        // A point is in the scan of the scanner that sees it (a scanner
        // sees the side of a surface that faces it); a band around x = 0
        // faces neither.
        let Some(seen_by) = (0..2).find(|&i| (scanners[i] - p).dot(&p.coords) > 0.0) else {
            continue;
        };
        positions.push(p);
        scan.push(seen_by as u16);
        facing.push(v / norm);
    }
    for i in 0..100 {
        for j in 0..100 {
            let p = Point3::new(i as f64 * 0.04 - 2.0, j as f64 * 0.04 - 2.0, -3.0);
            positions.push(p + Vector3::new(0.0, 0.0, rng.range(-0.002, 0.002)));
            scan.push(2);
            facing.push(-Vector3::z());
        }
    }
    let cloud = PointCloud {
        positions: positions.clone(),
        attributes: vec![mlsproj::Attribute {
            name: "scan_index".into(),
            values: mlsproj::Column::U16(scan),
        }],
        ..PointCloud::default()
    };
    let config = Config::parse(
        r#"(cloud: "c.ply", particles: Cloud, output: "o.ply", support: Nearest(30))"#,
    )
    .expect("parses");
    let wrong_with = |scanners: &[Point3<f64>]| {
        let options = mlsproj::surface::NormalOptions {
            scanners: scanners.to_vec(),
            ..mlsproj::surface::NormalOptions::from(&config)
        };
        let surface = MlsSurface::with_options(&cloud, &options).expect("surface");
        let projector = surface.projector(Method::from(&config), config.orientation, false);
        project_all(&projector, &positions)
            .iter()
            .zip(&facing)
            .filter(|(p, truth)| p.normal.dot(truth) <= 0.0)
            .count()
    };
    assert_eq!(wrong_with(&scanners), 0, "facing the scanners");
    assert!(wrong_with(&[]) >= 9_000, "the floor faces up without them");
}

#[test]
fn a_plate_thinner_than_the_neighbourhood_gets_each_faces_own_normal() {
    // A closed box 0.9 neighbourhood radius thick (about three point
    // spacings, 14σ): a PCA neighbourhood on a face holds the other face
    // too, whose offset, not the surface, then sets the covariance's
    // smallest axis, and the normal tilts off the face or lies in it. On
    // a lone plane the PCA normal of k points spread over a disc of
    // radius r with noise σ is off by a Rayleigh angle of scale
    // 2σ / (r√k) per axis, mean 1.25 × that. Measured (seed 11): the
    // whole neighbourhood's PCA, mended, 4.9 × that mean and 29% of the
    // points past 6 ×; refitted on each point's own sheet, 1.9 × and 6%.
    let (shape, radius, sigma) = thin_plate(11);
    let estimated = estimate_oriented(&shape.points, DEFAULT_NEIGHBOURS, Orientation::Auto, None)
        .expect("estimates");
    // The large faces' points, two radii from the rim.
    let inner = 1.0 - 2.0 * radius;
    let angles: Vec<f64> = shape
        .points
        .iter()
        .zip(&shape.normals)
        .zip(&estimated)
        .filter(|((p, t), _)| t.z.abs() > 0.5 && p.x.abs() < inner && p.y.abs() < inner)
        .map(|((_, t), n)| n.cast::<f64>().dot(t).abs().min(1.0).acos())
        .collect();
    let mean = angles.iter().sum::<f64>() / angles.len() as f64;
    let lone_plane = 1.25 * 2.0 * sigma / (radius * (DEFAULT_NEIGHBOURS as f64).sqrt());
    assert!(
        mean < 3.0 * lone_plane,
        "mean angle {:.2}° against {:.2}° on a lone plane",
        mean.to_degrees(),
        lone_plane.to_degrees()
    );
    let far_off = angles.iter().filter(|&&a| a > 6.0 * lone_plane).count();
    assert!(
        far_off <= angles.len() / 10,
        "{far_off} of {} over 6 × a lone plane's mean angle",
        angles.len()
    );
}

/// `estimate_oriented` (the `normals` command) gives the normals a `run`
/// estimates for its fit: a cloud carrying them projects as the bare cloud
/// does, duplicates and a non-finite point included (to the rounding of a
/// file's normals made unit length again as they are read: 1e-7 in a
/// normal, far below the fit's noise; one sign or normal the two runs
/// disagreed on would move a particle by the noise, 2e-3).
#[test]
fn the_normals_command_gives_the_normals_a_run_fits_with() {
    let torus = common::Torus {
        major: 1.0,
        minor: 0.35,
    };
    let mut positions = common::noisy_cloud(&torus, 6_000, 0.002, 21).positions;
    positions.extend(positions.iter().step_by(7).copied().collect::<Vec<_>>());
    positions.push(Point3::new(f64::NAN, 0.0, 0.0));
    let bare = PointCloud::from_positions(positions.clone());
    let particles = common::particles(&torus, 500, 0.02, 22, |_| true);
    // A radius support sizes the index's cells for its balls: the normals
    // are estimated over the index the run builds for it.
    let cells = |support| {
        let search = NeighbourSearch::distinct_finite(&positions, support)
            .unwrap()
            .0;
        search.cell_count()
    };
    assert_ne!(
        cells(Some(Support::Radius(0.3))),
        cells(None),
        "the radius sizes the cells"
    );
    for support in [Support::Nearest(30), Support::Radius(0.3)] {
        let mut carrying = PointCloud::from_positions(positions.clone());
        carrying.normals = Some(
            estimate_oriented(
                &positions,
                DEFAULT_NEIGHBOURS,
                Orientation::Auto,
                Some(support),
            )
            .unwrap(),
        );
        let fields = match support {
            Support::Nearest(k) => format!("support: Nearest({k})"),
            Support::Radius(h) => format!("support: Radius({h})"),
            Support::RadiusNearest { .. } => unreachable!(),
        };
        let from_bare = common::project(&bare, &particles, &fields);
        let from_carrying = common::project(&carrying, &particles, &fields);
        assert_eq!(from_bare.len(), particles.len());
        assert_eq!(from_carrying.len(), particles.len());
        for (a, b) in from_bare.iter().zip(&from_carrying) {
            assert!(
                (a.position - b.position).norm() < 1e-8,
                "{fields}: {a:?} against {b:?}"
            );
            assert!(
                a.normal.dot(&b.normal) > 1.0 - 1e-9,
                "{fields}: {a:?} against {b:?}"
            );
        }
    }
}
