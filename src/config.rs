//! The job description: a RON file read into typed values with defaults.
//!
//! Only the three paths are required; every other field has a default
//! documented here and in `config/default.ron`. Unknown fields are an error
//! that names the field, so a typo never silently falls back to a default.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// Which points are projected.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Particles {
    /// Particles read from a point file (PLY or text).
    File(PathBuf),
    /// The cloud's own points: MLS smoothing of the cloud.
    Cloud,
    /// New particles seeded over the surface the cloud covers, as blue
    /// noise: `Seed(spacing: d)` about d apart, or `Seed(count: n)` about n
    /// of them (the spacing then comes from the estimated area). Exactly
    /// one of the two.
    Seed {
        /// Distance between neighbouring seeds.
        #[serde(default, deserialize_with = "some")]
        spacing: Option<f64>,
        /// Seeds wanted.
        #[serde(default, deserialize_with = "some")]
        count: Option<u64>,
    },
}

/// A field that may be left out, written bare when given (`spacing: 0.01`,
/// not RON's `spacing: Some(0.01)`).
fn some<'de, D, T>(deserializer: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// How the neighbourhood of a centre and the support radius `h` are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Support {
    /// All cloud points within `h` of the centre.
    Radius(f64),
    /// The `k` nearest cloud points; `h` is the distance to the k-th one
    /// times `nearest_scale`.
    Nearest(usize),
    /// At most the `k` nearest inside `radius`; `h = radius`.
    RadiusNearest {
        /// The support radius h.
        radius: f64,
        /// The most neighbours kept, nearest first.
        k: usize,
    },
}

impl Support {
    /// Why this support is refused for a cloud of `points` distinct finite
    /// points whose bounding box has diagonal `diagonal`, if it is: a
    /// support that takes in the whole cloud makes every fit one global
    /// quadric (points land far off any curved surface, with status `ok`)
    /// at the cost of the whole cloud per particle.
    pub fn covers_whole_cloud(self, points: usize, diagonal: f64) -> Option<String> {
        match self {
            Support::Nearest(k) | Support::RadiusNearest { k, .. } if k > points => Some(format!(
                "support: {self:?} asks for {k} neighbours, more than the cloud's {points} distinct points"
            )),
            Support::Radius(radius) | Support::RadiusNearest { radius, .. }
                if points > 1 && radius > diagonal =>
            {
                Some(format!(
                    "support: {self:?}: the radius is larger than the cloud's bounding-box diagonal {diagonal:.6e}; `mlsproj info` suggests radii"
                ))
            }
            _ => None,
        }
    }

    /// The fixed support radius h, or `None` for `Nearest(k)`, whose h
    /// depends on the centre.
    pub fn radius(self) -> Option<f64> {
        match self {
            Support::Radius(radius) | Support::RadiusNearest { radius, .. } => Some(radius),
            Support::Nearest(_) => None,
        }
    }
}

/// The weight kernel θ(r), r = distance / h.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum Weight {
    /// `exp(-d² / s)` with `s = (gaussian_width · h)²`, cut at `h`: what
    /// PCL's MovingLeastSquares computes. Jumps where a point enters the
    /// support (weight `exp(-1/gaussian_width²)` at r = 1).
    Gaussian,
    /// `(1 − r²)⁴`: Wendland-like, smooth and narrow (averages few points).
    Wendland,
    /// `(1 − r²)²`: the biweight, smooth, wider than Wendland.
    Biweight,
    /// `(1 − r⁴)²`: smooth at r = 1 and flat near the centre, so that it
    /// averages about as many points as PCL's Gaussian.
    Plateau,
    /// `(1 − r⁶)²`: flatter still, within 9% of PCL's Gaussian in the
    /// noise it leaves (`N Σw² / (Σw)²` = 1.29 against the cut Gaussian's
    /// 1.08 and Plateau's 1.43). The default: once the cloud's normals pin
    /// the fit's slope and curvature, the height is close to a weighted
    /// mean, whose noise only the kernel's width sets.
    #[default]
    Broad,
}

/// Where the surface point is taken on the local fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum Projection {
    /// Straight along the fit's frame normal (PCL's SIMPLE).
    #[default]
    Simple,
    /// The closest point of the fitted patch (PCL's ORTHOGONAL).
    Orthogonal,
}

/// Where the first projection step centres its fit (and its weights).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum Start {
    /// The particle itself. A particle far off the surface (say half the
    /// support radius) then sees a lopsided, thinned-out neighbourhood.
    Particle,
    /// The cloud point nearest to the particle, as PCL does: the fit sits
    /// on the data whatever the particle's offset. The default: with a
    /// second step, re-centred on the first one's surface point, the most
    /// accurate start on the truth sets (benches/truth).
    #[default]
    NearestPoint,
    /// The weighted centroid of the particle's neighbourhood: on the data
    /// and smoothed, at the cost of one more neighbour search.
    Centroid,
    /// The particle's foot on the tangent plane of its nearest cloud point,
    /// by that point's normal (the nearest point itself when the cloud has
    /// no normals, or when the foot lies outside that point's radius
    /// support): already under the particle, so the first step is short
    /// and a second one is rarely due: faster on large jobs, a little less
    /// accurate on smooth shapes and more on thin ones (figures in
    /// `docs/performance.md`).
    Foot,
}

/// Robust reweighting of each local fit, against outliers and across sharp
/// features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum Robust {
    /// One weighted least-squares fit per step.
    #[default]
    None,
    /// Refits in the manner of robust implicit MLS (Öztireli, Guennebaud,
    /// Gross 2009): each neighbour's weight is multiplied by a Welsch term
    /// of its residual to the last fit and, when the cloud has normals, a
    /// term of the angle between its normal and the fit's normal there. A
    /// fit straddling a sharp edge locks onto one face, outliers lose their
    /// pull, and the far face of a thin sheet drops out.
    Rimls,
}

/// How PCA normals, which have no sign, are oriented.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Default)]
pub enum Orientation {
    /// By the cloud's normals when it has them (and `cloud_normals: Use`),
    /// else by normals estimated and oriented as `Consistent` does.
    #[default]
    Auto,
    /// Away from the cloud's centroid (closed, roughly convex objects).
    AwayFromCentroid,
    /// Toward a viewpoint, e.g. the scanner position.
    Viewpoint(f64, f64, f64),
    /// Every normal, of the cloud and of the particles, with nz ≥ 0
    /// (terrain and aerial scans, as PDAL's `always_up`).
    Up,
    /// By the cloud's normals (its own or estimated) oriented consistently
    /// over each connected part: a closed part's normals point outward; an
    /// open one (a sheet, a terrain) faces up on average, or away from the
    /// cloud's centroid when it stands vertical.
    Consistent,
    /// As `Consistent`, but an open part faces this point (the scanner).
    ConsistentToward(f64, f64, f64),
}

/// Whether the cloud's own normals are used when it has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum CloudNormals {
    /// The cloud's normals when it has them; estimated ones (PCA of the
    /// `normal_neighbours` nearest) when it has none.
    #[default]
    Use,
    /// Estimated normals, whatever the cloud carries (normals that are
    /// noisy, stale after an edit, or of unknown sign).
    Estimate,
}

/// Output PLY body encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum Encoding {
    /// `binary_little_endian`: compact and fast to read and write.
    #[default]
    Binary,
    /// `ascii`: values as text, for inspection and tools that read nothing
    /// else.
    Ascii,
}

/// A computed property also written as `quality`, the one per-vertex
/// scalar that MeshLab reads (and colours by); CloudCompare and most
/// viewers read it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum Quality {
    /// No `quality` property.
    #[default]
    None,
    /// `mean_curvature`.
    MeanCurvature,
    /// `gaussian_curvature`.
    GaussianCurvature,
    /// `residual`.
    Residual,
    /// `status` (its code).
    Status,
    /// `neighbours`.
    Neighbours,
}

fn default_support() -> Support {
    Support::Nearest(64)
}
fn default_degree() -> u8 {
    2
}
fn default_iterations() -> u32 {
    2
}
fn default_tolerance() -> f64 {
    0.2
}
/// Largest `normal_weight`: far past the point where the slope equations
/// are constraints already, and far from overflowing the normal equations.
const MAX_NORMAL_WEIGHT: f64 = 1e6;

fn default_max_offset() -> f64 {
    10.0
}
fn default_normal_weight() -> f64 {
    0.5
}
fn default_normal_neighbours() -> usize {
    crate::normals::DEFAULT_NEIGHBOURS
}
fn default_one() -> f64 {
    1.0
}
fn default_true() -> bool {
    true
}
fn default_min_projected() -> f64 {
    0.5
}
fn default_max_particles() -> u64 {
    100_000_000
}

/// A whole job. Paths are relative to the config file's folder.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The scanned cloud that defines the surface.
    pub cloud: PathBuf,
    /// The points to project.
    pub particles: Particles,
    /// The output PLY (never one of the inputs).
    pub output: PathBuf,
    /// Neighbourhood rule. Default `Nearest(64)`.
    #[serde(default = "default_support")]
    pub support: Support,
    /// Weight kernel. Default `Broad`.
    #[serde(default)]
    pub weight: Weight,
    /// Width of the Gaussian relative to `h`: `s = (gaussian_width·h)²`.
    /// Default 1 (PCL's default `s = h²`).
    #[serde(default = "default_one")]
    pub gaussian_width: f64,
    /// For `Nearest(k)`: `h` = distance to the k-th neighbour × this.
    /// Default 1.
    #[serde(default = "default_one")]
    pub nearest_scale: f64,
    /// Polynomial degree of the local fit: 0 plane, 1 linear, 2 quadratic.
    #[serde(default = "default_degree")]
    pub degree: u8,
    /// Simple or orthogonal projection onto the fit. Default `Simple`.
    #[serde(default)]
    pub projection: Projection,
    /// Maximum projection steps; with more than one, a step that moves the
    /// fit's centre less than `tolerance · h` ends the iteration. Default 2:
    /// the second step, centred on the first one's surface point, lowers
    /// the RMS error by 7-11% on the truth sets where the first moved the
    /// centre far; a third changes nothing measurable.
    #[serde(default = "default_iterations")]
    pub iterations: u32,
    /// Convergence tolerance, as a fraction of `h`. A step's length is how
    /// far it moves the fit's centre (the first step: from the start point
    /// to its surface point). Default 0.2: the steps contract by about 10×
    /// each (measured), so a step shorter than 0.2·h leaves the iterate
    /// within about 0.02·h of the stationary point, well below a scan's
    /// noise, and a particle whose nearest point is already at its foot
    /// takes one step (same accuracy on every truth set, half the time on
    /// ../shared/bench); `not_converged` marks the 0.3-2% of particles (far
    /// off, on thin or sparse parts) whose last step still moved more.
    /// 1e-6 with 20 or more steps reaches the stationary point itself.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// Centre of the first step's fit. Default `NearestPoint`.
    #[serde(default)]
    pub start: Start,
    /// How far off the cloud a particle may be and still be projected, in
    /// support radii, with `start: NearestPoint` or `Foot` and a radius support: a
    /// particle whose nearest cloud point is farther than
    /// `max_offset · h` is kept where it is (`too_few_neighbours`). Its
    /// own support is empty, but its nearest point's fit still finds its
    /// foot, as PCL's does: on thin parts, where h is small against the
    /// particles' offsets (2h on the truth set `blade`), a bound of one
    /// radius left 8% of the particles unprojected. At least 1; default 10.
    #[serde(default = "default_max_offset")]
    pub max_offset: f64,
    /// Weight of the cloud's normals in the local fit, relative to its
    /// positions: each neighbour with a normal adds two slope equations
    /// (see `fit::SlopeMoments`), which pin the fit's slope and curvature
    /// and leave less noise in its height. 0 ignores the normals. Default
    /// 0.5: on the truth sets (benches/truth), RMS 9-42% lower with the
    /// meshes' normals, 7-14% lower with normals estimated by PCA of 30
    /// noisy neighbours (11-17° off); 1 is a little better with exact
    /// normals, 0.25 with estimated ones. The normals mlsproj estimates for
    /// a cloud without them enter under this weight too: RMS is within 2%
    /// of its best at 0.5 on the truth sets (0.1-1 tried: 0.25 is 1% better
    /// on fandisk, 2% worse on fins), and 7-21% below the fit of positions
    /// alone. At most 1e6.
    #[serde(default = "default_normal_weight")]
    pub normal_weight: f64,
    /// Use the cloud's normals, or estimate them anyway. Default `Use`.
    #[serde(default)]
    pub cloud_normals: CloudNormals,
    /// Neighbours of each cloud point whose PCA gives its estimated normal.
    /// Default 30; at least 3.
    #[serde(default = "default_normal_neighbours")]
    pub normal_neighbours: usize,
    /// Robust reweighting of the local fits. Default `None`.
    #[serde(default)]
    pub robust: Robust,
    /// Tell the two faces of a thin part apart by the cloud's oriented
    /// normals (its own or estimated, when they enter the fit under
    /// `normal_weight`): a neighbour whose normal is over 90° from those of
    /// the neighbours nearest the fit's centre loses weight, all of it past
    /// 120°, unless under a third of the neighbours would keep theirs, so
    /// that a part thinner than the support is fitted face by face, not as
    /// one surface between its faces (see `fit::faces`). Default true: on
    /// the truth sets, RMS on the fins 0.27σ against 0.91σ, on the
    /// armadillo 0.24σ against 0.27σ, the others within 1%; false fits
    /// every neighbour, as before.
    #[serde(default = "default_true")]
    pub separate_faces: bool,
    /// Normal orientation rule. Default `Auto`.
    #[serde(default)]
    pub orientation: Orientation,
    /// Average the cloud's colours onto particles that have none of their
    /// own. Particles with their own colours (`red green blue` as uchar)
    /// keep them whatever this says. Default true.
    #[serde(default = "default_true")]
    pub colours: bool,
    /// Pass the particle file's other per-vertex properties (labels,
    /// intensity, …) through to the output with their types, so that
    /// nothing a scan carries is lost; false writes only what mlsproj
    /// computes (and the colours). Default true.
    #[serde(default = "default_true")]
    pub attributes: bool,
    /// Output body encoding. Default `Binary` (little-endian).
    #[serde(default)]
    pub encoding: Encoding,
    /// A computed property also written as a float `quality` property, for
    /// viewers that colour by quality (MeshLab). Default `None`.
    #[serde(default)]
    pub quality: Quality,
    /// The fraction of the particles (not counting `invalid_input` ones)
    /// that must be projected for `run` to succeed: below it the output is
    /// still written, and the run exits with code 3. Default 0.5.
    #[serde(default = "default_min_projected")]
    pub min_projected: f64,
    /// Worker threads; 0 uses every core. Default 0.
    #[serde(default)]
    pub threads: usize,
    /// Most particles a `Seed` job may make: one whose predicted count is
    /// larger is refused before any work, so that a spacing typed in the
    /// wrong unit does not fill the disk. Default 100,000,000.
    #[serde(default = "default_max_particles")]
    pub max_particles: u64,
    /// Seed of the hash that orders and places seeded particles: the same
    /// seed gives the same particles whatever the threads. Default 0.
    #[serde(default)]
    pub seed: u64,
}

impl Config {
    /// Reads and validates a config file; relative paths inside it are
    /// resolved against the file's folder. A point file handed over in its
    /// place is refused with a pointer to `mlsproj init`.
    pub fn load(path: &Path) -> Result<Config> {
        let refuse = |message: String| Error::Config {
            path: path.to_owned(),
            message,
        };
        let size = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len();
        if size > MAX_CONFIG_BYTES {
            return Err(refuse(format!(
                "{size} bytes: a job config is a short RON file (at most {MAX_CONFIG_BYTES} bytes); {}",
                not_a_config(path)
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        // A binary point file (PLY, LAS, E57) is not text; a text one starts
        // with a PLY header or a row of numbers.
        let text = match String::from_utf8(bytes) {
            Ok(text) if !looks_like_points(&text) => text,
            _ => return Err(refuse(not_a_config(path))),
        };
        let mut config = Config::parse(&text).map_err(|message| Error::Config {
            path: path.to_owned(),
            message,
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        config.resolve_paths(base);
        // The config file is an input too (`output: "job.ron"`).
        let checked = crate::io::check_not_input(&config.output, "config file", path)
            .and_then(|()| config.validate());
        checked.map_err(|message| Error::Config {
            path: path.to_owned(),
            message,
        })?;
        Ok(config)
    }

    /// Parses RON text (paths left as written). An error says where
    /// (`line:column`), which field, what was wrong and the forms that
    /// field accepts.
    pub fn parse(text: &str) -> std::result::Result<Config, String> {
        let mut deserializer = ron::Deserializer::from_str(text).map_err(|e| e.to_string())?;
        let config: Config =
            serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
                let field = error.path().to_string();
                let spanned = deserializer.span_error(error.into_inner());
                describe_parse_error(text, &field, &spanned)
            })?;
        deserializer
            .end()
            .map_err(|error| deserializer.span_error(error).to_string())?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let join = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        join(&mut self.cloud);
        join(&mut self.output);
        if let Particles::File(p) = &mut self.particles {
            join(p);
        }
    }

    /// Checks values that the types alone cannot: positive radii, degree
    /// range, an output that the job may write (not an input, not a
    /// device; see [`crate::io::check_output`]).
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.check_numbers()?;
        let mut inputs = vec![("cloud", self.cloud.as_path())];
        if let Particles::File(p) = &self.particles {
            inputs.push(("particle file", p));
        }
        crate::io::check_output(&self.output, &inputs)?;
        crate::io::OutputFormat::from_path(&self.output)
            .map(|_| ())
            .map_err(|error| error.to_string())
    }
}

impl Config {
    /// Checks every numeric setting, naming the field that is wrong.
    fn check_numbers(&self) -> std::result::Result<(), String> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("{name} must be a positive number, got {v}"))
            }
        };
        match self.support {
            Support::Radius(radius) => positive("support: Radius(h): h", radius)?,
            Support::Nearest(k) if k < 3 => {
                return Err(format!("support: Nearest({k}) needs k ≥ 3"));
            }
            Support::Nearest(_) => {}
            Support::RadiusNearest { radius, k } => {
                positive("support: RadiusNearest radius", radius)?;
                if k < 3 {
                    return Err(format!("support: RadiusNearest k = {k} needs k ≥ 3"));
                }
            }
        }
        if let Particles::Seed { spacing, count } = self.particles {
            match (spacing, count) {
                (Some(d), None) => positive("particles: Seed(spacing: d): d", d)?,
                (None, Some(0)) => return Err("particles: Seed(count: n) needs n ≥ 1".into()),
                (None, Some(_)) => {}
                _ => {
                    return Err(
                        "particles: Seed takes exactly one of spacing and count: Seed(spacing: d) or Seed(count: n)".into(),
                    );
                }
            }
        }
        positive("gaussian_width", self.gaussian_width)?;
        positive("nearest_scale", self.nearest_scale)?;
        positive("tolerance", self.tolerance)?;
        if !(self.max_offset >= 1.0 && self.max_offset.is_finite()) {
            // Below 1 a particle with a neighbour within h would have no
            // start.
            return Err(format!(
                "max_offset must be at least 1 (support radii), got {}",
                self.max_offset
            ));
        }
        if !(0.0..=MAX_NORMAL_WEIGHT).contains(&self.normal_weight) {
            return Err(format!(
                "normal_weight must be between 0 and {MAX_NORMAL_WEIGHT}, got {}",
                self.normal_weight
            ));
        }
        if self.normal_neighbours < 3 {
            return Err(format!(
                "normal_neighbours must be at least 3 (a plane), got {}",
                self.normal_neighbours
            ));
        }
        if self.degree > 2 {
            return Err(format!("degree must be 0, 1 or 2, got {}", self.degree));
        }
        if !(1..=MAX_ITERATIONS).contains(&self.iterations) {
            return Err(format!(
                "iterations must be between 1 and {MAX_ITERATIONS} (the `steps` output is a uchar), got {}",
                self.iterations
            ));
        }
        if let Orientation::Viewpoint(x, y, z) | Orientation::ConsistentToward(x, y, z) =
            self.orientation
            && ![x, y, z].iter().all(|c| c.is_finite())
        {
            return Err(format!(
                "orientation: {:?} needs finite coordinates",
                self.orientation
            ));
        }
        if !(0.0..=1.0).contains(&self.min_projected) {
            return Err(format!(
                "min_projected must be a fraction between 0 and 1, got {}",
                self.min_projected
            ));
        }
        let most = max_threads();
        if self.threads > most {
            return Err(format!(
                "threads must be at most {most} (4 per core; 0 uses every core), got {}",
                self.threads
            ));
        }
        Ok(())
    }
}

/// Most worker threads a job may ask for: four per core. More only
/// time-slice the same cores, and a typo such as `threads: 1000000` would
/// spend its time starting threads.
pub fn max_threads() -> usize {
    4 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Largest `iterations`: the `steps` output property is a uchar.
pub const MAX_ITERATIONS: u32 = 255;

/// Largest config file read: a job config is a few hundred bytes, and a
/// point file handed over by mistake must not be read whole.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The refusal for a point file handed over as a config.
fn not_a_config(path: &Path) -> String {
    format!(
        "this looks like a point file, not a job config; `mlsproj init {}` writes a config for it",
        path.display()
    )
}

/// True when `text` starts like a point file: a PLY header, or a first
/// non-blank line of three or more numbers.
fn looks_like_points(text: &str) -> bool {
    if text.starts_with("ply\n") || text.starts_with("ply\r") {
        return true;
    }
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with("//") && !line.starts_with('#'))
        .is_some_and(|line| {
            let values: Vec<&str> = line
                .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
                .filter(|v| !v.is_empty())
                .collect();
            values.len() >= 3 && values.iter().all(|v| v.parse::<f64>().is_ok())
        })
}

/// A RON error as one line: where, which field, what, and the forms the
/// field accepts. An error met between fields (after a value, such as
/// arguments given to a variant that takes none: `start: Foot(x: 1)`) is
/// the config's own, not a field's: it is told as the field written last
/// before it.
fn describe_parse_error(text: &str, field: &str, error: &ron::error::SpannedError) -> String {
    let start = error.span.start;
    let named = field.split(['.', '[', '(']).next().unwrap_or_default();
    let before = (named.is_empty() || named == "?")
        .then(|| field_before(text, start.line, start.col))
        .flatten();
    let top = before.unwrap_or(named);
    let accepted = accepted_forms(top);
    let mut message = format!("{}:{}: ", start.line, start.col);
    if !top.is_empty() && top != "?" {
        message.push_str(&format!("field `{top}`: "));
    }
    message.push_str(&error.code.to_string());
    if let Some(accepted) = accepted {
        message.push_str(&format!("; accepted: {accepted}"));
    }
    message
}

/// The name of the last top-level field written before `line`:`col`
/// (1-based, as RON counts) in the config `text`, if it is one the config
/// has. Strings (with their escapes, raw ones too) and comments (`//`,
/// nested `/* */`) are skipped: a name in them is no field.
fn field_before(text: &str, line: usize, col: usize) -> Option<&str> {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let this_line = text.get(line_start..)?.split('\n').next()?;
    let end = line_start
        + this_line
            .char_indices()
            .nth(col.saturating_sub(1))
            .map_or(this_line.len(), |(at, _)| at);
    let text = text.get(..end)?;
    let mut chars = text.char_indices().peekable();
    let mut depth = 0usize;
    let mut last = None;
    let mut word = 0..0;
    while let Some((at, c)) = chars.next() {
        let next = chars.peek().map(|&(_, c)| c);
        match (c, next) {
            ('/', Some('/')) => {
                // To the end of the line.
                while chars.next_if(|&(_, c)| c != '\n').is_some() {}
            }
            ('/', Some('*')) => {
                chars.next();
                let mut open = 1;
                while open > 0 {
                    match (chars.next(), chars.peek()) {
                        (Some((_, '/')), Some(&(_, '*'))) => {
                            chars.next();
                            open += 1;
                        }
                        (Some((_, '*')), Some(&(_, '/'))) => {
                            chars.next();
                            open -= 1;
                        }
                        (None, _) => break,
                        _ => {}
                    }
                }
            }
            ('"', _) => {
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            ('r', Some('"' | '#')) if word.is_empty() => {
                // A raw string: r"…", r#"…"#, …
                let hashes = std::iter::from_fn(|| chars.next_if(|&(_, c)| c == '#')).count();
                if chars.next_if(|&(_, c)| c == '"').is_some() {
                    let closing = format!("\"{}", "#".repeat(hashes));
                    let body = &text[at..];
                    let skip = body[2 + hashes..]
                        .find(&closing)
                        .map_or(body.len(), |found| 2 + hashes + found + closing.len());
                    while chars.next_if(|&(i, _)| i < at + skip).is_some() {}
                }
            }
            ('(' | '[' | '{', _) => depth += 1,
            (')' | ']' | '}', _) => depth = depth.saturating_sub(1),
            // Only a field the config has ([`accepted_forms`] knows every
            // one): a stray word before a colon leaves the last field.
            (':', _) if depth == 1 && accepted_forms(&text[word.clone()]).is_some() => {
                last = Some(word.clone())
            }
            _ => {}
        }
        if c.is_alphanumeric() || c == '_' {
            let after = at + c.len_utf8();
            word = if word.end == at && !word.is_empty() {
                word.start..after
            } else {
                at..after
            };
        } else if !c.is_whitespace() {
            word = 0..0;
        }
    }
    text.get(last?)
}

/// The forms a config field accepts, for error messages.
fn accepted_forms(field: &str) -> Option<&'static str> {
    Some(match field {
        "cloud" | "output" => "a path in quotes, e.g. \"scan.ply\"",
        "particles" => "Cloud, File(\"path\"), Seed(spacing: d) or Seed(count: n)",
        "support" => "Radius(h), Nearest(k) or RadiusNearest(radius: h, k: n)",
        "weight" => "Broad, Plateau, Gaussian, Biweight or Wendland",
        "projection" => "Simple or Orthogonal",
        "start" => "NearestPoint, Particle, Centroid or Foot",
        "robust" => "None or Rimls",
        "orientation" => {
            "Auto, Consistent, ConsistentToward(x, y, z), Up, AwayFromCentroid or Viewpoint(x, y, z)"
        }
        "cloud_normals" => "Use or Estimate",
        "encoding" => "Binary or Ascii",
        "quality" => "None, MeanCurvature, GaussianCurvature, Residual, Status or Neighbours",
        "colours" | "attributes" | "separate_faces" => "true or false",
        "degree" => "0, 1 or 2",
        "iterations" | "threads" | "normal_neighbours" => "a whole number",
        "max_particles" | "seed" => "a whole number from 0 to 2^64 - 1",
        "gaussian_width" | "nearest_scale" | "tolerance" | "max_offset" | "normal_weight"
        | "min_projected" => "a number, e.g. 0.5",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The validation message for a job with `fields`, or `None` if valid.
    fn refusal(fields: &str) -> Option<String> {
        let text = format!(r#"(cloud: "c.ply", particles: Cloud, output: "o.ply", {fields})"#);
        Config::parse(&text).expect("parses").validate().err()
    }

    #[test]
    fn a_seed_takes_one_positive_spacing_or_count() {
        let refusal = |seed: &str| {
            let text = format!(r#"(cloud: "c.ply", particles: {seed}, output: "o.ply")"#);
            Config::parse(&text).expect("parses").validate().err()
        };
        for (seed, names) in [
            ("Seed()", "exactly one"),
            ("Seed(spacing: 0.1, count: 5)", "exactly one"),
            ("Seed(spacing: -1.0)", "spacing"),
            ("Seed(count: 0)", "count"),
        ] {
            let message = refusal(seed).unwrap_or_else(|| panic!("{seed} accepted"));
            assert!(message.contains(names), "{seed}: {message}");
        }
        assert_eq!(refusal("Seed(spacing: 0.01)"), None);
        assert_eq!(refusal("Seed(count: 1000)"), None);
    }

    #[test]
    fn arguments_to_a_variant_without_any_are_told_as_that_field() {
        for (fields, named) in [
            ("start: Foot(x: 1)", "field `start`"),
            ("weight: Gaussian(2), degree: 2", "field `weight`"),
            ("threads: 2, robust: None()", "field `robust`"),
            // Names in strings and comments are no fields.
            ("start: Foot /* fit: */ (x: 1)", "field `start`"),
            ("start: Foot // fit: x\n (x: 1)", "field `start`"),
            (
                "start: /* a /* nested */ fit: */ Foot(x: 1)",
                "field `start`",
            ),
        ] {
            let text = format!(
                r##"(cloud: "c:(1)\"weight: .ply", particles: Cloud, output: r#"o"weight: .ply"#, {fields})"##
            );
            let message = Config::parse(&text).expect_err("a parse error");
            assert!(message.contains(named), "{fields}: {message}");
            assert!(message.contains("accepted: "), "{fields}: {message}");
        }
    }

    /// The shipped config with a comma left out: the error names the field
    /// before it, not a word of the comments around it.
    #[test]
    fn a_missing_comma_in_the_shipped_config_names_the_field_before_it() {
        let shipped = include_str!("../config/default.ron");
        for field in ["tolerance: 0.2,", "degree: 2,"] {
            let name = field.split(':').next().unwrap();
            let broken = shipped.replacen(field, field.trim_end_matches(','), 1);
            assert_ne!(broken, shipped, "{field} is in config/default.ron");
            let message = Config::parse(&broken).expect_err("a parse error");
            assert!(
                message.contains(&format!("field `{name}`")),
                "{field}: {message}"
            );
        }
    }

    #[test]
    fn unknown_fields_inside_a_variant_are_an_error_naming_them() {
        for (fields, name) in [
            ("particles: Seed(spacing: 0.05, spacng: 1)", "spacng"),
            ("particles: Seed(spacng: 0.05)", "spacng"),
            ("particles: Seed(count: 100, cuont: 1)", "cuont"),
            (
                "particles: Cloud, support: RadiusNearest(radius: 0.1, k: 20, kk: 3)",
                "kk",
            ),
        ] {
            let text = format!(r#"(cloud: "c.ply", output: "o.ply", {fields})"#);
            let message = Config::parse(&text)
                .err()
                .unwrap_or_else(|| panic!("{fields} accepted"));
            assert!(
                message.contains(&format!("`{name}`")) && !message.contains('\n'),
                "{fields}: {message}"
            );
        }
    }

    #[test]
    fn a_seed_or_count_out_of_range_says_the_range() {
        for field in ["seed: -1", "max_particles: 18446744073709551616"] {
            let text = format!(r#"(cloud: "c.ply", output: "o.ply", particles: Cloud, {field})"#);
            let message = Config::parse(&text)
                .err()
                .unwrap_or_else(|| panic!("{field} accepted"));
            assert!(
                message.contains("a whole number from 0 to 2^64 - 1"),
                "{field}: {message}"
            );
        }
    }

    #[test]
    fn values_the_types_allow_but_the_method_does_not_are_refused() {
        for (fields, names) in [
            ("support: Radius(0.0)", "support"),
            ("iterations: 256", "iterations"),
            ("orientation: Viewpoint(NaN, inf, 0.0)", "Viewpoint"),
            ("min_projected: 1.5", "min_projected"),
            ("threads: 1000000", "threads"),
            ("support: Nearest(2)", "k ≥ 3"),
            ("tolerance: -1.0", "tolerance"),
            ("max_offset: 0.5", "max_offset"),
            ("max_offset: inf", "max_offset"),
            ("normal_weight: -0.1", "normal_weight"),
            ("normal_weight: 1e300", "normal_weight"),
            ("normal_weight: NaN", "normal_weight"),
            ("normal_neighbours: 2", "normal_neighbours"),
            ("degree: 3", "degree"),
            ("iterations: 0", "iterations"),
        ] {
            let message = refusal(fields).unwrap_or_else(|| panic!("{fields} accepted"));
            assert!(message.contains(names), "{fields}: {message}");
        }
        for fields in [
            "max_offset: 1.0",
            "normal_weight: 0.0",
            "normal_weight: 4.0",
        ] {
            assert_eq!(refusal(fields), None, "{fields}");
        }
    }
}
