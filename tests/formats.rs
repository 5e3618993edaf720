//! The scanner formats through the public API: LAS 1.0–1.4 in every point
//! format and LAZ, E57 and PCD files made by the reference writers
//! (`tests/data/make_files.py`: laspy with lazrs, pye57, PCD by hand) read
//! to the values they were made with; LAS, LAZ and text written and read
//! back; outputs refused by extension; malformed files refused, and a
//! mutation test (no input may panic the new readers).
//!
//! `cargo test --release --test formats -- --ignored` runs 100,000
//! mutations instead of 2,000.

mod common;
mod job;

use common::Rng;
use job::{Job, attribute, column};
use mlsproj::io::{OutputFormat, OutputWriter, PlyEncoding, PointReader, read_points, schema_of};
use mlsproj::{Attribute, Column, PointCloud, ScalarKind};
use nalgebra::{Point3, Vector3};
use std::path::{Path, PathBuf};

/// A file of `tests/data`.
fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The values of a column as `f64`.
fn values(cloud: &PointCloud, name: &str) -> Vec<f64> {
    column(cloud, name).to_f64()
}

/// True when the cloud has an attribute `name`.
fn has(cloud: &PointCloud, name: &str) -> bool {
    cloud.attributes.iter().any(|a| a.name == name)
}

/// Asserts `actual[i] == expected(i)` within `tolerance` for every point.
fn assert_values(actual: &[f64], expected: impl Fn(f64) -> f64, tolerance: f64, what: &str) {
    assert_eq!(actual.len(), 10, "{what}");
    for (i, value) in actual.iter().enumerate() {
        let want = expected(i as f64);
        assert!(
            (value - want).abs() <= tolerance,
            "{what} of point {i}: {value}, expected {want}"
        );
    }
}

/// Checks a LAS file of `make_files.py` in point format `format`.
fn check_las(path: &Path, format: u8) {
    let name = path.display().to_string();
    let cloud = read_points(path).unwrap();
    assert_eq!(cloud.len(), 10, "{name}");
    assert_eq!(cloud.precision, mlsproj::Precision::Double);
    let axis = |a: usize| cloud.positions.iter().map(|p| p[a]).collect::<Vec<_>>();
    // Millimetres kept at UTM sizes.
    assert_values(&axis(0), |i| 512345.678 + i * 1.001, 1e-7, &name);
    assert_values(&axis(1), |i| 5401234.567 + i * 2.002, 1e-7, &name);
    assert_values(&axis(2), |i| 123.456 + i * 0.003, 1e-7, &name);
    assert_eq!(column(&cloud, "intensity").kind(), ScalarKind::U16);
    assert_values(&values(&cloud, "intensity"), |i| 1000.0 + i, 0.0, &name);
    assert_values(
        &values(&cloud, "return_number"),
        |i| 1.0 + i % 3.0,
        0.0,
        &name,
    );
    assert_values(&values(&cloud, "number_of_returns"), |_| 3.0, 0.0, &name);
    assert_values(&values(&cloud, "classification"), |i| i + 1.0, 0.0, &name);
    let degrees = if format >= 6 { 6.0 } else { 1.0 };
    assert_values(
        &values(&cloud, "scan_angle"),
        |i| (i - 5.0) * degrees,
        1e-3,
        &name,
    );
    assert_values(&values(&cloud, "user_data"), |i| 7.0 * i, 0.0, &name);
    assert_values(&values(&cloud, "point_source_id"), |i| 42.0 + i, 0.0, &name);
    let gps = ![0, 2].contains(&format);
    assert_eq!(has(&cloud, "gps_time"), gps, "{name}");
    if gps {
        assert_values(&values(&cloud, "gps_time"), |i| 1e5 + 0.25 * i, 0.0, &name);
    }
    let rgb = [2, 3, 5, 7, 8, 10].contains(&format);
    assert_eq!(has(&cloud, "red"), rgb, "{name}");
    if rgb {
        assert_eq!(column(&cloud, "red").kind(), ScalarKind::U16);
        assert_values(&values(&cloud, "green"), |i| 2000.0 * i, 0.0, &name);
    }
    assert_eq!(has(&cloud, "nir"), [8, 10].contains(&format), "{name}");
}

#[test]
fn las_and_laz_read_every_point_format_to_its_values() {
    for format in 0..=10 {
        check_las(&data(&format!("format{format}.las")), format);
    }
    for format in [1, 3, 6, 7, 8] {
        check_las(&data(&format!("format{format}.laz")), format);
    }
    // LAS 1.0 (the header of format1.las with its minor version set to 0).
    check_las(&data("format1_v10.las"), 1);
}

#[test]
fn las_extra_bytes_become_typed_attributes() {
    for name in ["extra.las", "extra.laz"] {
        let cloud = read_points(&data(name)).unwrap();
        assert_eq!(column(&cloud, "amplitude").kind(), ScalarKind::F32);
        assert_values(&values(&cloud, "amplitude"), |i| 0.5 * i, 0.0, name);
        // "echo width": its space made a valid property name.
        assert_eq!(column(&cloud, "echo_width").kind(), ScalarKind::U16);
        assert_values(&values(&cloud, "echo_width"), |i| 3.0 * i, 0.0, name);
        // Scaled (0.01) and offset (10): the value, as f64.
        assert_eq!(column(&cloud, "temperature").kind(), ScalarKind::F64);
        assert_values(
            &values(&cloud, "temperature"),
            |i| 20.0 + 0.25 * i,
            1e-9,
            name,
        );
    }
}

#[test]
fn laz_read_in_chunks_equals_read_whole() {
    let path = data("extra.laz");
    let whole = read_points(&path).unwrap();
    let mut reader = PointReader::open(&path).unwrap();
    let mut chunked = reader.read_chunk(3).unwrap();
    loop {
        let chunk = reader.read_chunk(3).unwrap();
        if chunk.is_empty() {
            break;
        }
        chunked.append(&chunk);
    }
    assert_eq!(chunked, whole);
}

/// Writes `cloud`'s positions and attributes to `path` through
/// [`OutputWriter`] in chunks of `chunk` points.
fn write(path: &Path, cloud: &PointCloud, chunk: usize) {
    let axis = |a: usize, range: std::ops::Range<usize>| {
        Column::F64(cloud.positions[range].iter().map(|p| p[a]).collect())
    };
    let columns = |range: std::ops::Range<usize>| {
        let mut columns = vec![
            attribute("x", axis(0, range.clone())),
            attribute("y", axis(1, range.clone())),
            attribute("z", axis(2, range.clone())),
        ];
        for a in &cloud.attributes {
            columns.push(attribute(&a.name, a.values.slice(range.clone())));
        }
        columns
    };
    let schema = schema_of(&columns(0..0));
    let comments = ["made by a test".to_string()];
    let mut writer = OutputWriter::create(
        path,
        &schema,
        cloud.len(),
        PlyEncoding::BinaryLittleEndian,
        &comments,
    )
    .unwrap();
    for start in (0..cloud.len()).step_by(chunk) {
        let end = (start + chunk).min(cloud.len());
        writer.write_chunk(&columns(start..end)).unwrap();
    }
    writer.finish().unwrap();
}

#[test]
fn las_and_laz_round_trip_standard_fields_and_extra_bytes() {
    let job = Job::new();
    let original = read_points(&data("extra.laz")).unwrap();
    for name in ["back.las", "back.laz", "BACK.LAZ"] {
        let path = job.path(name);
        write(&path, &original, 4);
        let back = read_points(&path).unwrap();
        // The written scale resolves far below the file's millimetres.
        for (a, b) in original.positions.iter().zip(&back.positions) {
            assert!((a - b).norm() < 1e-6, "{name}: {a} became {b}");
        }
        assert_eq!(back.attributes, original.attributes, "{name}");
    }
}

/// `count` random points of a 500 m UTM tile, 50 m high.
fn utm_tile(count: usize, seed: u64) -> Vec<Point3<f64>> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| {
            Point3::new(
                rng.range(600_000.0, 600_500.0),
                rng.range(4e6, 4e6 + 500.0),
                rng.range(0.0, 50.0),
            )
        })
        .collect()
}

#[test]
fn las_and_laz_of_many_pieces_round_trip_streamed() {
    // More points than a LAZ chunk or a LAS piece (50,000 each), written
    // and read in chunks that do not line up with them.
    let count = 120_000;
    let positions = utm_tile(count, 7);
    let cloud = PointCloud {
        attributes: vec![
            attribute(
                "intensity",
                Column::U16((0..count).map(|i| i as u16).collect()),
            ),
            attribute("nx", Column::F32((0..count).map(|i| i as f32).collect())),
            attribute("index", Column::U32((0..count as u32).collect())),
        ],
        ..PointCloud::from_positions(positions)
    };
    let job = Job::new();
    for name in ["big.laz", "big.las"] {
        let path = job.path(name);
        write(&path, &cloud, 30_000);
        let mut reader = PointReader::open(&path).unwrap();
        assert_eq!(reader.len(), count);
        let mut read = 0;
        loop {
            let chunk = reader.read_chunk(7_001).unwrap();
            if chunk.is_empty() {
                break;
            }
            for (offset, p) in chunk.positions.iter().enumerate() {
                assert!((p - cloud.positions[read + offset]).norm() < 1e-5, "{name}");
            }
            assert_eq!(
                column(&chunk, "index"),
                &cloud.attributes[2].values.slice(read..read + chunk.len()),
                "{name}"
            );
            assert_eq!(
                column(&chunk, "nx"),
                &cloud.attributes[1].values.slice(read..read + chunk.len()),
                "{name}"
            );
            read += chunk.len();
        }
        assert_eq!(read, count, "{name}");
    }
}

#[test]
fn a_streamed_las_read_stops_at_its_fault_and_stays_stopped() {
    // 120,000 points in pieces of 50,000: the file cut short in its last
    // piece, read in chunks that do not line up with the pieces.
    let count = 120_000;
    let cloud = PointCloud::from_positions(utm_tile(count, 11));
    let job = Job::new();
    let whole = job.path("whole.las");
    write(&whole, &cloud, 30_000);
    let bytes = std::fs::read(&whole).unwrap();
    let cut = job.write("cut.las", &bytes[..bytes.len() - 100]);
    let mut reader = PointReader::open(&cut).unwrap();
    let mut read = 0;
    let fault = loop {
        match reader.read_chunk(7_001) {
            Ok(chunk) => {
                assert!(!chunk.is_empty(), "a cut file read to its end");
                for (offset, p) in chunk.positions.iter().enumerate() {
                    assert!((p - cloud.positions[read + offset]).norm() < 1e-5);
                }
                read += chunk.len();
            }
            Err(error) => break error.to_string(),
        }
    };
    assert!(fault.contains("ends before its last point"), "{fault}");
    assert!(fault.contains(&*cut.to_string_lossy()), "{fault}");
    // Every point before the last piece came out, none after the fault.
    assert!((98_000..100_000).contains(&read), "{read}");
    let again = reader.read_chunk(7_001).unwrap_err().to_string();
    assert!(again.contains("reading stopped"), "{again}");
}

#[test]
fn las_and_laz_read_without_attributes_keep_positions_and_normals() {
    // Point format 6 (layered: laz-rs skips the layers not asked for),
    // normals as extra bytes beside standard fields.
    let count = 60_000;
    let positions = utm_tile(count, 11);
    let unit = |i: usize| Vector3::new((i as f32).cos(), (i as f32).sin(), 0.0);
    let axis = |a: usize| Column::F32((0..count).map(|i| unit(i)[a]).collect());
    let cloud = PointCloud {
        attributes: vec![
            attribute("nx", axis(0)),
            attribute("ny", axis(1)),
            attribute("nz", axis(2)),
            attribute(
                "intensity",
                Column::U16((0..count).map(|i| (i * 7) as u16).collect()),
            ),
            attribute(
                "gps_time",
                Column::F64((0..count).map(|i| i as f64 * 1e-3).collect()),
            ),
        ],
        ..PointCloud::from_positions(positions)
    };
    let job = Job::new();
    for name in ["plain.las", "packed.laz"] {
        let path = job.path(name);
        write(&path, &cloud, 25_000);
        let whole = read_points(&path).unwrap();
        assert!(
            has(&whole, "intensity") && has(&whole, "gps_time"),
            "{name}"
        );
        let mut reader = PointReader::open(&path).unwrap();
        reader.skip_attributes();
        let bare = reader.read_chunk(count).unwrap();
        assert_eq!(bare.positions, whole.positions, "{name}");
        assert!(bare.attributes.is_empty(), "{name}");
        let normals = bare.normals.as_ref().expect("normals from nx ny nz");
        assert_eq!(Some(normals), whole.normals.as_ref(), "{name}");
        for (i, n) in normals.iter().enumerate() {
            assert!((n - unit(i)).norm() < 1e-6, "{name}: normal {i} is {n}");
        }
    }
}

#[test]
fn e57_reads_every_scan_posed_with_its_scanner() {
    let path = data("scans.e57");
    let reader = PointReader::open(&path).unwrap();
    assert_eq!(
        reader.scanner_positions(),
        [Point3::origin(), Point3::new(10.0, 20.0, 1.5)]
    );
    let cloud = read_points(&path).unwrap();
    assert_eq!(cloud.len(), 20);
    let scan = values(&cloud, "scan_index");
    for (index, p) in cloud.positions.iter().enumerate() {
        let i = (index % 10) as f64;
        let expected = if index < 10 {
            Point3::new(1.0 + i, 2.0 * i, 0.5)
        } else {
            // Turned 90° about z, then moved by (10, 20, 1.5).
            Point3::new(10.0 - 2.0 * i, 21.0 + i, 3.0)
        };
        assert!((p - expected).norm() < 1e-9, "point {index}: {p}");
        assert_eq!(scan[index], (index / 10) as f64);
    }
    let colours = cloud.colours.as_ref().unwrap();
    assert_eq!(colours[3], [30, 60, 255]);
    assert_eq!(colours[13], [30, 60, 254]);
    let intensity = values(&cloud, "intensity");
    assert!((intensity[4] - 0.4).abs() < 1e-6, "{}", intensity[4]);
    assert_eq!(values(&cloud, "row")[7], 1.0);
    assert_eq!(values(&cloud, "column")[7], 2.0);
}

#[test]
fn pcd_ascii_binary_and_compressed_read_alike_with_every_field() {
    let ascii = read_points(&data("cloud_ascii.pcd")).unwrap();
    for name in ["cloud_binary.pcd", "cloud_compressed.pcd"] {
        assert_eq!(read_points(&data(name)).unwrap(), ascii, "{name}");
    }
    let cloud = ascii;
    assert_eq!(cloud.len(), 10);
    assert_eq!(cloud.precision, mlsproj::Precision::Single);
    for (k, p) in cloud.positions.iter().enumerate() {
        let k = k as f64;
        assert_eq!(*p, Point3::new(0.5 * k, -0.25 * k, 3.0 + k));
    }
    let normal = cloud.normals.as_ref().unwrap()[3];
    assert!((normal - Vector3::new(3.0, 1.0, 2.0).normalize()).norm() < 1e-6);
    assert_eq!(cloud.colours.as_ref().unwrap()[4], [40, 80, 251]);
    let names: Vec<&str> = cloud.attributes.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        ["intensity", "label", "hist_0", "hist_1", "timestamp"]
    );
    assert_eq!(
        column(&cloud, "intensity"),
        &Column::U16((0..10).map(|k| 100 * k).collect())
    );
    assert_eq!(
        column(&cloud, "label"),
        &Column::I32((0..10).map(|k| -k).collect())
    );
    assert_eq!(
        column(&cloud, "hist_1"),
        &Column::U8((0..10).map(|k| 2 * k).collect())
    );
    assert_values(
        &values(&cloud, "timestamp"),
        |k| 1e9 + 0.5 * k,
        0.0,
        "timestamp",
    );
}

#[test]
fn text_outputs_name_their_columns_and_read_back() {
    let job = Job::new();
    let cloud = PointCloud {
        attributes: vec![
            attribute("nx", Column::F32(vec![0.0, 0.6])),
            attribute("ny", Column::F32(vec![0.0, 0.8])),
            attribute("nz", Column::F32(vec![1.0, 0.0])),
            attribute("status", Column::U8(vec![0, 3])),
        ],
        ..PointCloud::from_positions(vec![
            Point3::new(512345.678, 5401234.567, 0.1),
            Point3::new(1.0 / 3.0, -2.5, 1e-12),
        ])
    };
    for (name, header) in [
        ("out.xyz", "x y z nx ny nz status"),
        ("out.csv", "x,y,z,nx,ny,nz,status"),
        ("out.txt", "x y z nx ny nz status"),
    ] {
        let path = job.path(name);
        write(&path, &cloud, 1);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..2], ["# made by a test", header], "{name}");
        let back = read_points(&path).unwrap();
        assert_eq!(back.positions, cloud.positions, "{name}");
        assert_eq!(
            back.normals.as_ref().unwrap()[1],
            Vector3::new(0.6, 0.8, 0.0)
        );
        assert_eq!(column(&back, "status"), &Column::F64(vec![0.0, 3.0]));
    }
}

#[test]
fn unknown_output_extensions_are_refused_before_writing() {
    let job = Job::new();
    for name in ["out.foo", "out", "out.pcd", "out.e57"] {
        let path = job.path(name);
        let err = OutputFormat::from_path(&path).unwrap_err().to_string();
        assert!(err.contains("unknown output format"), "{err}");
        let schema = [("x".to_string(), ScalarKind::F64)];
        assert!(OutputWriter::create(&path, &schema, 0, PlyEncoding::Ascii, &[]).is_err());
        assert!(!path.exists());
    }
    assert_eq!(
        OutputFormat::from_path(Path::new("a.LAZ")).unwrap(),
        OutputFormat::Las { compressed: true }
    );
}

#[test]
fn las_outputs_need_positions_and_short_extra_names() {
    let job = Job::new();
    let path = job.path("out.las");
    let create = |schema: &[(&str, ScalarKind)]| {
        let schema: Vec<_> = schema.iter().map(|(n, k)| (n.to_string(), *k)).collect();
        OutputWriter::create(&path, &schema, 1, PlyEncoding::Ascii, &[])
    };
    assert!(create(&[("x", ScalarKind::F64), ("y", ScalarKind::F64)]).is_err());
    let long = "a_name_longer_than_thirty_two_bytes";
    let xyz = [
        ("x", ScalarKind::F64),
        ("y", ScalarKind::F64),
        ("z", ScalarKind::F64),
    ];
    assert!(create(&[&xyz[..], &[(long, ScalarKind::U8)]].concat()).is_err());
    // Declared one point, finished with none: no file.
    assert!(create(&xyz).unwrap().finish().is_err());
    assert!(!path.exists());
}

/// The error of reading `path`, checked to be one line naming the file.
fn refusal(path: &Path) -> String {
    let message = read_points(path).unwrap_err().to_string();
    assert!(message.contains(&*path.to_string_lossy()), "{message}");
    assert!(!message.contains('\n'), "{message}");
    message
}

#[test]
fn malformed_scanner_files_are_refused_naming_the_fault() {
    let job = Job::new();
    let las = std::fs::read(data("format3.las")).unwrap();
    let truncated = job.write("cut.las", &las[..las.len() - 10]);
    let message = refusal(&truncated);
    assert!(message.contains("point"), "{message}");
    let header_only = job.write("header.las", &las[..200]);
    refusal(&header_only);
    // A LAZ header declaring a point more than its chunk holds (the point
    // count of LAS 1.2 at byte 107).
    let mut laz = std::fs::read(data("format3.laz")).unwrap();
    let count = u32::from_le_bytes(laz[107..111].try_into().unwrap());
    laz[107..111].copy_from_slice(&(count + 1).to_le_bytes());
    let message = refusal(&job.write("more.laz", &laz));
    assert!(message.contains("end before the count"), "{message}");
    let signature = job.write("wrong.las", b"LASX not a las file");
    assert!(refusal(&signature).contains("not a LAS file"));
    let e57 = std::fs::read(data("scans.e57")).unwrap();
    refusal(&job.write("cut.e57", &e57[..4000]));
    let pcd = std::fs::read_to_string(data("cloud_ascii.pcd")).unwrap();
    let bad_type = job.write("type.pcd", pcd.replace("TYPE F", "TYPE Q").as_bytes());
    assert!(refusal(&bad_type).contains("TYPE"));
    let binary = std::fs::read(data("cloud_binary.pcd")).unwrap();
    let cut = job.write("cut.pcd", &binary[..binary.len() - 1]);
    assert!(refusal(&cut).contains("body"));
    let compressed = std::fs::read(data("cloud_compressed.pcd")).unwrap();
    let cut = job.write("cutc.pcd", &compressed[..compressed.len() - 5]);
    refusal(&cut);
}

/// Applies one random corruption to `bytes`: a flipped bit, a random
/// byte, an inserted or removed run, or a truncation.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let at = rng.below(bytes.len() + 1);
    match rng.below(6) {
        0 if at < bytes.len() => bytes[at] ^= 1 << rng.below(8),
        1 if at < bytes.len() => bytes[at] = rng.next_u64() as u8,
        2 => {
            let interesting = [0u8, 0xff, 0x7f, 0x80, b'\n', b' ', b'9'];
            bytes.insert(at, interesting[rng.below(interesting.len())]);
        }
        3 => {
            let end = (at + 1 + rng.below(16)).min(bytes.len());
            bytes.drain(at.min(end)..end);
        }
        // Most faults are in headers: aim at the first 400 bytes.
        4 if !bytes.is_empty() => {
            let at = rng.below(bytes.len().min(400));
            bytes[at] = rng.next_u64() as u8;
        }
        _ => bytes.truncate(at),
    }
}

/// Runs `cases` random mutations of small valid files through
/// `read_points` and the chunked reader: each must give `Ok` or `Err`,
/// never panic.
fn mutation_run(cases: usize) {
    let seeds: Vec<(&str, Vec<u8>)> = [
        "format0.las",
        "format7.las",
        "extra.las",
        "format3.laz",
        "extra.laz",
        "scans.e57",
        "cloud_ascii.pcd",
        "cloud_binary.pcd",
        "cloud_compressed.pcd",
    ]
    .iter()
    .map(|name| (*name, std::fs::read(data(name)).unwrap()))
    .collect();
    common::mutation_run(&seeds, cases, 0x5eed_f00d, mutate);
}

#[test]
fn mutated_scanner_files_never_panic() {
    mutation_run(2_000);
}

#[test]
#[ignore = "long: cargo test --release --test formats -- --ignored"]
fn mutated_scanner_files_never_panic_long() {
    mutation_run(100_000);
}

#[test]
fn attributes_keep_their_names_when_written_as_las() {
    // A PLY-style output: computed properties go to extra bytes under
    // their names, 8-bit colours to the 16-bit LAS colour.
    let job = Job::new();
    let cloud = PointCloud {
        attributes: vec![
            attribute("red", Column::U8(vec![255, 1])),
            attribute("green", Column::U8(vec![0, 2])),
            attribute("blue", Column::U8(vec![10, 3])),
            attribute("mean_curvature", Column::F32(vec![0.5, -1.0])),
            attribute("status", Column::U8(vec![0, 4])),
            attribute("classification", Column::U8(vec![12, 2])),
        ],
        ..PointCloud::from_positions(vec![Point3::new(0.0, 0.0, 0.0), Point3::new(1.0, 1.0, 1.0)])
    };
    let path = job.path("out.las");
    write(&path, &cloud, 2);
    let back = read_points(&path).unwrap();
    assert_eq!(column(&back, "red"), &Column::U16(vec![65535, 257]));
    assert_eq!(
        column(&back, "mean_curvature"),
        &Column::F32(vec![0.5, -1.0])
    );
    assert_eq!(column(&back, "status"), &Column::U8(vec![0, 4]));
    assert_eq!(column(&back, "classification"), &Column::U8(vec![12, 2]));
    let names: Vec<&str> = back
        .attributes
        .iter()
        .map(|a: &Attribute| a.name.as_str())
        .collect();
    assert_eq!(names.iter().filter(|n| **n == "red").count(), 1);
}
