//! Output paths that would destroy something (issue 17, class 4): the
//! config file, an input or an input named like a tile output, through
//! links and `..`; an output that is a folder, device, FIFO or socket;
//! a link at the output path (replaced, never followed); and the
//! permissions of a replaced output. Every refusal is one line naming the
//! file and leaves every file as it was.
#![cfg(unix)]

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::process::Command;

mod job;

use job::{Job, OUTPUT, Run, xyz_columns};
use mlsproj::io::NAMED_TEMP_VARIABLE;
use nalgebra::Point3;

/// The fields of a small job: a plane of 400 points smoothed onto itself.
const FIELDS: &str = "cloud: \"cloud.ply\", particles: Cloud, support: Nearest(8)";

/// A job folder holding the plane as `cloud.ply`.
fn plane_job() -> Job {
    let job = Job::new();
    let plane: Vec<Point3<f64>> = (0..20)
        .flat_map(|i| (0..20).map(move |j| Point3::new(i as f64, j as f64, 0.0)))
        .collect();
    job.write_ply("cloud.ply", &xyz_columns(&plane));
    job
}

/// Both kinds of temporary file: unnamed (`O_TMPFILE`) and named.
const TEMPORARIES: [bool; 2] = [false, true];

/// Runs `mlsproj run job.ron ARGS…` with `config` as job.ron, with named
/// temporary files if `named`, and under `umask` if given.
fn run(job: &Job, config: &str, args: &[&str], named: bool, umask: Option<&str>) -> Run {
    let config_path = job.write("job.ron", config.as_bytes());
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!(
            "umask {} && exec \"$0\" \"$@\"",
            umask.unwrap_or("022")
        ))
        .arg(env!("CARGO_BIN_EXE_mlsproj"))
        .args(["run", "--quiet"])
        .arg(config_path)
        .args(args);
    if named {
        command.env(NAMED_TEMP_VARIABLE, "1");
    } else {
        command.env_remove(NAMED_TEMP_VARIABLE);
    }
    command.output().unwrap().into()
}

#[test]
fn the_config_file_as_output_is_refused_also_through_links_and_dotdot() {
    let job = plane_job();
    std::fs::create_dir(job.path("sub")).unwrap();
    let config = |output: &str| format!("({FIELDS}, output: {output:?})");
    job.write("job.ron", config("job.ron").as_bytes());
    std::os::unix::fs::symlink("job.ron", job.path("link.ron")).unwrap();
    std::fs::hard_link(job.path("job.ron"), job.path("hard.ron")).unwrap();
    for output in ["job.ron", "./sub/../job.ron", "link.ron", "hard.ron"] {
        let line = job.refused_config(&config(output), &job.path(output));
        assert!(line.contains("config file"), "{line}");
        assert_eq!(
            std::fs::read_to_string(job.path("job.ron")).unwrap(),
            config(output),
            "the config is untouched"
        );
        let check = job.command_with_config("check", &config(output), &[]);
        job::refused_line(&check, &job.path(output));
    }
}

#[test]
fn an_output_that_is_an_input_through_a_link_or_dotdot_is_refused() {
    let job = plane_job();
    let cloud = std::fs::read(job.path("cloud.ply")).unwrap();
    std::fs::create_dir(job.path("sub")).unwrap();
    std::os::unix::fs::symlink("cloud.ply", job.path("alias.ply")).unwrap();
    std::fs::hard_link(job.path("cloud.ply"), job.path("hard.ply")).unwrap();
    for output in ["sub/../cloud.ply", "alias.ply", "hard.ply"] {
        let line = job.refused_config(
            &format!("({FIELDS}, output: {output:?})"),
            &job.path(output),
        );
        assert!(line.contains("is an input (the cloud"), "{line}");
    }
    std::fs::copy(job.path("cloud.ply"), job.path("particles.ply")).unwrap();
    let line = job.refused_config(
        "(cloud: \"cloud.ply\", particles: File(\"particles.ply\"), output: \"./particles.ply\")",
        &job.path("./particles.ply"),
    );
    assert!(line.contains("is an input (the particle file"), "{line}");
    assert_eq!(std::fs::read(job.path("cloud.ply")).unwrap(), cloud);
}

#[test]
fn an_input_named_like_a_tile_output_is_refused_by_every_command() {
    let job = plane_job();
    let tile = "out.tile-0000-of-0002.ply";
    std::fs::rename(job.path("cloud.ply"), job.path(tile)).unwrap();
    let cloud = std::fs::read(job.path(tile)).unwrap();
    let config = format!("(cloud: {tile:?}, particles: Cloud, output: {OUTPUT:?})");
    for (command, args) in [
        ("run", &["--tile", "0/2"][..]),
        ("run", &[]),
        ("check", &[]),
        ("merge", &["--tiles", "2"]),
    ] {
        let line = job::refused_line(
            &job.command_with_config(command, &config, args),
            &job.path(tile),
        );
        assert!(line.contains("tile output"), "{command}: {line}");
    }
    assert_eq!(std::fs::read(job.path(tile)).unwrap(), cloud);

    // Through a link, as the cloud and as the particle file.
    std::os::unix::fs::symlink(tile, job.path("linked.ply")).unwrap();
    std::fs::copy(job.path(tile), job.path("plain.ply")).unwrap();
    for (fields, role) in [
        ("cloud: \"linked.ply\", particles: Cloud", "the cloud"),
        (
            "cloud: \"plain.ply\", particles: File(\"linked.ply\")",
            "the particle file",
        ),
    ] {
        let line = job.refused(fields, &job.path("linked.ply"));
        assert!(line.contains(role), "{line}");
    }

    // The config file itself named like a tile.
    let config = job.write(
        "out.tile-0001-of-0002.ply",
        b"(cloud: \"plain.ply\", particles: Cloud, output: \"out.ply\")",
    );
    let run = job::mlsproj(&["run", config.to_str().unwrap(), "--tile", "1/2"]);
    let line = job::refused_line(&run, &config);
    assert!(line.contains("config file"), "{line}");
}

#[test]
fn an_output_that_is_a_folder_device_fifo_or_socket_is_refused() {
    let job = plane_job();
    std::fs::create_dir(job.path("folder.ply")).unwrap();
    let fifo = Command::new("mkfifo")
        .arg(job.path("fifo.ply"))
        .status()
        .unwrap();
    assert!(fifo.success());
    let _socket = std::os::unix::net::UnixListener::bind(job.path("socket.ply")).unwrap();
    for (output, kind) in [
        ("/dev/null", "a character device"),
        ("folder.ply", "a folder"),
        ("fifo.ply", "a FIFO"),
        ("socket.ply", "a socket"),
    ] {
        let config = format!("({FIELDS}, output: {output:?})");
        let line = job.refused_config(&config, &job.path(output));
        assert!(line.contains(kind), "{line}");
    }
    let null = std::fs::metadata("/dev/null").unwrap();
    assert!(null.file_type().is_char_device(), "/dev/null is left alone");
    assert!(
        job.path("fifo.ply")
            .metadata()
            .unwrap()
            .file_type()
            .is_fifo()
    );

    // A tile output: refused by the run that would write it.
    let fifo = Command::new("mkfifo")
        .arg(job.path("out.tile-0000-of-0002.ply"))
        .status()
        .unwrap();
    assert!(fifo.success());
    for named in TEMPORARIES {
        let run = run(
            &job,
            &format!("({FIELDS}, output: {OUTPUT:?})"),
            &["--tile", "0/2"],
            named,
            None,
        );
        let line = job::refused_line(&run, &job.path("out.tile-0000-of-0002.ply"));
        assert!(line.contains("a FIFO"), "{line}");
    }
}

#[test]
fn a_link_at_the_output_is_replaced_never_followed() {
    for named in TEMPORARIES {
        for target in ["elsewhere.txt", "absent.txt", "/dev/null"] {
            let job = plane_job();
            job.write("elsewhere.txt", b"keep");
            std::os::unix::fs::symlink(target, job.path(OUTPUT)).unwrap();
            let run = run(
                &job,
                &format!("({FIELDS}, output: {OUTPUT:?})"),
                &[],
                named,
                None,
            );
            assert!(run.success, "{target}: {}", run.stderr);
            let output = job.path(OUTPUT).symlink_metadata().unwrap();
            assert!(output.is_file(), "{target}: the link is replaced");
            assert_eq!(
                mlsproj::io::read_points(&job.path(OUTPUT)).unwrap().len(),
                400
            );
            assert_eq!(std::fs::read(job.path("elsewhere.txt")).unwrap(), b"keep");
            assert!(!job.path("absent.txt").exists(), "{target}");
        }
    }
}

#[test]
fn a_replaced_output_keeps_its_permissions_and_a_new_one_follows_the_umask() {
    let config = format!("({FIELDS}, output: {OUTPUT:?})");
    let mode = |job: &Job| job.path(OUTPUT).metadata().unwrap().permissions().mode() & 0o7777;
    for named in TEMPORARIES {
        for old in [0o600, 0o640, 0o444, 0o755] {
            let job = plane_job();
            job.write(OUTPUT, b"old");
            std::fs::set_permissions(job.path(OUTPUT), PermissionsExt::from_mode(old)).unwrap();
            let run = run(&job, &config, &[], named, Some("077"));
            assert!(run.success, "{}", run.stderr);
            assert_eq!(mode(&job), old, "{old:o}, named {named}");
        }
        for (umask, new) in [("022", 0o644), ("027", 0o640), ("002", 0o664)] {
            let job = plane_job();
            let run = run(&job, &config, &[], named, Some(umask));
            assert!(run.success, "{}", run.stderr);
            assert_eq!(mode(&job), new, "umask {umask}, named {named}");
        }
    }
}
