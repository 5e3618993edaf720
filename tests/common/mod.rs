//! Seeded synthetic surfaces for the tests: points with Gaussian noise
//! along the true normal, and particles offset from the surface.
#![allow(dead_code)] // each test binary uses a different part

use mlsproj::config::Orientation;
use mlsproj::{Config, Method, MlsSurface, PointCloud, Projected, project_all};
use nalgebra::{Point3, Vector3};

/// Variance factor of the fitted height at the centre of a weighted
/// quadratic fit of heights alone over N evenly spread neighbours with the
/// Plateau kernel: the height's standard error is σ·√(κ₀/N) (see
/// tests/geometry.rs). For fits made with `weight: Plateau,
/// normal_weight: 0`, or as a bound that the fit must beat.
pub const KAPPA_HEIGHT: f64 = 5.2;
/// `N Σw² / (Σw)²` of the default kernel (1 − r⁶)² over the unit disc: the
/// variance factor of a weighted mean of N heights, which the default fit
/// approaches when the cloud's exact normals pin its slope and curvature
/// (tests/geometry.rs holds the default fit between ÷1.5 and ×1.5 this
/// floor; it measured 1.06× the floor).
pub const KAPPA_MEAN: f64 = 1.29;
/// The factor tests allow over a predicted error (density not uniform,
/// particles off the centroid).
pub const ALLOWANCE: f64 = 1.5;

/// Projects `particles` onto `cloud` with the config fields given (RON,
/// e.g. `support: Radius(0.1), weight: Gaussian`), defaults for the rest.
pub fn project(cloud: &PointCloud, particles: &[Point3<f64>], fields: &str) -> Vec<Projected> {
    // Particles of their own, not the cloud's points (which would start
    // each projection at the particle).
    let text = format!(r#"(cloud: "c.ply", particles: File("p.ply"), output: "o.ply", {fields})"#);
    let config = Config::parse(&text).expect("test config parses");
    let method = Method::from(&config);
    // As `run` builds it: the index's cells sized for the support.
    let surface = MlsSurface::from_config(cloud, &config).expect("cloud builds");
    project_all(
        &surface.projector(method, Orientation::Auto, false),
        particles,
    )
}

/// True when everything computed for `p` is finite.
pub fn all_finite(p: &Projected) -> bool {
    let values = [p.mean_curvature, p.gaussian_curvature, p.residual];
    p.position
        .iter()
        .chain(p.normal.iter())
        .chain(&values)
        .all(|v| v.is_finite())
}

/// The real sample scan `name` (CGAL's example data): `hippo1.ply` in
/// `assets/`, the others in `tests/data/`. The repository holds them, so a
/// test never passes for want of a file.
pub fn real(name: &str) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = if name == "hippo1.ply" {
        root.join("assets").join(name)
    } else {
        root.join("tests/data").join(name)
    };
    assert!(
        path.exists(),
        "{} is missing from the repository",
        path.display()
    );
    path
}

/// The median neighbour count of a projection.
pub fn median_neighbours(projected: &[Projected]) -> f64 {
    let mut counts: Vec<u32> = projected.iter().map(|p| p.neighbour_count).collect();
    counts.sort_unstable();
    f64::from(counts[counts.len() / 2])
}

/// SplitMix64: a small, seeded, reproducible generator (no dependency).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// A surface with a known closest point and normal.
pub trait Truth {
    /// A point uniformly distributed over the surface (by area).
    fn sample(&self, rng: &mut Rng) -> Point3<f64>;
    /// Unit normal at a surface point.
    fn normal(&self, on_surface: &Point3<f64>) -> Vector3<f64>;
    /// Distance from any point to the surface.
    fn distance(&self, p: &Point3<f64>) -> f64;
    /// Normal at the surface point closest to `p`.
    fn normal_near(&self, p: &Point3<f64>) -> Vector3<f64>;
}

/// The plane z = 0 sampled on a square grid: `(i, j) · spacing` for `i` and
/// `j` in `indices`, `i` outer.
pub fn plane_grid(indices: std::ops::RangeInclusive<i32>, spacing: f64) -> Vec<Point3<f64>> {
    indices
        .clone()
        .flat_map(|i| indices.clone().map(move |j| (i, j)))
        .map(|(i, j)| Point3::new(f64::from(i) * spacing, f64::from(j) * spacing, 0.0))
        .collect()
}

pub struct Plane;
impl Truth for Plane {
    fn sample(&self, rng: &mut Rng) -> Point3<f64> {
        Point3::new(rng.range(-1.0, 1.0), rng.range(-1.0, 1.0), 0.0)
    }
    fn normal(&self, _: &Point3<f64>) -> Vector3<f64> {
        Vector3::z()
    }
    fn distance(&self, p: &Point3<f64>) -> f64 {
        p.z.abs()
    }
    fn normal_near(&self, _: &Point3<f64>) -> Vector3<f64> {
        Vector3::z()
    }
}

pub struct Sphere {
    pub centre: Point3<f64>,
    pub radius: f64,
}
impl Sphere {
    /// The unit sphere at the origin.
    pub fn unit() -> Sphere {
        Sphere {
            centre: Point3::origin(),
            radius: 1.0,
        }
    }
}
impl Truth for Sphere {
    fn sample(&self, rng: &mut Rng) -> Point3<f64> {
        let d = Vector3::new(rng.normal(), rng.normal(), rng.normal()).normalize();
        self.centre + self.radius * d
    }
    fn normal(&self, p: &Point3<f64>) -> Vector3<f64> {
        (p - self.centre).normalize()
    }
    fn distance(&self, p: &Point3<f64>) -> f64 {
        ((p - self.centre).norm() - self.radius).abs()
    }
    fn normal_near(&self, p: &Point3<f64>) -> Vector3<f64> {
        self.normal(p)
    }
}

/// Torus around the z axis.
pub struct Torus {
    pub major: f64,
    pub minor: f64,
}
impl Torus {
    fn tube_centre(&self, p: &Point3<f64>) -> Point3<f64> {
        let radial = Vector3::new(p.x, p.y, 0.0).normalize();
        Point3::from(self.major * radial)
    }
}
impl Truth for Torus {
    fn sample(&self, rng: &mut Rng) -> Point3<f64> {
        // Area element ∝ (R + r cos v): rejection sampling on v.
        loop {
            let u = rng.range(0.0, std::f64::consts::TAU);
            let v = rng.range(0.0, std::f64::consts::TAU);
            let density = (self.major + self.minor * v.cos()) / (self.major + self.minor);
            if rng.uniform() < density {
                let ring = self.major + self.minor * v.cos();
                return Point3::new(ring * u.cos(), ring * u.sin(), self.minor * v.sin());
            }
        }
    }
    fn normal(&self, p: &Point3<f64>) -> Vector3<f64> {
        (p - self.tube_centre(p)).normalize()
    }
    fn distance(&self, p: &Point3<f64>) -> f64 {
        ((p - self.tube_centre(p)).norm() - self.minor).abs()
    }
    fn normal_near(&self, p: &Point3<f64>) -> Vector3<f64> {
        self.normal(p)
    }
}

/// The height field z = c (x² − y²) over [-1, 1]².
pub struct Saddle {
    pub c: f64,
}
impl Saddle {
    fn height(&self, x: f64, y: f64) -> f64 {
        self.c * (x * x - y * y)
    }
    /// Closest surface point by Newton iterations on (x, y).
    fn closest(&self, p: &Point3<f64>) -> Point3<f64> {
        let (mut x, mut y) = (p.x, p.y);
        for _ in 0..30 {
            let z = self.height(x, y);
            let (fx, fy) = (2.0 * self.c * x, -2.0 * self.c * y);
            let gap = z - p.z;
            let gx = (x - p.x) + gap * fx;
            let gy = (y - p.y) + gap * fy;
            let hxx = 1.0 + fx * fx + gap * 2.0 * self.c;
            let hyy = 1.0 + fy * fy - gap * 2.0 * self.c;
            let hxy = fx * fy;
            let det = hxx * hyy - hxy * hxy;
            x -= (hyy * gx - hxy * gy) / det;
            y -= (hxx * gy - hxy * gx) / det;
        }
        Point3::new(x, y, self.height(x, y))
    }
}
impl Truth for Saddle {
    fn sample(&self, rng: &mut Rng) -> Point3<f64> {
        // Uniform in (x, y); the density varies by at most √(1 + 4·0.3²·2).
        let (x, y) = (rng.range(-1.0, 1.0), rng.range(-1.0, 1.0));
        Point3::new(x, y, self.height(x, y))
    }
    fn normal(&self, p: &Point3<f64>) -> Vector3<f64> {
        Vector3::new(-2.0 * self.c * p.x, 2.0 * self.c * p.y, 1.0).normalize()
    }
    fn distance(&self, p: &Point3<f64>) -> f64 {
        (p - self.closest(p)).norm()
    }
    fn normal_near(&self, p: &Point3<f64>) -> Vector3<f64> {
        self.normal(&self.closest(p))
    }
}

/// `count` surface samples moved by N(0, σ²) along the true normal, with
/// the true normals attached.
pub fn noisy_cloud(truth: &dyn Truth, count: usize, sigma: f64, seed: u64) -> PointCloud {
    let mut rng = Rng::new(seed);
    let mut cloud = PointCloud::default();
    let mut normals = Vec::with_capacity(count);
    for _ in 0..count {
        let p = truth.sample(&mut rng);
        let n = truth.normal(&p);
        cloud.positions.push(p + sigma * rng.normal() * n);
        normals.push(n.cast::<f32>());
    }
    cloud.normals = Some(normals);
    cloud
}

/// Noise σ of [`sphere_scan`].
pub const SPHERE_NOISE: f64 = 0.002;

/// 100,000 points of the unit sphere with noise σ = [`SPHERE_NOISE`] along
/// the normal, and their exact normals.
pub fn sphere_scan(seed: u64) -> PointCloud {
    noisy_cloud(&Sphere::unit(), 100_000, SPHERE_NOISE, seed)
}

/// `count` particles placed uniformly within `offset` of the surface along
/// its normal, drawn where `keep` accepts the surface point.
pub fn particles(
    truth: &dyn Truth,
    count: usize,
    offset: f64,
    seed: u64,
    keep: impl Fn(&Point3<f64>) -> bool,
) -> Vec<Point3<f64>> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let p = truth.sample(&mut rng);
        if keep(&p) {
            out.push(p + rng.range(-offset, offset) * truth.normal(&p));
        }
    }
    out
}

/// Root mean square of a sample.
/// RMS distance of the projected particles to the true surface.
pub fn rms_distance(truth: &dyn Truth, projected: &[Projected]) -> f64 {
    rms(projected.iter().map(|p| truth.distance(&p.position)))
}

pub fn rms(values: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, n) = values
        .into_iter()
        .fold((0.0, 0usize), |(s, n), v| (s + v * v, n + 1));
    (sum / n.max(1) as f64).sqrt()
}

/// Angle in degrees between two directions, sign ignored when `unsigned`.
pub fn angle_deg(a: &Vector3<f64>, b: &Vector3<f64>) -> f64 {
    let c = (a.dot(b) / (a.norm() * b.norm())).clamp(-1.0, 1.0);
    c.acos().to_degrees()
}

/// Runs `cases` random corruptions (`mutate`, one to three per case) of
/// the small valid files `seeds` (name, bytes) through `read_points` and
/// the chunked reader: each must give `Ok` or `Err`, never panic. Panics
/// naming the case otherwise, and asserts that both outcomes occur (a run
/// that refuses, or reads, everything tests nothing).
pub fn mutation_run(
    seeds: &[(&str, Vec<u8>)],
    cases: usize,
    seed: u64,
    mutate: fn(&mut Rng, &mut Vec<u8>),
) {
    let folder = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(seed);
    let (mut ok, mut err) = (0, 0);
    for case in 0..cases {
        let (name, seed) = &seeds[rng.below(seeds.len())];
        let mut bytes = seed.clone();
        for _ in 0..1 + rng.below(3) {
            mutate(&mut rng, &mut bytes);
        }
        let path = folder.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let chunk = 1 + rng.below(4);
        let outcome = std::panic::catch_unwind(|| {
            let whole = mlsproj::io::read_points(&path);
            if let Ok(mut reader) = mlsproj::io::PointReader::open(&path) {
                while let Ok(cloud) = reader.read_chunk(chunk) {
                    if cloud.is_empty() {
                        break;
                    }
                }
            }
            whole.is_ok()
        });
        match outcome {
            Ok(true) => ok += 1,
            Ok(false) => err += 1,
            Err(_) => panic!("case {case} of {name} panicked on {bytes:?}"),
        }
    }
    println!("{cases} mutations: {ok} read, {err} refused");
    assert!(ok > 0 && err > 0, "mutations should give both outcomes");
}
