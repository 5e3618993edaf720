//! Spatial tiles: one job split into independent jobs that an existing
//! batch engine (Slurm array jobs, GNU parallel, Kubernetes Jobs) runs
//! anywhere, then `merge` joins their outputs in input order.
//!
//! Tile `I` of `N` holds the particles in the `I`-th of `N` equal slabs of
//! the particles' bounding box along its longest axis. Every tile job reads
//! the same particle file, so every job draws the same slabs.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use nalgebra::Point3;

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

/// `count` equal slabs of a bounding box along its longest axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slabs {
    axis: usize,
    low: f64,
    width: f64,
    count: usize,
}

impl Slabs {
    /// Slabs over the box `(low, high)`.
    pub fn new(low: &Point3<f64>, high: &Point3<f64>, count: usize) -> Self {
        let extent = high - low;
        let axis = extent.imax();
        Slabs {
            axis,
            low: low[axis],
            width: extent[axis] / count as f64,
            count,
        }
    }

    /// The coordinate the slabs cut.
    pub fn axis(&self) -> usize {
        self.axis
    }

    /// The slab holding `p` (points outside the box go to the nearest end
    /// slab; non-finite points to slab 0).
    pub fn of(&self, p: &Point3<f64>) -> usize {
        let t = (p[self.axis] - self.low) / self.width;
        if t.is_finite() {
            (t.max(0.0) as usize).min(self.count - 1)
        } else {
            0
        }
    }

    /// The range `[from, to]` of the axis coordinate that slab `index`
    /// covers (the end slabs reach to infinity).
    pub fn bounds(&self, index: usize) -> (f64, f64) {
        let from = if index == 0 {
            f64::NEG_INFINITY
        } else {
            self.low + index as f64 * self.width
        };
        let to = if index + 1 == self.count {
            f64::INFINITY
        } else {
            self.low + (index + 1) as f64 * self.width
        };
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

    #[test]
    fn slabs_cover_the_longest_axis() {
        let slabs = Slabs::new(&Point3::new(0.0, 0.0, 0.0), &Point3::new(1.0, 4.0, 2.0), 4);
        assert_eq!(slabs.axis(), 1);
        assert_eq!(slabs.of(&Point3::new(0.5, 0.5, 0.5)), 0);
        assert_eq!(slabs.of(&Point3::new(0.5, 3.99, 0.5)), 3);
        assert_eq!(slabs.of(&Point3::new(0.5, 9.0, 0.5)), 3);
        assert_eq!(slabs.bounds(1), (1.0, 2.0));
        assert_eq!(slabs.bounds(3).1, f64::INFINITY);
    }
}
