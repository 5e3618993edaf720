//! Runs interrupted while they write their output (issue 17, class 2):
//! SIGINT, SIGTERM and kill -9 sent to a real `mlsproj run` once its
//! temporary file exists. The previous output must be left as it was,
//! nothing else may be left in the output's folder at the moment the
//! process is gone, and the process must die of the signal (a shell
//! reports 130, 143). With unnamed temporary files (`O_TMPFILE`) even
//! kill -9 leaves nothing; with named ones (`MLSPROJ_NAMED_TEMP`, the
//! fallback where a file system has no `O_TMPFILE`) the signal handler
//! removes them.
#![cfg(target_os = "linux")]

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mlsproj::Precision;
use mlsproj::io::{NAMED_TEMP_VARIABLE, PlyEncoding, position_columns, write_ply};
use nalgebra::Point3;
use tempfile::TempDir;

/// What the output's folder holds before the run: an earlier output.
const PREVIOUS: &[u8] = b"the previous output, which an interrupted run must keep";

/// Particles in the job: enough that writing them as text takes about a
/// second, the time the test has to find the temporary file and signal.
/// Non-finite, so that projecting them costs next to nothing.
const PARTICLES: usize = 1 << 19;

/// The inputs every interrupted run reads, written once: a small plane as
/// the cloud and [`PARTICLES`] non-finite particles.
fn inputs() -> &'static TempDir {
    static INPUTS: OnceLock<TempDir> = OnceLock::new();
    INPUTS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let plane =
            (0..40).flat_map(|i| (0..40).map(move |j| Point3::new(i as f64, j as f64, 0.0)));
        write_ply(
            &dir.path().join("cloud.ply"),
            &position_columns(plane, Precision::Single),
            PlyEncoding::BinaryLittleEndian,
            &[],
        )
        .unwrap();
        let particles = position_columns(
            std::iter::repeat_n(Point3::new(f64::NAN, 0.0, 0.0), PARTICLES),
            Precision::Single,
        );
        write_ply(
            &dir.path().join("particles.ply"),
            &particles,
            PlyEncoding::BinaryLittleEndian,
            &[],
        )
        .unwrap();
        dir
    })
}

/// True when process `pid` holds an unnamed file (`O_TMPFILE`) of
/// `folder` open: its link in /proc reads `FOLDER/#INODE (deleted)`.
fn holds_unnamed_file(pid: u32, folder: &Path) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .any(|target| target.starts_with(folder) && target.to_string_lossy().ends_with("(deleted)"))
}

/// The names in `folder`.
fn names(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs the job into a folder holding an earlier `out.ply`, sends
/// `signal` (a name for `kill -s`, number `number`) once the run's
/// temporary file exists, and checks what is left.
fn interrupt(signal: &str, number: i32, named: bool) {
    let folder = tempfile::tempdir().unwrap();
    let folder_path = folder.path().canonicalize().unwrap();
    let output = folder_path.join("out.ply");
    std::fs::write(&output, PREVIOUS).unwrap();
    let config: PathBuf = inputs().path().join(format!(
        "{signal}-{}.ron",
        if named { "named" } else { "unnamed" }
    ));
    std::fs::write(
        &config,
        format!(
            "(cloud: \"cloud.ply\", particles: File(\"particles.ply\"), output: {output:?}, \
             support: Nearest(8), encoding: Ascii)"
        ),
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_mlsproj"));
    command
        .args(["run", "--quiet"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if named {
        command.env(NAMED_TEMP_VARIABLE, "1");
    } else {
        command.env_remove(NAMED_TEMP_VARIABLE);
    }
    let mut child = command.spawn().unwrap();
    let writing = |pid: u32| {
        if named {
            names(&folder_path).len() > 1
        } else {
            holds_unnamed_file(pid, &folder_path)
        }
    };
    let started = Instant::now();
    while !writing(child.id()) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was signalled: make the job larger"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no temporary file"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let sent = Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -s {signal}");
    let status = child.wait().unwrap();
    assert!(
        status.signal() == Some(number) || status.code() == Some(128 + number),
        "SIG{signal}: {status:?}"
    );
    assert_eq!(
        std::fs::read(&output).unwrap(),
        PREVIOUS,
        "the previous output is kept"
    );
    assert_eq!(names(&folder_path), ["out.ply"], "nothing else is left");
}

#[test]
fn sigint_leaves_the_previous_output_and_nothing_else() {
    interrupt("INT", 2, false);
}

#[test]
fn sigterm_leaves_the_previous_output_and_nothing_else() {
    interrupt("TERM", 15, false);
}

#[test]
fn kill_9_leaves_the_previous_output_and_nothing_else() {
    interrupt("KILL", 9, false);
}

#[test]
fn sigint_removes_a_named_temporary_file() {
    interrupt("INT", 2, true);
}

#[test]
fn sigterm_removes_a_named_temporary_file() {
    interrupt("TERM", 15, true);
}

#[test]
fn sighup_removes_a_named_temporary_file() {
    interrupt("HUP", 1, true);
}
