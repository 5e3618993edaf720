//! Binary PLY read and write throughput (MB/s of file), the file in the
//! page cache: a 10-million-vertex cloud of double `x y z`, float
//! `nx ny nz` and an int label (400 MB), as a scanner's export would carry.
//!
//! `cargo bench --bench io_throughput`; criterion prints the throughput.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mlsproj::io::{PlyEncoding, PlyVertexReader, read_points, write_ply};
use mlsproj::{Attribute, Column};

const VERTICES: usize = 10_000_000;

fn columns() -> Vec<Attribute> {
    let coordinate = |k: usize| (0..VERTICES).map(|i| (i * k) as f64 * 1e-3).collect();
    let attribute = |name: &str, values| Attribute {
        name: name.to_owned(),
        values,
    };
    vec![
        attribute("x", Column::F64(coordinate(1))),
        attribute("y", Column::F64(coordinate(2))),
        attribute("z", Column::F64(coordinate(3))),
        attribute("nx", Column::F32(vec![0.0; VERTICES])),
        attribute("ny", Column::F32(vec![0.0; VERTICES])),
        attribute("nz", Column::F32(vec![1.0; VERTICES])),
        attribute("label", Column::I32(vec![7; VERTICES])),
    ]
}

fn throughput(c: &mut Criterion) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-io");
    std::fs::create_dir_all(&dir).expect("target/ is writable");
    let path = dir.join("big.ply");
    let columns = columns();
    write_ply(&path, &columns, PlyEncoding::BinaryLittleEndian, &[]).expect("writes");
    let bytes = std::fs::metadata(&path).expect("written").len();

    let mut group = c.benchmark_group("binary_ply");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("read_whole", |b| {
        b.iter(|| read_points(&path).expect("reads").len())
    });
    group.bench_function("read_chunks_of_2^20", |b| {
        b.iter(|| {
            let mut reader = PlyVertexReader::open(&path).expect("opens");
            let mut points = 0;
            loop {
                let chunk = reader.read_chunk(1 << 20).expect("reads");
                if chunk.is_empty() {
                    break points;
                }
                points += chunk.len();
            }
        })
    });
    // Includes the write to a temporary file and the atomic rename (no
    // fsync: see io/atomic.rs).
    let out = dir.join("out.ply");
    group.bench_function("write", |b| {
        b.iter(|| write_ply(&out, &columns, PlyEncoding::BinaryLittleEndian, &[]).expect("writes"))
    });
    group.finish();
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&path);
}

criterion_group!(benches, throughput);
criterion_main!(benches);
