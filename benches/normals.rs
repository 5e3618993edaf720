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
use mlsproj::normals::{DEFAULT_NEIGHBOURS, estimate_oriented};

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
    let start = Instant::now();
    let normals = estimate_oriented(&cloud.positions, DEFAULT_NEIGHBOURS, Orientation::Auto)?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "normals: {} points, estimate + orient {seconds:.3} s on {} threads",
        cloud.positions.len(),
        rayon::current_num_threads()
    );
    if let Some(out) = paths.get(1) {
        write_ply(out, &cloud.positions, &normals)
            .map_err(|e| mlsproj::Error::io(out.clone(), e))?;
    }
    Ok(())
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
