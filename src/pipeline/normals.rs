//! `mlsproj normals`: the cloud's points unmoved, in input order, with
//! oriented normals (estimated when the cloud has none, or when the config
//! says `cloud_normals: Estimate`) and every other property, for tools that
//! need oriented normals (Poisson reconstruction, renderers).

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{CloudNormals, Config, Orientation};
use crate::error::Result;
use crate::io::{self, OutputWriter};

use super::{progress_bar, read_scan, timed};

/// What `mlsproj normals` did.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalsSummary {
    /// Points written (every point of the cloud).
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
    let estimated = cloud.normals.is_none() || config.cloud_normals == CloudNormals::Estimate;
    if estimated {
        let estimating = progress_bar(progress, "estimating normals", None);
        let mut normals = timed(&mut time, || {
            crate::normals::estimate_oriented(
                &cloud.positions,
                config.normal_neighbours,
                config.orientation,
            )
        })?;
        // Under `Auto`, a scan that says where its scanners stood (E57)
        // faces each normal toward the scanner that saw its point.
        if config.orientation == Orientation::Auto
            && let Some(seen_from) = crate::normals::scanner_of_each(&cloud, &scanners)
        {
            for ((normal, point), scanner) in
                normals.iter_mut().zip(&cloud.positions).zip(seen_from)
            {
                *normal = crate::normals::facing(*normal, &(scanner - point));
            }
        }
        cloud.normals = Some(normals);
        estimating.finish_and_clear();
    }
    let without_normal = cloud.normals.as_ref().map_or(0, |normals| {
        normals.iter().filter(|n| n.norm() == 0.0).count()
    });
    let writing = progress_bar(progress, "writing", None);
    timed(&mut time, || {
        let columns = io::file_columns(&cloud);
        let comments = vec![format!("mlsproj {} normals", env!("CARGO_PKG_VERSION"))];
        let mut writer = OutputWriter::create(
            &config.output,
            &io::schema_of(&columns),
            cloud.len(),
            config.encoding.into(),
            &comments,
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
        output: config.output.clone(),
    })
}
