//! Spatial tiles: one job split into independent jobs that an existing
//! batch engine (Slurm array jobs, GNU parallel, Kubernetes Jobs) runs
//! anywhere, then `merge` joins their outputs in input order.
//!
//! Tile `I` of `N` holds the particles in the `I`-th of `N` slabs of the
//! particles' bounding box along its longest axis, cut so that each holds
//! about as many particles: a tile's time follows its particle count, and
//! scans are rarely uniform along an axis. The cuts are quantiles of a
//! sample drawn by a hash of each particle's position in the file, in the
//! pass that finds the bounding box; every tile job reads the same file,
//! so every job draws the same sample and the same slabs.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use nalgebra::Point3;
use rayon::prelude::*;

use crate::cloud::{CentroidSum, PointCloud, finite_bounds, is_finite_point};
use crate::config::{Config, Particles, Support};
use crate::error::Result;
use crate::io::{Kept, PointReader};
use crate::neighbours::Neighbourhood;

use super::provenance::{JobIdentity, Provenance, TileCommand};
use super::{
    CloudRead, Job, Source, Stream, Summary, Timings, particle_path, progress_bar, refuse_empty,
    surface_of, timed,
};

/// One tile of a job split into `count` tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    /// 0-based tile number, below `count`.
    pub index: usize,
    /// Number of tiles.
    pub count: usize,
}

impl Tile {
    /// The most tiles a job splits into. A tile run reads the whole
    /// particle file and the cloud's slab, so thousands of tiles already
    /// spend most of their time reading; the cap keeps a typo such as
    /// `0/1000000000` from allocating a cut per tile (8 GB), keeps at least
    /// 64 particles of the slab sample per tile, and lets `merge` join every
    /// tile under an open-file limit of 1024 (see `merge`).
    pub const MAX_COUNT: usize = 65_536;

    /// Parses a tile count `N`: a number in `1..=MAX_COUNT` (`--tiles N`).
    pub fn parse_count(text: &str) -> Result<usize, String> {
        let count = text
            .trim()
            .parse::<usize>()
            .map_err(|_| format!("tile count '{text}' is not a number"))?;
        Self::check_count(count)?;
        Ok(count)
    }

    /// Refuses a tile count outside `1..=MAX_COUNT`.
    fn check_count(count: usize) -> Result<(), String> {
        if !(1..=Self::MAX_COUNT).contains(&count) {
            return Err(format!(
                "tile count {count}: a job splits into 1 to {} tiles",
                Self::MAX_COUNT
            ));
        }
        Ok(())
    }

    /// Tile `index` of `count`, checked: `count` in `1..=MAX_COUNT`,
    /// `index` below it.
    pub fn new(index: usize, count: usize) -> Result<Self, String> {
        Self::check_count(count)?;
        if index >= count {
            return Err(format!("tile {index}/{count}: I must be in 0..N-1"));
        }
        Ok(Tile { index, count })
    }
}

/// `I/N`, as `--tile` takes it.
impl std::fmt::Display for Tile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Tile {
    type Err = String;

    /// Parses `I/N`, e.g. `3/16`, N at most [`Tile::MAX_COUNT`].
    fn from_str(text: &str) -> Result<Self, String> {
        let (index, count) = text
            .split_once('/')
            .ok_or_else(|| format!("tile '{text}' is not I/N, e.g. 0/8"))?;
        let index = index
            .trim()
            .parse::<usize>()
            .map_err(|_| format!("tile '{text}': '{index}' is not a number"))?;
        let count = count
            .trim()
            .parse::<usize>()
            .map_err(|_| format!("tile '{text}': '{count}' is not a number"))?;
        Tile::new(index, count).map_err(|message| format!("tile '{text}': {message}"))
    }
}

impl Tile {
    /// Where this tile's output goes: `projected.ply` becomes
    /// `projected.tile-0003-of-0016.ply`, beside it.
    pub fn output_path(&self, output: &Path) -> PathBuf {
        crate::io::tile_path(output, self.index, self.count)
    }
}

/// Particles drawn per tile for the sample the slabs are cut from: a
/// tile's count is then within about 1/√4096 ≈ 1.6% of its share.
const SAMPLE_PER_TILE: u64 = 1 << 12;
/// Bounds on the sample's size: at least 65,536 particles, at most 4M
/// (100 MB of positions, a thousand tiles).
const SAMPLE_SIZE: std::ops::RangeInclusive<u64> = (1 << 16)..=(1 << 22);

/// The bounding box of a particle file and the sample its slabs are cut
/// from, gathered chunk by chunk in file order.
#[derive(Debug, Clone)]
pub struct SlabSample {
    /// A particle is drawn when the hash of its position in the file is
    /// at or below this.
    draw_below: u64,
    /// Position in the file of the next chunk's first particle.
    next: u64,
    bounds: Option<(Point3<f64>, Point3<f64>)>,
    drawn: Vec<Point3<f64>>,
    tiles: usize,
}

impl SlabSample {
    /// An empty sample of a file of `total` particles, to be cut into
    /// `tiles` slabs.
    pub fn new(total: usize, tiles: usize) -> Self {
        let size = (SAMPLE_PER_TILE * tiles as u64).clamp(*SAMPLE_SIZE.start(), *SAMPLE_SIZE.end());
        let share = size as f64 / total.max(1) as f64;
        SlabSample {
            draw_below: if share >= 1.0 {
                u64::MAX
            } else {
                (share * u64::MAX as f64) as u64
            },
            next: 0,
            bounds: None,
            drawn: Vec::new(),
            tiles,
        }
    }

    /// Adds the next chunk of the file (non-finite particles are neither
    /// drawn nor bounded).
    pub fn add(&mut self, chunk: &[Point3<f64>]) {
        if let Some((lo, hi)) = finite_bounds(chunk) {
            self.bounds = Some(match self.bounds {
                Some((l, h)) => (l.inf(&lo), h.sup(&hi)),
                None => (lo, hi),
            });
        }
        for (i, p) in chunk.iter().enumerate() {
            if is_finite_point(p) && mix(self.next + i as u64) <= self.draw_below {
                self.drawn.push(*p);
            }
        }
        self.next += chunk.len() as u64;
    }

    /// The slabs along the longest axis of the bounding box, cut at the
    /// sample's quantiles.
    pub fn slabs(self) -> Slabs {
        let count = self.tiles;
        let (lo, hi) = self.bounds.unwrap_or((Point3::origin(), Point3::origin()));
        let axis = (hi - lo).imax();
        let mut values: Vec<f64> = self.drawn.iter().map(|p| p[axis]).collect();
        values.sort_unstable_by(f64::total_cmp);
        let cuts = (1..count)
            .map(|j| {
                values
                    .get(j * values.len() / count)
                    .copied()
                    .unwrap_or(lo[axis])
            })
            .collect();
        Slabs { axis, cuts }
    }
}

/// SplitMix64's finaliser: a particle's position in the file to a
/// well-spread 64-bit number, so that the draw follows no pattern of the
/// file's order (scan lines, grids).
fn mix(index: u64) -> u64 {
    let mut z = index.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Slabs along one axis, between ascending cuts.
#[derive(Debug, Clone, PartialEq)]
pub struct Slabs {
    axis: usize,
    /// `count − 1` ascending cuts: slab `i` holds the coordinates in
    /// `[cuts[i − 1], cuts[i])`, the end slabs reaching to infinity.
    cuts: Vec<f64>,
}

impl Slabs {
    /// The coordinate the slabs cut.
    pub fn axis(&self) -> usize {
        self.axis
    }

    /// The slab holding `p` (non-finite points go to slab 0).
    pub fn of(&self, p: &Point3<f64>) -> usize {
        let t = p[self.axis];
        if is_finite_point(p) {
            self.cuts.partition_point(|&cut| cut <= t)
        } else {
            0
        }
    }

    /// The range `[from, to]` of the axis coordinate that the finite
    /// points of slab `index` lie in (the end slabs reach to infinity).
    pub fn bounds(&self, index: usize) -> (f64, f64) {
        let from = index
            .checked_sub(1)
            .map_or(f64::NEG_INFINITY, |i| self.cuts[i]);
        let to = self.cuts.get(index).copied().unwrap_or(f64::INFINITY);
        (from, to)
    }
}

/// The slabs of a job split into `count` tiles, from one pass over its
/// particle file in chunks, and the file's point count.
pub(super) fn particle_slabs(path: &Path, count: usize) -> Result<(Slabs, usize)> {
    let reader = PointReader::open(path)?;
    let mut sample = SlabSample::new(reader.len(), count);
    let total = reader.for_each_chunk(|_, chunk| sample.add(&chunk.positions))?;
    Ok((sample.slabs(), total))
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
    let (particles, _) =
        PointReader::open(path)?.select(|first, chunk| picker.pick(first, chunk))?;
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
    let reader = PointReader::open(path)?;
    let scanners = reader.scanner_positions().to_vec();
    let (part, total) = reader.select(|first, chunk| {
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
        diagonal: centroid.diagonal(),
        centroid: centroid.centroid(),
        scanners,
        particles: particles.map(|picker| (picked.into_cloud(), picker.indices)),
    })
}

/// What [`cloud_slab`] read.
pub(super) struct CloudSlab {
    /// The points of the slab and its halo, in file order.
    pub(super) part: PointCloud,
    /// Points in the whole file.
    pub(super) total: usize,
    /// The bounding-box diagonal of the whole cloud's finite points.
    pub(super) diagonal: f64,
    /// The centroid of the whole cloud's finite points.
    pub(super) centroid: Point3<f64>,
    /// The positions of the scanners that saw the cloud (E57).
    pub(super) scanners: Vec<Point3<f64>>,
    /// The cloud's points in the tile's own slab with their positions in
    /// the file, when they were picked.
    pub(super) particles: Option<(PointCloud, Vec<u32>)>,
}

impl CloudSlab {
    /// Whether the part read is the whole cloud (no halo can hold more).
    pub(super) fn is_whole(&self) -> bool {
        self.part.len() == self.total
    }
}

/// What a tile makes of the part of the cloud read around its slab.
pub(super) enum Halo<T> {
    /// The halo read held every point the tile needs: its result.
    Enough(T),
    /// Read the cloud again with a halo this wide.
    Grow(f64),
}

/// Reads the part of the cloud that tile `tile` of `slabs` needs: its slab
/// and a halo of `halo` on each side ([`cloud_slab`], with the slab's own
/// points picked when `pick`), handed to `measure`, read again with a
/// wider halo while `measure` asks for one. An empty cloud is refused.
pub(super) fn read_with_halo<T>(
    path: &Path,
    slabs: &Slabs,
    tile: Tile,
    mut halo: f64,
    pick: bool,
    load: &mut std::time::Duration,
    mut measure: impl FnMut(CloudSlab, f64) -> Result<Halo<T>>,
) -> Result<T> {
    let (from, to) = slabs.bounds(tile.index);
    loop {
        let picker = pick.then(|| TileParticles::new(slabs, tile));
        let slab = timed(load, || {
            cloud_slab(path, slabs.axis(), (from - halo, to + halo), picker)
        })?;
        refuse_empty(path, slab.total)?;
        match measure(slab, halo)? {
            Halo::Enough(result) => return Ok(result),
            Halo::Grow(wider) => halo = wider,
        }
    }
}

/// How far beyond its slab, `[from, to]` along `axis`, the cloud must
/// reach so that each of `points` finds what it would find in the whole
/// cloud: the farthest `reach` of a point (measured on the part of the
/// cloud loaded so far, with a thread's neighbourhood scratch) past the
/// slab's faces.
pub(super) fn halo_needed(
    points: &[Point3<f64>],
    axis: usize,
    (from, to): (f64, f64),
    reach: impl Fn(&Point3<f64>, &mut Neighbourhood) -> f64 + Sync,
) -> f64 {
    points
        .par_iter()
        .filter(|p| is_finite_point(p))
        .map_init(Neighbourhood::default, |neighbourhood, p| {
            let inside = (p[axis] - from).min(to - p[axis]).max(0.0);
            reach(p, neighbourhood) - inside
        })
        .reduce(|| 0.0, f64::max)
}

/// Runs tile `tile` of the job: its particles, with the part of the cloud
/// they reach.
pub(super) fn run_tile(config: &Config, tile: Tile, progress: bool) -> Result<Summary> {
    let mut timings = Timings::default();
    let reading = progress_bar(progress, "reading tile", None);
    let particle_file = particle_path(config);
    let (slabs, particle_count) = timed(&mut timings.load, || {
        particle_slabs(particle_file, tile.count)
    })?;
    let provenance = Provenance {
        tile,
        job: JobIdentity::with_count(config, TileCommand::Run, particle_count)?,
    };
    // Particles from their own file; the cloud's own points are picked in
    // the first pass over the cloud.
    let mut particles = match config.particles {
        Particles::File(_) => Some(timed(&mut timings.load, || {
            tile_particles(particle_file, &slabs, tile)
        })?),
        // (A Seed job's tiles run as whole jobs, `run_whole`.)
        Particles::Cloud | Particles::Seed { .. } => None,
    };
    let (from, to) = slabs.bounds(tile.index);
    let axis = slabs.axis();
    let job = Job::from(config);
    // Too few cloud points near the slab to measure the halo from (a
    // `Nearest(k)` gather among fewer than k finds too near a k-th): the
    // whole cloud it is.
    let least = match config.support {
        Support::Nearest(k) => k,
        Support::Radius(_) | Support::RadiusNearest { .. } => 1,
    };
    let tree = &mut timings.tree;
    let (surface, cloud_points, cloud_precision) = read_with_halo(
        &config.cloud,
        &slabs,
        tile,
        job.method.fixed_reach().unwrap_or(0.0),
        particles.is_none(),
        &mut timings.load,
        |slab, halo| {
            let whole = slab.is_whole();
            let (picked, _) = particles.get_or_insert_with(|| slab.particles.unwrap_or_default());
            let part = slab.part;
            let finite = part.positions.iter().filter(|p| is_finite_point(p)).count();
            // A tile without a finite particle needs no halo.
            if finite < least && !whole && picked.positions.iter().any(is_finite_point) {
                return Ok(Halo::Grow(f64::INFINITY));
            }
            let surface = timed(tree, || surface_of(config, &part, &slab.scanners))?
                .with_centroid(slab.centroid);
            surface.refuse_whole_cloud_support(
                &config.cloud,
                config.support,
                Some((slab.total, slab.diagonal)),
            )?;
            let search = surface.search();
            let needed = halo_needed(&picked.positions, axis, (from, to), |p, hood| {
                job.method.reach(search, &(p - search.origin()), hood)
            });
            Ok(if needed <= halo || whole {
                Halo::Enough((surface, slab.total, part.precision))
            } else {
                Halo::Grow(1.25 * needed)
            })
        },
    )?;
    let (particles, indices) = particles.expect("picked in the first pass over the cloud");
    reading.finish_and_clear();
    job.project_stream(
        &surface,
        Stream {
            cloud: CloudRead {
                points: cloud_points,
                precision: cloud_precision,
            },
            particles: Source::Read(PointReader::from_cloud(particles)),
            indices: Some(&indices),
            output: tile.output_path(&config.output),
            provenance: Some(provenance),
        },
        progress,
        timings,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_parse_and_name_their_outputs() {
        let tile: Tile = "3/16".parse().unwrap();
        assert_eq!(
            tile,
            Tile {
                index: 3,
                count: 16
            }
        );
        assert!("16/16".parse::<Tile>().is_err());
        assert!("1/0".parse::<Tile>().is_err());
        assert!("a/2".parse::<Tile>().is_err());
        assert!("0/65536".parse::<Tile>().is_ok());
        let error = "0/1000000000".parse::<Tile>().unwrap_err();
        assert!(error.contains("1 to 65536 tiles"), "{error}");
        assert_eq!(Tile::parse_count("16"), Ok(16));
        assert!(Tile::parse_count("0").is_err());
        assert!(Tile::parse_count("65537").is_err());
        assert_eq!(
            tile.output_path(Path::new("out/projected.ply")),
            Path::new("out/projected.tile-0003-of-0016.ply")
        );
    }

    /// A sample of the particles `points` for `tiles` tiles, read in
    /// chunks of 1,000.
    fn sampled(points: &[Point3<f64>], tiles: usize) -> SlabSample {
        let mut sample = SlabSample::new(points.len(), tiles);
        for chunk in points.chunks(1_000) {
            sample.add(chunk);
        }
        sample
    }

    #[test]
    fn slabs_hold_about_equal_counts_along_the_longest_axis() {
        // 200k particles along y in [0, 4], nine in ten of them below 0.4:
        // equal widths would give the first of four slabs 90% of them.
        let points: Vec<Point3<f64>> = (0..200_000)
            .map(|i| {
                let t = (i % 1_000) as f64 / 1_000.0;
                let y = if i % 10 == 0 { 0.4 + 3.6 * t } else { 0.4 * t };
                Point3::new(0.5 * t, y, 0.0)
            })
            .collect();
        let slabs = sampled(&points, 4).slabs();
        assert_eq!(slabs.axis(), 1);
        let mut counts = [0usize; 4];
        for p in &points {
            let slab = slabs.of(p);
            let (from, to) = slabs.bounds(slab);
            assert!(from <= p.y && p.y <= to, "{p} in slab {slab}: {from}..{to}");
            counts[slab] += 1;
        }
        for count in counts {
            assert!(count.abs_diff(50_000) < 1_000, "{counts:?}");
        }
        assert_eq!(slabs.of(&Point3::new(f64::NAN, 0.0, 0.0)), 0);
        assert_eq!(slabs.of(&Point3::new(0.0, 9.0, 0.0)), 3);
        assert_eq!(slabs.bounds(0).0, f64::NEG_INFINITY);
        assert_eq!(slabs.bounds(3).1, f64::INFINITY);
    }

    #[test]
    fn a_file_drawn_twice_gives_the_same_slabs_whatever_its_chunks() {
        let points: Vec<Point3<f64>> = (0..300_000)
            .map(|i| Point3::new(((i * 7_919) % 300_000) as f64, 0.0, 0.0))
            .collect();
        let mut whole = SlabSample::new(points.len(), 16);
        whole.add(&points);
        assert_eq!(whole.slabs(), sampled(&points, 16).slabs());
    }

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
