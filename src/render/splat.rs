//! Points drawn as shaded discs (splats) into one depth buffer shared by
//! every thread, and the surface spacing that sizes the discs.

use std::sync::atomic::{AtomicU64, Ordering};

use image::{Rgb, RgbImage};
use nalgebra::{Point3, Vector3};

use crate::cloud::is_finite_point;
use crate::error::Result;
use crate::neighbours::NeighbourSearch;
use crate::pipeline::inspect::radius_for;

/// Share of a point's colour it keeps however it faces: what flipped normals
/// and the rim of a lit surface fall to.
pub const AMBIENT: f64 = 0.2;

/// Share of a point's colour that the headlight adds, times the cosine of
/// the angle between its normal and the direction to the viewer.
pub const DIFFUSE: f64 = 1.0 - AMBIENT;

/// Splat radius in units of the surface spacing (the side of the area per
/// point). A square grid needs 1/√2 to leave no gap, but scans are uneven:
/// with points at random, a pixel is missed by every splat with probability
/// exp(−π · 1.5²) ≈ 0.1%, where the background or the far side would show
/// through. Larger blurs detail.
pub const SPLAT_SCALE: f64 = 1.5;

/// Steepest depth slope of a splat's tangent plane (depth per pixel across
/// the disc), so that a splat seen edge-on does not reach through the
/// surface in front of it.
pub const MAX_SLOPE: f64 = 4.0;

/// Points sampled for the spacing estimate: a k-d tree over this many
/// builds in tens of milliseconds, whatever the cloud's size.
const SPACING_SAMPLE: usize = 200_000;

/// Neighbours (the point itself included) whose distance gives the local
/// area per point: enough that a grid and a random sample of the same
/// density give nearly the same spacing, few enough to stay local.
const SPACING_NEIGHBOURS: usize = 16;

/// The spacing of the surface the finite `positions` sample (`finite` of
/// them): the side of the area per point, √(π d² / (k − 1)) with d the
/// median distance to the k-th nearest point (the point itself counted),
/// measured on a random sample of at most [`SPACING_SAMPLE`] points and
/// scaled by √(sample / finite), as a surface's spacing goes with one over
/// the square root of its number of points. `None` for fewer than two
/// points.
pub fn surface_spacing(positions: &[Point3<f64>], finite: usize) -> Result<Option<f64>> {
    let keep_below = if finite <= SPACING_SAMPLE {
        u64::MAX
    } else {
        (SPACING_SAMPLE as f64 / finite as f64 * u64::MAX as f64) as u64
    };
    let sample: Vec<Point3<f64>> = positions
        .iter()
        .enumerate()
        .filter(|(index, p)| is_finite_point(p) && mix(*index as u64) <= keep_below)
        .map(|(_, p)| *p)
        .collect();
    if sample.len() < 2 {
        return Ok(None);
    }
    let search = NeighbourSearch::new(&sample)?;
    let k = SPACING_NEIGHBOURS.min(sample.len());
    Ok(radius_for(&search, k).map(|distance| {
        let sample_spacing = distance * (std::f64::consts::PI / (k - 1) as f64).sqrt();
        sample_spacing * (sample.len() as f64 / finite as f64).sqrt()
    }))
}

/// SplitMix64's finaliser: a well-spread pseudo-random number per index,
/// so the sample is the same on every run and does not follow scan lines.
fn mix(index: u64) -> u64 {
    let mut z = index.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// How bright a point is under the headlight, from its normal in camera
/// axes (z towards the viewer): one-sided Lambert plus ambient. A normal
/// turned away from the viewer (flipped, on a surface seen from the front)
/// gets the ambient share alone, so flipped patches show dark; a point
/// without normals is drawn flat, at full brightness; a zero normal says
/// nothing about facing and gets the ambient share.
pub fn brightness(normal: Option<Vector3<f64>>) -> f64 {
    match normal {
        None => 1.0,
        Some(normal) => {
            let length = normal.norm();
            let facing = if length > 0.0 {
                (normal.z / length).max(0.0)
            } else {
                0.0
            };
            AMBIENT + DIFFUSE * facing
        }
    }
}

/// One point as drawn, in pixels.
#[derive(Debug, Clone, Copy)]
pub struct Splat {
    /// Centre in pixels from the left (pixel centres at +0.5).
    pub x: f64,
    /// Centre in pixels from the top.
    pub y: f64,
    /// Depth at the centre in pixels, larger nearer; at least
    /// 1 + [`MAX_SLOPE`] × radius, so that every depth on the disc is
    /// positive.
    pub depth: f64,
    /// Depth change per pixel to the right and per pixel down: the tangent
    /// plane of the point, so that overlapping splats of one surface meet
    /// along a line instead of stacking in drawing order.
    pub slope: (f64, f64),
    /// Radius in pixels.
    pub radius: f64,
    /// Shaded colour.
    pub colour: [u8; 3],
}

impl Splat {
    /// The depth slopes of the tangent plane of `normal` (camera axes),
    /// capped at [`MAX_SLOPE`]; flat without a normal.
    pub fn slope_of(normal: Option<Vector3<f64>>) -> (f64, f64) {
        match normal {
            Some(n) if n.z != 0.0 => (
                (-n.x / n.z).clamp(-MAX_SLOPE, MAX_SLOPE),
                (n.y / n.z).clamp(-MAX_SLOPE, MAX_SLOPE),
            ),
            _ => (0.0, 0.0),
        }
    }
}

/// A depth buffer that threads draw into at once: each pixel is one
/// atomic word, the depth's bits above the colour's, and a splat takes a
/// pixel with `fetch_max`. The nearest point wins whatever the order of
/// drawing (equal depths go to the larger colour), so the picture is the
/// same for any number of threads, with no per-thread buffers to merge.
pub struct DepthBuffer {
    width: u32,
    height: u32,
    pixels: Vec<AtomicU64>,
}

impl DepthBuffer {
    /// An empty buffer: every pixel background (word 0, below any depth).
    pub fn new(width: u32, height: u32) -> Self {
        DepthBuffer {
            width,
            height,
            pixels: (0..width as usize * height as usize)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    /// Draws the pixels whose centres lie on the disc of `splat`.
    pub fn draw(&self, splat: &Splat) {
        let r = splat.radius;
        let columns = pixel_range(splat.x, r, self.width);
        let rows = pixel_range(splat.y, r, self.height);
        let colour = u64::from(u32::from_be_bytes([
            0,
            splat.colour[0],
            splat.colour[1],
            splat.colour[2],
        ]));
        for row in rows {
            let dy = row as f64 + 0.5 - splat.y;
            for column in columns.clone() {
                let dx = column as f64 + 0.5 - splat.x;
                if dx * dx + dy * dy > r * r {
                    continue;
                }
                let depth = splat.depth + splat.slope.0 * dx + splat.slope.1 * dy;
                // Positive floats order as their bits do.
                let word = u64::from((depth as f32).to_bits()) << 32 | colour;
                self.pixels[row as usize * self.width as usize + column as usize]
                    .fetch_max(word, Ordering::Relaxed);
            }
        }
    }

    /// The picture: each pixel the colour of its nearest splat, or
    /// `background` where none was drawn.
    pub fn into_image(self, background: Rgb<u8>) -> RgbImage {
        let words: Vec<u64> = self.pixels.into_iter().map(AtomicU64::into_inner).collect();
        RgbImage::from_fn(self.width, self.height, |x, y| {
            match words[y as usize * self.width as usize + x as usize] {
                0 => background,
                word => {
                    let [_, r, g, b] = (word as u32).to_be_bytes();
                    Rgb([r, g, b])
                }
            }
        })
    }
}

/// The pixels (of `0..size`) whose centres can lie within `radius` of
/// `centre`.
fn pixel_range(centre: f64, radius: f64, size: u32) -> std::ops::Range<u32> {
    let first = (centre - radius - 0.5).ceil().max(0.0);
    let end = (centre + radius - 0.5).floor() + 1.0;
    first.min(size as f64) as u32..end.clamp(0.0, size as f64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_splat_wins_in_any_order() {
        let near = Splat {
            x: 5.0,
            y: 5.0,
            depth: 10.0,
            slope: (0.0, 0.0),
            radius: 2.0,
            colour: [200, 0, 0],
        };
        let far = Splat {
            depth: 5.0,
            colour: [0, 0, 200],
            ..near
        };
        for order in [[near, far], [far, near]] {
            let buffer = DepthBuffer::new(10, 10);
            for splat in &order {
                buffer.draw(splat);
            }
            let image = buffer.into_image(Rgb([255, 255, 255]));
            assert_eq!(image.get_pixel(5, 5), &Rgb([200, 0, 0]));
            assert_eq!(image.get_pixel(0, 0), &Rgb([255, 255, 255]));
            // Radius 2 about (5, 5): pixel centres 4.5 and 5.5 ± 1.5.
            assert_eq!(image.get_pixel(3, 5), &Rgb([200, 0, 0]));
            assert_eq!(image.get_pixel(2, 5), &Rgb([255, 255, 255]));
        }
    }

    #[test]
    fn a_grid_sample_spacing_is_its_pitch() {
        let positions: Vec<Point3<f64>> = (0..100)
            .flat_map(|i| (0..100).map(move |j| Point3::new(i as f64 * 0.5, j as f64 * 0.5, 1.0)))
            .collect();
        let spacing = surface_spacing(&positions, positions.len())
            .unwrap()
            .unwrap();
        assert!((spacing / 0.5 - 1.0).abs() < 0.1, "{spacing}");
    }

    #[test]
    fn the_headlight_lights_what_faces_it() {
        assert_eq!(brightness(Some(Vector3::z())), 1.0);
        assert_eq!(brightness(Some(-Vector3::z())), AMBIENT);
        assert_eq!(brightness(Some(Vector3::x())), AMBIENT);
        assert_eq!(brightness(Some(Vector3::zeros())), AMBIENT);
        assert_eq!(brightness(None), 1.0);
    }
}
