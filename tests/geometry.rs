//! The projection checked against surfaces with a known truth: plane,
//! sphere, a quadric height field, a torus, each sampled with seeded
//! Gaussian noise of standard deviation σ along the true normal.
//!
//! Tolerances come from the noise, not from runs. For a weighted quadratic
//! fit over N neighbours spread evenly over the support disc of radius h,
//! the fitted height at the centre has variance κ₀ σ² / N, the slope
//! κ₁ σ² / (N h²), and the mean curvature (a₃ + a₅)/h² has variance
//! κ_H σ² / (N h⁴). For the Plateau kernel (1 − r⁴)² these factors are
//! κ₀ = 5.2, κ₁ = 7.3, κ_H = 98, rounded up (for PCL's Gaussian 4.2, 4.3, 51; computed
//! by integrating the weighted moments of φ = (1, u, v, u², uv, v²) over the
//! unit disc). Each test predicts its error from these and the neighbour
//! counts it actually saw, and allows 1.5× the prediction: enough for the
//! density not being uniform and for particles sitting off the centroid,
//! far too little to hide a wrong fit (an unprojected particle is off by
//! about 0.6 × the offset, 20-50× these bounds).

mod common;

use common::{
    ALLOWANCE, KAPPA_HEIGHT, KAPPA_MEAN, Plane, Rng, SPHERE_NOISE, Saddle, Sphere, Torus, Truth,
    all_finite, angle_deg, median_neighbours, noisy_cloud, particles, plane_grid, project, rms,
    rms_distance, sphere_scan,
};
use mlsproj::{PointCloud, Projected, Status};
use nalgebra::{Point3, Vector3};

const KAPPA_SLOPE: f64 = 7.3;
const KAPPA_MEAN_CURVATURE: f64 = 98.0;
/// The fit the κ's above describe: heights alone (the cloud's normals left
/// out), under the Plateau kernel.
const POSITIONS: &str = "weight: Plateau, normal_weight: 0";

/// Predicted RMS height error and mean normal error (degrees) from the
/// noise, support radius and neighbour count.
fn predicted(sigma: f64, h: f64, neighbours: f64) -> (f64, f64) {
    let height = sigma * (KAPPA_HEIGHT / neighbours).sqrt();
    // Mean of a 2D isotropic Gaussian slope error: std · √(π/2).
    let slope = sigma * (KAPPA_SLOPE / neighbours).sqrt() / h;
    (
        height,
        (slope * (std::f64::consts::PI / 2.0).sqrt()).to_degrees(),
    )
}

/// Asserts every particle is projected, lands within the noise-derived
/// tolerance, and has a normal agreeing with the truth.
fn assert_on_surface(truth: &dyn Truth, projected: &[Projected], sigma: f64, h: f64, bias: f64) {
    assert!(projected.iter().all(|p| p.status == Status::Ok), "all ok");
    let (height, normal_deg) = predicted(sigma, h, median_neighbours(projected));
    let distance = rms_distance(truth, projected);
    let mean_angle = projected
        .iter()
        .map(|p| angle_deg(&p.normal, &truth.normal_near(&p.position)))
        .sum::<f64>()
        / projected.len() as f64;
    let distance_limit = ALLOWANCE * height + bias;
    let angle_limit = ALLOWANCE * normal_deg + (bias / h).to_degrees();
    assert!(
        distance <= distance_limit,
        "rms distance {distance:.3e} > {distance_limit:.3e} (σ = {sigma})"
    );
    assert!(
        mean_angle <= angle_limit,
        "mean normal error {mean_angle:.3}° > {angle_limit:.3}°"
    );
}

#[test]
fn plane_particles_land_within_noise() {
    let sigma = 0.002;
    let cloud = noisy_cloud(&Plane, 40_000, sigma, 1);
    let h = 0.1;
    let inside = |p: &Point3<f64>| p.x.abs() < 1.0 - h && p.y.abs() < 1.0 - h;
    let particles = particles(&Plane, 2_000, 0.03, 2, inside);
    let projected = project(
        &cloud,
        &particles,
        &format!("support: Radius({h}), {POSITIONS}"),
    );
    // A plane is fitted exactly by the quadric: no bias term.
    assert_on_surface(&Plane, &projected, sigma, h, 0.0);
}

/// The unit sphere, [`sphere_scan`] of it, and 2,000 particles within 0.03
/// of it.
fn sphere_job() -> (Sphere, PointCloud, Vec<Point3<f64>>) {
    let sphere = Sphere::unit();
    let particles = particles(&sphere, 2_000, 0.03, 4, |_| true);
    (sphere, sphere_scan(3), particles)
}

#[test]
fn sphere_particles_land_within_noise_with_curvature_one_over_r() {
    let (sphere, cloud, particles) = sphere_job();
    let (sigma, h) = (SPHERE_NOISE, 0.15f64);
    for weight in ["Plateau", "Gaussian"] {
        let projected = project(
            &cloud,
            &particles,
            &format!("support: Radius({h}), weight: {weight}, normal_weight: 0"),
        );
        // The quadric misses the sphere's quartic term r⁴/(8R³) at r = h.
        let bias = h.powi(4) / 8.0;
        assert_on_surface(&sphere, &projected, sigma, h, bias);

        // Outward normals: H = −1/R and K = 1/R². Relative bias of the
        // quadric's curvature is O(h²/R²); the noise part is averaged over
        // all particles (its standard error is tiny), per particle it is
        // √(κ_H/N)·σ/h².
        let n = projected.len() as f64;
        let mean_h = projected.iter().map(|p| p.mean_curvature).sum::<f64>() / n;
        let mean_k = projected.iter().map(|p| p.gaussian_curvature).sum::<f64>() / n;
        assert!((mean_h + 1.0).abs() <= h * h, "{weight}: mean H {mean_h}");
        assert!(
            (mean_k - 1.0).abs() <= 2.0 * h * h,
            "{weight}: mean K {mean_k}"
        );
        let spread = rms(projected.iter().map(|p| p.mean_curvature + 1.0));
        let per_particle =
            sigma * (KAPPA_MEAN_CURVATURE / median_neighbours(&projected)).sqrt() / (h * h);
        assert!(
            spread <= ALLOWANCE * per_particle + h * h,
            "{weight}: H spread {spread} vs predicted {per_particle}"
        );
    }
}

#[test]
fn the_clouds_normals_bring_the_height_error_down_to_a_weighted_mean() {
    // With exact normals the slope equations pin the quadric's slope and
    // curvature; the height at the centre is then nearly a weighted mean
    // of N heights, σ·√(κ_mean/N), against σ·√(κ₀/N) from heights alone.
    let (sphere, cloud, particles) = sphere_job();
    let (sigma, h) = (SPHERE_NOISE, 0.15f64);
    let support = format!("support: Radius({h})");
    let with_normals = project(&cloud, &particles, &support);
    let heights_only = project(&cloud, &particles, &format!("{support}, normal_weight: 0"));
    let error = |projected: &[Projected]| rms_distance(&sphere, projected);
    let neighbours = median_neighbours(&with_normals);
    let floor = sigma * (KAPPA_MEAN / neighbours).sqrt();
    let (with, without) = (error(&with_normals), error(&heights_only));
    assert!(
        with <= ALLOWANCE * floor,
        "rms {with:.2e} > {:.2e}",
        ALLOWANCE * floor
    );
    // No fit of noisy heights beats their weighted mean: below the floor,
    // something other than the cloud would be speaking.
    assert!(
        with >= floor / ALLOWANCE,
        "rms {with:.2e} below the floor {floor:.2e}"
    );
    // Heights alone leave √(κ₀/κ_mean) ≈ 1.9× more (κ₀ ≈ 4.6 for this
    // kernel).
    assert!(
        without >= 1.5 * with,
        "heights alone {without:.2e} vs {with:.2e}"
    );
}

#[test]
fn saddle_quadric_is_reproduced_to_the_noise() {
    let sigma = 0.005;
    let saddle = Saddle { c: 0.3 };
    let cloud = noisy_cloud(&saddle, 100_000, sigma, 5);
    let h: f64 = 0.08;
    let inside = |p: &Point3<f64>| p.x.abs() < 0.85 && p.y.abs() < 0.85;
    let particles = particles(&saddle, 2_000, 0.03, 6, inside);
    let projected = project(
        &cloud,
        &particles,
        &format!("support: Radius({h}), {POSITIONS}"),
    );
    // A quadric in (x, y) is a quadric in the tilted frame only to second
    // order; the remainder at r = h is about c·slope·h² ≤ 0.3·0.5·h².
    assert_on_surface(&saddle, &projected, sigma, h, 0.15 * h * h * h);
    // K = −4c²/(1 + |∇f|²)² < 0 everywhere. Per particle the estimate is
    // noisy (each second derivative has std 2σ√(κ₃/N)/h², κ₃ = 37, about
    // 0.4 here, as large as K itself), so the test is on the mean over all
    // particles: its standard error is that std·√2·|G_UU|/√n plus the
    // product of two noisy derivatives, bounded by their variance.
    let truth = |p: &Point3<f64>| {
        let g = 1.0 + 4.0 * 0.09 * (p.x * p.x + p.y * p.y);
        -4.0 * 0.09 / (g * g)
    };
    let n = projected.len() as f64;
    let error = projected
        .iter()
        .map(|p| p.gaussian_curvature - truth(&p.position))
        .sum::<f64>()
        / n;
    let second = 2.0 * sigma * (37.0 / median_neighbours(&projected)).sqrt() / (h * h);
    let limit = 3.0 * second * 2f64.sqrt() * 0.6 / n.sqrt() + second * second;
    assert!(error.abs() <= limit, "mean K error {error} > {limit}");
}

#[test]
fn torus_particles_land_within_noise() {
    let sigma = 0.003;
    let torus = Torus {
        major: 1.0,
        minor: 0.35,
    };
    let cloud = noisy_cloud(&torus, 150_000, sigma, 7);
    let particles = particles(&torus, 2_000, 0.03, 8, |_| true);
    let h: f64 = 0.08;
    let projected = project(
        &cloud,
        &particles,
        &format!("support: Radius({h}), {POSITIONS}"),
    );
    // Quartic remainder of the tube (radius r): h⁴/(8r³).
    assert_on_surface(
        &torus,
        &projected,
        sigma,
        h,
        h.powi(4) / (8.0 * 0.35f64.powi(3)),
    );
}

#[test]
fn orthogonal_projection_and_iteration_stay_on_the_sphere() {
    let sigma = 0.002;
    let sphere = Sphere::unit();
    let cloud = noisy_cloud(&sphere, 100_000, sigma, 9);
    let particles = particles(&sphere, 1_000, 0.03, 10, |_| true);
    let h: f64 = 0.15;
    let projected = project(
        &cloud,
        &particles,
        &format!(
            "support: Radius({h}), projection: Orthogonal, iterations: 20, tolerance: 1e-6, \
             {POSITIONS}"
        ),
    );
    assert!(projected.iter().all(|p| p.steps >= 2), "iterated");
    assert_on_surface(&sphere, &projected, sigma, h, h.powi(4) / 8.0);
}

#[test]
fn a_cloud_far_from_the_origin_projects_as_well_as_at_the_origin() {
    let sigma = 0.002;
    let at_origin = Sphere::unit();
    let shift = Vector3::new(500_000.0, 4_000_000.0, 100.0);
    let far = Sphere {
        centre: Point3::from(shift),
        radius: 1.0,
    };
    let cloud = noisy_cloud(&at_origin, 50_000, sigma, 11);
    let particles = particles(&at_origin, 1_000, 0.03, 12, |_| true);
    let mut far_cloud = cloud.clone();
    far_cloud.positions.iter_mut().for_each(|p| *p += shift);
    let far_particles: Vec<_> = particles.iter().map(|p| p + shift).collect();
    let fields = "support: Radius(0.15)";
    let near_rms = rms_distance(&at_origin, &project(&cloud, &particles, fields));
    let far_rms = rms_distance(&far, &project(&far_cloud, &far_particles, fields));
    assert!(
        (far_rms - near_rms).abs() <= 0.01 * near_rms,
        "far {far_rms:.4e} vs origin {near_rms:.4e}"
    );
}

#[test]
fn count_and_order_are_kept_and_nothing_is_nan() {
    let sphere = Sphere::unit();
    let cloud = noisy_cloud(&sphere, 20_000, 0.002, 13);
    let mut particles = particles(&sphere, 500, 0.03, 14, |_| true);
    particles[7] = Point3::new(f64::NAN, 0.0, 0.0);
    particles[8] = Point3::new(50.0, 0.0, 0.0); // far from everything
    let projected = project(&cloud, &particles, "support: Radius(0.2)");
    assert_eq!(projected.len(), particles.len());
    for (i, (p, input)) in projected.iter().zip(&particles).enumerate() {
        if p.status == Status::InvalidInput {
            assert_eq!(i, 7);
            continue;
        }
        assert!(all_finite(p), "particle {i}");
        // In input order: each output is the projection of its own input.
        assert!(
            (p.position - input).norm() <= 0.2,
            "particle {i} moved to another place"
        );
    }
    assert_eq!(projected[8].status, Status::TooFewNeighbours);
    assert_eq!(projected[8].position, particles[8]);
    // Not projected, but shaded like the surface nearest to it: the
    // normal of the cloud point nearest to (50, 0, 0), about (1, 0, 0).
    assert!(
        (projected[8].normal.norm() - 1.0).abs() < 1e-6 && projected[8].normal.x > 0.99,
        "{}",
        projected[8].normal
    );
    assert_eq!(projected[7].normal, Vector3::zeros(), "invalid input");
}

#[test]
fn each_status_comes_from_the_input_built_to_cause_it() {
    let sphere = Sphere::unit();
    let curved = noisy_cloud(&sphere, 20_000, 0.002, 15);
    let on_sphere = Point3::new(0.0, 0.0, 1.02);

    let ok = project(&curved, &[on_sphere], "support: Radius(0.2)");
    assert_eq!(ok[0].status, Status::Ok);

    // Five neighbours determine a linear function, not a quadric.
    let five = PointCloud::from_positions(plane_grid(0..=4, 1.0));
    let mut small = five.clone();
    small.positions.truncate(5);
    small.positions[4] = Point3::new(0.5, 0.5, 0.1);
    let lower = project(
        &small,
        &[Point3::new(0.4, 0.2, 0.3)],
        "support: Radius(10.0)",
    );
    assert_eq!(lower[0].status, Status::LowerDegree);

    // A tolerance no step can meet on a curved surface.
    let stubborn = project(
        &curved,
        &[on_sphere],
        "support: Radius(0.2), iterations: 3, tolerance: 1e-300",
    );
    assert_eq!(stubborn[0].status, Status::NotConverged);
    assert_eq!(stubborn[0].steps, 3);

    let lonely = project(
        &five,
        &[Point3::new(100.0, 0.0, 0.0)],
        "support: Radius(1.5)",
    );
    assert_eq!(lonely[0].status, Status::TooFewNeighbours);

    let nan = Point3::new(0.0, f64::INFINITY, 0.0);
    let invalid = project(&five, &[nan], "support: Radius(1.5)");
    assert_eq!(invalid[0].status, Status::InvalidInput);
    assert_eq!(invalid[0].position.y, f64::INFINITY);

    // A single scan line: the tangent plane is undetermined.
    let line = PointCloud::from_positions(
        (0..50)
            .map(|i| Point3::new(i as f64 * 0.01, 0.0, 0.0))
            .collect(),
    );
    let rejected = project(
        &line,
        &[Point3::new(0.25, 0.01, 0.0)],
        "support: Radius(0.1)",
    );
    assert_eq!(rejected[0].status, Status::Rejected);
    assert_eq!(rejected[0].position, Point3::new(0.25, 0.01, 0.0));

    // Every status has now been produced.
    let seen = [&ok, &lower, &stubborn, &lonely, &invalid, &rejected].map(|p| p[0].status);
    assert_eq!(seen.to_vec(), Status::ALL.to_vec());
}

#[test]
fn a_particle_a_whole_support_off_is_not_flung_away() {
    // Few, lopsided neighbours around a particle far off the data: the fit
    // would extrapolate; the step never moves it farther than h.
    let mut rng = Rng::new(16);
    let cloud = PointCloud::from_positions(
        (0..8)
            .map(|_| {
                Point3::new(
                    rng.range(0.0, 0.3),
                    rng.range(0.0, 0.05),
                    rng.range(-0.01, 0.01),
                )
            })
            .collect(),
    );
    let h = 0.5;
    let particle = Point3::new(0.45, 0.0, 0.45);
    let projected = project(&cloud, &[particle], &format!("support: Radius({h})"));
    assert!((projected[0].position - particle).norm() <= h);
    assert!(projected[0].position.iter().all(|c| c.is_finite()));
}
