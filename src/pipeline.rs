//! The whole job: read → build the search → project every particle in
//! parallel → write. The one place that strings the stages together.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nalgebra::{Point3, Vector3};
use rayon::prelude::*;

use indicatif::{ProgressBar, ProgressStyle};

use crate::cloud::{Attribute, CentroidSum, Column, PointCloud, Precision, is_finite_point};
use crate::config::{Config, Particles, Start, Support};
use crate::error::{Error, Location, Result};
use crate::io::{self, OutputWriter, PointReader};
use crate::neighbours::Neighbourhood;
use crate::order::morton_order;
use crate::projection::{Method, Projected, Projector, Scratch};
use crate::status::Status;
use crate::surface::MlsSurface;
use crate::tiles::{SlabSample, Slabs, Tile};

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
}

/// Projects every particle, in parallel, and returns the results in input
/// order. Particles are visited in Morton order for cache locality; each
/// piece of work rayon splits off (at least [`PROGRESS_STEP`] particles)
/// makes one [`Scratch`], reused for all its particles.
pub fn project_all(projector: &Projector, particles: &[Point3<f64>]) -> Vec<Projected> {
    project_all_reporting(projector, particles, &|_| {})
}

/// Particles between two progress reports, and the unit of work the
/// threads share: small enough that a job of ten thousand particles splits
/// evenly (sphere_seed: 94 → 89 ms of projection against 4096).
const PROGRESS_STEP: usize = 512;

/// [`project_all`], calling `done(n)` as each batch of `n` particles is
/// projected (for progress bars).
pub fn project_all_reporting(
    projector: &Projector,
    particles: &[Point3<f64>],
    done: &(dyn Fn(usize) + Sync),
) -> Vec<Projected> {
    let order = morton_order(particles);
    let visited: Vec<Projected> = order
        .par_chunks(PROGRESS_STEP)
        .map_init(Scratch::default, |scratch, batch| {
            let projected: Vec<Projected> = batch
                .iter()
                .map(|&i| projector.project(&particles[i as usize], scratch))
                .collect();
            done(batch.len());
            projected
        })
        .flat_map_iter(|batch| batch)
        .collect();
    let mut rank = vec![0u32; particles.len()];
    for (position, &i) in order.iter().enumerate() {
        rank[i as usize] = position as u32;
    }
    rank.par_iter().map(|&r| visited[r as usize]).collect()
}

/// Particles per chunk when streaming: bounds the memory of the particle
/// side (positions, results and output columns of one chunk) whatever the
/// file size, and is large enough to keep every core busy.
pub const CHUNK: usize = 1 << 20;

/// What the command line adds to a config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Show progress bars on stderr.
    pub progress: bool,
    /// Run only this spatial tile of the job.
    pub tile: Option<Tile>,
}

/// Opens the particles of `config`: a particle file, or the cloud itself
/// (already in memory) for smoothing.
fn open_particles(config: &Config, cloud: PointCloud) -> Result<PointReader> {
    match &config.particles {
        Particles::File(path) => PointReader::open(path),
        Particles::Cloud => Ok(PointReader::from_cloud(cloud)),
    }
}

/// The file the particles come from.
fn particle_path(config: &Config) -> &Path {
    match &config.particles {
        Particles::File(path) => path,
        Particles::Cloud => &config.cloud,
    }
}

/// Reads the cloud, refusing an empty one.
pub fn read_cloud(config: &Config) -> Result<PointCloud> {
    let cloud = io::read_points(&config.cloud)?;
    refuse_empty(&config.cloud, cloud.len())?;
    Ok(cloud)
}

/// The MLS surface of `cloud` read from `path`; a cloud without one finite
/// point is refused naming the file.
fn surface_of(path: &Path, cloud: &PointCloud) -> Result<MlsSurface> {
    if !cloud.positions.iter().any(is_finite_point) {
        return Err(Error::format(
            path,
            Location::File,
            "the cloud has no point with finite coordinates",
        ));
    }
    MlsSurface::new(cloud)
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
    let pool = thread_pool(config.threads)?;
    pool.install(|| match options.tile {
        None => run_whole(config, options.progress),
        Some(tile) => run_tile(config, tile, options.progress),
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

fn run_whole(config: &Config, progress: bool) -> Result<Summary> {
    let mut timings = Timings::default();
    let reading = progress_bar(progress, "reading cloud", None);
    let cloud = timed(&mut timings.load, || read_cloud(config))?;
    reading.finish_and_clear();
    let building = progress_bar(progress, "building tree", None);
    let surface = timed(&mut timings.tree, || surface_of(&config.cloud, &cloud))?;
    building.finish_and_clear();
    let read = CloudRead {
        points: cloud.len(),
        precision: cloud.precision,
    };
    let particles = timed(&mut timings.load, || open_particles(config, cloud))?;
    project_stream(
        config,
        &surface,
        read,
        particles,
        None,
        config.output.clone(),
        progress,
        timings,
    )
}

/// What the summary says of the cloud: points read, and the precision
/// the output keeps if the particles' is lower.
struct CloudRead {
    points: usize,
    precision: Precision,
}

/// Projects `particles` chunk by chunk onto `surface` and writes them to
/// `output` as they come: read, project, write, so memory holds one chunk
/// of a PLY particle file (a text file, or a tile's particles, are whole).
/// `indices` gives the particles' input positions (`None`: 0, 1, 2, …).
#[allow(clippy::too_many_arguments)]
fn project_stream(
    config: &Config,
    surface: &MlsSurface,
    cloud: CloudRead,
    mut particles: PointReader,
    indices: Option<&[u32]>,
    output: PathBuf,
    progress: bool,
    mut timings: Timings,
) -> Result<Summary> {
    let total = particles.len();
    let precision =
        if cloud.precision == Precision::Double || particles.precision() == Precision::Double {
            Precision::Double
        } else {
            Precision::Single
        };
    let projector = surface.projector(Method::from(config), config.orientation, config.colours);
    let comments = vec![format!("mlsproj {}", env!("CARGO_PKG_VERSION"))];
    let bar = progress_bar(progress, "projecting", Some(total));
    let mut writer: Option<OutputWriter> = None;
    let mut status_counts = [0usize; Status::ALL.len()];
    let mut done = 0usize;
    loop {
        let chunk = timed(&mut timings.load, || particles.read_chunk(CHUNK))?;
        let projected = timed(&mut timings.project, || {
            project_all_reporting(&projector, &chunk.positions, &|n| bar.inc(n as u64))
        });
        for p in &projected {
            status_counts[p.status.code() as usize] += 1;
        }
        let first = done;
        done += chunk.len();
        let index: Vec<u32> = match indices {
            Some(indices) => indices[first..done].to_vec(),
            None => (first as u32..done as u32).collect(),
        };
        timed(&mut timings.write, || {
            let average_colours =
                config.colours && surface.has_colours() && chunk.colours.is_none();
            let columns = output_columns(
                &chunk,
                &projected,
                precision,
                average_colours,
                config.attributes,
                index,
            );
            let writer = match &mut writer {
                Some(writer) => writer,
                None => writer.insert(OutputWriter::create(
                    &output,
                    &io::schema_of(&columns),
                    total,
                    config.encoding.into(),
                    &comments,
                )?),
            };
            writer.write_chunk(&columns)
        })?;
        if chunk.is_empty() || done >= total {
            break;
        }
    }
    bar.finish_and_clear();
    if let Some(writer) = writer {
        timed(&mut timings.write, || writer.finish())?;
    }
    Ok(Summary {
        cloud_points: cloud.points,
        skipped_cloud_points: surface.skipped(),
        duplicate_cloud_points: surface.duplicates(),
        particles: done,
        status_counts,
        orientation: surface.orientation_rule(config.orientation),
        normals_in_fit: surface.normals_in_fit(config.normal_weight),
        timings,
        output,
    })
}

/// The slabs of a job split into `count` tiles, from one pass over its
/// particle file in chunks.
fn particle_slabs(path: &Path, count: usize) -> Result<Slabs> {
    let reader = PointReader::open(path)?;
    let mut sample = SlabSample::new(reader.len(), count);
    for_each_chunk(reader, |_, chunk| sample.add(&chunk.positions))?;
    Ok(sample.slabs())
}

/// Hands each chunk of `reader` to `each`, in order, with the position in
/// the file of its first point, ending with an empty chunk (its properties
/// still named); returns the file's point count. Memory holds one chunk
/// of a PLY file (a text file is parsed whole).
fn for_each_chunk(
    mut reader: PointReader,
    mut each: impl FnMut(usize, &PointCloud),
) -> Result<usize> {
    let total = reader.len();
    let mut first = 0;
    loop {
        let chunk = reader.read_chunk(CHUNK)?;
        each(first, &chunk);
        if chunk.is_empty() {
            return Ok(total);
        }
        first += chunk.len();
    }
}

/// Reads a point file in chunks, keeping the points `keep` picks (one flag
/// per point of each chunk it is shown, with the position in the file of
/// the chunk's first point); returns them and the file's point count.
fn select_points(
    reader: PointReader,
    mut keep: impl FnMut(usize, &PointCloud) -> Vec<bool>,
) -> Result<(PointCloud, usize)> {
    let mut kept = Kept::default();
    let total = for_each_chunk(reader, |first, chunk| {
        kept.add(chunk.filter(&keep(first, chunk)))
    })?;
    Ok((kept.0.unwrap_or_default(), total))
}

/// Points kept from the chunks of one file.
#[derive(Default)]
struct Kept(Option<PointCloud>);

impl Kept {
    fn add(&mut self, part: PointCloud) {
        match &mut self.0 {
            // One file, so one set of properties.
            Some(kept) => kept.append(&part),
            None => self.0 = Some(part),
        }
    }
}

/// Picks the particles of one tile from the chunks of their file, in
/// order, recording their positions in it.
struct TileParticles<'a> {
    slabs: &'a Slabs,
    tile: Tile,
    indices: Vec<u32>,
}

impl<'a> TileParticles<'a> {
    fn new(slabs: &'a Slabs, tile: Tile) -> Self {
        TileParticles {
            slabs,
            tile,
            indices: Vec::new(),
        }
    }

    /// Which points of a chunk, whose first point is at `first` in the
    /// file, are the tile's particles.
    fn pick(&mut self, first: usize, chunk: &PointCloud) -> Vec<bool> {
        let keep: Vec<bool> = chunk
            .positions
            .iter()
            .map(|p| self.slabs.of(p) == self.tile.index)
            .collect();
        self.indices.extend(
            keep.iter()
                .enumerate()
                .filter(|(_, k)| **k)
                .map(|(i, _)| (first + i) as u32),
        );
        keep
    }
}

/// The particles of one tile, with their input positions.
fn tile_particles(path: &Path, slabs: &Slabs, tile: Tile) -> Result<(PointCloud, Vec<u32>)> {
    let mut picker = TileParticles::new(slabs, tile);
    let (particles, _) = select_points(PointReader::open(path)?, |first, chunk| {
        picker.pick(first, chunk)
    })?;
    Ok((particles, picker.indices))
}

/// One pass over the cloud for a tile: the points whose coordinate on
/// `axis` lies in `[from, to]` (and every non-finite point, which the
/// surface counts, and the file's first finite point, so that a tile far
/// from the cloud, or with no particle, still has a surface),
/// the count of points in the file, the centroid of all its finite points,
/// and, when `particles` is given (the cloud's own points are the
/// particles), the tile's particles with their positions in the file.
fn cloud_slab(
    path: &Path,
    axis: usize,
    (from, to): (f64, f64),
    mut particles: Option<TileParticles>,
) -> Result<CloudSlab> {
    let mut centroid = CentroidSum::default();
    let mut picked = Kept::default();
    let mut seen_finite = false;
    let (part, total) = select_points(PointReader::open(path)?, |first, chunk| {
        if let Some(picker) = &mut particles {
            picked.add(chunk.filter(&picker.pick(first, chunk)));
        }
        chunk
            .positions
            .iter()
            .map(|p| {
                let finite = centroid.add(p);
                let first_finite = finite && !seen_finite;
                seen_finite |= finite;
                // Non-finite points are kept: the surface counts them.
                !finite || first_finite || (from..=to).contains(&p[axis])
            })
            .collect()
    })?;
    Ok(CloudSlab {
        part,
        total,
        centroid: centroid.centroid(),
        particles: particles.map(|picker| (picked.0.unwrap_or_default(), picker.indices)),
    })
}

/// What [`cloud_slab`] read.
struct CloudSlab {
    part: PointCloud,
    total: usize,
    centroid: Point3<f64>,
    particles: Option<(PointCloud, Vec<u32>)>,
}

/// Support radii between a particle and its start, before any is
/// measured: none from the particle itself, up to h for its neighbours'
/// centroid or (under `Nearest(k)`, or a particle near the surface) its
/// nearest point. [`halo_needed`] measures the nearest point's distance
/// under a radius support, where it may lie up to `max_offset` radii away.
fn start_in_radii(config: &Config) -> f64 {
    match config.start {
        Start::Particle => 0.0,
        Start::NearestPoint | Start::Centroid | Start::Foot => 1.0,
    }
}

/// How far beyond its slab the cloud must reach so that every particle's
/// fit sees the points it would see in the whole cloud: its start's
/// distance plus `iterations` support radii (each step looks within h of
/// a centre that moves less than h per step), doubled for `Nearest(k)`,
/// whose h at a moved centre can grow. Measured on the part loaded so far,
/// where a particle's nearest point and k-nearest radius can only be
/// farther than in the whole cloud: once the halo covers them, they are
/// the whole cloud's.
fn halo_needed(
    surface: &MlsSurface,
    particles: &[Point3<f64>],
    config: &Config,
    axis: usize,
    from: f64,
    to: f64,
) -> f64 {
    let fixed_radius = config.support.radius();
    let growth = if fixed_radius.is_some() { 1.0 } else { 2.0 };
    let search = surface.search();
    particles
        .par_iter()
        .filter(|p| is_finite_point(p))
        .map_init(Neighbourhood::default, |hood, p| {
            let centre = p - search.origin();
            let h = fixed_radius.unwrap_or_else(|| {
                search.gather(&centre, config.support, config.nearest_scale, hood)
            });
            let start = match (config.start, fixed_radius) {
                (Start::NearestPoint | Start::Foot, Some(_)) => {
                    let (_, distance_squared) = search.nearest(&centre);
                    distance_squared.sqrt().min(config.max_offset * h)
                }
                _ => start_in_radii(config) * h,
            };
            let inside = (p[axis] - from).min(to - p[axis]).max(0.0);
            growth * (start + f64::from(config.iterations) * h) - inside
        })
        .reduce(|| 0.0, f64::max)
}

fn run_tile(config: &Config, tile: Tile, progress: bool) -> Result<Summary> {
    let mut timings = Timings::default();
    let reading = progress_bar(progress, "reading tile", None);
    let particle_file = particle_path(config);
    let slabs = timed(&mut timings.load, || {
        particle_slabs(particle_file, tile.count)
    })?;
    // Particles from their own file; the cloud's own points are picked in
    // the first pass over the cloud.
    let mut particles = match config.particles {
        Particles::File(_) => Some(timed(&mut timings.load, || {
            tile_particles(particle_file, &slabs, tile)
        })?),
        Particles::Cloud => None,
    };
    let (from, to) = slabs.bounds(tile.index);
    let axis = slabs.axis();
    let mut halo = config.support.radius().map_or(0.0, |radius| {
        radius * (f64::from(config.iterations) + start_in_radii(config))
    });
    let (surface, cloud_points, cloud_precision) = loop {
        let picker = particles
            .is_none()
            .then(|| TileParticles::new(&slabs, tile));
        let slab = timed(&mut timings.load, || {
            cloud_slab(&config.cloud, axis, (from - halo, to + halo), picker)
        })?;
        refuse_empty(&config.cloud, slab.total)?;
        let (part, total) = (slab.part, slab.total);
        let (picked, _) = particles.get_or_insert_with(|| slab.particles.unwrap_or_default());
        let finite = part.positions.iter().filter(|p| is_finite_point(p)).count();
        let whole = part.len() == total;
        // Too few cloud points near the slab to measure the halo from (a
        // `Nearest(k)` gather among fewer than k finds too near a k-th):
        // the whole cloud it is. A tile without a finite particle needs
        // no halo.
        let least = match config.support {
            Support::Nearest(k) => k,
            Support::Radius(_) | Support::RadiusNearest { .. } => 1,
        };
        if finite < least && !whole && picked.positions.iter().any(is_finite_point) {
            halo = f64::INFINITY;
            continue;
        }
        let surface = timed(&mut timings.tree, || surface_of(&config.cloud, &part))?
            .with_centroid(slab.centroid);
        let needed = halo_needed(&surface, &picked.positions, config, axis, from, to);
        if needed <= halo || whole {
            break (surface, total, part.precision);
        }
        halo = 1.25 * needed;
    };
    let (particles, indices) = particles.expect("picked in the first pass over the cloud");
    reading.finish_and_clear();
    project_stream(
        config,
        &surface,
        CloudRead {
            points: cloud_points,
            precision: cloud_precision,
        },
        PointReader::from_cloud(particles),
        Some(&indices),
        tile.output_path(&config.output),
        progress,
        timings,
    )
}

/// What `mlsproj merge` did.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeSummary {
    /// Tile outputs read.
    pub tiles: usize,
    /// Particles written.
    pub particles: usize,
    /// The merged file.
    pub output: PathBuf,
}

/// An output column.
fn named(name: &str, values: Column) -> Attribute {
    Attribute {
        name: name.to_owned(),
        values,
    }
}

/// `x y z` columns of `positions`, as double or float: how mlsproj writes
/// positions (also for callers writing point files of their own).
pub fn position_columns(
    positions: impl Iterator<Item = Point3<f64>> + Clone,
    precision: Precision,
) -> Vec<Attribute> {
    ["x", "y", "z"]
        .into_iter()
        .enumerate()
        .map(|(axis, name)| {
            let values = positions.clone().map(|p| p[axis]);
            named(
                name,
                match precision {
                    Precision::Double => Column::F64(values.collect()),
                    Precision::Single => Column::F32(values.map(|v| v as f32).collect()),
                },
            )
        })
        .collect()
}

/// `nx ny nz` as float.
fn normal_columns(normals: impl Iterator<Item = Vector3<f64>> + Clone) -> Vec<Attribute> {
    ["nx", "ny", "nz"]
        .into_iter()
        .enumerate()
        .map(|(axis, name)| {
            named(
                name,
                Column::F32(normals.clone().map(|n| n[axis] as f32).collect()),
            )
        })
        .collect()
}

/// `red green blue` uchar columns of `colours`, as mlsproj writes them.
pub fn colour_columns(colours: &[[u8; 3]]) -> Vec<Attribute> {
    ["red", "green", "blue"]
        .into_iter()
        .enumerate()
        .map(|(channel, name)| {
            named(
                name,
                Column::U8(colours.iter().map(|c| c[channel]).collect()),
            )
        })
        .collect()
}

/// A point file's properties as output columns, in the order mlsproj
/// writes them: position, normal, then the other properties, the colours
/// after `index` (where [`output_columns`] puts them).
fn file_columns(points: &PointCloud) -> Vec<Attribute> {
    let mut columns = position_columns(points.positions.iter().copied(), points.precision);
    if let Some(normals) = &points.normals {
        columns.extend(normal_columns(normals.iter().map(|n| n.cast::<f64>())));
    }
    let mut colours = points.colours.as_deref().map(colour_columns);
    for attribute in &points.attributes {
        columns.push(attribute.clone());
        if attribute.name == "index" {
            columns.extend(colours.take().unwrap_or_default());
        }
    }
    columns.extend(colours.unwrap_or_default());
    columns
}

/// One tile output being merged: its reader and current chunk.
struct TileCursor {
    path: PathBuf,
    reader: PointReader,
    columns: Vec<Attribute>,
    /// Which of `columns` is the input position `index`.
    index_column: usize,
    next: usize,
}

impl TileCursor {
    fn open(path: PathBuf) -> Result<Self> {
        let reader = PointReader::open(&path)?;
        let mut cursor = TileCursor {
            path,
            reader,
            columns: Vec::new(),
            index_column: 0,
            next: 0,
        };
        cursor.refill()?;
        Ok(cursor)
    }

    /// Reads the next chunk when the current one is used up.
    fn refill(&mut self) -> Result<()> {
        if self.next < self.index().len() {
            return Ok(());
        }
        let chunk = self.reader.read_chunk(CHUNK)?;
        self.columns = file_columns(&chunk);
        self.index_column = self
            .columns
            .iter()
            .position(|c| c.name == "index" && matches!(c.values, Column::U32(_)))
            .ok_or_else(|| {
                Error::format(
                    &self.path,
                    Location::File,
                    "no uint 'index' property: not an mlsproj tile output",
                )
            })?;
        self.next = 0;
        Ok(())
    }

    /// The input positions of the current chunk's particles.
    fn index(&self) -> &[u32] {
        match self.columns.get(self.index_column).map(|c| &c.values) {
            Some(Column::U32(index)) => index,
            _ => &[],
        }
    }

    /// The input position of the next particle, if any.
    fn head(&self) -> Option<u32> {
        self.index().get(self.next).copied()
    }
}

/// Joins the outputs of `--tile 0/N` … `--tile N-1/N` into `config.output`,
/// in input order, streaming: memory holds one chunk per tile.
pub fn merge(config: &Config, tiles: usize, progress: bool) -> Result<MergeSummary> {
    if tiles == 0 {
        return Err(Error::Invalid("merge needs at least one tile".into()));
    }
    let mut cursors = (0..tiles)
        .map(|index| {
            TileCursor::open(
                Tile {
                    index,
                    count: tiles,
                }
                .output_path(&config.output),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let total: usize = cursors.iter().map(|c| c.reader.len()).sum();
    let schema = io::schema_of(&cursors[0].columns);
    if let Some(odd) = cursors.iter().find(|c| io::schema_of(&c.columns) != schema) {
        return Err(Error::format(
            &odd.path,
            Location::File,
            "its properties differ from the first tile's",
        ));
    }
    let comments = vec![format!(
        "mlsproj {} merge of {tiles} tiles",
        env!("CARGO_PKG_VERSION")
    )];
    let mut writer = OutputWriter::create(
        &config.output,
        &schema,
        total,
        config.encoding.into(),
        &comments,
    )?;
    let bar = progress_bar(progress, "merging", Some(total));
    let empty = |columns: &[Attribute]| -> Vec<Attribute> {
        columns
            .iter()
            .map(|c| Attribute {
                name: c.name.clone(),
                values: c.values.slice(0..0),
            })
            .collect()
    };
    let mut pending = empty(&cursors[0].columns);
    let mut pending_rows = 0;
    let mut next_index = 0u32;
    // The tiles by the input position of their next particle: particles in
    // no spatial order alternate between tiles at every one.
    let mut heads: BinaryHeap<Reverse<(u32, usize)>> = cursors
        .iter()
        .enumerate()
        .filter_map(|(tile, cursor)| cursor.head().map(|head| Reverse((head, tile))))
        .collect();
    while (next_index as usize) < total {
        let Some(Reverse((head, tile))) = heads.pop().filter(|top| top.0.0 == next_index) else {
            return Err(Error::Invalid(format!(
                "merge: particle {next_index} is in no tile output (were all {tiles} tiles run on the same particles?)"
            )));
        };
        let cursor = &mut cursors[tile];
        // The run of consecutive input positions this tile holds here.
        let start = cursor.next;
        let mut end = start + 1;
        while cursor.index().get(end) == Some(&(head + (end - start) as u32)) {
            end += 1;
        }
        for (to, from) in pending.iter_mut().zip(&cursor.columns) {
            to.values.extend_from(&from.values, start..end);
        }
        pending_rows += end - start;
        next_index += (end - start) as u32;
        cursor.next = end;
        cursor.refill()?;
        if let Some(head) = cursor.head() {
            heads.push(Reverse((head, tile)));
        }
        if pending_rows >= CHUNK {
            writer.write_chunk(&pending)?;
            bar.inc(pending_rows as u64);
            pending = empty(&pending);
            pending_rows = 0;
        }
    }
    writer.write_chunk(&pending)?;
    bar.finish_and_clear();
    writer.finish()?;
    Ok(MergeSummary {
        tiles,
        particles: total,
        output: config.output.clone(),
    })
}

/// Names of the properties mlsproj computes (colours included, whether or
/// not they are written, so that an attribute's output name does not depend
/// on the cloud); a particle attribute with one of these names is renamed
/// (see [`output_columns`]).
const COMPUTED: [&str; 16] = [
    "x",
    "y",
    "z",
    "nx",
    "ny",
    "nz",
    "mean_curvature",
    "gaussian_curvature",
    "residual",
    "neighbours",
    "steps",
    "status",
    "index",
    "red",
    "green",
    "blue",
];

/// The output's vertex properties, in order: position, normal, curvatures,
/// residual, neighbours, steps, status, index, colours (the particles' own,
/// or averaged from the cloud when `average_colours`), then, when
/// `attributes` is set, the particles' other attributes with their types.
///
/// An attribute named like a computed property is renamed `input_<name>`,
/// prefixed again while that clashes with another attribute (a float `red`
/// beside an `input_red` becomes `input_input_red`), so that every name
/// written is unique and nothing is dropped.
pub fn output_columns(
    particles: &PointCloud,
    projected: &[Projected],
    precision: Precision,
    average_colours: bool,
    attributes: bool,
    index: Vec<u32>,
) -> Vec<Attribute> {
    let float = |f: &dyn Fn(&Projected) -> f64| {
        Column::F32(projected.iter().map(|p| f(p) as f32).collect())
    };
    let mut columns = position_columns(projected.iter().map(|p| p.position), precision);
    columns.extend(normal_columns(projected.iter().map(|p| p.normal)));
    columns.push(named("mean_curvature", float(&|p| p.mean_curvature)));
    columns.push(named(
        "gaussian_curvature",
        float(&|p| p.gaussian_curvature),
    ));
    columns.push(named("residual", float(&|p| p.residual)));
    columns.push(named(
        "neighbours",
        Column::U32(projected.iter().map(|p| p.neighbour_count).collect()),
    ));
    columns.push(named(
        "steps",
        Column::U8(projected.iter().map(|p| p.steps).collect()),
    ));
    columns.push(named(
        "status",
        Column::U8(projected.iter().map(|p| p.status.code()).collect()),
    ));
    columns.push(named("index", Column::U32(index)));
    let colours: Option<Vec<[u8; 3]>> = match (&particles.colours, average_colours) {
        (Some(own), _) => Some(own.clone()),
        (None, true) => Some(projected.iter().map(|p| p.colour).collect()),
        (None, false) => None,
    };
    if let Some(colours) = colours {
        columns.extend(colour_columns(&colours));
    }
    let passed = if attributes {
        &particles.attributes[..]
    } else {
        &[]
    };
    let taken = |name: &str, columns: &[Attribute]| {
        COMPUTED.contains(&name)
            || passed.iter().any(|a| a.name == name)
            || columns.iter().any(|c| c.name == name)
    };
    for attribute in passed {
        let mut name = attribute.name.clone();
        if COMPUTED.contains(&name.as_str()) {
            while taken(&name, &columns) {
                name.insert_str(0, "input_");
            }
        }
        columns.push(Attribute {
            name,
            values: attribute.values.clone(),
        });
    }
    columns
}

/// What `mlsproj check` reports: the job as it would run.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    /// Cloud points read.
    pub cloud_points: usize,
    /// Cloud points that would be left out (non-finite).
    pub skipped_cloud_points: usize,
    /// Cloud points merged into another at the same position.
    pub duplicate_cloud_points: usize,
    /// Particles that would be projected.
    pub particles: usize,
    /// Particles that are not finite (would get `invalid_input`).
    pub invalid_particles: usize,
    /// Neighbour counts around a sample of particles.
    pub neighbour_counts: Option<crate::survey::Spread<usize>>,
    /// Support radii around the same sample.
    pub support_radii: Option<crate::survey::Spread<f64>>,
    /// How normals would be oriented.
    pub orientation: &'static str,
    /// True when the cloud's normals would enter the fits.
    pub normals_in_fit: bool,
}

/// Validates inputs and measures the neighbourhoods the job would see,
/// without projecting or writing anything.
pub fn check(config: &Config) -> Result<CheckReport> {
    let cloud = read_cloud(config)?;
    let surface = surface_of(&config.cloud, &cloud)?;
    let cloud_points = cloud.len();
    // The particles in chunks, keeping only the sample the neighbourhoods
    // are measured on, as `run` streams them.
    let reader = open_particles(config, cloud)?;
    let particles = reader.len();
    let mut invalid_particles = 0;
    let (sample, _) = select_points(reader, |first, chunk| {
        invalid_particles += chunk
            .positions
            .iter()
            .filter(|p| !is_finite_point(p))
            .count();
        (first..first + chunk.len())
            .map(|i| crate::survey::in_sample(i, particles))
            .collect()
    })?;
    let spreads = crate::survey::neighbourhoods(
        surface.search(),
        &sample.positions,
        config.support,
        config.nearest_scale,
    );
    Ok(CheckReport {
        cloud_points,
        skipped_cloud_points: surface.skipped(),
        duplicate_cloud_points: surface.duplicates(),
        particles,
        invalid_particles,
        neighbour_counts: spreads.map(|s| s.0),
        support_radii: spreads.map(|s| s.1),
        orientation: surface.orientation_rule(config.orientation),
        normals_in_fit: surface.normals_in_fit(config.normal_weight),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiles_particles_keep_their_positions_in_the_file_across_chunks() {
        let mut sample = SlabSample::new(4, 4);
        sample.add(&[0.0, 1.0, 2.0, 3.0].map(|x| Point3::new(x, 0.5, 0.5)));
        let slabs = sample.slabs();
        let tile = Tile { index: 1, count: 4 };
        let at = |x: f64| Point3::new(x, 0.5, 0.5);
        let chunks = [
            vec![at(0.5), at(1.5), at(3.5)],
            vec![at(1.2), at(f64::NAN), at(2.5), at(1.9)],
            vec![],
        ];
        let mut picker = TileParticles::new(&slabs, tile);
        let mut first = 0;
        let picked: Vec<Vec<bool>> = chunks
            .into_iter()
            .map(|chunk| {
                let flags = picker.pick(first, &PointCloud::from_positions(chunk));
                first += flags.len();
                flags
            })
            .collect();
        assert_eq!(picked[0], [false, true, false]);
        assert_eq!(picked[1], [true, false, false, true]);
        assert_eq!(picker.indices, [1, 3, 6]);
    }
}
