//! Where the orthographic camera looks from, and the picture size.

use std::str::FromStr;

use nalgebra::Vector3;

use crate::error::Error;

/// The direction of an orthographic view. The picture's up is +z in every
/// view but `Top`, as scans are usually taken z-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// Looking down −z (from above): +x to the right, +y up the picture.
    Top,
    /// Looking along +y (from the −y side): +x to the right, +z up.
    #[default]
    Front,
    /// Looking along −x (from the +x side): +y to the right, +z up.
    Side,
    /// Isometric: looking from the (+1, −1, +1) direction (front, right and
    /// above) towards the centre, along −(1, −1, 1)/√3; +z up the picture,
    /// (1, 1, 0)/√2 to the right.
    Iso,
}

/// The camera's orthonormal, right-handed axes in the cloud's frame:
/// `right × up = towards_viewer`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axes {
    /// Along the picture's rows, left to right.
    pub right: Vector3<f64>,
    /// Up the picture's columns.
    pub up: Vector3<f64>,
    /// From the scene towards the viewer: the depth axis (larger is
    /// nearer) and the headlight's direction.
    pub towards_viewer: Vector3<f64>,
}

impl View {
    /// Every view, in the order a refusal lists them.
    pub const ALL: [View; 4] = [View::Top, View::Front, View::Side, View::Iso];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            View::Top => "top",
            View::Front => "front",
            View::Side => "side",
            View::Iso => "iso",
        }
    }

    /// The camera's axes for this view.
    pub fn axes(self) -> Axes {
        let (right, up) = match self {
            View::Top => (Vector3::x(), Vector3::y()),
            View::Front => (Vector3::x(), Vector3::z()),
            View::Side => (Vector3::y(), Vector3::z()),
            View::Iso => (
                Vector3::new(1.0, 1.0, 0.0).normalize(),
                Vector3::new(-1.0, 1.0, 2.0).normalize(),
            ),
        };
        Axes {
            right,
            up,
            towards_viewer: right.cross(&up),
        }
    }
}

impl std::fmt::Display for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for View {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        View::ALL
            .into_iter()
            .find(|view| view.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = View::ALL.iter().map(|view| view.name()).collect();
                Error::Invalid(format!(
                    "unknown view '{text}': expected one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// Picture size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
}

impl Size {
    /// Smallest side that leaves room for the colour bar and its labels.
    pub const MIN_SIDE: u32 = 64;
    /// Largest side: the depth buffer holds 8 bytes a pixel, so this bounds
    /// it at 2 GiB.
    pub const MAX_SIDE: u32 = 16384;
}

/// 2000×1500: sharp on a screen, and 4:3 suits most scanned objects.
impl Default for Size {
    fn default() -> Self {
        Size {
            width: 2000,
            height: 1500,
        }
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// Parses `WxH`, e.g. `800x600`.
impl FromStr for Size {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let invalid = |why: &str| Error::Invalid(format!("invalid size '{text}': {why}"));
        let (width, height) = text
            .split_once(['x', 'X'])
            .ok_or_else(|| invalid("expected WIDTHxHEIGHT, e.g. 800x600"))?;
        let side = |value: &str| {
            value
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|side| (Size::MIN_SIDE..=Size::MAX_SIDE).contains(side))
                .ok_or_else(|| {
                    invalid(&format!(
                        "each side must be a whole number of pixels from {} to {}",
                        Size::MIN_SIDE,
                        Size::MAX_SIDE
                    ))
                })
        };
        Ok(Size {
            width: side(width)?,
            height: side(height)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_view_has_right_handed_orthonormal_axes() {
        for view in View::ALL {
            let Axes {
                right,
                up,
                towards_viewer,
            } = view.axes();
            for axis in [right, up, towards_viewer] {
                assert!((axis.norm() - 1.0).abs() < 1e-12, "{view}");
            }
            assert!(right.dot(&up).abs() < 1e-12, "{view}");
            assert!((right.cross(&up) - towards_viewer).norm() < 1e-12, "{view}");
        }
        assert_eq!(View::Top.axes().towards_viewer, Vector3::z());
        assert_eq!(View::Front.axes().towards_viewer, -Vector3::y());
        assert_eq!(View::Side.axes().towards_viewer, Vector3::x());
        let iso = View::Iso.axes().towards_viewer;
        assert!((iso - Vector3::new(1.0, -1.0, 1.0).normalize()).norm() < 1e-12);
    }

    #[test]
    fn views_and_sizes_parse_and_refusals_say_what_is_accepted() {
        assert_eq!("iso".parse::<View>().unwrap(), View::Iso);
        let err = "back".parse::<View>().unwrap_err().to_string();
        assert!(
            err.contains("back") && err.contains("top, front, side, iso"),
            "{err}"
        );
        assert_eq!(
            "800x600".parse::<Size>().unwrap(),
            Size {
                width: 800,
                height: 600
            }
        );
        for bad in ["800", "0x600", "800x", "axb", "100000x10"] {
            let err = bad.parse::<Size>().unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }
}
