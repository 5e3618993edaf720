//! What real scans come with besides a surface: non-finite values,
//! duplicated and coincident points, files that cannot be read or are
//! malformed. None may give a NaN, a panic, a message that does not say
//! where, or a half-written output.

mod common;
mod job;

use common::{Sphere, all_finite, noisy_cloud, particles};
use job::{Job, OUTPUT, ply, statuses, xyz_columns, xyz_header};
use mlsproj::config::Orientation;
use mlsproj::io::position_columns;
use mlsproj::{Config, Method, MlsSurface, PointCloud, Precision, Projected, Status, project_all};
use nalgebra::{Point3, Vector3};

/// A noisy unit sphere of `count` points (σ = 0.01).
fn sphere_cloud(count: usize) -> Vec<Point3<f64>> {
    noisy_cloud(&Sphere::unit(), count, 0.01, 1).positions
}

/// Particles within 0.05 of the unit sphere.
fn sphere_particles(count: usize) -> Vec<Point3<f64>> {
    particles(&Sphere::unit(), count, 0.05, 2, |_| true)
}

/// True when `a` and `b` are the same value, NaN matching NaN.
fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// The summary must say how many cloud points were skipped, and leaving
/// them out must change nothing: the surface is built from the finite
/// points, so the output is byte for byte that of the cloud without them.
#[test]
fn non_finite_cloud_points_are_skipped_counted_and_change_nothing() {
    let job = Job::new();
    let clean = sphere_cloud(2000);
    let mut dirty = clean.clone();
    for (at, point) in [
        (0, [f64::NAN, 0.0, 0.0]),
        (700, [0.0, f64::INFINITY, 0.0]),
        (1400, [0.0, 0.0, f64::NEG_INFINITY]),
        (2003, [f64::NAN; 3]),
    ] {
        dirty.insert(at, Point3::from(point));
    }
    job.write_ply("clean.ply", &xyz_columns(&clean));
    job.write_ply("dirty.ply", &xyz_columns(&dirty));
    job.write_ply("particles.ply", &xyz_columns(&sphere_particles(300)));
    let mut outputs = Vec::new();
    for (cloud, summary) in [
        ("clean.ply", "cloud: 2000 points"),
        (
            "dirty.ply",
            "cloud: 2004 points (4 with non-finite coordinates skipped)",
        ),
    ] {
        let (run, output) = job.output(&format!(
            "cloud: {cloud:?}, particles: File(\"particles.ply\")"
        ));
        assert!(run.stdout.lines().any(|l| l == summary), "{}", run.stdout);
        assert!(statuses(&output).iter().all(|&s| s == Status::Ok.code()));
        outputs.push(std::fs::read(job.path(OUTPUT)).unwrap());
    }
    assert!(
        outputs[0] == outputs[1],
        "the skipped points changed the output"
    );
}

/// Work is split among threads differently with 1 and 2 threads, and a
/// thread's k-nearest search starts from its previous particle's radius:
/// the output must still be the same, byte for byte.
#[test]
fn the_output_does_not_depend_on_the_thread_count() {
    let job = Job::new();
    job.write_ply("cloud.ply", &xyz_columns(&sphere_cloud(20_000)));
    // Double particles give double output: every bit of the sums shows.
    let particles = sphere_particles(5_000);
    let doubles = position_columns(particles.iter().copied(), Precision::Double);
    job.write_ply("particles.ply", &doubles);
    let outputs: Vec<Vec<u8>> = [1, 2]
        .iter()
        .map(|threads| {
            job.output(&format!(
                "cloud: \"cloud.ply\", particles: File(\"particles.ply\"), support: Nearest(30), threads: {threads}"
            ));
            std::fs::read(job.path(OUTPUT)).unwrap()
        })
        .collect();
    assert!(outputs[0] == outputs[1], "1 and 2 threads differ");
}

/// A non-finite particle is not dropped (the output stays aligned with the
/// input) and not invented: it is written as read, with status
/// `invalid_input` and no normal, while its neighbours are projected.
#[test]
fn non_finite_particles_are_kept_as_read_with_status_invalid_input() {
    let job = Job::new();
    job.write_ply("cloud.ply", &xyz_columns(&sphere_cloud(2000)));
    let mut particles = sphere_particles(100);
    let invalid = [3, 40, 41, 99];
    for (at, point) in invalid.into_iter().zip([
        [f64::NAN, 0.5, 0.5],
        [0.25, f64::INFINITY, -0.5],
        [f64::NEG_INFINITY, 0.0, 1.0],
        [f64::NAN; 3],
    ]) {
        particles.insert(at, Point3::from(point));
    }
    let input = job.write_ply("particles.ply", &xyz_columns(&particles));
    let input = mlsproj::io::read_points(&input).unwrap();
    let (run, output) = job.output(r#"cloud: "cloud.ply", particles: File("particles.ply")"#);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.split_whitespace().eq(["invalid_input", "4"])),
        "{}",
        run.stdout
    );
    assert_eq!(output.len(), input.len());
    let normals = output.normals.as_ref().unwrap();
    for (i, &code) in statuses(&output).iter().enumerate() {
        if invalid.contains(&i) {
            assert_eq!(code, Status::InvalidInput.code(), "particle {i}");
            let (read, written) = (input.positions[i], output.positions[i]);
            assert!((0..3).all(|axis| same(read[axis], written[axis])), "{i}");
            assert_eq!(normals[i], Vector3::zeros(), "particle {i}");
        } else {
            assert_eq!(code, Status::Ok.code(), "particle {i}");
        }
    }
}

/// Projects `particles` onto the MLS surface of the bare positions `cloud`
/// with `support` (RON) and every other setting at its default.
fn project_onto_positions(
    cloud: &[Point3<f64>],
    particles: &[Point3<f64>],
    support: &str,
) -> Vec<Projected> {
    common::project(
        &PointCloud::from_positions(cloud.to_vec()),
        particles,
        &format!("support: {support}"),
    )
}

/// Every particle projected with status `ok` and finite values.
fn assert_all_ok(projected: &[Projected]) {
    for (i, p) in projected.iter().enumerate() {
        assert_eq!(p.status, Status::Ok, "particle {i}");
        assert!(all_finite(p), "particle {i}: {p:?}");
    }
}

/// Scans store normals of any length, and some of them broken: a normal is
/// used as its direction, and a NaN, infinite or zero one says nothing. The
/// projection with such normals is that with the unit ones where they are
/// sound, and every particle still lands.
#[test]
fn cloud_normals_count_by_direction_and_broken_ones_say_nothing() {
    let cloud = noisy_cloud(&Sphere::unit(), 20_000, 0.002, 5);
    let particles = sphere_particles(300);
    let fields = "support: Radius(0.15)";
    let unit = common::project(&cloud, &particles, fields);
    let mut scaled = cloud.clone();
    let normals = scaled.normals.as_mut().expect("noisy_cloud gives normals");
    normals.iter_mut().for_each(|n| *n *= 3.0);
    let rescaled = common::project(&scaled, &particles, fields);
    // Equal but for the rounding of the f32 normals when they are scaled
    // back (1e-7 relative); weighed by their squared length, the scaled
    // normals would move particles by about 1e-4 here.
    for (a, b) in unit.iter().zip(&rescaled) {
        assert!((a.position - b.position).norm() < 1e-9, "{a:?} vs {b:?}");
    }
    let mut broken = cloud.clone();
    let normals = broken.normals.as_mut().expect("noisy_cloud gives normals");
    for (i, n) in normals.iter_mut().enumerate() {
        match i % 50 {
            0 => *n = Vector3::new(f32::NAN, 0.0, 0.0),
            1 => *n = Vector3::new(0.0, f32::INFINITY, 0.0),
            2 => *n = Vector3::zeros(),
            _ => {}
        }
    }
    let with_broken = common::project(&broken, &particles, fields);
    assert_all_ok(&with_broken);
    // Saying nothing is saying what a zero normal says.
    let mut silent = broken.clone();
    let normals = silent.normals.as_mut().expect("noisy_cloud gives normals");
    normals
        .iter_mut()
        .filter(|n| !n.iter().all(|c| c.is_finite()))
        .for_each(|n| *n = Vector3::zeros());
    let with_zeros = common::project(&silent, &particles, fields);
    for (a, b) in with_broken.iter().zip(&with_zeros) {
        assert_eq!(a.position, b.position);
    }
}

/// Exact duplicates are merged when the surface is built, so a cloud with
/// every point repeated three times is the original cloud: the fit, hence
/// the projection, must be the same up to rounding, with the same support
/// (also `Nearest(k)`, which would otherwise gather k/3 positions).
#[test]
fn tripled_points_give_the_fit_of_the_original_cloud() {
    let cloud = sphere_cloud(3000);
    let tripled: Vec<_> = cloud.iter().flat_map(|p| [*p; 3]).collect();
    let particles = sphere_particles(300);
    for support in ["Radius(0.25)", "Nearest(40)"] {
        let once = project_onto_positions(&cloud, &particles, support);
        let thrice = project_onto_positions(&tripled, &particles, support);
        assert_all_ok(&once);
        assert_all_ok(&thrice);
        for (i, (a, b)) in once.iter().zip(&thrice).enumerate() {
            assert!(
                (a.position - b.position).norm() < 1e-9 && (a.normal - b.normal).norm() < 1e-9,
                "{support}, particle {i}: {a:?} vs {b:?}"
            );
        }
    }
}

/// Projects particles at and near a spot of the unit sphere, where the
/// cloud has a cluster of 50 coincident points (a scanner dwelling on one
/// spot; merged into one when the surface is built), with `support`. The
/// fit must not break: every particle `ok` and
/// finite. The cluster lies on the surface and adds no noise, so the
/// accuracy must stay that of the cloud without it: the RMS distance to
/// the sphere within 10% of the cluster-free one (it may improve, and does
/// with a radius support; a broken fit leaves particles 0.01 off).
fn check_cluster(support: &str) {
    let spot = Point3::new(0.0, 0.0, 1.0);
    let plain = sphere_cloud(3000);
    let mut cloud = plain.clone();
    cloud.extend([spot; 50]);
    let surface = MlsSurface::new(&PointCloud::from_positions(cloud.clone())).unwrap();
    assert_eq!(
        surface.duplicates(),
        49,
        "the cluster is merged into one point"
    );
    let mut particles: Vec<_> = (0..20)
        .map(|i| spot + Vector3::new(i as f64 * 0.005, 0.0, 0.01))
        .collect();
    particles.push(spot);
    let rms = |projected: &[Projected]| common::rms_distance(&Sphere::unit(), projected);
    let with_cluster = project_onto_positions(&cloud, &particles, support);
    assert_all_ok(&with_cluster);
    let (with, without) = (
        rms(&with_cluster),
        rms(&project_onto_positions(&plain, &particles, support)),
    );
    assert!(
        with <= 1.1 * without,
        "{support}: RMS {with} with the cluster, {without} without"
    );
}

#[test]
fn a_cluster_of_coincident_points_does_not_break_a_fit() {
    check_cluster("Radius(0.25)");
    check_cluster("Nearest(80)");
}

/// More coincident points than k: left as they are, they would fill the
/// k nearest with one position (h the distance to the cluster, every
/// neighbour at r = 1, weight 0). Merged when the surface is built (counted
/// in `check_cluster`), they are one point, and the fit stays whole.
#[test]
fn a_cluster_of_more_than_k_coincident_points_does_not_break_a_nearest_fit() {
    check_cluster("Nearest(40)");
}

/// One malformed point file: its name, content, the parts its refusal
/// must contain (the place, where there is one, and the reason), and
/// whether it is acceptable as particles (an empty particle set is).
struct Malformed {
    name: &'static str,
    bytes: Vec<u8>,
    says: &'static [&'static str],
    refused_as_particles: bool,
}

/// Every malformed input of issue 4 that tests/cli.rs does not already
/// run through the binary.
fn malformed() -> Vec<Malformed> {
    let binary = "binary_little_endian";
    let case = |name, bytes, says| Malformed {
        name,
        bytes,
        says,
        refused_as_particles: true,
    };
    vec![
        Malformed {
            refused_as_particles: false,
            ..case(
                "empty.ply",
                ply(&xyz_header(binary, "float", 0), b""),
                &["no points"],
            )
        },
        case("blank.xyz", Vec::new(), &["empty file"]),
        case(
            "garbage.ply",
            ply(
                &format!("{}what is this\n", xyz_header("ascii", "float", 1)),
                b"1 2 3\n",
            ),
            &["line 7", "header"],
        ),
        case(
            "scan.las",
            b"LASF\0\0\x01\x02".to_vec(),
            &["ends inside its header"],
        ),
        case("scan.obj", b"v 1 2 3\n".to_vec(), &["unsupported format"]),
        case(
            "truncated.ply",
            ply(&xyz_header(binary, "float", 5), &[0; 3 * 12 + 5]),
            &["vertex 3"],
        ),
        case(
            "no_z.ply",
            ply(
                "format ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n",
                b"1 2\n",
            ),
            &["'z'"],
        ),
        case(
            "fewer_rows.ply",
            ply(&xyz_header("ascii", "float", 3), b"1 2 3\n4 5 6\n"),
            &["vertex 2", "does not match"],
        ),
        case(
            "more_bytes.ply",
            ply(&xyz_header(binary, "float", 2), &[0; 2 * 12 + 7]),
            &["does not match"],
        ),
        case(
            "two_columns.xyz",
            b"# x y\n1 2\n3 4\n".to_vec(),
            &["line 2"],
        ),
    ]
}

/// Each malformed file, as the cloud and as the particles, is refused by
/// `mlsproj run` with one line naming the file and saying where and why,
/// a non-zero exit, no panic and no output.
#[test]
fn malformed_inputs_are_refused_with_one_line_naming_file_and_place() {
    let job = Job::new();
    job.write_ply("cloud.ply", &xyz_columns(&sphere_cloud(500)));
    for case in malformed() {
        let path = job.write(case.name, &case.bytes);
        let mut roles = vec![format!("cloud: {:?}, particles: Cloud", case.name)];
        if case.refused_as_particles {
            roles.push(format!(
                "cloud: \"cloud.ply\", particles: File({:?})",
                case.name
            ));
        }
        for fields in roles {
            let line = job.refused(&fields, &path);
            for part in case.says {
                assert!(
                    line.contains(part),
                    "{}: {line:?} lacks {part:?}",
                    case.name
                );
            }
        }
    }
}

/// A folder where a file is expected: refused naming it, as the OS says.
#[test]
fn a_folder_given_as_the_cloud_is_refused_naming_it() {
    let job = Job::new();
    std::fs::create_dir(job.path("scan.ply")).unwrap();
    job.refused_as_cloud("scan.ply");
}

/// A cloud whose every point is NaN/Inf has no surface: refused naming
/// the file (not an internal "empty tree"), also for a tile.
#[test]
fn a_cloud_without_a_finite_point_is_refused_naming_it() {
    let job = Job::new();
    let nan = Point3::new(f64::NAN, 0.0, 0.0);
    let cloud = job.write_ply("cloud.ply", &xyz_columns(&[nan, nan, nan]));
    job.write_ply("particles.ply", &xyz_columns(&sphere_particles(10)));
    let fields = r#"cloud: "cloud.ply", particles: File("particles.ply")"#;
    let line = job.refused(fields, &cloud);
    assert!(line.contains("finite"), "{line}");
    let tile = job.command("run", fields, &["--tile", "0/2", "--quiet"]);
    assert!(
        !tile.success && tile.stderr.contains(&*cloud.to_string_lossy()),
        "{}",
        tile.stderr
    );
}

/// The operating system's reason is stated once, not once per level of
/// the error chain.
#[test]
fn an_unreadable_input_is_refused_stating_the_reason_once() {
    let job = Job::new();
    let line = job.refused_as_cloud("nowhere.ply");
    assert_eq!(line.matches("(os error").count(), 1, "{line}");
}

/// A file without read permission: refused naming it. Skipped where the
/// test may read it anyway (as root).
#[cfg(unix)]
#[test]
fn a_file_without_read_permission_is_refused_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    let job = Job::new();
    let path = job.write_ply("locked.ply", &xyz_columns(&sphere_cloud(100)));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::File::open(&path).is_ok() {
        println!("note: mode 000 does not stop this user from reading, test skipped");
        return;
    }
    job.refused_as_cloud("locked.ply");
}

#[test]
fn endless_lines_and_huge_column_counts_are_refused_in_bounded_work() {
    let job = Job::new();
    // A text cloud that is a symlink to /dev/zero: one endless line.
    let endless = job.path("zero.xyz");
    std::os::unix::fs::symlink("/dev/zero", &endless).unwrap();
    // 200,000 values on one row (400 KB).
    let wide = job.write("wide.xyz", "1.0 ".repeat(200_000).as_bytes());
    // An ascii PLY body line of 3 MB.
    let mut long = ply(&xyz_header("ascii", "float", 1), b"");
    long.extend(std::iter::repeat_n(b'1', 3 << 20));
    let long_ply = job.write("long.ply", &long);
    for (path, reason) in [
        (&endless, "longer than"),
        (&wide, "columns"),
        (&long_ply, "longer than"),
    ] {
        let run = job::mlsproj(&["info", path.to_str().unwrap()]);
        assert!(!run.success, "{path:?}");
        let line = run.stderr.trim_end();
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(line.contains(reason) && line.contains(": line "), "{line}");
    }
}

/// Particles that share a nearest cloud point share its first fit (kept
/// per thread for those that follow): each must come out exactly as when
/// projected alone, whatever came before it. Many particles per cloud
/// point, as seeds are, with both degrees of success: some need a second
/// step, some land outside the first fit's support.
#[test]
fn a_shared_first_fit_projects_as_a_fit_of_its_own() {
    let cloud = noisy_cloud(&Sphere::unit(), 2_000, 0.002, 7);
    let particles = particles(&Sphere::unit(), 3_000, 0.08, 8, |_| true);
    let config = Config::parse(
        r#"(cloud: "c.ply", particles: File("p.ply"), output: "o.ply", support: Nearest(20))"#,
    )
    .unwrap();
    let surface = MlsSurface::new(&cloud).unwrap();
    let projector = surface.projector(Method::from(&config), Orientation::Auto, false);
    let together = project_all(&projector, &particles);
    for (particle, shared) in particles.iter().zip(&together) {
        let alone = project_all(&projector, std::slice::from_ref(particle));
        assert_eq!(alone[0], *shared, "particle {particle}");
    }
    let second_steps = together.iter().filter(|p| p.steps == 2).count();
    assert!(second_steps > 0 && second_steps < together.len());
}

/// A scratch that served one projector serves another afresh: the first
/// fits it kept (by centre) belong to the first projector's method.
#[test]
fn a_scratch_keeps_no_fit_of_another_projector() {
    let surface = MlsSurface::new(&noisy_cloud(&Sphere::unit(), 2_000, 0.002, 9)).unwrap();
    let particle = Point3::new(0.3, 0.2, 0.95);
    // Two supports: the same centre (the particle's nearest point), two fits.
    let projector = |support: &str| {
        let text = format!(
            r#"(cloud: "c.ply", particles: File("p.ply"), output: "o.ply", support: {support})"#
        );
        surface.projector(
            Method::from(&Config::parse(&text).unwrap()),
            Orientation::Auto,
            false,
        )
    };
    let (narrow, wide) = (projector("Nearest(10)"), projector("Nearest(60)"));
    let mut scratch = mlsproj::projection::Scratch::default();
    narrow.project(&particle, &mut scratch);
    let reused = wide.project(&particle, &mut scratch);
    let fresh = wide.project(&particle, &mut mlsproj::projection::Scratch::default());
    assert_eq!(reused, fresh);
}

/// An empty particle file gives an empty output that still names every
/// property, its own attribute included: the stream writes its one
/// empty pass rather than nothing.
#[test]
fn an_empty_particle_file_gives_an_empty_output_naming_every_property() {
    let job = Job::new();
    job.write_ply("cloud.ply", &xyz_columns(&sphere_cloud(500)));
    let header = format!(
        "{}property uchar label\n",
        xyz_header("binary_little_endian", "float", 0)
    );
    job.write("particles.ply", &ply(&header, b""));
    let (_, output) = job.output(r#"cloud: "cloud.ply", particles: File("particles.ply")"#);
    assert!(output.is_empty());
    let text = std::fs::read(job.path(OUTPUT)).unwrap();
    let end = text
        .windows(10)
        .position(|w| w == b"end_header")
        .expect("a header");
    let header = String::from_utf8_lossy(&text[..end]);
    assert!(header.contains("element vertex 0"), "{header}");
    for name in ["x", "nx", "status", "index", "label"] {
        assert!(
            header.lines().any(|l| l.ends_with(&format!(" {name}"))),
            "{name} missing from {header}"
        );
    }
}
