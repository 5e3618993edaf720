//! One particle: gather, fit, project, iterate; normal, curvature, status.
//!
//! Everything here works in coordinates relative to the neighbour search's
//! origin, so a cloud at (500000, 4000000, 100) loses nothing to rounding.

use std::sync::atomic::{AtomicU64, Ordering};

use nalgebra::{Point3, Vector3};

use crate::cloud::is_finite_point;
use crate::config::{Config, Particles, Projection, Robust, Start, Support, Weight};
use crate::fit::columns::Columns;
use crate::fit::robust::{self, RefitScratch, Weighted};
use crate::fit::{Fit, Frame, HeightField, Jet, Kernel, LocalFit, Moments, Solution, faces};
use crate::neighbours::{NeighbourSearch, Neighbourhood};
use crate::status::Status;

/// What one projection computes: the fields of the config that shape it
/// (each documented on [`Config`]), and the one rule for how far from a
/// particle its fits may reach ([`Self::reach`]), which tiles use to load
/// the cloud a tile's particles need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Method {
    /// See [`Config::support`].
    pub support: Support,
    /// See [`Config::weight`].
    pub weight: Weight,
    /// See [`Config::gaussian_width`].
    pub gaussian_width: f64,
    /// See [`Config::nearest_scale`].
    pub nearest_scale: f64,
    /// See [`Config::degree`].
    pub degree: u8,
    /// See [`Config::projection`].
    pub projection: Projection,
    /// See [`Config::iterations`].
    pub iterations: u32,
    /// See [`Config::tolerance`].
    pub tolerance: f64,
    /// See [`Config::start`].
    pub start: Start,
    /// The particles are the cloud's own points (`particles: Cloud`): each
    /// is its own nearest cloud point, and its own foot, so a nearest-point
    /// or foot start is the particle itself, found without a search.
    pub on_cloud: bool,
    /// See [`Config::max_offset`].
    pub max_offset: f64,
    /// See [`Config::normal_weight`].
    pub normal_weight: f64,
    /// See [`Config::robust`].
    pub robust: Robust,
    /// See [`Config::separate_faces`].
    pub separate_faces: bool,
}

/// The method of a job.
impl From<&Config> for Method {
    fn from(config: &Config) -> Self {
        Method {
            support: config.support,
            weight: config.weight,
            gaussian_width: config.gaussian_width,
            nearest_scale: config.nearest_scale,
            degree: config.degree,
            projection: config.projection,
            iterations: config.iterations,
            tolerance: config.tolerance,
            start: config.start,
            on_cloud: config.particles == Particles::Cloud,
            max_offset: config.max_offset,
            normal_weight: config.normal_weight,
            robust: config.robust,
            separate_faces: config.separate_faces,
        }
    }
}

impl Method {
    /// Steps a particle may take: `iterations`, up to the 255 that the
    /// `steps` output property holds.
    fn max_steps(&self) -> u32 {
        self.iterations.min(u32::from(u8::MAX))
    }

    /// How far a start at a nearest cloud point may lie from its particle:
    /// `max_offset` support radii under a radius support; unbounded under
    /// `Nearest(k)`, where the k nearest always exist.
    fn start_limit(&self) -> f64 {
        self.support
            .radius()
            .map_or(f64::INFINITY, |radius| radius * self.max_offset)
    }

    /// Support radii between a particle and its start, before any is
    /// measured: none from the particle itself, up to h for its
    /// neighbours' centroid or (under `Nearest(k)`, or a particle near the
    /// surface) its nearest point. [`Self::reach`] measures the nearest
    /// point's distance under a radius support, where it may lie up to
    /// `max_offset` radii away.
    fn start_in_radii(&self) -> f64 {
        match self.start {
            Start::Particle => 0.0,
            Start::NearestPoint | Start::Centroid | Start::Foot => 1.0,
        }
    }

    /// True when a particle's first fit depends on its nearest cloud point
    /// alone, so that particles sharing one share the fit
    /// ([`FirstFits`]): the start at the nearest point, for particles
    /// that are not themselves the cloud's (each its own nearest), and
    /// no robust refit (which weighs by the particle's residual).
    fn shares_first_fits(&self) -> bool {
        self.start == Start::NearestPoint && !self.on_cloud && self.robust == Robust::None
    }

    /// How far from a particle its fits may reach, when that does not
    /// depend on the particle: under a radius support, `iterations`
    /// support radii plus the start's distance (before it is measured).
    /// `None` under `Nearest(k)`, whose h depends on the centre.
    pub fn fixed_reach(&self) -> Option<f64> {
        self.support
            .radius()
            .map(|radius| radius * (f64::from(self.iterations) + self.start_in_radii()))
    }

    /// How far from the particle at `centre` (relative to the search's
    /// origin) its fits may reach in the cloud of `search`: its start's
    /// distance plus `iterations` support radii (each step looks within h
    /// of a centre that moves less than h per step), doubled for
    /// `Nearest(k)`, whose h at a moved centre can grow.
    ///
    /// Measured in a part of the cloud, where a particle's nearest point
    /// and k-nearest radius can only be farther than in the whole cloud,
    /// this bounds the reach in the whole cloud too: tiles load that much
    /// beyond their slab.
    pub fn reach(
        &self,
        search: &NeighbourSearch,
        centre: &Vector3<f64>,
        neighbourhood: &mut Neighbourhood,
    ) -> f64 {
        let fixed_radius = self.support.radius();
        let growth = if fixed_radius.is_some() { 1.0 } else { 2.0 };
        let h = fixed_radius.unwrap_or_else(|| {
            search.gather(centre, self.support, self.nearest_scale, neighbourhood)
        });
        let start = match (self.start, fixed_radius) {
            (Start::NearestPoint | Start::Foot, Some(_)) => {
                let (_, distance_squared) = search.nearest(centre);
                distance_squared.sqrt().min(self.max_offset * h)
            }
            _ => self.start_in_radii() * h,
        };
        growth * (start + f64::from(self.iterations) * h)
    }
}

/// How the sign of a PCA normal is chosen.
#[derive(Debug, Clone, Copy)]
pub enum NormalSign<'a> {
    /// Agree with the weighted mean of the cloud's own normals.
    CloudNormals(&'a [Vector3<f32>]),
    /// Point away from a point (relative to the search origin).
    AwayFrom(Vector3<f64>),
    /// Point toward a point (relative to the search origin).
    Toward(Vector3<f64>),
    /// Point along a direction (`orientation: Up`: +z).
    Along(Vector3<f64>),
}

/// The result for one particle, in the cloud's coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Projected {
    /// Surface point (or the input position, per `status`).
    pub position: Point3<f64>,
    /// Unit surface normal; zero when not projected.
    pub normal: Vector3<f64>,
    /// Mean curvature, signed relative to `normal`.
    pub mean_curvature: f64,
    /// Gaussian curvature.
    pub gaussian_curvature: f64,
    /// Weighted RMS residual of the last fit, in the cloud's units.
    pub residual: f64,
    /// Neighbours with non-zero weight in the last step.
    pub neighbour_count: u32,
    /// Projection steps taken.
    pub steps: u8,
    /// Outcome.
    pub status: Status,
    /// Weight-averaged cloud colour, when the cloud has colours.
    pub colour: [u8; 3],
}

impl Projected {
    /// True when every number of the result is finite.
    fn is_finite(&self) -> bool {
        let values = [self.mean_curvature, self.gaussian_curvature, self.residual];
        self.position
            .iter()
            .chain(self.normal.iter())
            .chain(&values)
            .all(|v| v.is_finite())
    }

    /// The particle kept where it was, with no surface information.
    fn unprojected(position: Point3<f64>, status: Status, neighbour_count: u32) -> Self {
        Projected {
            position,
            normal: Vector3::zeros(),
            mean_curvature: 0.0,
            gaussian_curvature: 0.0,
            residual: 0.0,
            neighbour_count,
            steps: 0,
            status,
            colour: [0; 3],
        }
    }
}

/// Per-thread buffers, reused for every particle (no allocation per
/// particle once they have grown to the largest neighbourhood).
#[derive(Debug, Default)]
pub struct Scratch {
    neighbourhood: Neighbourhood,
    /// What the fit adds to the neighbourhood's columns: each neighbour's
    /// weight in the current fit and, for the slope equations, its normal.
    columns: Columns,
    /// The neighbourhood's moments under the frame's weights (see
    /// [`Kernel::frame_at`]), summed as the weights are set.
    frame_moments: Moments,
    /// Each neighbour's share of its weight as a neighbour of the
    /// centre's face (see [`faces`]); empty when every one keeps it all.
    face_factors: Vec<f64>,
    /// The robust refits' buffers.
    refits: RefitScratch,
    /// The last first fits, by centre.
    first_fits: FirstFits,
}

/// The fit of one step: everything it computes from its centre (and,
/// under a robust refit, the particle's residual), before a particle is
/// projected onto it.
#[derive(Debug, Clone, Copy)]
struct StepFit {
    fit: Fit,
    /// The highest degree's solution that exists (`None`: no degree's
    /// equations could be solved), solved once for every particle
    /// projected onto this fit.
    first: Option<Solution>,
    /// Neighbours of positive weight.
    neighbour_count: u32,
    /// The neighbourhood's weighted colour (black without colours).
    colour: [u8; 3],
}

/// A fit at a centre, or why there is none (status, neighbour count).
type FitOutcome = Result<StepFit, (Status, u32)>;

/// Fits kept for the particles that come next: under
/// [`Method::shares_first_fits`] a first fit is a function of its centre,
/// the particle's nearest cloud point, and particles visited in spatial
/// order often share one. On `sphere_large` (1M particles near 2M points)
/// 31% of the particles share their nearest point with another; in Morton
/// order 12.5% with the particle before, 22% with one of the last 8, 24%
/// of the last 16; seeds drawn on the discs of cloud points share them far
/// more.
#[derive(Debug, Default)]
struct FirstFits {
    /// The [`Projector::id`] of the projector whose fits these are (a
    /// scratch may serve another projector later: its fits go then).
    owner: u64,
    /// `(centre, outcome)`, replaced oldest first.
    kept: Vec<(Vector3<f64>, FitOutcome)>,
    /// The entry replaced next.
    next: usize,
}

/// Fits a [`FirstFits`] keeps: 16 against 8 took sphere_large 4.97 → 4.88 s
/// CPU and the bunny scan's seeding 1.40 → 1.35 s (medians of 5
/// alternated runs); 32 no further (4.82 against 4.82 s, 1.33 against
/// 1.35 s).
const KEPT_FITS: usize = 16;

impl FirstFits {
    /// Where the fit that projector `owner` kept for `centre` is, if any.
    fn find(&self, owner: u64, centre: &Vector3<f64>) -> Option<usize> {
        if owner != self.owner {
            return None;
        }
        self.kept.iter().position(|(kept, _)| kept == centre)
    }

    /// The fit kept at `at` ([`Self::find`], [`Self::keep`]).
    fn outcome(&self, at: usize) -> &FitOutcome {
        &self.kept[at].1
    }

    /// Keeps `outcome` as projector `owner`'s fit at `centre`, in place of
    /// the oldest (of all, when the fits were another projector's), and
    /// returns where.
    fn keep(&mut self, owner: u64, centre: Vector3<f64>, outcome: FitOutcome) -> usize {
        if owner != self.owner {
            self.owner = owner;
            self.kept.clear();
            self.next = 0;
        }
        if self.kept.len() < KEPT_FITS {
            self.kept.push((centre, outcome));
            self.kept.len() - 1
        } else {
            let at = self.next;
            self.kept[at] = (centre, outcome);
            self.next = (at + 1) % KEPT_FITS;
            at
        }
    }
}

/// One fitted step, relative to the search origin.
#[derive(Debug, Clone, Copy)]
struct Step {
    surface: Vector3<f64>,
    normal: Vector3<f64>,
    jet: Jet,
    residual: f64,
    neighbour_count: u32,
    support_radius: f64,
    lowered: bool,
    /// The neighbourhood's weighted colour (black without colours).
    colour: [u8; 3],
}

enum StepOutcome {
    Fitted(Step),
    Failed(Status, u32),
}

/// Projects particles onto the MLS surface of one cloud.
pub struct Projector<'a> {
    search: &'a NeighbourSearch,
    method: Method,
    sign: NormalSign<'a>,
    colours: Option<&'a [[u8; 3]]>,
    normals: Option<&'a [Vector3<f32>]>,
    /// `normals` when they enter the fit ([`slope_normals`]).
    slope_normals: Option<&'a [Vector3<f32>]>,
    /// This projector's own number, unique in the process: a [`Scratch`]
    /// keeps fits for one projector at a time ([`FirstFits`]).
    id: u64,
}

/// The next [`Projector::id`].
static NEXT_PROJECTOR: AtomicU64 = AtomicU64::new(0);

/// The cloud's normals as the fit's slope equations use them: when it has
/// some and `normal_weight` is positive.
pub fn slope_normals(
    normals: Option<&[Vector3<f32>]>,
    normal_weight: f64,
) -> Option<&[Vector3<f32>]> {
    normals.filter(|_| normal_weight > 0.0)
}

impl<'a> Projector<'a> {
    /// A projector over `search` (built from the cloud's finite points; the
    /// normals and colours slices are indexed like those points). The
    /// cloud's unit normals serve the start at a foot, the fit's slope
    /// equations (`normal_weight`) and the normal term of robust refits;
    /// without them all three use positions alone.
    pub fn new(
        search: &'a NeighbourSearch,
        method: Method,
        sign: NormalSign<'a>,
        colours: Option<&'a [[u8; 3]]>,
        normals: Option<&'a [Vector3<f32>]>,
    ) -> Self {
        Projector {
            search,
            method,
            sign,
            colours,
            normals,
            slope_normals: slope_normals(normals, method.normal_weight),
            id: NEXT_PROJECTOR.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Projects one particle.
    ///
    /// A particle left where it was (`too_few_neighbours`, `rejected`) gets
    /// the oriented normal of its nearest cloud point, so that viewers,
    /// which ignore `status`, shade it like the surface around it; an
    /// `invalid_input` one keeps (0, 0, 0). A result that does not fit in
    /// finite numbers (coordinates near 1e±300, where squares overflow) is
    /// `rejected`: nothing non-finite is written with a projected status.
    pub fn project(&self, particle: &Point3<f64>, scratch: &mut Scratch) -> Projected {
        if !is_finite_point(particle) {
            return Projected::unprojected(*particle, Status::InvalidInput, 0);
        }
        let target = particle - self.search.origin();
        let mut projected = self.iterate(particle, &target, scratch);
        if !projected.is_finite() {
            projected =
                Projected::unprojected(*particle, Status::Rejected, projected.neighbour_count);
        }
        if !projected.status.is_projected() {
            projected.normal = self.nearest_normal(&target, scratch);
        }
        projected
    }

    /// The steps of one finite particle at `target` (relative to the
    /// search's origin).
    fn iterate(
        &self,
        particle: &Point3<f64>,
        target: &Vector3<f64>,
        scratch: &mut Scratch,
    ) -> Projected {
        let origin = self.search.origin();
        let target = *target;
        let Some(mut centre) = self.start(&target, scratch) else {
            return Projected::unprojected(*particle, Status::TooFewNeighbours, 0);
        };
        let mut last: Option<Step> = None;
        let mut steps = 0u8;
        let mut converged = self.method.iterations <= 1;
        let mut rejected_at_start = None;
        // `steps` counts fitted steps only: the one retry below is free.
        while u32::from(steps) < self.method.max_steps() {
            match self.step(
                &centre,
                &target,
                last.is_none() && rejected_at_start.is_none(),
                scratch,
            ) {
                StepOutcome::Fitted(step) => {
                    steps = steps.saturating_add(1);
                    // The step's length: how far the centre moves.
                    let moved = (step.surface - centre).norm();
                    last = Some(step);
                    if moved < self.method.tolerance * step.support_radius {
                        converged = true;
                        break;
                    }
                    centre = step.surface;
                }
                StepOutcome::Failed(Status::Rejected, count)
                    if last.is_none() && centre != target =>
                {
                    // The fit at the start point does not reach the
                    // particle's foot (its nearest point is no guide, e.g.
                    // far off a curved surface): start again from the
                    // particle itself, whose own neighbourhood may.
                    rejected_at_start = Some(count);
                    centre = target;
                }
                StepOutcome::Failed(status, count) => {
                    if last.is_none() {
                        // A particle off the rim of a thin part has no
                        // neighbourhood of its own: it stays rejected.
                        return match rejected_at_start {
                            Some(count) => {
                                Projected::unprojected(*particle, Status::Rejected, count)
                            }
                            None => Projected::unprojected(*particle, status, count),
                        };
                    }
                    // A later step found no fit: keep the last good iterate.
                    break;
                }
            }
        }
        let Some(step) = last else {
            return Projected::unprojected(*particle, Status::TooFewNeighbours, 0);
        };
        let status = if !converged {
            Status::NotConverged
        } else if step.lowered {
            Status::LowerDegree
        } else {
            Status::Ok
        };
        let (mut mean_curvature, gaussian_curvature) = step.jet.curvatures();
        let mut normal = step.normal;
        // `Up` holds for every normal written, not only the frame's: on a
        // steep patch (a facade) the fitted surface's normal at the foot
        // can tip past the horizon while the frame's does not.
        if let NormalSign::Along(direction) = self.sign
            && normal.dot(&direction) < 0.0
        {
            normal = -normal;
            mean_curvature = -mean_curvature;
        }
        Projected {
            position: origin + step.surface,
            normal,
            mean_curvature,
            gaussian_curvature,
            residual: step.residual,
            neighbour_count: step.neighbour_count,
            steps,
            status,
            colour: step.colour,
        }
    }

    /// The centre of the first step for a particle at `target`, or `None`
    /// when no start can speak for it: no neighbour within its support, or
    /// (nearest-point and foot starts) none within [`Method::start_limit`].
    fn start(&self, target: &Vector3<f64>, scratch: &mut Scratch) -> Option<Vector3<f64>> {
        let method = &self.method;
        match method.start {
            Start::Particle => Some(*target),
            Start::NearestPoint | Start::Foot if method.on_cloud => Some(*target),
            Start::NearestPoint | Start::Foot => {
                let (index, _) = self.search.nearest_within(target, method.start_limit())?;
                let nearest = self.search.local_point(index);
                let normal = match (method.start, self.normals) {
                    (Start::Foot, Some(normals)) => normals[index as usize].cast::<f64>(),
                    _ => return Some(nearest),
                };
                if normal == Vector3::zeros() {
                    return Some(nearest);
                }
                let foot = target - normal * normal.dot(&(target - nearest));
                // A foot outside the nearest point's support (a particle
                // far off at a slant) may have no neighbours of its own.
                let within_support = method
                    .support
                    .radius()
                    .is_none_or(|radius| (foot - nearest).norm() < radius);
                Some(if within_support { foot } else { nearest })
            }
            Start::Centroid => {
                self.weigh_neighbourhood(target, scratch)?;
                scratch
                    .columns
                    .moments(&scratch.neighbourhood)
                    .centroid()
                    .map(|centroid| target + centroid)
            }
        }
    }

    /// Gathers the neighbourhood of `centre` into `scratch` with its
    /// weights, and returns the kernel (bound to the support radius) and
    /// the number of neighbours of positive weight, or `None` when the
    /// support is empty.
    fn weigh_neighbourhood(
        &self,
        centre: &Vector3<f64>,
        scratch: &mut Scratch,
    ) -> Option<(Kernel, u32)> {
        let method = &self.method;
        let support_radius = self.search.gather(
            centre,
            method.support,
            method.nearest_scale,
            &mut scratch.neighbourhood,
        );
        if support_radius.is_nan() || support_radius <= 0.0 {
            return None;
        }
        let kernel = Kernel::new(method.weight, support_radius, method.gaussian_width);
        // The columns carry the normals only for the slope equations.
        scratch
            .columns
            .load(&scratch.neighbourhood, self.slope_normals);
        scratch.face_factors.clear();
        if method.separate_faces {
            faces::face_factors(
                &scratch.neighbourhood,
                &scratch.columns,
                &mut scratch.face_factors,
            );
        }
        let factors = (!scratch.face_factors.is_empty()).then_some(scratch.face_factors.as_slice());
        let (frame_moments, count) =
            kernel.weigh(&scratch.neighbourhood, &mut scratch.columns, factors);
        scratch.frame_moments = frame_moments;
        Some((kernel, count))
    }

    /// One MLS step: the fit around `centre`, onto which `target` is
    /// projected. A particle's `first` step takes a fit kept in `scratch`
    /// at the same centre when the method shares them
    /// ([`Method::shares_first_fits`]): the same fit, computed once.
    fn step(
        &self,
        centre: &Vector3<f64>,
        target: &Vector3<f64>,
        first: bool,
        scratch: &mut Scratch,
    ) -> StepOutcome {
        // A fit is some 700 bytes: read where it is kept, not copied out.
        let fresh;
        let outcome = if first && self.method.shares_first_fits() {
            let at = match scratch.first_fits.find(self.id, centre) {
                Some(at) => at,
                None => {
                    let outcome = self.fit_around(centre, target, scratch);
                    scratch.first_fits.keep(self.id, *centre, outcome)
                }
            };
            scratch.first_fits.outcome(at)
        } else {
            fresh = self.fit_around(centre, target, scratch);
            &fresh
        };
        match outcome {
            Ok(fit) => self.project_onto(fit, centre, target),
            Err((status, count)) => StepOutcome::Failed(*status, *count),
        }
    }

    /// The fit of one step around `centre` (`target` weighs a robust
    /// refit).
    fn fit_around(
        &self,
        centre: &Vector3<f64>,
        target: &Vector3<f64>,
        scratch: &mut Scratch,
    ) -> FitOutcome {
        let method = &self.method;
        let Some((kernel, count)) = self.weigh_neighbourhood(centre, scratch) else {
            return Err((Status::TooFewNeighbours, scratch.neighbourhood.len() as u32));
        };
        let support_radius = kernel.support_radius();
        if count < 3 {
            return Err((Status::TooFewNeighbours, count));
        }
        let neighbours = &scratch.neighbourhood;
        // The first fit and each robust refit, over the weights of `columns`.
        let fit_with = |columns: &mut Columns, frame_moments: &Moments| {
            crate::cpu::with_v3!(Self::local_fit(
                self,
                centre,
                support_radius,
                neighbours,
                columns,
                frame_moments
            ))
        };
        let plain = fit_with(&mut scratch.columns, &scratch.frame_moments)
            .map_err(|status| (status, count))?;
        let fit = match method.robust {
            Robust::None => plain,
            Robust::Rimls => robust::refit(
                plain,
                &(target - centre),
                method
                    .degree
                    .min(crate::fit::height::supported_degree(count as usize)),
                &kernel,
                &mut Weighted {
                    neighbours,
                    columns: &mut scratch.columns,
                    frame_moments: &mut scratch.frame_moments,
                    normals: self.normals,
                    face_factors: &scratch.face_factors,
                },
                &mut scratch.refits,
                fit_with,
            ),
        };
        Ok(StepFit {
            first: fit.surfaces(method.degree, count).next(),
            fit,
            neighbour_count: count,
            // Here, while `scratch` holds this fit's neighbourhood.
            colour: self.average_colour(scratch),
        })
    }

    /// `target` projected onto the fit `step_fit` around `centre`: onto
    /// its highest degree's surface, or a lower degree's when that lands
    /// outside the support.
    fn project_onto(
        &self,
        step_fit: &StepFit,
        centre: &Vector3<f64>,
        target: &Vector3<f64>,
    ) -> StepOutcome {
        let method = &self.method;
        let StepFit {
            fit,
            first,
            neighbour_count: count,
            colour,
        } = step_fit;
        let support_radius = fit.support_radius;
        let particle_local = fit.frame.local(&(target - centre - fit.frame.centroid));
        // The degrees below the first are solved only when it is of no use.
        let lower = first
            .filter(|solution| solution.degree > 0)
            .into_iter()
            .flat_map(|solution| fit.surfaces(solution.degree - 1, *count));
        let solutions = first.iter().copied().chain(lower);
        for solution in solutions {
            let field = solution.field;
            let (u, v) = match method.projection {
                Projection::Simple => (particle_local.x, particle_local.y),
                Projection::Orthogonal => closest_point(&field, &particle_local),
            };
            let jet = field.jet(u, v);
            let surface_local = Vector3::new(u, v, jet.height);
            let surface = centre + fit.frame.centroid + fit.frame.world_offset(&surface_local);
            if (surface - centre).norm() > support_radius {
                // Outside the support ball the fit was made from: the fit
                // extrapolates past its data (PCL issue #5753). A lower
                // degree, or reject. Measured from the fit's centre, not
                // from the particle: from the nearest cloud point with
                // `Nearest(k)`, a particle may lie farther off than h and
                // still have its foot well inside the data.
                continue;
            }
            return StepOutcome::Fitted(Step {
                surface,
                normal: fit.frame.world_offset(&jet.normal()),
                jet,
                residual: solution.residual,
                neighbour_count: *count,
                support_radius,
                lowered: solution.degree < method.degree,
                colour: *colour,
            });
        }
        StepOutcome::Failed(Status::Rejected, *count)
    }

    /// The oriented frame and the height field's normal equations of the
    /// neighbourhood `neighbours` of `centre` (laid out in `columns`, with
    /// their weights), over the frame of `frame_moments`.
    ///
    /// Inlined into each copy ([`crate::cpu::with_v3!`]) that its callers
    /// make, with the frame, the sign rule and the normal equations.
    #[inline(always)]
    fn local_fit<const V3: bool>(
        &self,
        centre: &Vector3<f64>,
        support_radius: f64,
        neighbours: &Neighbourhood,
        columns: &mut Columns,
        frame_moments: &Moments,
    ) -> Result<Fit, Status> {
        // The frame's plane from every neighbour in the support, nearly
        // unweighted (as PCL's, see `Kernel::frame_at`): the frame only
        // orients the height field, whose own linear terms absorb a tilt,
        // but a noisy normal turns the quadric sideways where the support
        // holds few points across the noise. On the thin blade (h = 2.3σ)
        // the kernel-weighted plane left 1.41σ RMS against 1.09σ with the
        // flat one; the other truth sets moved by less than 0.005σ.
        let mut fit = LocalFit::new(frame_moments, support_radius)?;
        if self.wrong_side(fit.frame(), centre, neighbours, columns) {
            fit.flip();
        }
        fit.add_neighbours(neighbours, columns, self.slope_normals.is_some());
        Ok(fit.finish(self.slope_normals.map(|_| self.method.normal_weight)))
    }

    /// True when `frame`'s normal disagrees with the configured sign rule;
    /// `columns` hold the neighbours' weights (and, when the fit uses
    /// them, their normals). Inlined into each copy of
    /// [`Self::local_fit`].
    #[inline(always)]
    fn wrong_side(
        &self,
        frame: &Frame,
        centre: &Vector3<f64>,
        neighbours: &Neighbourhood,
        columns: &Columns,
    ) -> bool {
        let agreement = match self.sign {
            // The columns' normals are the sign's when the fit uses them.
            NormalSign::CloudNormals(normals) => {
                let in_columns = self
                    .slope_normals
                    .is_some_and(|own| std::ptr::eq(own, normals));
                let sum = in_columns.then(|| columns.weighted_normal_sum()).flatten();
                sum.unwrap_or_else(|| columns.weighted_normal_sum_of(neighbours, normals))
                    .dot(&frame.normal)
            }
            NormalSign::AwayFrom(point) => frame.normal.dot(&(centre + frame.centroid - point)),
            NormalSign::Toward(point) => frame.normal.dot(&(point - centre - frame.centroid)),
            NormalSign::Along(direction) => frame.normal.dot(&direction),
        };
        agreement < 0.0
    }

    /// The oriented normal of the cloud point nearest to `target`: the
    /// cloud's own normal there, signed by the orientation rule, or, when
    /// the cloud has none, the normal of the local frame at that point.
    /// Zero when neither exists (a point with no neighbourhood).
    fn nearest_normal(&self, target: &Vector3<f64>, scratch: &mut Scratch) -> Vector3<f64> {
        let (index, _) = self.search.nearest(target);
        let point = self.search.local_point(index);
        let own = self
            .normals
            .map(|normals| normals[index as usize].cast::<f64>())
            .filter(|normal| *normal != Vector3::zeros());
        if let Some(normal) = own {
            let agreement = match self.sign {
                NormalSign::CloudNormals(_) => 1.0,
                NormalSign::AwayFrom(centre) => normal.dot(&(point - centre)),
                NormalSign::Toward(viewpoint) => normal.dot(&(viewpoint - point)),
                NormalSign::Along(direction) => normal.dot(&direction),
            };
            return if agreement < 0.0 { -normal } else { normal };
        }
        let Some((kernel, _)) = self.weigh_neighbourhood(&point, scratch) else {
            return Vector3::zeros();
        };
        let Ok(mut fit) = LocalFit::new(&scratch.frame_moments, kernel.support_radius()) else {
            return Vector3::zeros();
        };
        if self.wrong_side(
            fit.frame(),
            &point,
            &scratch.neighbourhood,
            &scratch.columns,
        ) {
            fit.flip();
        }
        fit.frame().normal
    }

    /// Weighted mean of the cloud colours of the neighbourhood in `scratch`.
    fn average_colour(&self, scratch: &Scratch) -> [u8; 3] {
        let Some(colours) = self.colours else {
            return [0; 3];
        };
        let mut sum = [0.0f64; 3];
        let mut weight_sum = 0.0;
        for (&n, &w) in scratch
            .neighbourhood
            .indices()
            .iter()
            .zip(scratch.columns.weights())
        {
            let c = colours[n as usize];
            for (s, c) in sum.iter_mut().zip(c) {
                *s += w * f64::from(c);
            }
            weight_sum += w;
        }
        if weight_sum <= 0.0 {
            return [0; 3];
        }
        sum.map(|s| (s / weight_sum).round().clamp(0.0, 255.0) as u8)
    }
}

/// The `(U, V)` whose patch point is closest to `target` (frame
/// coordinates): Newton's method on the squared distance, from the foot of
/// the simple projection, as PCL's ORTHOGONAL projection does.
fn closest_point(field: &HeightField, target: &Vector3<f64>) -> (f64, f64) {
    const NEWTON_STEPS: usize = 10;
    let (mut u, mut v) = (target.x, target.y);
    for _ in 0..NEWTON_STEPS {
        let jet = field.jet(u, v);
        let gap = jet.height - target.z;
        let gradient = [(u - target.x) + gap * jet.du, (v - target.y) + gap * jet.dv];
        let huu = 1.0 + jet.du * jet.du + gap * jet.duu;
        let huv = jet.du * jet.dv + gap * jet.duv;
        let hvv = 1.0 + jet.dv * jet.dv + gap * jet.dvv;
        let det = huu * hvv - huv * huv;
        if !(det > 0.0 && huu > 0.0) {
            break;
        }
        let du = (hvv * gradient[0] - huv * gradient[1]) / det;
        let dv = (huu * gradient[1] - huv * gradient[0]) / det;
        u -= du;
        v -= dv;
        if du * du + dv * dv < 1e-24 * field.support_radius * field.support_radius {
            break;
        }
    }
    (u, v)
}
