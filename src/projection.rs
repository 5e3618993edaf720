//! One particle: gather, fit, project, iterate; normal, curvature, status.
//!
//! Everything here works in coordinates relative to the neighbour search's
//! origin, so a cloud at (500000, 4000000, 100) loses nothing to rounding.

use nalgebra::{Point3, Vector3};

use crate::cloud::is_finite_point;
use crate::config::{Config, Particles, Projection, Robust, Start, Support, Weight};
use crate::fit::{
    Frame, HeightField, HeightMoments, Jet, Moments, NormalEquations, SlopeMoments,
    supported_degree,
};
use crate::neighbours::{Neighbour, NeighbourSearch, Neighbourhood};
use crate::status::Status;
use crate::weight::{Kernel, RefitWeight};

/// What one projection computes: the fields of the config that shape it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Method {
    pub support: Support,
    pub weight: Weight,
    pub gaussian_width: f64,
    pub nearest_scale: f64,
    pub degree: u8,
    pub projection: Projection,
    pub iterations: u32,
    pub tolerance: f64,
    pub start: Start,
    /// See [`Config::max_offset`].
    pub max_offset: f64,
    /// See [`Config::normal_weight`].
    pub normal_weight: f64,
    pub robust: Robust,
}

/// The method of a job. With `particles: Cloud` the particles are the
/// cloud's own points, and a nearest-point or foot start is the particle
/// itself: the method starts there without searching.
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
            start: match (&config.particles, config.start) {
                // The cloud's own points (smoothing): each is its own
                // nearest cloud point, and its own foot; starting at the
                // particle is the same start without the search.
                (Particles::Cloud, Start::NearestPoint | Start::Foot) => Start::Particle,
                (_, start) => start,
            },
            max_offset: config.max_offset,
            normal_weight: config.normal_weight,
            robust: config.robust,
        }
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
    hood: Neighbourhood,
    /// Weight of each neighbour in the current fit.
    weights: Vec<f64>,
    /// The neighbourhood's moments under the frame's weights (see
    /// [`Kernel::frame_at`]), summed as the weights are set.
    frame_moments: Moments,
    /// Robust refits: each neighbour's residual to the last fit, the cosine
    /// between its normal and the fit's, and room to find the median.
    residuals: Vec<f64>,
    normal_cosines: Vec<f64>,
    spread: Vec<f64>,
}

/// Reweighted fits after the first with `robust: Rimls`.
const REFITS: usize = 3;
/// `σ_r` in units of the robust (MAD) estimate of the residuals' σ.
const REFIT_RESIDUAL_SCALE: f64 = 2.5;
/// `σ_n`, as in MeshLab's RIMLS: a 90° edge's other face keeps e⁻³·⁶ of
/// its weight per refit, a neighbour whose normal is 10° off keeps 0.95.
/// Narrower (0.5) locks edges faster but follows the rough normals of real
/// scans onto wrong patches (measured on the bunny and armadillo meshes,
/// whose face normals scatter by 30°).
const REFIT_NORMAL_SCALE: f64 = 0.75;
/// How far (in standard deviations of the tangential spread of the refit's
/// data) the particle's foot may lie from their centroid for the refit to
/// be used; see [`Projector::refit`].
const EXTRAPOLATION_LIMIT: f64 = 2.0;

/// The frame and normal equations of one neighbourhood under its weights.
#[derive(Debug, Clone, Copy)]
struct LocalFit {
    frame: Frame,
    equations: NormalEquations,
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
}

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
        }
    }

    /// Projects one particle.
    pub fn project(&self, particle: &Point3<f64>, scratch: &mut Scratch) -> Projected {
        if !is_finite_point(particle) {
            return Projected::unprojected(*particle, Status::InvalidInput, 0);
        }
        let origin = self.search.origin();
        let target = particle - origin;
        let Some(mut centre) = self.start(&target, scratch) else {
            return Projected::unprojected(*particle, Status::TooFewNeighbours, 0);
        };
        let mut last: Option<Step> = None;
        let mut steps = 0u8;
        let mut converged = self.method.iterations <= 1;
        let mut rejected_at_start = None;
        // `steps` counts fitted steps only: the one retry below is free.
        while u32::from(steps) < self.method.iterations.min(u32::from(u8::MAX)) {
            match self.step(&centre, &target, scratch) {
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
    /// (nearest-point and foot starts) none within `max_offset` support
    /// radii.
    fn start(&self, target: &Vector3<f64>, scratch: &mut Scratch) -> Option<Vector3<f64>> {
        let method = &self.method;
        match method.start {
            Start::Particle => Some(*target),
            Start::NearestPoint | Start::Foot => {
                let (index, distance_squared) = self.search.nearest(target);
                // Under `Nearest(k)` the k nearest always exist: no reach.
                let reach = method
                    .support
                    .radius()
                    .map_or(f64::INFINITY, |radius| radius * method.max_offset);
                if distance_squared >= reach * reach {
                    return None;
                }
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
                let mut moments = Moments::default();
                for (neighbour, &w) in scratch.hood.neighbours.iter().zip(&scratch.weights) {
                    moments.add(&neighbour.offset, w);
                }
                moments.centroid().map(|centroid| target + centroid)
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
            &mut scratch.hood,
        );
        if support_radius.is_nan() || support_radius <= 0.0 {
            return None;
        }
        let kernel = Kernel::new(method.weight, support_radius, method.gaussian_width);
        let (frame_moments, count) = set_weights(
            &scratch.hood.neighbours,
            &kernel,
            std::iter::repeat(1.0),
            &mut scratch.weights,
        );
        scratch.frame_moments = frame_moments;
        Some((kernel, count))
    }

    /// One MLS step: the fit around `centre`, onto which `target` is
    /// projected.
    fn step(
        &self,
        centre: &Vector3<f64>,
        target: &Vector3<f64>,
        scratch: &mut Scratch,
    ) -> StepOutcome {
        let method = &self.method;
        let Some((kernel, count)) = self.weigh_neighbourhood(centre, scratch) else {
            return StepOutcome::Failed(
                Status::TooFewNeighbours,
                scratch.hood.neighbours.len() as u32,
            );
        };
        let support_radius = kernel.support_radius();
        if count < 3 {
            return StepOutcome::Failed(Status::TooFewNeighbours, count);
        }
        let start_degree = method.degree.min(supported_degree(count as usize));
        let plain = match self.local_fit(centre, support_radius, scratch) {
            Ok(fit) => fit,
            Err(status) => return StepOutcome::Failed(status, count),
        };
        let fit = match method.robust {
            Robust::None => plain,
            Robust::Rimls => self.refit(plain, centre, target, start_degree, &kernel, scratch),
        };

        let LocalFit { frame, equations } = fit;
        let particle_local = frame.local(&(target - centre - frame.centroid));
        for degree in (0..=start_degree).rev() {
            let Some((coefficients, residual)) = equations.solve(degree) else {
                continue;
            };
            let field = HeightField {
                coefficients,
                support_radius,
            };
            let (u, v) = match method.projection {
                Projection::Simple => (particle_local.x, particle_local.y),
                Projection::Orthogonal => closest_point(&field, &particle_local),
            };
            let jet = field.jet(u, v);
            let surface_local = Vector3::new(u, v, jet.height);
            let surface = centre + frame.centroid + to_world(&frame, &surface_local);
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
                normal: to_world(&frame, &jet.normal()),
                jet,
                residual,
                neighbour_count: count,
                support_radius,
                lowered: degree < method.degree,
                // Here, while `scratch` holds this step's neighbourhood: a
                // later step that fails leaves its own behind.
                colour: self.average_colour(scratch),
            });
        }
        StepOutcome::Failed(Status::Rejected, count)
    }

    /// The oriented frame and the height field's normal equations of the
    /// neighbourhood in `scratch`, under its current weights.
    fn local_fit(
        &self,
        centre: &Vector3<f64>,
        support_radius: f64,
        scratch: &Scratch,
    ) -> Result<LocalFit, Status> {
        // The frame's plane from every neighbour in the support, nearly
        // unweighted (as PCL's, see `Kernel::frame_at`): the frame only
        // orients the height field, whose own linear terms absorb a tilt,
        // but a noisy normal turns the quadric sideways where the support
        // holds few points across the noise. On the thin blade (h = 2.3σ)
        // the kernel-weighted plane left 1.41σ RMS against 1.09σ with the
        // flat one; the other truth sets moved by less than 0.005σ.
        let mut frame = scratch
            .frame_moments
            .frame()
            .ok_or(Status::TooFewNeighbours)?;
        if frame.is_collinear() {
            return Err(Status::Rejected);
        }
        self.orient(&mut frame, centre, scratch);

        let mut moments = HeightMoments::default();
        let inverse_h = 1.0 / support_radius;
        let tangent = |neighbour: &Neighbour| {
            let local = frame.local(&(neighbour.offset - frame.centroid));
            (local.x * inverse_h, local.y * inverse_h, local.z)
        };
        let mut slopes = SlopeMoments::default();
        let normals = self.slope_normals;
        // Two loops rather than a test per neighbour: the heights-only one
        // stays branch-free.
        let weighted = scratch
            .hood
            .neighbours
            .iter()
            .zip(&scratch.weights)
            .filter(|(_, w)| **w > 0.0);
        match normals {
            Some(normals) => {
                for (neighbour, &w) in weighted {
                    let (u, v, height) = tangent(neighbour);
                    moments.add(u, v, height, w);
                    let normal = frame.local(&normals[neighbour.index as usize].cast::<f64>());
                    slopes.add(u, v, &normal, w);
                }
            }
            None => {
                for (neighbour, &w) in weighted {
                    let (u, v, height) = tangent(neighbour);
                    moments.add(u, v, height, w);
                }
            }
        }
        let mut equations = moments.equations();
        if normals.is_some() {
            equations.add_slopes(&slopes, self.method.normal_weight, support_radius);
        }
        Ok(LocalFit { frame, equations })
    }

    /// The robust refits of `plain` (see [`Robust::Rimls`]): reweight, fit
    /// again, `REFITS` times.
    ///
    /// The refit is kept only where the particle's foot lies within the data
    /// that carry it, at most `EXTRAPOLATION_LIMIT` standard deviations of
    /// their tangential spread from their centroid. Beyond that, the refit
    /// has locked onto a face the particle is not over (a particle off a
    /// convex edge, a patch of rough normals on a curved surface) and
    /// extrapolates it; the plain fit, rounded but centred on the particle,
    /// is then the better surface (measured on the truth sets: the largest
    /// errors on the CAD parts fall from 3.9σ to 1.5σ).
    fn refit(
        &self,
        plain: LocalFit,
        centre: &Vector3<f64>,
        target: &Vector3<f64>,
        degree: u8,
        kernel: &Kernel,
        scratch: &mut Scratch,
    ) -> LocalFit {
        let mut fit = plain;
        for _ in 0..REFITS {
            if !self.reweight(&fit, degree, kernel, scratch) {
                break;
            }
            match self.local_fit(centre, kernel.support_radius(), scratch) {
                Ok(refit) => fit = refit,
                // The reweighted neighbourhood no longer spans a plane:
                // keep the last fit that did.
                Err(_) => break,
            }
        }
        let foot = fit.frame.local(&(target - centre - fit.frame.centroid));
        if fit.frame.tangential_deviations(&foot) > EXTRAPOLATION_LIMIT {
            plain
        } else {
            fit
        }
    }

    /// Sets each neighbour's weight (and frame weight, summing the frame's
    /// moments anew) to its kernel weight times the refit factor of its
    /// agreement with the plane of `fit`: the residual to the linear height
    /// field (degree ≤ 1), and the angle between the neighbour's normal and
    /// that plane's. False, weights left alone, when no plane can be
    /// solved.
    ///
    /// The reference is a plane, not the quadric, because a quadric bends
    /// around an edge: both faces then fit it about as well, and the
    /// reweighting stalls halfway (measured on a noisy 90° wedge). A plane
    /// cannot bend, so the face that carries more weight wins and the other
    /// drops out within a few refits; the final fit is still of the full
    /// degree, under the refit weights.
    ///
    /// The residual scale is robust: `σ_r = REFIT_RESIDUAL_SCALE · 1.4826 ·
    /// median |r|` (the MAD, σ for Gaussian noise), so that it follows the
    /// majority of the neighbourhood, not the misfit of an edge's other face
    /// or of outliers, and needs no noise level from the user.
    fn reweight(&self, fit: &LocalFit, degree: u8, kernel: &Kernel, scratch: &mut Scratch) -> bool {
        let Some(coefficients) = (0..=degree.min(1))
            .rev()
            .find_map(|d| fit.equations.solve(d).map(|(c, _)| c))
        else {
            return false;
        };
        let plane = HeightField {
            coefficients,
            support_radius: kernel.support_radius(),
        };
        let frame = &fit.frame;
        // A linear height field has one normal everywhere.
        let plane_normal = to_world(frame, &plane.jet(0.0, 0.0).normal());
        scratch.residuals.clear();
        scratch.normal_cosines.clear();
        let mut agreement = 0.0;
        for (neighbour, &w) in scratch.hood.neighbours.iter().zip(&scratch.weights) {
            let local = frame.local(&(neighbour.offset - frame.centroid));
            scratch
                .residuals
                .push(local.z - plane.jet(local.x, local.y).height);
            if let Some(normals) = self.normals {
                let own = normals[neighbour.index as usize].cast::<f64>();
                let length = own.norm();
                // A zero normal says nothing: no penalty.
                let cosine = if length > 0.0 {
                    plane_normal.dot(&own) / length
                } else {
                    1.0
                };
                agreement += w * cosine;
                scratch.normal_cosines.push(cosine);
            }
        }
        // The fit's normal has the sign of the output rule; compare with
        // the cloud's normals as the neighbourhood orients them.
        let sign = if agreement < 0.0 { -1.0 } else { 1.0 };

        scratch.spread.clear();
        scratch
            .spread
            .extend(scratch.residuals.iter().map(|r| r.abs()));
        let middle = scratch.spread.len() / 2;
        let (_, median, _) = scratch
            .spread
            .select_nth_unstable_by(middle, f64::total_cmp);
        // A floor keeps noise-free data (median 0) finite.
        let residual_scale =
            (REFIT_RESIDUAL_SCALE * 1.4826 * *median).max(1e-9 * kernel.support_radius());
        let refit = RefitWeight::new(residual_scale, REFIT_NORMAL_SCALE);
        let factors = scratch.residuals.iter().enumerate().map(|(i, &residual)| {
            let cosine = scratch.normal_cosines.get(i).map(|c| sign * c);
            refit.at(residual, cosine)
        });
        (scratch.frame_moments, _) = set_weights(
            &scratch.hood.neighbours,
            kernel,
            factors,
            &mut scratch.weights,
        );
        true
    }

    /// Gives the frame's normal its sign by the configured rule.
    fn orient(&self, frame: &mut Frame, centre: &Vector3<f64>, scratch: &Scratch) {
        let agreement = match self.sign {
            NormalSign::CloudNormals(normals) => scratch
                .hood
                .neighbours
                .iter()
                .zip(&scratch.weights)
                .map(|(n, &w)| w * normals[n.index as usize].cast::<f64>().dot(&frame.normal))
                .sum::<f64>(),
            NormalSign::AwayFrom(point) => frame.normal.dot(&(centre + frame.centroid - point)),
            NormalSign::Toward(point) => frame.normal.dot(&(point - centre - frame.centroid)),
            NormalSign::Along(direction) => frame.normal.dot(&direction),
        };
        if agreement < 0.0 {
            frame.flip();
        }
    }

    /// Weighted mean of the cloud colours of the neighbourhood in `scratch`.
    fn average_colour(&self, scratch: &Scratch) -> [u8; 3] {
        let Some(colours) = self.colours else {
            return [0; 3];
        };
        let mut sum = [0.0f64; 3];
        let mut weight_sum = 0.0;
        for (n, &w) in scratch.hood.neighbours.iter().zip(&scratch.weights) {
            let c = colours[n.index as usize];
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

/// Sets `weights` to each neighbour's kernel weight times its factor, and
/// returns the moments under the frame's weights (the kernel's frame weight
/// times the same factor) and the number of neighbours of positive weight:
/// summed as the weights are set, in one pass.
fn set_weights(
    neighbours: &[Neighbour],
    kernel: &Kernel,
    factors: impl Iterator<Item = f64>,
    weights: &mut Vec<f64>,
) -> (Moments, u32) {
    weights.clear();
    let (mut frame_moments, mut count) = (Moments::default(), 0);
    for (neighbour, factor) in neighbours.iter().zip(factors) {
        let weight = kernel.at(neighbour.distance_squared) * factor;
        weights.push(weight);
        count += u32::from(weight > 0.0);
        let frame_weight = kernel.frame_at(neighbour.distance_squared) * factor;
        if frame_weight > 0.0 {
            frame_moments.add(&neighbour.offset, frame_weight);
        }
    }
    (frame_moments, count)
}

/// Frame coordinates `(U, V, W)` to a world offset.
fn to_world(frame: &Frame, local: &Vector3<f64>) -> Vector3<f64> {
    local.x * frame.e1 + local.y * frame.e2 + local.z * frame.normal
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
