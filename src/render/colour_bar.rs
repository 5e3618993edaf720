//! Colouring by a scalar property: the range the colour map spans, the
//! numbers printed for it, and the bar drawn beside the picture.

use image::{Rgb, RgbImage};

/// Percentiles that bound a robust range: curvature and residuals have long
/// tails (a few points at sharp edges or in noise reach 100× the typical
/// value) that would squeeze every other point into one colour.
pub const ROBUST_PERCENTILES: (f64, f64) = (2.0, 98.0);

/// Colour of the bar's labels and outline.
const INK: Rgb<u8> = Rgb([0, 0, 0]);

/// How the ends of the colour map are chosen from a property's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRule {
    /// The smallest and largest finite values: for integer properties
    /// (status, neighbour counts, labels, colours), where every value is
    /// meaningful and none is an outlier.
    MinMax,
    /// The [`ROBUST_PERCENTILES`] of the finite values: for floating-point
    /// properties (curvatures, residual, intensity, coordinates), whose
    /// outliers would otherwise set the scale; values outside take the
    /// end colours.
    Percentiles,
}

/// The values at the two ends of the colour map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColourRange {
    /// Value drawn with the map's first colour (bottom of the bar).
    pub low: f64,
    /// Value drawn with the map's last colour (top of the bar).
    pub high: f64,
    /// How `low` and `high` were chosen, said on the bar.
    pub rule: RangeRule,
}

impl ColourRange {
    /// The range of the finite `values` by `rule`; `None` when none is
    /// finite.
    pub fn of(values: &[f64], rule: RangeRule) -> Option<Self> {
        let mut finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if finite.is_empty() {
            return None;
        }
        let (low, high) = match rule {
            RangeRule::MinMax => finite
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                }),
            RangeRule::Percentiles => {
                let (low, high) = ROBUST_PERCENTILES;
                (percentile(&mut finite, low), percentile(&mut finite, high))
            }
        };
        Some(ColourRange { low, high, rule })
    }

    /// Where `value` falls on the map, 0 at `low` to 1 at `high`, clamped;
    /// the middle when the range is a single value.
    pub fn fraction(&self, value: f64) -> f64 {
        if self.high > self.low {
            ((value - self.low) / (self.high - self.low)).clamp(0.0, 1.0)
        } else {
            0.5
        }
    }

    /// The numbers printed at the bottom and the top of the bar.
    pub fn labels(&self) -> [String; 2] {
        [format_value(self.low), format_value(self.high)]
    }

    /// What the ends of the bar are, printed under the property's name.
    pub fn note(&self) -> String {
        match self.rule {
            RangeRule::MinMax => "min to max".into(),
            RangeRule::Percentiles => {
                let (low, high) = ROBUST_PERCENTILES;
                format!("{} to {} percentile", ordinal(low), ordinal(high))
            }
        }
    }
}

/// The `percent` percentile of `values` (nearest rank); reorders them.
fn percentile(values: &mut [f64], percent: f64) -> f64 {
    let rank = ((percent / 100.0) * (values.len() - 1) as f64).round() as usize;
    *values.select_nth_unstable_by(rank, f64::total_cmp).1
}

/// `2` → `2nd`, `98` → `98th`.
fn ordinal(percent: f64) -> String {
    let n = percent.round() as u64;
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// A value as printed on the bar: whole numbers as they are, others to 4
/// significant digits (in exponent form outside 0.001..100000).
pub fn format_value(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e9 {
        return format!("{value:.0}");
    }
    let magnitude = value.abs().log10().floor() as i32;
    if (-3..5).contains(&magnitude) {
        let decimals = (3 - magnitude) as usize;
        let text = format!("{value:.decimals$}");
        if decimals == 0 {
            text
        } else {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    } else {
        format!("{value:.3e}")
    }
}

/// The perceptual colour map (viridis, as matplotlib's): lightness rises
/// monotonically from dark blue (0) to yellow (1), so the order of values
/// reads the same in grey and to colour-blind eyes.
pub fn colour_map(fraction: f64) -> [u8; 3] {
    let colour = colorous::VIRIDIS.eval_continuous(fraction.clamp(0.0, 1.0));
    [colour.r, colour.g, colour.b]
}

/// A rectangle of pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// First column.
    pub x: u32,
    /// First row.
    pub y: u32,
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
}

/// The colour bar as drawn: which property, its range, and where the bar's
/// colours are (top row the map's last colour, bottom row its first).
#[derive(Debug, Clone, PartialEq)]
pub struct ColourBar {
    /// The property coloured by, printed above the bar.
    pub property: String,
    /// The values at the ends of the map, printed beside the bar's ends.
    pub range: ColourRange,
    /// The pixels of the colour ramp (its outline and labels outside).
    pub bar: Rect,
}

/// Draws the bar for `property` into the `strip` of `image` reserved for it:
/// the name and [`ColourRange::note`] above, the map from `low` (bottom) to
/// `high` (top), and the two [`ColourRange::labels`] beside its ends.
pub fn draw(image: &mut RgbImage, strip: Rect, property: &str, range: ColourRange) -> ColourBar {
    let height = image.height();
    let scale = text_scale(height);
    let glyph = 8 * scale;
    let line = 12 * scale;
    let bar = Rect {
        x: strip.x + strip.width / 10,
        y: height / 4,
        width: (strip.width / 8).max(8),
        height: height * 3 / 5,
    };
    for row in 0..bar.height {
        let fraction = 1.0 - row as f64 / (bar.height - 1) as f64;
        let colour = Rgb(colour_map(fraction));
        for column in 0..bar.width {
            image.put_pixel(bar.x + column, bar.y + row, colour);
        }
    }
    outline(image, bar);

    let [low, high] = range.labels();
    let label_x = bar.x + bar.width + glyph / 2;
    for (text, y) in [(high, bar.y), (low, bar.y + bar.height - 1)] {
        draw_text(image, label_x, y.saturating_sub(glyph / 2), scale, &text);
    }
    let picture_width = image.width();
    let title_x = |text: &str| {
        let width = text.chars().count() as u32 * glyph;
        bar.x.min(picture_width.saturating_sub(width + glyph))
    };
    let note = range.note();
    let name_y = bar.y.saturating_sub(3 * line);
    draw_text(image, title_x(property), name_y, scale, property);
    draw_text(image, title_x(&note), name_y + line, scale, &note);
    ColourBar {
        property: property.to_string(),
        range,
        bar,
    }
}

/// Integer magnification of the 8×8 font: 1 up to 599 rows, 3 at 1500.
fn text_scale(height: u32) -> u32 {
    (height / 500).max(1)
}

/// A one-pixel frame just outside `rect`.
fn outline(image: &mut RgbImage, rect: Rect) {
    let (left, top) = (rect.x.saturating_sub(1), rect.y.saturating_sub(1));
    let right = (rect.x + rect.width).min(image.width() - 1);
    let bottom = (rect.y + rect.height).min(image.height() - 1);
    for x in left..=right {
        image.put_pixel(x, top, INK);
        image.put_pixel(x, bottom, INK);
    }
    for y in top..=bottom {
        image.put_pixel(left, y, INK);
        image.put_pixel(right, y, INK);
    }
}

/// Writes ASCII `text` with its top-left corner at (`x`, `y`) in the public
/// domain 8×8 font, each font pixel `scale`×`scale` pixels; other
/// characters show as `?`, and what falls outside the image is cut.
fn draw_text(image: &mut RgbImage, x: u32, y: u32, scale: u32, text: &str) {
    for (index, character) in text.chars().enumerate() {
        let code = if character.is_ascii() { character } else { '?' };
        let glyph = font8x8::legacy::BASIC_LEGACY[code as usize];
        let left = x + index as u32 * 8 * scale;
        for (row, bits) in glyph.iter().enumerate() {
            for column in 0..8 {
                // Bit 0 is the leftmost pixel of the row.
                if bits >> column & 1 == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let (px, py) = (left + column * scale + dx, y + row as u32 * scale + dy);
                        if px < image.width() && py < image.height() {
                            image.put_pixel(px, py, INK);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_to_four_significant_digits() {
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(5.0), "5");
        assert_eq!(format_value(-12.0), "-12");
        assert_eq!(format_value(0.123456), "0.1235");
        assert_eq!(format_value(-4.56789), "-4.568");
        assert_eq!(format_value(1234.5678), "1235");
        assert_eq!(format_value(1230.4), "1230");
        assert_eq!(format_value(0.5), "0.5");
        assert_eq!(format_value(1.5e-7), "1.500e-7");
        assert_eq!(format_value(2.5e6), "2500000");
        assert_eq!(format_value(123456.7), "1.235e5");
    }

    #[test]
    fn ordinals_are_english() {
        let names: Vec<String> = [1.0, 2.0, 3.0, 11.0, 12.0, 22.0, 98.0]
            .into_iter()
            .map(ordinal)
            .collect();
        assert_eq!(names, ["1st", "2nd", "3rd", "11th", "12th", "22nd", "98th"]);
    }
}
