//! The point-file formats through the public API: PLY round trips in every
//! scalar type and encoding, hand-written PLY variants (big-endian, type
//! spellings, meshes, CRLF), text clouds by column count, every malformed
//! input producing an error that names the file and the line or element,
//! atomic writing, a mutation test (no input may panic the readers) and the
//! real sample files in `tests/data` and `assets`.
//!
//! The long runs are ignored by default:
//! `cargo test --release --test io_formats -- --ignored` runs 100,000
//! mutations (throughput is measured by `cargo bench --bench io_throughput`).

mod common;
mod job;

use common::{Rng, real};
use job::{Job, attribute, ply, xyz_header};
use std::path::{Path, PathBuf};

use mlsproj::io::{PlyEncoding, PlyVertexReader, PlyVertexWriter, read_points, write_ply};
use mlsproj::{Attribute, Column, PointCloud, Precision, ScalarKind};
use nalgebra::{Point3, Vector3};

/// The error of reading `path`, checked to name the file.
fn read_error(path: &Path) -> String {
    let message = read_points(path).unwrap_err().to_string();
    assert!(
        message.contains(&*path.to_string_lossy()),
        "error does not name the file: {message}"
    );
    message
}

fn assert_contains(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{message:?} lacks {part:?}");
    }
}

/// Positions in three different types, with extreme values.
const X: [f64; 4] = [1.5, -2.25e10, 0.0, 6_378_137.123_456_789];
const Y: [f32; 4] = [0.1, -0.0, f32::MAX, 1e-45];
const Z: [i16; 4] = [i16::MIN, -1, 0, i16::MAX];

/// Columns of every scalar type, with their extreme values: positions of
/// three different types, normals, colours and one attribute per type.
fn every_type() -> Vec<Attribute> {
    vec![
        attribute("x", Column::F64(X.to_vec())),
        attribute("y", Column::F32(Y.to_vec())),
        attribute("z", Column::I16(Z.to_vec())),
        attribute("nx", Column::F32(vec![1.0, 0.0, 0.6, -1.0])),
        attribute("ny", Column::F32(vec![0.0, 1.0, 0.8, 0.0])),
        attribute("nz", Column::F32(vec![0.0, 0.0, 0.0, 0.0])),
        attribute("red", Column::U8(vec![0, 255, 7, 128])),
        attribute("green", Column::U8(vec![1, 2, 3, 4])),
        attribute("blue", Column::U8(vec![9, 8, 7, 6])),
        attribute("a_i8", Column::I8(vec![i8::MIN, -1, 0, i8::MAX])),
        attribute("a_u8", Column::U8(vec![0, 1, 254, 255])),
        attribute("a_i16", Column::I16(vec![i16::MIN, -1, 0, i16::MAX])),
        attribute("a_u16", Column::U16(vec![0, 1, 2, u16::MAX])),
        attribute("a_i32", Column::I32(vec![i32::MIN, -1, 0, i32::MAX])),
        attribute("a_u32", Column::U32(vec![0, 1, 2, u32::MAX])),
        attribute(
            "a_f32",
            Column::F32(vec![f32::MIN_POSITIVE, f32::INFINITY, -1e-40, 3.5]),
        ),
        attribute(
            "a_f64",
            Column::F64(vec![f64::NEG_INFINITY, 1e-300, f64::MAX, -0.1]),
        ),
    ]
}

/// What reading the columns of [`every_type`] back must give.
fn check_every_type(cloud: &PointCloud) {
    let positions: Vec<_> = (0..4)
        .map(|i| Point3::new(X[i], f64::from(Y[i]), f64::from(Z[i])))
        .collect();
    assert_eq!(cloud.positions, positions);
    assert_eq!(cloud.precision, Precision::Double);
    let normals = cloud.normals.as_ref().expect("normals");
    assert_eq!(normals[2], Vector3::new(0.6, 0.8, 0.0));
    assert_eq!(
        cloud.colours.as_deref(),
        Some(&[[0, 1, 9], [255, 2, 8], [7, 3, 7], [128, 4, 6]][..])
    );
    assert_eq!(cloud.attributes, every_type()[9..]);
}

#[test]
fn every_scalar_type_round_trips_in_both_encodings() {
    let job = Job::new();
    for encoding in [PlyEncoding::BinaryLittleEndian, PlyEncoding::Ascii] {
        let path = job.path(&format!("{encoding:?}.ply"));
        let comments = ["made by a test".to_string(), String::new()];
        write_ply(&path, &every_type(), encoding, &comments).unwrap();
        check_every_type(&read_points(&path).unwrap());
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        assert!(text.contains("comment made by a test\n"), "{encoding:?}");
    }
}

#[test]
fn nan_survives_both_encodings() {
    let job = Job::new();
    for encoding in [PlyEncoding::BinaryLittleEndian, PlyEncoding::Ascii] {
        let path = job.path("nan.ply");
        let columns = [
            attribute("x", Column::F32(vec![f32::NAN])),
            attribute("y", Column::F64(vec![f64::NAN])),
            attribute("z", Column::F32(vec![0.0])),
        ];
        write_ply(&path, &columns, encoding, &[]).unwrap();
        let cloud = read_points(&path).unwrap();
        assert!(cloud.positions[0].x.is_nan() && cloud.positions[0].y.is_nan());
        assert_eq!(cloud.precision, Precision::Double);
    }
}

/// Rows `range` of columns.
fn rows(columns: &[Attribute], range: std::ops::Range<usize>) -> Vec<Attribute> {
    columns
        .iter()
        .map(|column| attribute(&column.name, column.values.slice(range.clone())))
        .collect()
}

/// Points `range` of a cloud.
fn slice(cloud: &PointCloud, range: std::ops::Range<usize>) -> PointCloud {
    PointCloud {
        positions: cloud.positions[range.clone()].to_vec(),
        normals: cloud.normals.as_ref().map(|n| n[range.clone()].to_vec()),
        colours: cloud.colours.as_ref().map(|c| c[range.clone()].to_vec()),
        attributes: rows(&cloud.attributes, range),
        precision: cloud.precision,
        normal_precision: cloud.normal_precision,
    }
}

/// Reads `path` `chunk` vertices at a time, checks each chunk against the
/// same points of `whole`, and returns the number of chunks.
fn check_chunks(path: &Path, chunk: usize, whole: &PointCloud) -> usize {
    let mut reader = PlyVertexReader::open(path).unwrap();
    assert!(reader.read_chunk(0).unwrap().is_empty());
    let (mut start, mut chunks) = (0, 0);
    loop {
        let next = reader.read_chunk(chunk).unwrap();
        if next.is_empty() {
            assert_eq!(start, whole.len());
            return chunks;
        }
        let end = start + next.len();
        assert_eq!(next, slice(whole, start..end));
        (start, chunks) = (end, chunks + 1);
    }
}

#[test]
fn streamed_writing_and_reading_match_the_whole_file() {
    let job = Job::new();
    let columns = every_type();
    let schema: Vec<(String, ScalarKind)> = columns
        .iter()
        .map(|c| (c.name.clone(), c.values.kind()))
        .collect();
    for encoding in [PlyEncoding::BinaryLittleEndian, PlyEncoding::Ascii] {
        let whole = job.path("whole.ply");
        let streamed = job.path(&format!("streamed_{encoding:?}.ply"));
        write_ply(&whole, &columns, encoding, &[]).unwrap();
        let mut writer = PlyVertexWriter::create(&streamed, &schema, 4, encoding, &[]).unwrap();
        for range in [0..1, 1..1, 1..4] {
            writer.write_chunk(&rows(&columns, range)).unwrap();
        }
        assert!(!streamed.exists(), "visible before finish");
        writer.finish().unwrap();
        assert_eq!(
            std::fs::read(&whole).unwrap(),
            std::fs::read(&streamed).unwrap()
        );

        let mut reader = PlyVertexReader::open(&streamed).unwrap();
        assert_eq!((reader.len(), reader.precision()), (4, Precision::Double));
        assert_eq!(reader.read_chunk(usize::MAX).unwrap().len(), 4);
        assert!(reader.read_chunk(10).unwrap().is_empty());
        let whole = read_points(&streamed).unwrap();
        for chunk in [1, 3] {
            assert_eq!(
                check_chunks(&streamed, chunk, &whole),
                4usize.div_ceil(chunk)
            );
        }
    }
}

/// Clouds larger than a block (2 MiB of records) are read and written in
/// pieces on every core, the next block read while one is decoded: every
/// row must land in its place, in any chunking, and a body cut short in a
/// later block must still name the first vertex missing.
#[test]
fn bodies_of_many_blocks_round_trip_and_name_where_they_end() {
    let job = Job::new();
    const ROWS: usize = 200_000;
    let value = |row: usize, salt: usize| ((row * 7919 + salt * 104_729) % 65_521) as f32;
    let float = |name: &str, salt: usize| {
        attribute(
            name,
            Column::F32((0..ROWS).map(|row| value(row, salt)).collect()),
        )
    };
    let byte = |name: &str, salt: usize| {
        attribute(
            name,
            Column::U8((0..ROWS).map(|row| value(row, salt) as u8).collect()),
        )
    };
    let mut columns: Vec<Attribute> = ["x", "y", "z", "nx", "ny", "nz"]
        .iter()
        .enumerate()
        .map(|(salt, name)| float(name, salt))
        .collect();
    columns.extend([byte("red", 6), byte("green", 7), byte("blue", 8)]);
    columns.push(attribute(
        "intensity",
        Column::U16((0..ROWS).map(|row| value(row, 9) as u16).collect()),
    ));
    let path = job.path("many.ply");
    write_ply(&path, &columns, PlyEncoding::BinaryLittleEndian, &[]).unwrap();
    let whole = read_points(&path).unwrap();
    assert_eq!(whole.len(), ROWS);
    // Every row, so that a piece's border (the last, short piece too)
    // cannot shift one.
    for row in 0..ROWS {
        assert_eq!(
            whole.positions[row],
            Point3::new(value(row, 0), value(row, 1), value(row, 2)).cast::<f64>(),
            "position of row {row}"
        );
        assert_eq!(
            whole.normals.as_ref().unwrap()[row],
            Vector3::new(value(row, 3), value(row, 4), value(row, 5)),
            "normal of row {row}"
        );
        assert_eq!(
            whole.colours.as_ref().unwrap()[row],
            [6, 7, 8].map(|salt| value(row, salt) as u8),
            "colour of row {row}"
        );
    }
    assert_eq!(whole.attributes[0].values, columns[9].values);
    assert_eq!(check_chunks(&path, 70_001, &whole), 3);

    let bytes = std::fs::read(&path).unwrap();
    let record = 6 * 4 + 3 + 2;
    let cut = bytes.len() - (ROWS - 150_000) * record + 7;
    let message = read_error(&job.write("cut.ply", &bytes[..cut]));
    assert_contains(&message, &["vertex 150000", "does not match"]);
}

#[test]
fn writing_is_atomic() {
    let job = Job::new();
    let path = job.path("out.ply");
    let uneven = [
        attribute("x", Column::F32(vec![1.0, 2.0])),
        attribute("y", Column::F32(vec![1.0])),
    ];
    for encoding in [PlyEncoding::BinaryLittleEndian, PlyEncoding::Ascii] {
        let message = write_ply(&path, &uneven, encoding, &[])
            .unwrap_err()
            .to_string();
        assert_contains(&message, &[&path.to_string_lossy(), "'y' has 1 values"]);
    }
    let schema = [("x".to_string(), ScalarKind::F32)];
    let mut writer = PlyVertexWriter::create(&path, &schema, 2, PlyEncoding::Ascii, &[]).unwrap();
    writer
        .write_chunk(&[attribute("x", Column::F32(vec![1.0]))])
        .unwrap();
    drop(writer);
    assert_eq!(
        std::fs::read_dir(job.folder()).unwrap().count(),
        0,
        "files left behind"
    );

    let missing = job.path("no such folder");
    let message = write_ply(
        &missing.join("out.ply"),
        &uneven[..1],
        PlyEncoding::Ascii,
        &[],
    )
    .unwrap_err()
    .to_string();
    assert_contains(&message, &[&missing.to_string_lossy()]);
}

/// Appends values in little- or big-endian order.
macro_rules! put {
    ($bytes:expr, $big:expr, $($value:expr),+) => {
        $(if $big {
            $bytes.extend_from_slice(&$value.to_be_bytes())
        } else {
            $bytes.extend_from_slice(&$value.to_le_bytes())
        })+
    };
}

#[test]
fn big_endian_file_is_decoded() {
    let job = Job::new();
    let header = "format binary_big_endian 1.0\nelement vertex 2\nproperty double x\n\
                  property float y\nproperty short z\nproperty uint label\n";
    let mut body = Vec::new();
    put!(body, true, 1.25f64, -2.5f32, -3i16, 70_000u32);
    put!(body, true, 1e10f64, 0.5f32, 300i16, 1u32);
    let path = job.write("be.ply", &ply(header, &body));
    let cloud = read_points(&path).unwrap();
    assert_eq!(
        cloud.positions,
        [Point3::new(1.25, -2.5, -3.0), Point3::new(1e10, 0.5, 300.0)]
    );
    assert_eq!(
        cloud.attributes,
        [attribute("label", Column::U32(vec![70_000, 1]))]
    );
    assert_eq!(cloud.precision, Precision::Double);
}

#[test]
fn both_type_spellings_are_read() {
    let job = Job::new();
    let header = "format ascii 1.0\nelement vertex 1\nproperty float32 x\nproperty float32 y\n\
                  property float32 z\nproperty int8 a\nproperty uint8 b\nproperty int16 c\n\
                  property uint16 d\nproperty int32 e\nproperty uint32 f\nproperty float64 g\n\
                  property char h\nproperty ushort i\n";
    let path = job.write(
        "spellings.ply",
        &ply(header, b"1 2 3 -4 5 -6 7 -8 9 1.5 -1 2\n"),
    );
    let cloud = read_points(&path).unwrap();
    assert_eq!(cloud.precision, Precision::Single);
    let kinds: Vec<_> = cloud.attributes.iter().map(|a| a.values.kind()).collect();
    use ScalarKind::*;
    assert_eq!(kinds, [I8, U8, I16, U16, I32, U32, F64, I8, U16]);
    assert_eq!(cloud.attributes[6].values, Column::F64(vec![1.5]));
}

/// A mesh: faces before the vertices, edges after, a list on the vertex
/// element too, comments and obj_info; in the given encoding.
fn mesh(format: &str) -> Vec<u8> {
    let header = format!(
        "format {format} 1.0\ncomment a mesh\nobj_info scanner 7\nelement face 2\n\
         property list uchar int vertex_indices\nproperty uchar flags\nelement vertex 3\n\
         property float x\nproperty float y\nproperty float z\n\
         property list ushort float extra\nproperty int label\nelement edge 1\n\
         property int vertex1\nproperty int vertex2\n"
    );
    if format == "ascii" {
        let body = "3 0 1 2 7\n4 0 1 2 0 9\n1 2 3 0 5\n4 5 6 2 0.5 0.25 6\n7 8 9 1 1e3 -7\n0 1\n";
        return ply(&header, body.as_bytes());
    }
    let big = format == "binary_big_endian";
    let mut body = Vec::new();
    put!(body, big, 3u8, 0i32, 1i32, 2i32, 7u8);
    put!(body, big, 4u8, 0i32, 1i32, 2i32, 0i32, 9u8);
    put!(body, big, 1f32, 2f32, 3f32, 0u16, 5i32);
    put!(body, big, 4f32, 5f32, 6f32, 2u16, 0.5f32, 0.25f32, 6i32);
    put!(body, big, 7f32, 8f32, 9f32, 1u16, 1e3f32, -7i32);
    put!(body, big, 0i32, 1i32);
    ply(&header, &body)
}

const FORMATS: [&str; 3] = ["ascii", "binary_little_endian", "binary_big_endian"];

#[test]
fn mesh_vertices_are_read_and_other_elements_skipped() {
    let job = Job::new();
    for format in FORMATS {
        let path = job.write("mesh.ply", &mesh(format));
        let cloud = read_points(&path).unwrap();
        let expected: Vec<_> = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]
            .into_iter()
            .map(Point3::from)
            .collect();
        assert_eq!(cloud.positions, expected, "{format}");
        assert_eq!(
            cloud.attributes,
            [attribute("label", Column::I32(vec![5, 6, -7]))],
            "{format}"
        );
        assert_eq!(check_chunks(&path, 2, &cloud), 2, "{format}");
    }
}

#[test]
fn crlf_headers_and_bodies_are_accepted() {
    let job = Job::new();
    let text = "ply\r\nformat ascii 1.0\r\ncomment crlf\r\nelement vertex 2\r\n\
                property float x\r\nproperty float y\r\nproperty float z\r\nend_header\r\n\
                1 2 3\r\n\r\n4 5 6\r\n";
    let path = job.write("crlf.ply", text.as_bytes());
    assert_eq!(read_points(&path).unwrap().len(), 2);

    let mut binary = b"ply\r\nformat binary_little_endian 1.0\r\nelement vertex 1\r\n\
                       property double x\r\nproperty double y\r\nproperty double z\r\n\
                       end_header\r\n"
        .to_vec();
    put!(binary, false, 13.0f64, 10.0f64, 0.5f64);
    let path = job.write("crlf_binary.ply", &binary);
    assert_eq!(
        read_points(&path).unwrap().positions,
        [Point3::new(13.0, 10.0, 0.5)]
    );
}

#[test]
fn diffuse_colours_and_non_byte_colours() {
    let job = Job::new();
    let header = "format ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n\
                  property float z\nproperty uchar diffuse_red\nproperty uchar diffuse_green\n\
                  property uchar diffuse_blue\nproperty float red\nproperty float green\n\
                  property float blue\nproperty float nx\nproperty float ny\n";
    let path = job.write(
        "colours.ply",
        &ply(header, b"0 0 0 1 2 3 0.1 0.2 0.3 0 1\n"),
    );
    let cloud = read_points(&path).unwrap();
    assert_eq!(cloud.colours, Some(vec![[1, 2, 3]]));
    assert!(cloud.normals.is_none());
    let names: Vec<_> = cloud.attributes.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["red", "green", "blue", "nx", "ny"]);
}

/// The header of three float `x y z` vertices in ascii.
fn three_vertices() -> String {
    xyz_header("ascii", "float", 3)
}

/// An ascii PLY of three vertices with `rows` as body; the body starts at
/// line 8.
fn ascii_ply(job: &Job, rows: &str) -> PathBuf {
    job.write("ascii.ply", &ply(&three_vertices(), rows.as_bytes()))
}

#[test]
fn ascii_body_errors_name_the_line() {
    let job = Job::new();
    let cases = [
        ("1 2 3\n4 5\n7 8 9\n", "line 9", "too few"),
        ("1 2 3\n\n4 5 6\n7 8 9 10\n", "line 11", "more than"),
        ("1 2 3\n4 x 6\n7 8 9\n", "line 9", "'x'"),
        (
            "1 2 3\n4 5 6\n7 8 9\n10 11 12\n",
            "line 11",
            "does not match",
        ),
        ("1 2 3\n4 5 6\n", "vertex 2", "does not match"),
    ];
    for (rows, location, what) in cases {
        let message = read_error(&ascii_ply(&job, rows));
        assert_contains(&message, &[location, what]);
    }
    let path = ascii_ply(&job, "1 2 3\n4 5 6\n7 8 9\n\n  \r\n");
    assert_eq!(read_points(&path).unwrap().len(), 3, "trailing blank lines");
}

#[test]
fn binary_body_errors_name_the_element() {
    let job = Job::new();
    let header = xyz_header("binary_little_endian", "float", 5);
    let record = [0u8; 12];
    let truncated = ply(&header, &[&record[..]; 4].concat()[..3 * 12 + 5]);
    let message = read_error(&job.write("short.ply", &truncated));
    assert_contains(&message, &["vertex 3", "does not match"]);

    let extra = ply(&header, &[&[0u8; 5 * 12][..], b"\n"].concat());
    let message = read_error(&job.write("long.ply", &extra));
    assert_contains(&message, &["1 bytes after", "5 vertex", "does not match"]);

    // A face list cut short before the vertices.
    let mut body = Vec::new();
    put!(body, false, 3u8, 0i32, 1i32);
    let header = "format binary_little_endian 1.0\nelement face 1\n\
                  property list uchar int vertex_indices\nelement vertex 0\n\
                  property float x\nproperty float y\nproperty float z\n";
    let message = read_error(&job.write("face.ply", &ply(header, &body)));
    assert_contains(&message, &["face 0"]);

    // A negative list length.
    let mut body = Vec::new();
    put!(body, false, 1f32, 2f32, 3f32, -1i8);
    let header = "format binary_little_endian 1.0\nelement vertex 1\nproperty float x\n\
                  property float y\nproperty float z\nproperty list char int l\n";
    let message = read_error(&job.write("negative.ply", &ply(header, &body)));
    assert_contains(&message, &["vertex 0", "negative"]);
}

#[test]
fn header_errors_name_the_line() {
    let job = Job::new();
    let garbage = ply(&format!("{}what is this\n", three_vertices()), b"1 2 3\n");
    let message = read_error(&job.write("garbage.ply", &garbage));
    assert_contains(&message, &["line 7", "header"]);

    let no_end = format!("ply\n{}", three_vertices());
    let message = read_error(&job.write("no_end.ply", no_end.as_bytes()));
    assert_contains(&message, &["line 7", "end_header"]);

    let path = job.write("magic.ply", b"plx\nformat ascii 1.0\n");
    assert_contains(&read_error(&path), &["line 1", "'ply'"]);
    let message = PlyVertexReader::open(&path).unwrap_err().to_string();
    assert_contains(&message, &["magic.ply: line 1"]);

    for bytes in [&b""[..], b"ply\n"] {
        let path = job.write("empty.ply", bytes);
        read_error(&path);
    }
    assert_contains(&read_error(&job.write("empty.xyz", b"")), &["empty file"]);

    let twice = ply(&format!("{}property float x\n", three_vertices()), b"");
    assert_contains(&read_error(&job.write("twice.ply", &twice)), &["twice"]);

    let no_vertex = ply(
        "format ascii 1.0\nelement point 1\nproperty float x\n",
        b"1\n",
    );
    assert_contains(&read_error(&job.write("nv.ply", &no_vertex)), &["'vertex'"]);

    let no_z = ply(
        "format ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n",
        b"1 2\n",
    );
    assert_contains(&read_error(&job.write("no_z.ply", &no_z)), &["'z'"]);

    let float_length = ply(
        &format!("{}property list float int l\n", three_vertices()),
        b"1 2 3 0\n",
    );
    read_error(&job.write("float_length.ply", &float_length));
}

#[test]
fn zero_vertices_give_an_empty_cloud() {
    let job = Job::new();
    let header = xyz_header("binary_little_endian", "double", 0);
    let cloud = read_points(&job.write("none.ply", &ply(&header, b""))).unwrap();
    assert!(cloud.is_empty());
    assert_eq!(cloud.precision, Precision::Double);
}

#[test]
fn unknown_formats_are_refused() {
    let job = Job::new();
    let message = read_error(&job.write("cloud.obj", b"v 1 2 3\n"));
    assert_contains(&message, &["unsupported format"]);
    let message = read_error(&job.write("cloud.las", b"LASF"));
    assert_contains(&message, &["ends inside its header"]);
}

#[test]
fn text_clouds_by_column_count() {
    let job = Job::new();
    let read = |name: &str, text: &str| read_points(&job.write(name, text.as_bytes()));

    let three = read(
        "three.XYZ",
        "# scan\nX Y Z\n\n// note\n6378137.123456789 2 3\n4\t5  6\r\n",
    )
    .unwrap();
    assert_eq!(
        three.positions,
        [
            Point3::new(6_378_137.123_456_789, 2.0, 3.0),
            Point3::new(4.0, 5.0, 6.0)
        ]
    );
    assert_eq!(three.precision, Precision::Double);
    assert!(three.normals.is_none() && three.colours.is_none() && three.attributes.is_empty());

    let csv = read("points.csv", "x,y,z,intensity\n1,2,3,0.5\n4, 5 ,6,1\n").unwrap();
    assert_eq!(
        csv.attributes,
        [attribute("intensity", Column::F32(vec![0.5, 1.0]))]
    );

    let normals = read("n.txt", "0 0 0 0 0.6 0.8\n1 1 1 1 0 0\n").unwrap();
    assert_eq!(normals.normals.unwrap()[0], Vector3::new(0.0, 0.6, 0.8));
    let colours = read("c.txt", "0 0 0 255 0 10\n1 1 1 1 2 3\n").unwrap();
    assert_eq!(colours.colours, Some(vec![[255, 0, 10], [1, 2, 3]]));
    assert!(colours.normals.is_none());

    let pts = read("scan.pts", "1\n1 2 3 -5 10 20 30\n1\n4 5 6 7 40 50 60\n").unwrap();
    assert_eq!(
        pts.attributes,
        [attribute("intensity", Column::F32(vec![-5.0, 7.0]))]
    );
    assert_eq!(pts.colours, Some(vec![[10, 20, 30], [40, 50, 60]]));

    let normals_first = read("nc.xyz", "0 0 0 0 0.6 0.8 10 20 30\n").unwrap();
    assert_eq!(
        normals_first.normals.unwrap()[0],
        Vector3::new(0.0, 0.6, 0.8)
    );
    assert_eq!(normals_first.colours, Some(vec![[10, 20, 30]]));
    let colours_first = read("cn.xyz", "0 0 0 10 20 30 0 0.6 0.8\n").unwrap();
    assert_eq!(
        colours_first.normals.unwrap()[0],
        Vector3::new(0.0, 0.6, 0.8)
    );
    assert_eq!(colours_first.colours, Some(vec![[10, 20, 30]]));

    let five = read("five.xyz", "1 2 3 4 5\n").unwrap();
    let names: Vec<_> = five.attributes.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["field_3", "field_4"]);

    let odd = read("odd.xyz", "nan 2 inf\n").unwrap();
    assert!(odd.positions[0].x.is_nan() && odd.positions[0].z == f64::INFINITY);

    // No point: refused, naming the first line that is not one.
    let headers_only = read("headers_only.xyz", "# nothing\nx y z\n").unwrap_err();
    assert!(
        headers_only.to_string().contains("line 2"),
        "{headers_only}"
    );
}

#[test]
fn text_cloud_errors_name_the_line() {
    let job = Job::new();
    let cases: [(&str, &[u8], &str, &str); 5] = [
        ("bad.xyz", b"x y z\n1 2 3\n4 five 6\n", "line 3", "'five'"),
        (
            "count.xyz",
            b"1 2 3\n\n# c\n4 5 6 7\n",
            "line 4",
            "line 1 has 3",
        ),
        ("narrow.xyz", b"# two\n1 2\n", "line 2", "at least 3"),
        ("lone.xyz", b"1 2 3\n1\n", "line 2", "1 values"),
        ("binary.xyz", b"1 2 3\n\x00\xff\n", "line 2", "not text"),
    ];
    for (name, text, location, what) in cases {
        let message = read_error(&job.write(name, text));
        assert_contains(&message, &[location, what]);
    }
}

/// Valid inputs to mutate: (file name, content).
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let columns = every_type();
    let job = Job::new();
    let mut seeds = Vec::new();
    for (name, encoding) in [
        ("le.ply", PlyEncoding::BinaryLittleEndian),
        ("ascii.ply", PlyEncoding::Ascii),
    ] {
        let path = job.path(name);
        write_ply(&path, &columns, encoding, &["seed".to_string()]).unwrap();
        seeds.push((name, std::fs::read(&path).unwrap()));
    }
    for (name, format) in [
        ("mesh_ascii.ply", FORMATS[0]),
        ("mesh_le.ply", FORMATS[1]),
        ("mesh_be.ply", FORMATS[2]),
    ] {
        seeds.push((name, mesh(format)));
    }
    seeds.push((
        "cloud.xyz",
        b"x y z\n1 2 3 0 0 1\n4 5 6 0 1 0\n# c\n7 8 9 1 0 0\n".to_vec(),
    ));
    seeds.push((
        "scan.pts",
        b"2\n1 2 3 4 5 6 7\n8,9,10,11,12,13,14\n".to_vec(),
    ));
    seeds
}

/// Applies one random corruption to `bytes`.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let at = rng.below(bytes.len() + 1);
    match rng.below(8) {
        0 if at < bytes.len() => bytes[at] ^= 1 << rng.below(8),
        1 if at < bytes.len() => bytes[at] = rng.next_u64() as u8,
        2 => {
            let interesting = [b'\n', b'\r', b' ', b'-', b'9', 0, 0xff, b'e'];
            bytes.insert(at, interesting[rng.below(interesting.len())]);
        }
        3 => {
            let end = (at + 1 + rng.below(16)).min(bytes.len());
            bytes.drain(at.min(end)..end);
        }
        4 => bytes.truncate(at),
        5 => {
            // Duplicate the line around `at`.
            let start = bytes[..at]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1);
            let end = bytes[at..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(bytes.len(), |i| at + i + 1);
            let line = bytes[start..end].to_vec();
            bytes.splice(start..start, line);
        }
        6 => {
            // Change the count of an element.
            let elements = positions(bytes, b"element ");
            if let Some(&element) = elements.get(rng.below(elements.len())) {
                let line = line_end(bytes, element);
                if let Some(space) = bytes[element..line].iter().rposition(|b| *b == b' ') {
                    let count = String::from_utf8_lossy(&bytes[element + space + 1..line]);
                    let old: usize = count.trim().parse().unwrap_or(1);
                    let new =
                        [0, old.saturating_sub(1), old + 1, 1 << 40, rng.below(1000)][rng.below(5)];
                    bytes.splice(element + space + 1..line, new.to_string().into_bytes());
                }
            }
        }
        _ => {
            // Change the body encoding.
            if let Some(&format) = positions(bytes, b"format ").first() {
                let line = line_end(bytes, format);
                let encodings = [
                    "ascii 1.0",
                    "binary_little_endian 1.0",
                    "binary_big_endian 1.0",
                ];
                let encoding = encodings[rng.below(encodings.len())];
                bytes.splice(format + 7..line, encoding.bytes());
            }
        }
    }
}

/// Where `needle` starts in `bytes`.
fn positions(bytes: &[u8], needle: &[u8]) -> Vec<usize> {
    bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, window)| *window == needle)
        .map(|(at, _)| at)
        .collect()
}

/// The end of the line at `at` (before its `\r\n` or `\n`).
fn line_end(bytes: &[u8], at: usize) -> usize {
    let end = bytes[at..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(bytes.len(), |i| at + i);
    if end > at && bytes[end - 1] == b'\r' {
        end - 1
    } else {
        end
    }
}

/// Runs `cases` random mutations of the seeds (PLY and text) through
/// `read_points` and the chunked reader: never a panic.
fn mutation_run(cases: usize) {
    common::mutation_run(&seeds(), cases, 0x9e37_79b9_7f4a_7c15, mutate);
}

#[test]
fn mutated_files_never_panic() {
    mutation_run(2_000);
}

#[test]
#[ignore = "long: cargo test --release --test io_formats -- --ignored"]
fn mutated_files_never_panic_long() {
    mutation_run(100_000);
}

#[test]
fn real_files_load() {
    let expected = [
        ("kitten.xyz", 5210, true, false),
        ("hippo1.ply", 6104, true, false),
        ("oni.ply", 1435, true, false),
        ("b9_training.ply", 22300, false, true),
    ];
    for (name, count, normals, colours) in expected {
        let path = real(name);
        let cloud = read_points(&path).unwrap();
        assert_eq!(cloud.len(), count, "{name}");
        assert_eq!(
            cloud.normals.as_ref().map(Vec::len),
            normals.then_some(count),
            "{name}"
        );
        assert_eq!(cloud.colours.is_some(), colours, "{name}");
        if name == "b9_training.ply" {
            let label = cloud.attributes.iter().find(|a| a.name == "label");
            assert_eq!(label.map(|a| a.values.kind()), Some(ScalarKind::I32));
            assert_eq!(cloud.precision, Precision::Double);
        }
    }
}
