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

use crate::cloud::{finite_bounds, is_finite_point};

/// One tile of a job split into `count` tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    /// 0-based tile number, below `count`.
    pub index: usize,
    /// Number of tiles.
    pub count: usize,
}

impl FromStr for Tile {
    type Err = String;

    /// Parses `I/N`, e.g. `3/16`.
    fn from_str(text: &str) -> Result<Self, String> {
        let (index, count) = text
            .split_once('/')
            .ok_or_else(|| format!("tile '{text}' is not I/N, e.g. 0/8"))?;
        let number = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("tile '{text}': '{s}' is not a number"))
        };
        let tile = Tile {
            index: number(index)?,
            count: number(count)?,
        };
        if tile.count == 0 || tile.index >= tile.count {
            return Err(format!(
                "tile '{text}': I must be in 0..N-1 and N at least 1"
            ));
        }
        Ok(tile)
    }
}

impl Tile {
    /// Where this tile's output goes: `projected.ply` becomes
    /// `projected.tile-0003-of-0016.ply`, beside it.
    pub fn output_path(&self, output: &Path) -> PathBuf {
        let stem = output
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let extension = output
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        output.with_file_name(format!(
            "{stem}.tile-{:04}-of-{:04}{extension}",
            self.index, self.count
        ))
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
}
