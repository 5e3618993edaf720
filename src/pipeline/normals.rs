//! `mlsproj normals`: the cloud's points unmoved, in input order, with
//! oriented normals (estimated when the cloud has none, or when the config
//! says `cloud_normals: Estimate`) and every other property, for tools that
//! need oriented normals (Poisson reconstruction, renderers); whole, or one
//! tile of it (`--tile I/N`) for `merge` to join.

use std::path::PathBuf;
use std::time::Duration;

use nalgebra::{Point3, Vector3};

use crate::cloud::{Attribute, Column, PointCloud, is_finite_point};
use crate::config::{CloudNormals, Config, Orientation, Support};
use crate::error::{Error, Location, Result};
use crate::io::{self, OutputWriter};
use crate::neighbours::NeighbourSearch;

use super::provenance::{JobIdentity, Provenance, TileCommand};
use super::tiles::{CloudSlab, Halo, Tile, halo_needed, particle_slabs, read_with_halo};
use super::{progress_bar, read_scan, timed};

/// What `mlsproj normals` did.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalsSummary {
    /// Points written (every point of the cloud, or of the tile's slab).
    pub points: usize,
    /// True when the normals were estimated, false when the cloud's own
    /// were written.
    pub estimated: bool,
    /// Points whose normal is zero: a non-finite point, or one whose
    /// neighbourhood spans no plane.
    pub without_normal: usize,
    /// Time spent reading, estimating and writing.
    pub time: Duration,
    /// The file written.
    pub output: PathBuf,
}

/// Writes the cloud of `config` to its output with oriented normals: the
/// cloud's own (`cloud_normals: Use` and the cloud has them) or estimated
/// from the `normal_neighbours` nearest and signed by `orientation`
/// ([`crate::normals::estimate_oriented`]). The particles of the config
/// play no part.
pub fn write_normals(config: &Config, progress: bool) -> Result<NormalsSummary> {
    let mut time = Duration::ZERO;
    let reading = progress_bar(progress, "reading cloud", None);
    let (mut cloud, scanners) = timed(&mut time, || read_scan(config, true))?;
    reading.finish_and_clear();
    let estimated = estimates(config, &cloud);
    if estimated {
        let estimating = progress_bar(progress, "estimating normals", None);
        let normals = timed(&mut time, || {
            crate::normals::estimate_oriented(
                &cloud.positions,
                config.normal_neighbours,
                config.orientation,
                Some(config.support),
            )
        })?;
        cloud.normals = Some(normals);
        face_scanners(config, &mut cloud, &scanners);
        estimating.finish_and_clear();
    }
    let oriented = Oriented {
        cloud,
        index: None,
        estimated,
    };
    let output = config.output.clone();
    write_points(config, output, oriented, &[comment()], time, progress)
}

/// How many nearest-neighbour reaches past its slab a `normals` tile reads.
/// Three give every slab point the whole run's PCA normal and mending:
/// its `normal_neighbours` lie within one reach, their graph neighbours
/// within two and theirs within three (the two rounds of mending read
/// normals two graph steps away). The rest is room for the spanning
/// forest to go round a thin part as the whole run's does: with three, one
/// tile of four of the `fingers` set joined the two sides of its piece of
/// the ball through a finger, with opposite signs (19.8% of the cloud
/// signed otherwise than whole); six and twelve sign it as the whole run
/// (docs/normals.md, "Tiles of `normals`").
pub const HALO_REACHES: f64 = 6.0;

/// Writes tile `tile` of the `normals` job of `config`: the cloud's points
/// in the tile's slab (slabs cut along the cloud's longest axis, holding
/// about equal numbers of its points), with normals estimated on the slab
/// and a halo of [`HALO_REACHES`] neighbourhoods, and their positions in
/// the file (`index`), to `OUTPUT.tile-IIII-of-NNNN.EXT`, recording which
/// job it is a tile of, for `merge`.
pub fn write_normals_tile(config: &Config, tile: Tile, progress: bool) -> Result<NormalsSummary> {
    // A caller of the library may build a tile past the cap by hand.
    let tile = Tile::new(tile.index, tile.count).map_err(Error::Invalid)?;
    let mut time = Duration::ZERO;
    let reading = progress_bar(progress, "reading tile", None);
    let (slabs, total) = timed(&mut time, || particle_slabs(&config.cloud, tile.count))?;
    let provenance = Provenance {
        tile,
        job: JobIdentity::with_count(config, TileCommand::Normals, total)?,
    };
    let (from, to) = slabs.bounds(tile.index);
    let axis = slabs.axis();
    let k = config.normal_neighbours;
    let mut estimating = None;
    let (cloud, index, estimated) = read_with_halo(
        &config.cloud,
        &slabs,
        tile,
        0.0,
        true,
        &mut time,
        |slab, halo| {
            let whole = slab.is_whole();
            let CloudSlab {
                part,
                centroid,
                scanners,
                particles,
                ..
            } = slab;
            let (mut points, indices) = particles.unwrap_or_default();
            if let Some(index) = points.attributes.iter().find(|a| a.name == "index") {
                return Err(Error::format(
                    &config.cloud,
                    Location::File,
                    format!(
                        "the cloud has a property '{}', which a `normals` tile adds: \
                         run `mlsproj normals` without --tile, or drop it",
                        index.name
                    ),
                ));
            }
            let estimated = estimates(config, &part);
            if !estimated || !points.positions.iter().any(is_finite_point) {
                return Ok(Halo::Enough((points, indices, estimated)));
            }
            let finite: Vec<Point3<f64>> = part
                .positions
                .iter()
                .copied()
                .filter(is_finite_point)
                .collect();
            // Too few points around the slab to measure a reach among:
            // the whole cloud it is.
            if finite.len() < k && !whole {
                return Ok(Halo::Grow(f64::INFINITY));
            }
            let search = NeighbourSearch::new(&finite)?;
            drop(finite);
            let needed = HALO_REACHES
                * halo_needed(&points.positions, axis, (from, to), |p, hood| {
                    search.gather(&(p - search.origin()), Support::Nearest(k), 1.0, hood)
                });
            drop(search);
            // A quarter more than measured: the halo's own points may
            // reach a little farther than the slab's.
            let wanted = 1.25 * needed;
            if wanted > halo && !whole {
                return Ok(Halo::Grow(wanted));
            }
            // A first read sized on the slab alone overshoots (a point near
            // a face finds its neighbours on one side only: 18 times too
            // far on the `fingers` set's finger tips), so the estimate
            // takes the halo measured on the last read, not all it read.
            let near = (from - wanted)..=(to + wanted);
            // The slab's own points among the part's, and those near it.
            let (positions, own): (Vec<Point3<f64>>, Vec<bool>) = part
                .positions
                .iter()
                .filter_map(|p| {
                    let own = slabs.of(p) == tile.index;
                    (own || near.contains(&p[axis])).then_some((*p, own))
                })
                .unzip();
            drop(part);
            estimating.get_or_insert_with(|| progress_bar(progress, "estimating normals", None));
            let normals = crate::normals::estimate_oriented_about(
                &positions,
                config.normal_neighbours,
                config.orientation,
                centroid,
                Some(config.support),
            )?;
            let normals = normals.into_iter().zip(own).filter(|(_, own)| *own);
            points.normals = Some(normals.map(|(normal, _)| normal).collect());
            face_scanners(config, &mut points, &scanners);
            Ok(Halo::Enough((points, indices, true)))
        },
    )?;
    reading.finish_and_clear();
    if let Some(bar) = estimating {
        bar.finish_and_clear();
    }
    let comments = vec![comment(), provenance.to_comment()];
    let oriented = Oriented {
        cloud,
        index: Some(index),
        estimated,
    };
    let output = tile.output_path(&config.output);
    write_points(config, output, oriented, &comments, time, progress)
}

/// Whether the normals of `cloud` are estimated: it has none, or the
/// config distrusts them.
fn estimates(config: &Config, cloud: &PointCloud) -> bool {
    cloud.normals.is_none() || config.cloud_normals == CloudNormals::Estimate
}

/// Under `Auto`, a scan that says where its scanners stood (E57) faces
/// each estimated normal of `cloud` toward the scanner that saw its point.
fn face_scanners(config: &Config, cloud: &mut PointCloud, scanners: &[Point3<f64>]) {
    if config.orientation != Orientation::Auto {
        return;
    }
    let Some(seen_from) = crate::normals::scanner_of_each(cloud, scanners) else {
        return;
    };
    let facing: Vec<Vector3<f32>> = cloud
        .positions
        .iter()
        .zip(seen_from)
        .zip(cloud.normals.iter().flatten())
        .map(|((point, scanner), normal)| crate::normals::facing(*normal, &(scanner - point)))
        .collect();
    cloud.normals = Some(facing);
}

/// The first comment of every file `normals` writes.
fn comment() -> String {
    format!("mlsproj {} normals", env!("CARGO_PKG_VERSION"))
}

/// What `normals` writes: points with their normals.
struct Oriented {
    cloud: PointCloud,
    /// The points' positions in the file (a tile's), or `None` for the
    /// whole cloud in its order.
    index: Option<Vec<u32>>,
    /// Whether the normals were estimated.
    estimated: bool,
}

/// Writes `oriented` to `output` with `comments`, and says what was done
/// (`time`: spent so far).
fn write_points(
    config: &Config,
    output: PathBuf,
    oriented: Oriented,
    comments: &[String],
    mut time: Duration,
    progress: bool,
) -> Result<NormalsSummary> {
    let Oriented {
        cloud,
        index,
        estimated,
    } = oriented;
    let without_normal = cloud.normals.as_ref().map_or(0, |normals| {
        normals.iter().filter(|n| n.norm() == 0.0).count()
    });
    let writing = progress_bar(progress, "writing", None);
    timed(&mut time, || {
        let mut columns = io::file_columns(&cloud);
        columns.extend(index.map(|index| Attribute {
            name: "index".into(),
            values: Column::U32(index),
        }));
        let mut writer = OutputWriter::create(
            &output,
            &io::schema_of(&columns),
            cloud.len(),
            config.encoding.into(),
            comments,
        )?;
        writer.write_chunk(&columns)?;
        writer.finish()
    })?;
    writing.finish_and_clear();
    Ok(NormalsSummary {
        points: cloud.len(),
        estimated,
        without_normal,
        time,
        output,
    })
}
