//! Running the `mlsproj` binary on a job in a temporary folder: input files
//! written there, a config naming them, the run's output read back, and the
//! checks every refusal must pass.
#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mlsproj::io::position_columns;
use mlsproj::io::{PlyEncoding, write_ply};
use mlsproj::{Attribute, Column, PointCloud, Precision, Status};
use nalgebra::Point3;
use tempfile::TempDir;

/// The name of every job's output, inside the job's folder.
pub const OUTPUT: &str = "out.ply";

/// A scratch folder holding a job's inputs, config and output.
pub struct Job {
    dir: TempDir,
}

/// What a run printed and whether it succeeded.
pub struct Run {
    pub success: bool,
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        Run {
            success: output.status.success(),
            code: output.status.code(),
            stdout: text(&output.stdout),
            stderr: text(&output.stderr),
        }
    }
}

impl Job {
    pub fn new() -> Self {
        Job {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The job's folder.
    pub fn folder(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the job's folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `bytes` to `name` in the job's folder.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Writes `columns` as a binary PLY `name` in the job's folder.
    pub fn write_ply(&self, name: &str, columns: &[Attribute]) -> PathBuf {
        let path = self.path(name);
        write_ply(&path, columns, PlyEncoding::BinaryLittleEndian, &[]).unwrap();
        path
    }

    /// Runs `mlsproj run` on a config with `fields` (RON, without the
    /// parentheses) plus `output: "out.ply"`.
    pub fn run(&self, fields: &str) -> Run {
        self.command("run", fields, &[])
    }

    /// Runs `mlsproj COMMAND job.ron ARGS…` on a config with `fields` plus
    /// `output: "out.ply"`.
    pub fn command(&self, command: &str, fields: &str, args: &[&str]) -> Run {
        self.command_with_config(command, &with_output(fields), args)
    }

    /// Runs `mlsproj COMMAND job.ron ARGS…` with `config` as job.ron,
    /// written as given (for configs that are malformed or name another
    /// output).
    pub fn command_with_config(&self, command: &str, config: &str, args: &[&str]) -> Run {
        let config = self.write("job.ron", config.as_bytes());
        let config = config.to_str().expect("a UTF-8 temporary path");
        mlsproj(&[&[command, config], args].concat())
    }

    /// Runs a job expected to succeed and reads its output back.
    pub fn output(&self, fields: &str) -> (Run, PointCloud) {
        let run = self.run(fields);
        assert!(run.success, "the run fails: {}", run.stderr);
        let output = mlsproj::io::read_points(&self.path(OUTPUT)).unwrap();
        (run, output)
    }

    /// [`Self::refused`] for the file `name` of the job's folder as the
    /// cloud, smoothed onto itself: the one config that reads nothing else.
    pub fn refused_as_cloud(&self, name: &str) -> String {
        self.refused(
            &format!("cloud: {name:?}, particles: Cloud"),
            &self.path(name),
        )
    }

    /// Runs a job with `fields` expected to be refused, and checks the
    /// refusal as [`Self::refused_config`] does. Returns the line.
    pub fn refused(&self, fields: &str, file: &Path) -> String {
        self.refused_config(&with_output(fields), file)
    }

    /// Runs `mlsproj run` with `config` as job.ron, expected to be refused,
    /// and checks the refusal: non-zero exit, one line on stderr naming
    /// `file`, no panic, and neither the output nor its temporary file left
    /// behind. Returns that line.
    pub fn refused_config(&self, config: &str, file: &Path) -> String {
        let run = self.command_with_config("run", config, &[]);
        let line = refused_line(&run, file);
        let left: Vec<_> = std::fs::read_dir(self.folder())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(OUTPUT) || name.contains(".tmp"))
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        line
    }
}

/// Checks a refusal: non-zero exit, one line on stderr naming `file`, no
/// panic. Returns that line.
pub fn refused_line(run: &Run, file: &Path) -> String {
    let line = one_line_refusal(run);
    assert!(
        line.contains(&*file.to_string_lossy()),
        "names {file:?}: {line}"
    );
    line
}

/// Checks a refusal of what a config asks (no file to name): non-zero
/// exit, one line on stderr, no panic. Returns that line.
pub fn one_line_refusal(run: &Run) -> String {
    let line = run.stderr.trim_end();
    assert!(!run.success, "should be refused: {}", run.stdout);
    assert_eq!(line.lines().count(), 1, "one line: {line}");
    assert!(!line.contains("panicked"), "{line}");
    line.to_owned()
}

/// A job's config text: `fields` plus `output: "out.ply"`.
fn with_output(fields: &str) -> String {
    format!("({fields}, output: {OUTPUT:?})")
}

/// Runs the `mlsproj` binary with `args`.
pub fn mlsproj(args: &[&str]) -> Run {
    Command::new(env!("CARGO_BIN_EXE_mlsproj"))
        .args(args)
        .output()
        .expect("the binary runs")
        .into()
}

/// The columns and comments (a tile's provenance) of the output at `path`.
pub fn read_tile(path: &Path) -> (Vec<Attribute>, Vec<String>) {
    let comments = mlsproj::io::PointReader::open(path)
        .unwrap()
        .comments()
        .to_vec();
    let points = mlsproj::io::read_points(path).unwrap();
    (mlsproj::io::file_columns(&points), comments)
}

/// Rewrites the output at `path` (binary PLY) without its last row, its
/// comments (a tile's provenance) kept: a tile altered after its run.
pub fn drop_last_row(path: &Path) {
    let (columns, comments) = read_tile(path);
    let rows = columns[0].values.len();
    let fewer: Vec<Attribute> = columns
        .iter()
        .map(|c| attribute(&c.name, c.values.slice(0..rows - 1)))
        .collect();
    write_ply(path, &fewer, PlyEncoding::BinaryLittleEndian, &comments).unwrap();
}

/// A PLY file from its header lines (without `ply` and `end_header`) and
/// body.
pub fn ply(header: &str, body: &[u8]) -> Vec<u8> {
    [format!("ply\n{header}end_header\n").as_bytes(), body].concat()
}

/// The header lines (after `ply`, before `end_header`) of `count` vertices
/// of `x y z` properties of `kind` (`float`, `double`) in `format`.
pub fn xyz_header(format: &str, kind: &str, count: usize) -> String {
    format!(
        "format {format} 1.0\nelement vertex {count}\nproperty {kind} x\n\
         property {kind} y\nproperty {kind} z\n"
    )
}

/// A `x y z` float column triple of `points`.
pub fn xyz_columns(points: &[Point3<f64>]) -> Vec<Attribute> {
    position_columns(points.iter().copied(), Precision::Single)
}

/// A named column.
pub fn attribute(name: &str, values: Column) -> Attribute {
    Attribute {
        name: name.to_owned(),
        values,
    }
}

/// The values of the output property `name`.
pub fn column<'a>(cloud: &'a PointCloud, name: &str) -> &'a Column {
    &cloud
        .attributes
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("the output has no {name}"))
        .values
}

/// The `status` column.
pub fn statuses(cloud: &PointCloud) -> &[u8] {
    match column(cloud, "status") {
        Column::U8(codes) => codes,
        other => panic!("status is uchar, not {:?}", other.kind()),
    }
}

/// How many particles of an output have one of `wanted` as status.
pub fn count(cloud: &PointCloud, wanted: &[Status]) -> usize {
    let codes: Vec<u8> = wanted.iter().map(|s| s.code()).collect();
    statuses(cloud)
        .iter()
        .filter(|code| codes.contains(code))
        .count()
}
