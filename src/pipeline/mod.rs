//! The whole job: read → build the search → project every particle in
//! parallel → write. The one place that strings the stages together; a
//! job split into tiles ([`tiles`]), the merge of their outputs
//! ([`merge`]) and the reports that run no projection ([`inspect`]) are
//! its wings.

pub mod inspect;
pub mod merge;
pub mod normals;
pub mod provenance;
pub mod seed;
pub mod spool;
pub mod tiles;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use nalgebra::Point3;
use rayon::prelude::*;

use crate::cloud::{PointCloud, Precision, is_finite_point};
use crate::config::{Config, Encoding, Orientation, Particles, Quality};
use crate::error::{Error, Location, Result};
use crate::io::{self, CHUNK, OutputWriter, PointReader, Record, Rows};
use crate::order::morton_order;
use crate::projection::{Method, Projected, Projector, Scratch};
use crate::status::Status;
use crate::surface::{MlsSurface, NormalOptions};

pub use inspect::{CheckReport, check};
pub use merge::{MergeSummary, merge, merge_in_groups};
pub use provenance::{JobIdentity, Provenance, TileCommand};
pub use tiles::Tile;

/// Wall-clock time of each stage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Reading the cloud and the particles.
    pub load: Duration,
    /// Building the neighbour search.
    pub tree: Duration,
    /// Fitting and projecting every particle.
    pub project: Duration,
    /// Writing the output.
    pub write: Duration,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Cloud points read.
    pub cloud_points: usize,
    /// Cloud points left out for a non-finite coordinate.
    pub skipped_cloud_points: usize,
    /// Cloud points merged into another at the same position.
    pub duplicate_cloud_points: usize,
    /// Particles projected (every one is written).
    pub particles: usize,
    /// Particles per status, indexed by status code.
    pub status_counts: [usize; Status::ALL.len()],
    /// How normals were oriented.
    pub orientation: &'static str,
    /// True when the cloud's normals entered the fits (`normal_weight`).
    pub normals_in_fit: bool,
    /// Stage times.
    pub timings: Timings,
    /// The file written.
    pub output: PathBuf,
    /// A `Seed` job's plan: the spacing (chosen, for `Seed(count)`), the
    /// estimated area and the predicted count.
    pub seeding: Option<seed::SeedPlan>,
}

impl Summary {
    /// Particles whose written position is a projection.
    pub fn projected(&self) -> usize {
        Status::ALL
            .iter()
            .filter(|s| s.is_projected())
            .map(|s| self.status_counts[s.code() as usize])
            .sum()
    }

    /// True when fewer than `min_projected` (a fraction) of the particles
    /// that could be projected (all but `invalid_input` ones) were, or none
    /// of a job that has particles was (a tile may have none): the output
    /// is written, but the run failed.
    pub fn too_few_projected(&self, min_projected: f64) -> bool {
        let eligible = self.particles - self.status_counts[Status::InvalidInput.code() as usize];
        let projected = self.projected();
        self.particles > 0
            && (projected == 0 || (projected as f64) < min_projected * eligible as f64)
    }

    /// A whole `Seed` job that made no seed, though some were predicted (a
    /// `tile` may hold no slab of the surface: its empty output is no
    /// failure).
    pub fn made_no_seeds(&self, tile: Option<Tile>) -> bool {
        tile.is_none() && self.seeding.is_some() && self.particles == 0
    }

    /// The status most particles that were not projected ended with, and
    /// how many did; `None` when every particle was projected.
    pub fn commonest_failure(&self) -> Option<(Status, usize)> {
        Status::ALL
            .iter()
            .filter(|s| !s.is_projected())
            .map(|&s| (s, self.status_counts[s.code() as usize]))
            .filter(|&(_, count)| count > 0)
            .max_by_key(|&(s, count)| (count, std::cmp::Reverse(s)))
    }
}

/// Projects every particle, in parallel, and returns the results in input
/// order. Particles are visited in Morton order for cache locality; each
/// piece of work rayon splits off (at least [`PROGRESS_STEP`] particles)
/// makes one [`Scratch`], reused for all its particles.
pub fn project_all(projector: &Projector, particles: &[Point3<f64>]) -> Vec<Projected> {
    visit(projector, particles, &|_| {}).in_input_order(0..particles.len())
}

/// Particles between two progress reports, and the unit of work the
/// threads share: small enough that a job of ten thousand particles splits
/// evenly over the threads, large enough that the split costs nothing.
const PROGRESS_STEP: usize = 512;

/// Projected particles in the order they were visited, and where each
/// input particle's result lies among them: one copy of the results, where
/// a second in input order would double a pass's largest allocation.
struct Visited {
    results: Vec<Projected>,
    /// `results` index of input particle `i`.
    place: Vec<u32>,
    /// The results' count per status ([`Status::code`]).
    status_counts: StatusCounts,
}

impl Visited {
    /// The results of the input particles in `range`, in input order: a
    /// writer's piece on one thread (the writer builds its pieces on every
    /// core), a LAS writer's chunk of 2²⁰ on every thread.
    fn in_input_order(&self, range: std::ops::Range<usize>) -> Vec<Projected> {
        self.place[range]
            .par_iter()
            .with_min_len(IN_ORDER_ROWS)
            .map(|&at| self.results[at as usize])
            .collect()
    }
}

/// Results gathered into input order on one thread at least: more than a
/// writer's piece of output rows.
const IN_ORDER_ROWS: usize = 1 << 14;

/// A count per status, indexed by [`Status::code`].
type StatusCounts = [usize; Status::ALL.len()];

/// The count per status of `results`.
fn count_statuses(results: &[Projected]) -> StatusCounts {
    let mut counts = [0; Status::ALL.len()];
    for p in results {
        counts[p.status.code() as usize] += 1;
    }
    counts
}

/// `a` plus `b`, status by status.
fn add_counts(a: StatusCounts, b: StatusCounts) -> StatusCounts {
    std::array::from_fn(|i| a[i] + b[i])
}

/// [`project_all`] without the reordering, calling `done(n)` as each batch
/// of `n` particles is projected (for progress bars).
fn visit(
    projector: &Projector,
    particles: &[Point3<f64>],
    done: &(dyn Fn(usize) + Sync),
) -> Visited {
    let order = morton_order(particles);
    // Each batch writes its results into its own slots of one allocation:
    // collected batch by batch and joined, the results were written twice
    // and grown by reallocation (sphere_large: 3% more CPU, 50 MB more at
    // the peak).
    let mut results: Vec<Projected> = Vec::with_capacity(order.len());
    // Each batch counts its statuses while its results are in cache.
    let status_counts = results.spare_capacity_mut()[..order.len()]
        .par_chunks_mut(PROGRESS_STEP)
        .zip(order.par_chunks(PROGRESS_STEP))
        .map_init(
            || (Scratch::default(), Vec::with_capacity(PROGRESS_STEP)),
            |(scratch, batch_positions), (slots, batch)| {
                // The batch's positions gathered first: read in input order
                // by each projection, every particle's first load missed
                // the cache (half of `project`'s own time on sphere_large,
                // whose particles come in random order); a gather overlaps
                // the misses.
                batch_positions.clear();
                batch_positions.extend(batch.iter().map(|&i| particles[i as usize]));
                let mut counts = [0; Status::ALL.len()];
                for (slot, particle) in slots.iter_mut().zip(batch_positions.iter()) {
                    let projected = slot.write(projector.project(particle, scratch));
                    counts[projected.status.code() as usize] += 1;
                }
                done(batch.len());
                counts
            },
        )
        .reduce(|| [0; Status::ALL.len()], add_counts);
    // SAFETY: the chunks of the first `order.len()` slots and of `order`
    // pair up one to one with equal lengths, and each batch wrote every
    // slot of its chunk, so all of them hold a result.
    unsafe { results.set_len(order.len()) };
    let mut place = vec![0u32; particles.len()];
    for (at, &i) in order.iter().enumerate() {
        place[i as usize] = at as u32;
    }
    Visited {
        results,
        place,
        status_counts,
    }
}

/// What the command line adds to a config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Show progress bars on stderr.
    pub progress: bool,
    /// Run only this spatial tile of the job.
    pub tile: Option<Tile>,
}

/// Opens the particles of `config` that are read: a particle file, or the
/// cloud itself (already in memory) for smoothing. Seeds are made, not
/// read ([`seed_spool`]).
fn read_particles(config: &Config, cloud: PointCloud) -> Result<PointReader> {
    match &config.particles {
        Particles::File(path) => PointReader::open(path),
        Particles::Cloud => Ok(PointReader::from_cloud(cloud)),
        Particles::Seed { .. } => Err(Error::Invalid(
            "particles: Seed particles are made on the surface, not read from a file".into(),
        )),
    }
}

/// Where the particles of a stream come from.
enum Source {
    /// Read a pass at a time ([`pass_size`]), each pass projected and
    /// written before the next is read.
    Read(PointReader),
    /// Seeds, projected as they were made and parked on disk until their
    /// count is known ([`seed::seed_surface`]).
    Projected(spool::SpoolReader),
}

impl Source {
    fn len(&self) -> usize {
        match self {
            Source::Read(reader) => reader.len(),
            Source::Projected(spool) => spool.len(),
        }
    }
}

/// The seeds of a `Seed(spacing, count)` job made on `surface` (those of
/// one `tile`'s slabs, or all), projected as `job` projects every
/// particle, in a spool beside the output.
fn seed_spool(
    config: &Config,
    job: &Job,
    surface: &MlsSurface,
    (spacing, count): (Option<f64>, Option<u64>),
    tile: Option<Tile>,
    progress: bool,
) -> Result<(Source, seed::SeedPlan)> {
    let plan = plan_seeds(config, surface, spacing, count)?;
    let bar = progress_bar(
        progress,
        "seeding",
        Some(usize::try_from(plan.predicted).unwrap_or(usize::MAX)),
    );
    let projector = surface.projector(job.method, job.orientation, job.colours);
    let mut spool = spool::Spool::beside(&config.output)?;
    seed::seed_surface(
        surface.search(),
        &projector,
        plan.spacing,
        config.seed,
        tile,
        &config.output,
        |_, projected| {
            bar.inc(projected.len() as u64);
            spool.push(projected)
        },
    )?;
    bar.finish_and_clear();
    Ok((Source::Projected(spool.into_reader()?), plan))
}

/// The plan of a `Seed` job, `None` for other particles.
fn seed_plan(config: &Config, surface: &MlsSurface) -> Result<Option<seed::SeedPlan>> {
    match config.particles {
        Particles::Seed { spacing, count } => plan_seeds(config, surface, spacing, count).map(Some),
        Particles::File(_) | Particles::Cloud => Ok(None),
    }
}

/// The plan of `Seed(spacing, count)` on `surface`: refused when its
/// predicted count is over `max_particles` or none, or its spacing too
/// fine for the cloud, before any seed is made.
fn plan_seeds(
    config: &Config,
    surface: &MlsSurface,
    spacing: Option<f64>,
    count: Option<u64>,
) -> Result<seed::SeedPlan> {
    let request = match (spacing, count) {
        (Some(d), _) => seed::SeedRequest::Spacing(d),
        (None, Some(n)) => seed::SeedRequest::Count(n),
        (None, None) => {
            return Err(Error::Invalid(
                "particles: Seed needs spacing or count: Seed(spacing: d) or Seed(count: n)".into(),
            ));
        }
    };
    let plan = seed::SeedPlan::new(surface.search(), request);
    if plan.predicted > config.max_particles {
        return Err(Error::Invalid(format!(
            "particles: {request} would make about {} particles (spacing {:.4e}), more than max_particles ({}): raise max_particles or {}",
            plan.predicted,
            plan.spacing,
            config.max_particles,
            request.for_fewer()
        )));
    }
    if plan.predicted == 0 {
        return Err(Error::Invalid(format!(
            "particles: {request} would make no seeds: the surface's estimated area is {:.4e}, about one seed at spacing {:.4e}",
            plan.area,
            (seed::PACKING * plan.area).sqrt()
        )));
    }
    if let Some(refusal) = plan.refusal(request, surface.search().len()) {
        return Err(Error::Invalid(refusal));
    }
    Ok(plan)
}

/// The file the particles come from.
fn particle_path(config: &Config) -> &Path {
    match &config.particles {
        Particles::File(path) => path,
        Particles::Cloud | Particles::Seed { .. } => &config.cloud,
    }
}

/// Reads the cloud, refusing an empty one, with the positions of the
/// scanners that saw it when the file records them (E57); its attributes
/// only when `attributes` (they are written when the cloud is the
/// particles, or is written with its normals).
fn read_scan(config: &Config, attributes: bool) -> Result<(PointCloud, Vec<Point3<f64>>)> {
    let mut reader = PointReader::open(&config.cloud)?;
    if !attributes {
        reader.skip_attributes();
    }
    let scanners = reader.scanner_positions().to_vec();
    let cloud = reader.read_chunk(reader.len())?;
    refuse_empty(&config.cloud, cloud.len())?;
    Ok((cloud, scanners))
}

/// The MLS surface of `cloud`, read from the config's cloud, with the
/// normals the config asks for (estimated ones facing `scanners`, the
/// file's scanner positions, under `Auto`); a cloud without one finite
/// point is refused naming the file.
fn surface_of(config: &Config, cloud: &PointCloud, scanners: &[Point3<f64>]) -> Result<MlsSurface> {
    let path = &config.cloud;
    if !cloud.positions.iter().any(is_finite_point) {
        return Err(Error::format(
            path,
            Location::File,
            "the cloud has no point with finite coordinates",
        ));
    }
    let options = NormalOptions {
        scanners: scanners.to_vec(),
        ..NormalOptions::from(config)
    };
    MlsSurface::with_options(cloud, &options)
}

fn refuse_empty(path: &Path, points: usize) -> Result<()> {
    if points == 0 {
        return Err(Error::format(
            path,
            Location::File,
            "the cloud has no points",
        ));
    }
    Ok(())
}

/// Runs a whole job as `config` describes it, quietly.
pub fn run(config: &Config) -> Result<Summary> {
    run_with(config, &RunOptions::default())
}

/// Runs a job, or one tile of it, with progress bars if asked.
pub fn run_with(config: &Config, options: &RunOptions) -> Result<Summary> {
    // A caller of the library may build a tile past the cap by hand.
    let tile = options
        .tile
        .map(|tile| Tile::new(tile.index, tile.count))
        .transpose()
        .map_err(Error::Invalid)?;
    let pool = thread_pool(config.threads)?;
    pool.install(|| match (tile, &config.particles) {
        (Some(tile), Particles::File(_) | Particles::Cloud) => {
            tiles::run_tile(config, tile, options.progress)
        }
        (tile, _) => run_whole(config, tile, options.progress),
    })
}

fn thread_pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start {threads} worker threads: {e}")))
}

/// A spinner (no total) or bar on stderr, or a hidden one.
fn progress_bar(show: bool, message: &'static str, total: Option<usize>) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(total) => ProgressBar::new(total as u64).with_style(
            ProgressStyle::with_template(
                "{msg:>12} [{bar:30}] {human_pos}/{human_len} {per_sec:0} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner(),
    };
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Times `work` into `slot`.
fn timed<T>(slot: &mut Duration, work: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let value = work();
    *slot += started.elapsed();
    value
}

/// The settings of a job that shape what its stream writes, taken from
/// the config once: the deep functions take these values, not the config.
#[derive(Debug, Clone, Copy)]
struct Job {
    method: Method,
    orientation: Orientation,
    colours: bool,
    attributes: bool,
    encoding: Encoding,
    quality: Quality,
}

impl From<&Config> for Job {
    fn from(config: &Config) -> Self {
        Job {
            method: Method::from(config),
            orientation: config.orientation,
            colours: config.colours,
            attributes: config.attributes,
            encoding: config.encoding,
            quality: config.quality,
        }
    }
}

/// Runs the whole job, or, for a `Seed` job, the seeds of one `tile`'s
/// slabs: a seeded tile reads the whole cloud and builds the whole
/// surface, so that its seeds and their projections are a whole run's
/// (the tiles of other jobs read a slab of the cloud, [`tiles`]).
fn run_whole(config: &Config, tile: Option<Tile>, progress: bool) -> Result<Summary> {
    let mut timings = Timings::default();
    let reading = progress_bar(progress, "reading cloud", None);
    let attributes = matches!(config.particles, Particles::Cloud);
    let (cloud, scanners) = timed(&mut timings.load, || read_scan(config, attributes))?;
    reading.finish_and_clear();
    let building = progress_bar(progress, "building tree", None);
    let surface = timed(&mut timings.tree, || surface_of(config, &cloud, &scanners))?;
    building.finish_and_clear();
    surface.refuse_whole_cloud_support(&config.cloud, config.support, None)?;
    let cloud_read = CloudRead {
        points: cloud.len(),
        precision: cloud.precision,
    };
    let job = Job::from(config);
    // Seeding counts as projection: it makes and projects the particles
    // the stream writes.
    let (particles, seeding) = match config.particles {
        Particles::Seed { spacing, count } => {
            drop(cloud);
            let (spool, plan) = timed(&mut timings.project, || {
                seed_spool(config, &job, &surface, (spacing, count), tile, progress)
            })?;
            (spool, Some(plan))
        }
        Particles::File(_) | Particles::Cloud => (
            Source::Read(timed(&mut timings.load, || read_particles(config, cloud))?),
            None,
        ),
    };
    // A seeded tile records its job and its own count: the job's is known
    // only once every tile has made its seeds.
    let provenance = tile
        .map(|tile| {
            JobIdentity::with_count(config, TileCommand::Run, particles.len())
                .map(|job| Provenance { tile, job })
        })
        .transpose()?;
    let summary = job.project_stream(
        &surface,
        Stream {
            cloud: cloud_read,
            particles,
            indices: None,
            output: tile.map_or_else(
                || config.output.clone(),
                |tile| tile.output_path(&config.output),
            ),
            provenance,
        },
        progress,
        timings,
    )?;
    Ok(Summary { seeding, ..summary })
}

/// What the summary says of the cloud: points read, and the precision
/// the output keeps if the particles' is lower.
struct CloudRead {
    points: usize,
    precision: Precision,
}

/// The particles of a stream and where they go.
struct Stream<'a> {
    /// What was read of the cloud.
    cloud: CloudRead,
    particles: Source,
    /// The particles' input positions (`None`: 0, 1, 2, …).
    indices: Option<&'a [u32]>,
    output: PathBuf,
    /// The job a tile belongs to, recorded in its output for `merge`.
    provenance: Option<Provenance>,
}

/// The most particles projected together, in one Morton order. Visited in
/// that order, particles as dense as the cloud's points share their
/// neighbourhoods' cells with the particles before them; in a pass of a
/// million particles over a cloud of twenty million they fall twenty
/// points apart, and each gather fetches its cells afresh (the 20M + 20M
/// job's projection took about 17% more CPU so: docs/performance.md). A
/// pass holds its particles as read (positions, 24 bytes, and whatever
/// else the file carries) and its results (about 96 bytes a particle),
/// written a window of small pieces at a time: about 2 GB at most for
/// bare positions.
const MAX_PASS: usize = 1 << 24;

/// Particles per pass for `total` particles over a cloud of `cloud_points`:
/// as many as the cloud has points (at least a read chunk, at most
/// [`MAX_PASS`]), spread evenly over the passes that takes.
fn pass_size(total: usize, cloud_points: usize) -> usize {
    let most = cloud_points.clamp(CHUNK, MAX_PASS);
    let passes = total.div_ceil(most).max(1);
    total.div_ceil(passes).max(1)
}

/// The output as it is written: the writer, made with the first chunk's
/// schema, and what has been written so far.
struct Sink<'a> {
    job: &'a Job,
    surface: &'a MlsSurface,
    output: &'a Path,
    total: usize,
    precision: Precision,
    comments: &'a [String],
    /// The particles' input positions (`None`: 0, 1, 2, …).
    indices: Option<&'a [u32]>,
    writer: Option<OutputWriter>,
    status_counts: StatusCounts,
    done: usize,
}

impl Sink<'_> {
    /// Writes the next particles, rows `rows` of `particles` (whose
    /// colours and attributes they carry), whose results `results` gives
    /// in input order for any range of `0..rows.len()`, and adds their
    /// `status_counts` to the job's. The writer builds
    /// their output record a piece at a time on every core, each piece from
    /// its results gathered just before, while they are in cache: no copy
    /// of a whole pass's results is made (88 MB for a million particles).
    fn write(
        &mut self,
        particles: &PointCloud,
        rows: Range<usize>,
        results: &(dyn Fn(Range<usize>) -> Vec<Projected> + Sync),
        status_counts: StatusCounts,
    ) -> Result<()> {
        let first = self.done;
        self.done += rows.len();
        let job = self.job;
        let record = Record {
            positions: self.precision,
            values: self.surface.values_precision(),
            average_colours: job.colours
                && self.surface.has_colours()
                && particles.colours.is_none(),
            attributes: job.attributes,
            quality: job.quality,
        };
        let indices = self.indices;
        let build = |piece: Range<usize>| {
            let projected = results(piece.clone());
            let at = first + piece.start..first + piece.end;
            let index: Vec<u32> = match indices {
                Some(indices) => indices[at].to_vec(),
                None => (at.start as u32..at.end as u32).collect(),
            };
            let read = rows.start + piece.start..rows.start + piece.end;
            io::output_columns(&record, particles, read, &projected, index)
        };
        let writer = match &mut self.writer {
            Some(writer) => writer,
            None => self.writer.insert(OutputWriter::create(
                self.output,
                &io::schema_of(&build(0..0)),
                self.total,
                job.encoding.into(),
                self.comments,
            )?),
        };
        writer.write_rows(Rows::Built {
            count: rows.len(),
            build: &build,
        })?;
        self.status_counts = add_counts(self.status_counts, status_counts);
        Ok(())
    }
}

impl Job {
    /// Projects the particles of `stream` pass by pass onto `surface` and
    /// writes each pass as it is done, chunk by chunk: memory holds one
    /// pass of a PLY or LAS particle file ([`pass_size`]); particles held
    /// whole (a text file, the cloud itself, a tile's) are visited in
    /// passes of the same size, in place.
    fn project_stream(
        &self,
        surface: &MlsSurface,
        stream: Stream,
        progress: bool,
        mut timings: Timings,
    ) -> Result<Summary> {
        let Stream {
            cloud,
            mut particles,
            indices,
            output,
            provenance,
        } = stream;
        let total = particles.len();
        let particle_precision = match &particles {
            Source::Read(reader) => reader.precision(),
            Source::Projected(_) => Precision::Single,
        };
        let precision =
            if cloud.precision == Precision::Double || particle_precision == Precision::Double {
                Precision::Double
            } else {
                Precision::Single
            };
        let projector = surface.projector(self.method, self.orientation, self.colours);
        let mut comments = vec![format!("mlsproj {}", env!("CARGO_PKG_VERSION"))];
        comments.extend(provenance.map(|provenance| provenance.to_comment()));
        let bar = progress_bar(progress, "projecting", Some(total));
        let mut sink = Sink {
            job: self,
            surface,
            output: &output,
            total,
            precision,
            comments: &comments,
            indices,
            writer: None,
            status_counts: [0; Status::ALL.len()],
            done: 0,
        };
        let pass_size = pass_size(total, cloud.points);
        loop {
            // Whether the source is spent: its last, empty, chunk still
            // names the properties, so that an empty output has them.
            let spent = match &mut particles {
                Source::Read(reader) => {
                    // Particles already in memory are taken whole (handed
                    // over, not copied) and visited a pass at a time; a
                    // file is read a pass at a time.
                    let take = if reader.is_held() { total } else { pass_size };
                    let rows = timed(&mut timings.load, || reader.read_chunk(take))?;
                    for pass in io::ranges(rows.len(), pass_size) {
                        let visited = timed(&mut timings.project, || {
                            visit(&projector, &rows.positions[pass.clone()], &|n| {
                                bar.inc(n as u64)
                            })
                        });
                        timed(&mut timings.write, || {
                            sink.write(
                                &rows,
                                pass,
                                &|piece| visited.in_input_order(piece),
                                visited.status_counts,
                            )
                        })?;
                    }
                    rows.is_empty()
                }
                Source::Projected(spool) => {
                    let projected = timed(&mut timings.load, || spool.read_chunk(CHUNK))?;
                    bar.inc(projected.len() as u64);
                    // Seeds carry no colours nor attributes of their own.
                    timed(&mut timings.write, || {
                        sink.write(
                            &PointCloud::default(),
                            0..projected.len(),
                            &|piece| projected[piece].to_vec(),
                            count_statuses(&projected),
                        )
                    })?;
                    projected.is_empty()
                }
            };
            if spent || sink.done >= total {
                break;
            }
        }
        bar.finish_and_clear();
        let Sink {
            writer,
            status_counts,
            done,
            ..
        } = sink;
        if let Some(writer) = writer {
            timed(&mut timings.write, || writer.finish())?;
        }
        Ok(Summary {
            cloud_points: cloud.points,
            skipped_cloud_points: surface.skipped(),
            duplicate_cloud_points: surface.duplicates(),
            particles: done,
            status_counts,
            orientation: surface.orientation_rule(self.orientation),
            normals_in_fit: surface.normals_in_fit(self.method.normal_weight),
            timings,
            output,
            seeding: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_hold_about_the_clouds_point_count_split_evenly() {
        const M: usize = 1 << 20;
        // As many particles as the cloud has points, evenly split.
        assert_eq!(pass_size(20_000_000, 20_000_000), 10_000_000);
        assert_eq!(pass_size(3 * M, 2 * M), 3 * M / 2);
        // A whole job that fits in one pass is one.
        assert_eq!(pass_size(M, 2 * M), M);
        assert_eq!(pass_size(10_000, 200_000), 10_000);
        // A small cloud still gets passes of a read chunk, a large one at
        // most MAX_PASS.
        assert_eq!(pass_size(100 * M, 1000), M);
        assert_eq!(pass_size(100 * MAX_PASS, usize::MAX), MAX_PASS);
        assert_eq!(pass_size(0, 0), 1);
    }

    #[test]
    fn ranges_cover_every_row_once_and_an_empty_source_once() {
        let all = |len, step| io::ranges(len, step).collect::<Vec<_>>();
        assert_eq!(all(0, 4), vec![0..0]);
        assert_eq!(all(4, 4), vec![0..4]);
        assert_eq!(all(9, 4), vec![0..4, 4..8, 8..9]);
        assert_eq!(all(3, 0), vec![0..1, 1..2, 2..3]);
    }

    #[test]
    fn visited_results_come_back_in_input_order_range_by_range() {
        let cloud = crate::cloud::PointCloud::from_positions(
            (0..400)
                .map(|i| {
                    let (u, v) = (f64::from(i % 20) / 19.0, f64::from(i / 20) / 19.0);
                    Point3::new(u, v, 0.1 * (u * u - v * v))
                })
                .collect(),
        );
        let surface = MlsSurface::new(&cloud).unwrap();
        let config = Config::parse(
            r#"(cloud: "c.ply", particles: File("p.ply"), output: "o.ply", support: Nearest(20))"#,
        )
        .unwrap();
        let projector = surface.projector(Method::from(&config), Orientation::Auto, false);
        // Particles in an order far from Morton's: the visit reorders them.
        let particles: Vec<Point3<f64>> = (0..300)
            .map(|i| {
                let t = f64::from(i * 7919 % 300) / 300.0;
                Point3::new(t, (t * 13.0).fract(), 0.05)
            })
            .collect();
        let visited = visit(&projector, &particles, &|_| {});
        assert_ne!(
            visited.place,
            (0..300).collect::<Vec<u32>>(),
            "not reordered"
        );
        let pieces: Vec<Projected> = [0..1, 1..128, 128..300]
            .into_iter()
            .flat_map(|range| visited.in_input_order(range))
            .collect();
        let alone: Vec<Projected> = particles
            .iter()
            .map(|p| projector.project(p, &mut Scratch::default()))
            .collect();
        assert_eq!(pieces, alone);
    }
}
