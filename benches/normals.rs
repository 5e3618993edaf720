//! Time of normal estimation and orientation (issue 12): reads a cloud,
//! estimates and orients its normals as a cloud without normals gets them
//! (`Orientation::Auto`, 30 neighbours), prints the time, and writes the
//! points with their normals for `../shared/bench/score_orientation.py`.
//!
//! `cargo bench --bench normals -- CLOUD.ply [OUT.ply]` (default: the
//! truth set `target/truth/bunny/cloud.ply`, from
//! `python3 benches/truth/make_sets.py`). Peak memory:
//! `/usr/bin/time -v target/release/deps/normals-* CLOUD.ply`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use mlsproj::config::Orientation;
use std::num::NonZeroUsize;

use mlsproj::neighbours::NeighbourSearch;
use mlsproj::neighbours::morton_order;
use mlsproj::normals::{
    DEFAULT_NEIGHBOURS, Estimate, SignRule, estimate, estimate_oriented, orient,
};

fn main() -> mlsproj::Result<()> {
    // cargo bench passes `--bench`; the rest are paths.
    let paths: Vec<PathBuf> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .collect();
    let cloud_path = paths
        .first()
        .cloned()
        .unwrap_or_else(|| PathBuf::from("target/truth/bunny/cloud.ply"));
    if !cloud_path.exists() {
        println!(
            "normals: {} not found (python3 benches/truth/make_sets.py)",
            cloud_path.display()
        );
        return Ok(());
    }
    let cloud = mlsproj::io::read_points(&cloud_path)?;
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let normals = estimate_oriented(
        &cloud.positions,
        DEFAULT_NEIGHBOURS,
        Orientation::Auto,
        None,
    )?;
    println!(
        "normals: {} points, estimate + orient {:.3} s ({:.2} s of CPU) on {} threads",
        cloud.positions.len(),
        start.elapsed().as_secs_f64(),
        cpu_seconds() - cpu,
        rayon::current_num_threads()
    );
    stages(&cloud.positions);
    if let Some(out) = paths.get(1) {
        write_ply(out, &cloud.positions, &normals)
            .map_err(|e| mlsproj::Error::io(out.clone(), e))?;
    }
    Ok(())
}

/// CPU time of this process (user + system), from /proc (0 elsewhere): on
/// a shared machine the wall time says more about the neighbours' load.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields 14 and 15 (utime, stime) in clock ticks, after the command's
    // parenthesised name.
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let ticks: f64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

/// The same work stage by stage: the tree, the PCA and graph, the signs.
fn stages(positions: &[nalgebra::Point3<f64>]) {
    let start = Instant::now();
    let cpu = cpu_seconds();
    let ordered: Vec<_> = morton_order(positions)
        .into_iter()
        .map(|i| positions[i as usize])
        .collect();
    let Ok(search) = NeighbourSearch::new(&ordered) else {
        return;
    };
    let (tree, tree_cpu) = (start.elapsed().as_secs_f64(), cpu_seconds());
    let k = NonZeroUsize::new(DEFAULT_NEIGHBOURS).unwrap_or(NonZeroUsize::MIN);
    let Estimate {
        mut normals,
        variation,
        graph,
    } = estimate(&search, k);
    let (estimated, estimated_cpu) = (start.elapsed().as_secs_f64(), cpu_seconds());
    let centroid = ordered
        .iter()
        .map(|p| p.coords)
        .sum::<nalgebra::Vector3<f64>>()
        / ordered.len().max(1) as f64
        - search.origin().coords;
    let rule = SignRule::Consistent {
        viewpoint: None,
        centroid,
    };
    orient(&search, &graph, &variation, &mut normals, rule, true);
    let (oriented, oriented_cpu) = (start.elapsed().as_secs_f64(), cpu_seconds());
    println!(
        "stages (wall / CPU): order + tree {tree:.3} / {:.2} s, PCA + graph {:.3} / {:.2} s, \
         orientation {:.3} / {:.2} s",
        tree_cpu - cpu,
        estimated - tree,
        estimated_cpu - tree_cpu,
        oriented - estimated,
        oriented_cpu - estimated_cpu
    );
}

/// Binary PLY of float x y z nx ny nz.
fn write_ply(
    path: &Path,
    positions: &[nalgebra::Point3<f64>],
    normals: &[nalgebra::Vector3<f32>],
) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    write!(
        out,
        "ply\nformat binary_little_endian 1.0\nelement vertex {}\n\
         property float x\nproperty float y\nproperty float z\n\
         property float nx\nproperty float ny\nproperty float nz\nend_header\n",
        positions.len()
    )?;
    for (p, n) in positions.iter().zip(normals) {
        for v in [p.x as f32, p.y as f32, p.z as f32, n.x, n.y, n.z] {
            out.write_all(&v.to_le_bytes())?;
        }
    }
    out.flush()
}
