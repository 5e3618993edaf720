//! Point-file read throughput as `mlsproj run` reads its cloud: the whole
//! file through `PointReader` (LAZ decompressed and converted in parallel),
//! so that `benches/laz_read.py` can time it beside laspy in one run.
//!
//! `cargo bench --bench read_points -- [--skip-attributes] FILE...` prints
//! one line per file:
//! `FILE POINTS WALL_S CPU_S`, CPU being user + system time of all threads
//! (from /proc/self/stat, 10 ms resolution; `nan` elsewhere than Linux).
//! Without files, as `cargo bench` runs it, it times a 2-million-point
//! sphere with normals that it writes as binary PLY and as LAZ with
//! mlsproj's own writers in target/bench-io.

use mlsproj::io::{OutputWriter, PlyEncoding, PointReader};
use mlsproj::{Attribute, Column, ScalarKind};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Seconds of CPU (user + system, every thread) this process has used.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // The fields after the command name (in parentheses, maybe with
    // spaces): state first, utime and stime 12th and 13th, in ticks of
    // 1/100 s.
    let after = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |at: usize| fields.get(at).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

/// Reads `path` whole, as a job reads its cloud (without attributes when
/// they play no part: `skip_attributes`); returns its points.
fn read(path: &Path, skip_attributes: bool) -> usize {
    let mut reader = PointReader::open(path).expect("a readable point file");
    if skip_attributes {
        reader.skip_attributes();
    }
    let total = reader.len();
    reader.read_chunk(total).expect("readable points").len()
}

/// A unit sphere of `n` points (a Fibonacci spiral, radii off by up to
/// ±1 mm) with their normals, as output columns.
fn sphere(n: usize) -> Vec<Attribute> {
    let golden = std::f64::consts::PI * (3.0 - 5f64.sqrt());
    let (mut position, mut normal) = ([vec![], vec![], vec![]], [vec![], vec![], vec![]]);
    for i in 0..n {
        let z = 1.0 - 2.0 * (i as f64 + 0.5) / n as f64;
        let (s, angle) = ((1.0 - z * z).sqrt(), golden * i as f64);
        let axis = [s * angle.cos(), s * angle.sin(), z];
        let radius = 1.0 + 1e-3 * ((i as f64 * 12.9898).sin() * 43758.5453).fract();
        for k in 0..3 {
            position[k].push(axis[k] * radius);
            normal[k].push(axis[k] as f32);
        }
    }
    let [x, y, z] = position.map(Column::F64);
    let [nx, ny, nz] = normal.map(Column::F32);
    [
        ("x", x),
        ("y", y),
        ("z", z),
        ("nx", nx),
        ("ny", ny),
        ("nz", nz),
    ]
    .into_iter()
    .map(|(name, values)| Attribute {
        name: name.to_owned(),
        values,
    })
    .collect()
}

/// The sphere written as binary PLY and LAZ in target/bench-io.
fn sample_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-io");
    std::fs::create_dir_all(&dir).expect("target/ is writable");
    let columns = sphere(2_000_000);
    let schema: Vec<(String, ScalarKind)> = columns
        .iter()
        .map(|c| (c.name.clone(), c.values.kind()))
        .collect();
    ["sphere.ply", "sphere.laz"]
        .into_iter()
        .map(|name| {
            let path = dir.join(name);
            let count = columns[0].values.len();
            let mut writer =
                OutputWriter::create(&path, &schema, count, PlyEncoding::BinaryLittleEndian, &[])
                    .expect("creates");
            writer.write_chunk(&columns).expect("writes");
            writer.finish().expect("finishes");
            path
        })
        .collect()
}

fn main() {
    // `cargo bench` passes `--bench`; everything else is a file.
    let skip_attributes = std::env::args().any(|arg| arg == "--skip-attributes");
    let files: Vec<PathBuf> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .map(PathBuf::from)
        .collect();
    let files = if files.is_empty() {
        sample_files()
    } else {
        files
    };
    for path in files {
        let (cpu, wall) = (cpu_seconds(), Instant::now());
        let points = read(&path, skip_attributes);
        let (wall, cpu) = (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        println!("{} {points} {wall:.3} {cpu:.2}", path.display());
    }
}
