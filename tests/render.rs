//! `mlsproj render`: shading from the normals, framing in every view, the
//! colour bar and its range, refusals, and the command end to end.

use image::{Rgb, RgbImage};
use mlsproj::render::{
    AMBIENT, BACKGROUND, ColourRange, Picture, ROBUST_PERCENTILES, RangeRule, RenderOptions, Size,
    View, colour_map, render,
};
use mlsproj::{Attribute, Column, PointCloud};
use nalgebra::{Point3, Vector3};

mod job;

use job::{Job, attribute, mlsproj, xyz_columns};

/// `count` points spread evenly over the ellipsoid with semi-axes `axes`
/// about `centre` (a Fibonacci lattice), with outward unit normals.
fn ellipsoid(count: usize, centre: Point3<f64>, axes: Vector3<f64>) -> PointCloud {
    let golden_angle = std::f64::consts::PI * (3.0 - 5f64.sqrt());
    let (positions, normals) = (0..count)
        .map(|i| {
            let z = 1.0 - 2.0 * (i as f64 + 0.5) / count as f64;
            let ring = (1.0 - z * z).sqrt();
            let angle = golden_angle * i as f64;
            let unit = Vector3::new(ring * angle.cos(), ring * angle.sin(), z);
            let normal = unit.component_div(&axes).normalize();
            (centre + unit.component_mul(&axes), normal.cast::<f32>())
        })
        .unzip();
    PointCloud {
        positions,
        normals: Some(normals),
        ..PointCloud::default()
    }
}

/// The unit sphere about the origin, 40,000 points.
fn sphere() -> PointCloud {
    ellipsoid(40_000, Point3::origin(), Vector3::repeat(1.0))
}

fn options(view: View, width: u32, height: u32) -> RenderOptions {
    RenderOptions {
        view,
        size: Size { width, height },
        colour: None,
    }
}

/// Perceived brightness (Rec. 709 weights) of a pixel, 0..255.
fn luminance(pixel: &Rgb<u8>) -> f64 {
    let [r, g, b] = pixel.0.map(f64::from);
    0.2126 * r + 0.7152 * g + 0.0722 * b
}

/// The smallest rectangle (left, top, right, bottom; inclusive) holding
/// every pixel that is not background.
fn drawn_box(image: &RgbImage) -> (u32, u32, u32, u32) {
    let drawn: Vec<(u32, u32)> = image
        .enumerate_pixels()
        .filter(|(_, _, pixel)| **pixel != BACKGROUND)
        .map(|(x, y, _)| (x, y))
        .collect();
    assert!(!drawn.is_empty(), "nothing drawn");
    let left = drawn.iter().map(|p| p.0).min().unwrap();
    let right = drawn.iter().map(|p| p.0).max().unwrap();
    let top = drawn.iter().map(|p| p.1).min().unwrap();
    let bottom = drawn.iter().map(|p| p.1).max().unwrap();
    (left, top, right, bottom)
}

/// The drawn disc of a sphere: its centre and radius (splats' reach
/// taken off) in pixels.
fn disc(picture: &Picture) -> ((f64, f64), f64) {
    let (left, top, right, bottom) = drawn_box(&picture.image);
    let centre = (
        (left + right + 1) as f64 / 2.0,
        (top + bottom + 1) as f64 / 2.0,
    );
    let radius = (right + 1 - left) as f64 / 2.0 - picture.splat_radius;
    (centre, radius)
}

/// Mean luminance of the pixels at `fraction` of the disc's radius from its
/// centre, left, right, above and below.
fn luminance_at(picture: &Picture, fraction: f64) -> f64 {
    let ((cx, cy), radius) = disc(picture);
    let offsets = [(1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)];
    let sum: f64 = offsets
        .iter()
        .map(|(dx, dy)| {
            let x = (cx + dx * fraction * radius) as u32;
            let y = (cy + dy * fraction * radius) as u32;
            luminance(picture.image.get_pixel(x, y))
        })
        .sum();
    sum / offsets.len() as f64
}

#[test]
fn a_sphere_lit_from_the_front_is_bright_in_the_middle_and_dark_at_the_rim() {
    let picture = render(&sphere(), &options(View::Front, 400, 300)).unwrap();
    let ((cx, cy), radius) = disc(&picture);
    assert!(
        (cx - 200.0).abs() <= 1.0 && (cy - 150.0).abs() <= 1.0,
        "{cx} {cy}"
    );
    // 300 rows less a 5% margin on each side.
    assert!((radius - 135.0).abs() < 2.0, "{radius}");

    let centre = luminance_at(&picture, 0.0);
    let rim = luminance_at(&picture, 0.95);
    // The plain colour's luminance, fully lit; at 0.95 of the radius the
    // surface turns 72° from the viewer: 0.2 + 0.8 cos 72° = 0.45 of it.
    let plain = luminance(&Rgb([215, 205, 190]));
    assert!((centre - plain).abs() < 0.03 * plain, "{centre} vs {plain}");
    assert!(
        rim < 0.55 * centre && rim > AMBIENT * plain,
        "{rim} vs {centre}"
    );
    // Brightness falls from the middle outwards.
    let rings: Vec<f64> = [0.0, 0.5, 0.8, 0.95]
        .into_iter()
        .map(|fraction| luminance_at(&picture, fraction))
        .collect();
    assert!(rings.windows(2).all(|w| w[0] > w[1]), "{rings:?}");

    // Background everywhere off the disc.
    let reach = radius + picture.splat_radius + 1.0;
    for (x, y, pixel) in picture.image.enumerate_pixels() {
        let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
        if dx.hypot(dy) > reach {
            assert_eq!(*pixel, BACKGROUND, "({x}, {y}) off the disc");
        }
    }
}

#[test]
fn flipped_normals_show_dark_and_points_without_normals_flat() {
    let mut flipped = sphere();
    for normal in flipped.normals.as_mut().unwrap() {
        *normal = -*normal;
    }
    let picture = render(&flipped, &options(View::Front, 400, 300)).unwrap();
    let plain = luminance(&Rgb([215, 205, 190]));
    for fraction in [0.0, 0.5, 0.9] {
        let seen = luminance_at(&picture, fraction);
        assert!((seen - AMBIENT * plain).abs() < 2.0, "{seen} at {fraction}");
    }

    let mut bare = sphere();
    bare.normals = None;
    let picture = render(&bare, &options(View::Front, 400, 300)).unwrap();
    for fraction in [0.0, 0.5, 0.95] {
        let seen = luminance_at(&picture, fraction);
        assert!((seen - plain).abs() < 1.0, "{seen} at {fraction}");
    }
}

#[test]
fn every_view_centres_the_shape_and_shows_its_axes() {
    // Semi-axes 3, 2, 1 along x, y, z, far from the origin.
    let shape = ellipsoid(
        30_000,
        Point3::new(5e5, -2e5, 100.0),
        Vector3::new(3.0, 2.0, 1.0),
    );
    let (width, height) = (600, 400);
    for (view, across, up) in [
        (View::Top, 3.0, 2.0),
        (View::Front, 3.0, 1.0),
        (View::Side, 2.0, 1.0),
        // The outline of the ellipsoid seen from (1, −1, 1)/√3.
        (View::Iso, f64::NAN, f64::NAN),
    ] {
        let picture = render(&shape, &options(view, width, height)).unwrap();
        let (left, top, right, bottom) = drawn_box(&picture.image);
        let middle = (
            (left + right + 1) as f64 / 2.0,
            (top + bottom + 1) as f64 / 2.0,
        );
        assert!(
            (middle.0 - 300.0).abs() <= 1.0 && (middle.1 - 200.0).abs() <= 1.0,
            "{view}: centred at {middle:?}"
        );
        let reach = 2.0 * picture.splat_radius;
        let drawn = (
            (right + 1 - left) as f64 - reach,
            (bottom + 1 - top) as f64 - reach,
        );
        // It fills the picture up to the margin in one direction.
        let room = (width as f64 - 40.0, height as f64 - 40.0);
        assert!(
            (drawn.0 - room.0).abs() < 2.0 || (drawn.1 - room.1).abs() < 2.0,
            "{view}: {drawn:?} in {room:?}"
        );
        if across.is_finite() {
            let aspect = drawn.0 / drawn.1;
            assert!(
                (aspect / (across / up) - 1.0).abs() < 0.03,
                "{view}: aspect {aspect}, expected {}",
                across / up
            );
        }
    }
}

#[test]
fn views_and_sizes_are_refused_with_what_is_accepted() {
    let err = "bottom".parse::<View>().unwrap_err().to_string();
    assert!(err.contains("bottom") && err.contains("iso"), "{err}");
    let err = "800by600".parse::<Size>().unwrap_err().to_string();
    assert!(
        err.contains("800by600") && err.contains("WIDTHxHEIGHT"),
        "{err}"
    );
}

/// A sphere with a float property `height` (its z) and an integer property
/// `label` (0..=7 by octant).
fn labelled_sphere() -> PointCloud {
    let mut cloud = sphere();
    let height: Vec<f32> = cloud.positions.iter().map(|p| p.z as f32).collect();
    let label: Vec<u8> = cloud
        .positions
        .iter()
        .map(|p| u8::from(p.x > 0.0) + 2 * u8::from(p.y > 0.0) + 4 * u8::from(p.z > 0.0))
        .collect();
    cloud.attributes = vec![
        Attribute {
            name: "height".into(),
            values: Column::F32(height),
        },
        Attribute {
            name: "label".into(),
            values: Column::U8(label),
        },
    ];
    cloud
}

#[test]
fn the_colour_bar_spans_the_map_and_prints_the_range() {
    let cloud = labelled_sphere();
    let picture = render(
        &cloud,
        &RenderOptions {
            colour: Some("label".into()),
            ..options(View::Front, 800, 600)
        },
    )
    .unwrap();
    let colour_bar = picture.colour_bar.expect("a colour bar");
    assert_eq!(colour_bar.property, "label");
    // An integer property: its minimum and maximum, printed as they are.
    assert_eq!(
        colour_bar.range,
        ColourRange {
            low: 0.0,
            high: 7.0,
            rule: RangeRule::MinMax
        }
    );
    assert_eq!(colour_bar.range.labels(), ["0", "7"]);

    // The bar lies right of the drawing, runs from the map's first colour
    // at the bottom to its last at the top, and its colours follow the map
    // in order.
    // The sphere is framed in the 640 columns left of the bar's strip.
    let bar = colour_bar.bar;
    assert!(bar.x >= 640, "bar at {}", bar.x);
    assert!(
        (600..bar.x - 1).all(|x| *picture.image.get_pixel(x, 300) == BACKGROUND),
        "a gap between the sphere and the bar"
    );
    let column = bar.x + bar.width / 2;
    let at = |row: u32| *picture.image.get_pixel(column, bar.y + row);
    assert_eq!(at(0), Rgb(colour_map(1.0)));
    assert_eq!(at(bar.height - 1), Rgb(colour_map(0.0)));
    for row in [bar.height / 4, bar.height / 2, 3 * bar.height / 4] {
        let fraction = 1.0 - row as f64 / (bar.height - 1) as f64;
        assert_eq!(at(row), Rgb(colour_map(fraction)), "row {row}");
    }
    // Viridis rises in lightness from bottom to top.
    let lightness: Vec<f64> = (0..bar.height)
        .step_by(8)
        .map(|row| luminance(&at(row)))
        .collect();
    assert!(lightness.windows(2).all(|w| w[0] >= w[1]), "{lightness:?}");
}

#[test]
fn float_properties_range_over_their_percentiles_and_integers_over_all() {
    // 0, 1, …, 1000 and outliers: the 2nd and 98th percentiles (nearest
    // rank) of 0..=1000 are 20 and 980; the outliers move them by one rank.
    let mut values: Vec<f64> = (0..=1000).map(f64::from).collect();
    values.extend([f64::NAN, f64::INFINITY]);
    let robust = ColourRange::of(&values, RangeRule::Percentiles).unwrap();
    assert_eq!(ROBUST_PERCENTILES, (2.0, 98.0));
    assert_eq!((robust.low, robust.high), (20.0, 980.0));
    assert_eq!(robust.labels(), ["20", "980"]);
    assert_eq!(robust.note(), "2nd to 98th percentile");
    assert_eq!(robust.fraction(0.0), 0.0);
    assert_eq!(robust.fraction(500.0), 0.5);
    assert_eq!(robust.fraction(1e9), 1.0);

    let full = ColourRange::of(&values, RangeRule::MinMax).unwrap();
    assert_eq!((full.low, full.high), (0.0, 1000.0));
    assert_eq!(full.note(), "min to max");
    assert_eq!(ColourRange::of(&[f64::NAN], RangeRule::MinMax), None);

    // Rendering by a float property uses its percentiles, whose labels read
    // back as the range to their 4 significant digits.
    let cloud = labelled_sphere();
    let picture = render(
        &cloud,
        &RenderOptions {
            colour: Some("height".into()),
            ..options(View::Front, 400, 300)
        },
    )
    .unwrap();
    let range = picture.colour_bar.unwrap().range;
    let heights: Vec<f64> = cloud
        .positions
        .iter()
        .map(|p| f64::from(p.z as f32))
        .collect();
    assert_eq!(
        range,
        ColourRange::of(&heights, RangeRule::Percentiles).unwrap()
    );
    // Evenly spread heights over −1..1: percentiles near ∓0.96.
    assert!(
        (range.low + 0.96).abs() < 0.01 && (range.high - 0.96).abs() < 0.01,
        "{range:?}"
    );
    let [low, high] = range.labels().map(|label| label.parse::<f64>().unwrap());
    assert!((low - range.low).abs() <= 5e-4 * range.low.abs(), "{low}");
    assert!(
        (high - range.high).abs() <= 5e-4 * range.high.abs(),
        "{high}"
    );
}

#[test]
fn an_unknown_property_is_refused_with_its_name_and_the_ones_there_are() {
    let err = render(
        &labelled_sphere(),
        &RenderOptions {
            colour: Some("mean_curvature".into()),
            ..options(View::Front, 200, 150)
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("'mean_curvature'"), "{err}");
    assert!(err.contains("x, y, z, nx, ny, nz, height, label"), "{err}");
}

#[test]
fn non_finite_points_are_skipped_and_none_finite_is_refused() {
    let mut cloud = sphere();
    cloud.positions[0] = Point3::new(f64::NAN, 0.0, 0.0);
    cloud.positions[1] = Point3::new(0.0, f64::INFINITY, 0.0);
    let picture = render(&cloud, &options(View::Front, 400, 300)).unwrap();
    assert_eq!((picture.points, picture.skipped), (39_998, 2));
    let ((cx, cy), _) = disc(&picture);
    assert!((cx - 200.0).abs() <= 1.0 && (cy - 150.0).abs() <= 1.0);

    let nowhere = PointCloud::from_positions(vec![Point3::new(f64::NAN, 0.0, 0.0)]);
    let err = render(&nowhere, &options(View::Front, 200, 150)).unwrap_err();
    assert!(
        err.to_string().contains("no point with finite coordinates"),
        "{err}"
    );
}

#[test]
fn the_picture_is_the_same_on_any_number_of_threads() {
    let cloud = labelled_sphere();
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| render(&cloud, &options(View::Iso, 300, 200)).unwrap().image)
    };
    assert!(on(1) == on(3), "pictures differ");
}

#[test]
fn the_command_writes_a_png_and_refuses_the_input_and_unknown_properties() {
    let job = Job::new();
    let cloud = sphere();
    let mut columns = xyz_columns(&cloud.positions);
    let radius: Vec<f32> = cloud
        .positions
        .iter()
        .map(|p| p.coords.norm() as f32)
        .collect();
    columns.push(attribute("radius", Column::F32(radius)));
    let input = job.write_ply("sphere.ply", &columns);
    let input = input.to_str().unwrap();
    let output = job.path("sphere.png");
    let output = output.to_str().unwrap();

    let run = mlsproj(&["render", input, "-o", output, "--colour", "radius"]);
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stdout.contains("40000 points") && run.stdout.contains("2000x1500"),
        "{}",
        run.stdout
    );
    let png = image::load_from_memory_with_format(
        &std::fs::read(output).unwrap(),
        image::ImageFormat::Png,
    )
    .unwrap();
    assert_eq!(
        (png.width(), png.height()),
        (2000, 1500),
        "the default size"
    );

    let run = mlsproj(&[
        "render", input, "-o", output, "--view", "iso", "--size", "320x240",
    ]);
    assert!(run.success, "{}", run.stderr);
    let png = image::load_from_memory_with_format(
        &std::fs::read(output).unwrap(),
        image::ImageFormat::Png,
    )
    .unwrap();
    assert_eq!((png.width(), png.height()), (320, 240));

    let run = mlsproj(&["render", input, "-o", output, "--colour", "curvature"]);
    assert!(!run.success);
    assert!(
        run.stderr.contains("'curvature'") && run.stderr.contains("radius"),
        "{}",
        run.stderr
    );

    let before = std::fs::read(input).unwrap();
    let run = mlsproj(&["render", input, "-o", input]);
    assert!(!run.success);
    assert!(
        run.stderr.contains("refusing to overwrite"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read(input).unwrap(),
        before,
        "the input is untouched"
    );
    let absent = job.path("absent/sphere.png");
    let run = mlsproj(&["render", input, "-o", absent.to_str().unwrap()]);
    assert!(!run.success);
    assert!(
        run.stderr.contains("output folder does not exist"),
        "{}",
        run.stderr
    );
    let files = std::fs::read_dir(job.folder()).unwrap().count();
    assert_eq!(files, 2, "no temporary file left behind");
}
