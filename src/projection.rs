//! One particle: gather, fit, project, iterate; normal, curvature, status.
//!
//! Everything here works in coordinates relative to the neighbour search's
//! origin, so a cloud at (500000, 4000000, 100) loses nothing to rounding.

use nalgebra::{Point3, Vector3};

use crate::config::{Config, Projection, Support, Weight};
use crate::fit::{Frame, HeightField, HeightMoments, Jet, Moments, supported_degree};
use crate::neighbours::{Neighbour, NeighbourSearch};
use crate::status::Status;
use crate::weight::Kernel;

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
}

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
    neighbours: Vec<Neighbour>,
    weights: Vec<f64>,
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
}

impl<'a> Projector<'a> {
    /// A projector over `search` (built from the cloud's finite points; the
    /// normals and colours slices are indexed like those points).
    pub fn new(
        search: &'a NeighbourSearch,
        method: Method,
        sign: NormalSign<'a>,
        colours: Option<&'a [[u8; 3]]>,
    ) -> Self {
        Projector {
            search,
            method,
            sign,
            colours,
        }
    }

    /// Projects one particle.
    pub fn project(&self, particle: &Point3<f64>, scratch: &mut Scratch) -> Projected {
        if !particle.iter().all(|c| c.is_finite()) {
            return Projected::unprojected(*particle, Status::InvalidInput, 0);
        }
        let origin = self.search.origin();
        let target = particle - origin;
        let mut centre = target;
        let mut last: Option<Step> = None;
        let mut steps = 0u8;
        let mut converged = self.method.iterations <= 1;
        for _ in 0..self.method.iterations {
            match self.step(&centre, &target, scratch) {
                StepOutcome::Fitted(step) => {
                    steps = steps.saturating_add(1);
                    let moved = last.map(|previous| (step.surface - previous.surface).norm());
                    last = Some(step);
                    if moved.is_some_and(|m| m < self.method.tolerance * step.support_radius) {
                        converged = true;
                        break;
                    }
                    centre = step.surface;
                }
                StepOutcome::Failed(status, count) => {
                    if last.is_none() {
                        return Projected::unprojected(*particle, status, count);
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
        let (mean_curvature, gaussian_curvature) = step.jet.curvatures();
        Projected {
            position: origin + step.surface,
            normal: step.normal,
            mean_curvature,
            gaussian_curvature,
            residual: step.residual,
            neighbour_count: step.neighbour_count,
            steps,
            status,
            colour: self.average_colour(scratch),
        }
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
        let support_radius = self.search.gather(
            centre,
            method.support,
            method.nearest_scale,
            &mut scratch.neighbours,
        );
        if support_radius.is_nan() || support_radius <= 0.0 {
            return StepOutcome::Failed(Status::TooFewNeighbours, scratch.neighbours.len() as u32);
        }
        let kernel = Kernel::new(method.weight, support_radius, method.gaussian_width);
        scratch.weights.clear();
        let mut moments = Moments::default();
        let mut count = 0u32;
        for neighbour in &scratch.neighbours {
            let w = kernel.at(neighbour.distance_squared);
            scratch.weights.push(w);
            if w > 0.0 {
                count += 1;
                moments.add(&neighbour.offset, w);
            }
        }
        if count < 3 {
            return StepOutcome::Failed(Status::TooFewNeighbours, count);
        }
        let Some(mut frame) = moments.frame() else {
            return StepOutcome::Failed(Status::TooFewNeighbours, count);
        };
        if frame.is_collinear() {
            return StepOutcome::Failed(Status::Rejected, count);
        }
        self.orient(&mut frame, centre, scratch);

        let mut moments = HeightMoments::default();
        let inverse_h = 1.0 / support_radius;
        for (neighbour, &w) in scratch.neighbours.iter().zip(&scratch.weights) {
            if w > 0.0 {
                let local = frame.local(&(neighbour.offset - frame.centroid));
                moments.add(local.x * inverse_h, local.y * inverse_h, local.z, w);
            }
        }

        let equations = moments.equations();
        let start_degree = method.degree.min(supported_degree(count as usize));
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
            if (surface - target).norm() > support_radius {
                // Extrapolating far off the data: a lower degree, or reject.
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
            });
        }
        StepOutcome::Failed(Status::Rejected, count)
    }

    /// Gives the frame's normal its sign by the configured rule.
    fn orient(&self, frame: &mut Frame, centre: &Vector3<f64>, scratch: &Scratch) {
        let agreement = match self.sign {
            NormalSign::CloudNormals(normals) => scratch
                .neighbours
                .iter()
                .zip(&scratch.weights)
                .map(|(n, &w)| w * normals[n.index as usize].cast::<f64>().dot(&frame.normal))
                .sum::<f64>(),
            NormalSign::AwayFrom(point) => frame.normal.dot(&(centre + frame.centroid - point)),
            NormalSign::Toward(point) => frame.normal.dot(&(point - centre - frame.centroid)),
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
        for (n, &w) in scratch.neighbours.iter().zip(&scratch.weights) {
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
