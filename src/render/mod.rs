//! `mlsproj render`: a picture of a point file, to look at a scan or a
//! result before reading numbers.
//!
//! A small software splat renderer: an orthographic [`View`] framing the
//! finite points, each point a disc sized by the cloud's spacing, lying in
//! its tangent plane for the depth test, shaded by a headlight from its
//! normal, and coloured by its own colour or by a property through a
//! perceptual colour map with a [`ColourBar`]. Threads draw into one
//! depth buffer at once (`splat::DepthBuffer`), so 10 million points take
//! seconds.

mod colour_bar;
mod paint;
mod splat;
mod view;

use std::path::Path;

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder, Rgb, RgbImage};
use nalgebra::{Point3, Vector3};
use rayon::prelude::*;

use crate::cloud::{PointCloud, finite_bounds, is_finite_point};
use crate::error::{Error, Result};
use crate::io::atomic::AtomicFile;

pub use colour_bar::{ColourBar, ColourRange, ROBUST_PERCENTILES, RangeRule, Rect, colour_map};
pub use paint::{property_names, scalar_property};
pub use splat::{AMBIENT, DIFFUSE, SPLAT_SCALE};
pub use view::{Axes, Size, View};

use splat::Splat;

/// Colour of the picture where no point is drawn.
pub const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);

/// Margin around the framed points, as a share of the shorter side of the
/// area they are drawn in.
pub const MARGIN: f64 = 0.05;

/// Share of the picture's width kept for the colour bar and its labels
/// when there is one.
pub const COLOUR_BAR_SHARE: u32 = 5;

/// Smallest splat radius in pixels, for clouds denser than the picture:
/// every point covers at least the pixel it falls in (a pixel's centre is
/// within 1/√2 of any point of it), and with points at random over a
/// surface, a pixel is left uncovered with probability exp(−π × points per
/// pixel), below 0.1% from 2.2 points a pixel on.
pub const MIN_SPLAT_RADIUS: f64 = 1.0;

/// What to draw and how.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RenderOptions {
    /// Direction of the orthographic view.
    pub view: View,
    /// Picture size in pixels.
    pub size: Size,
    /// A per-vertex scalar to colour by (see [`property_names`]); `None`
    /// colours by the points' own `red green blue`, or plain without them.
    pub colour: Option<String>,
}

/// A rendered picture and what went into it.
#[derive(Debug, Clone)]
pub struct Picture {
    /// The pixels.
    pub image: RgbImage,
    /// The colour bar, when colouring by a property.
    pub colour_bar: Option<ColourBar>,
    /// Points drawn.
    pub points: usize,
    /// Points skipped for a NaN or infinite coordinate.
    pub skipped: usize,
    /// Radius of every splat, in pixels.
    pub splat_radius: f64,
}

/// Renders a point file to a PNG: reads `input` (any format
/// [`crate::io::read_points`] reads), draws it, and writes `output`
/// atomically. Refuses an `output` that is the input, or in a folder that
/// does not exist, before reading anything.
pub fn render_file(input: &Path, output: &Path, options: &RenderOptions) -> Result<Picture> {
    crate::io::check_output(output, &[("point file", input)]).map_err(Error::Invalid)?;
    let file = AtomicFile::create(output)?;
    let cloud = crate::io::read_points(input)?;
    let picture = render(&cloud, options)?;
    write_png_into(file, &picture.image)?;
    Ok(picture)
}

/// Draws the finite points of `cloud` as [`RenderOptions`] say. Errors when
/// the property to colour by is not in the cloud (naming it and listing
/// those that are) or no point is finite.
pub fn render(cloud: &PointCloud, options: &RenderOptions) -> Result<Picture> {
    let paint = paint::Paint::choose(cloud, options.colour.as_deref())?;
    let Size { width, height } = options.size;
    let strip = match paint {
        paint::Paint::Property { .. } => width / COLOUR_BAR_SHARE,
        _ => 0,
    };
    let frame = Frame::fit(cloud, options.view.axes(), width - strip, height)?;
    let radius = surface_radius(cloud, &frame)?;

    let buffer = splat::DepthBuffer::new(width, height);
    let axes = frame.axes;
    let in_camera = |n: Vector3<f64>| {
        Vector3::new(
            n.dot(&axes.right),
            n.dot(&axes.up),
            n.dot(&axes.towards_viewer),
        )
    };
    (0..cloud.len())
        .into_par_iter()
        .with_min_len(1 << 12)
        .for_each(|index| {
            let position = cloud.positions[index];
            if !is_finite_point(&position) {
                return;
            }
            let normal = cloud
                .normals
                .as_ref()
                .map(|normals| in_camera(normals[index].cast::<f64>()));
            let light = splat::brightness(normal);
            let (x, y, depth) = frame.project(&position);
            buffer.draw(&Splat {
                x,
                y,
                depth: depth + 1.0 + splat::MAX_SLOPE * radius,
                slope: Splat::slope_of(normal),
                radius,
                colour: paint
                    .colour(index)
                    .map(|channel| (f64::from(channel) * light).round() as u8),
            });
        });
    let mut image = buffer.into_image(BACKGROUND);

    let colour_bar = match &paint {
        paint::Paint::Property { name, range, .. } => Some(colour_bar::draw(
            &mut image,
            Rect {
                x: width - strip,
                y: 0,
                width: strip,
                height,
            },
            name,
            *range,
        )),
        _ => None,
    };
    Ok(Picture {
        image,
        colour_bar,
        points: frame.points,
        skipped: cloud.len() - frame.points,
        splat_radius: radius,
    })
}

/// Writes `image` as a PNG, atomically (see [`crate::io::write_ply`]).
pub fn write_png(image: &RgbImage, path: &Path) -> Result<()> {
    write_png_into(AtomicFile::create(path)?, image)
}

/// Encodes `image` as a PNG into `file` and puts it in place.
fn write_png_into(mut file: AtomicFile, image: &RgbImage) -> Result<()> {
    let mut bytes = Vec::new();
    PngEncoder::new(&mut bytes)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            ExtendedColorType::Rgb8,
        )
        .map_err(|e| Error::io(file.path(), std::io::Error::other(e)))?;
    file.write_all(&bytes)?;
    file.commit()
}

/// The splat radius in pixels: the surface spacing times
/// [`SPLAT_SCALE`], at least [`MIN_SPLAT_RADIUS`] and at most the
/// margin (a cloud of a few points would otherwise be a few blots).
fn surface_radius(cloud: &PointCloud, frame: &Frame) -> Result<f64> {
    let spacing = splat::surface_spacing(&cloud.positions, frame.points)?;
    let radius = spacing.map_or(MIN_SPLAT_RADIUS, |spacing| {
        spacing * splat::SPLAT_SCALE * frame.scale
    });
    Ok(radius.clamp(MIN_SPLAT_RADIUS, frame.margin.max(MIN_SPLAT_RADIUS)))
}

/// The orthographic camera fitted to a cloud: the projected extent of its
/// finite points centred in the drawing area with [`MARGIN`] around it.
struct Frame {
    axes: Axes,
    /// Centre of the cloud's bounding box: positions are projected as
    /// offsets from it, so that a scan at 10⁶ m keeps its millimetres.
    origin: Point3<f64>,
    /// Camera coordinates (right, up, towards the viewer) of the middle of
    /// the projected extent, and the depth of its farthest point.
    middle: (f64, f64),
    farthest: f64,
    /// Pixels per unit of the cloud.
    scale: f64,
    /// The pixel the middle of the extent lands on.
    centre: (f64, f64),
    /// Margin in pixels.
    margin: f64,
    /// Finite points.
    points: usize,
}

impl Frame {
    /// Fits the view of `axes` to the finite points of `cloud`, drawn in
    /// the `width`×`height` pixels at the left of the picture.
    fn fit(cloud: &PointCloud, axes: Axes, width: u32, height: u32) -> Result<Self> {
        let (lo, hi) = finite_bounds(&cloud.positions)
            .ok_or_else(|| Error::Invalid("no point with finite coordinates to draw".into()))?;
        let origin = nalgebra::center(&lo, &hi);
        let camera = |p: &Point3<f64>| {
            let offset = p - origin;
            Vector3::new(
                offset.dot(&axes.right),
                offset.dot(&axes.up),
                offset.dot(&axes.towards_viewer),
            )
        };
        let empty = (
            Vector3::repeat(f64::INFINITY),
            Vector3::repeat(f64::NEG_INFINITY),
            0,
        );
        let (low, high, points) = cloud
            .positions
            .par_iter()
            .filter(|p| is_finite_point(p))
            .map(|p| {
                let c = camera(p);
                (c, c, 1)
            })
            .reduce(|| empty, |a, b| (a.0.inf(&b.0), a.1.sup(&b.1), a.2 + b.2));
        let margin = MARGIN * f64::from(width.min(height));
        let fits = |room: f64, extent: f64| (extent > 0.0).then(|| (room - 2.0 * margin) / extent);
        let scale = match (
            fits(f64::from(width), high.x - low.x),
            fits(f64::from(height), high.y - low.y),
        ) {
            (Some(a), Some(b)) => a.min(b),
            (Some(s), None) | (None, Some(s)) => s,
            // One point, or all in one line along the view: any scale.
            (None, None) => 1.0,
        };
        Ok(Frame {
            axes,
            origin,
            middle: ((low.x + high.x) / 2.0, (low.y + high.y) / 2.0),
            farthest: low.z,
            scale,
            centre: (f64::from(width) / 2.0, f64::from(height) / 2.0),
            margin,
            points,
        })
    }

    /// The pixel position (from the left, from the top) and depth in pixels
    /// (0 at the farthest point, larger nearer) of `p`.
    fn project(&self, p: &Point3<f64>) -> (f64, f64, f64) {
        let offset = p - self.origin;
        let right = offset.dot(&self.axes.right) - self.middle.0;
        let up = offset.dot(&self.axes.up) - self.middle.1;
        let depth = offset.dot(&self.axes.towards_viewer) - self.farthest;
        (
            self.centre.0 + right * self.scale,
            self.centre.1 - up * self.scale,
            depth * self.scale,
        )
    }
}
