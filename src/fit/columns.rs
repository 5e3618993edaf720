//! What the fit adds to a neighbourhood's columns (a structure of arrays:
//! the gather's offsets and squared distances, `crate::neighbours`), so
//! that the sums of the fit run in lanes: [`LANES`] neighbours at a time,
//! each lane its own partial sum, the lanes added at the end.
//!
//! A sum over neighbours written one neighbour at a time is a chain of
//! dependent additions that the compiler may not reorder (floating-point
//! addition is not associative), so it cannot vectorise it. In lanes the
//! order is fixed by the code: the same neighbours give the same sums bit
//! for bit, with any number of threads. Where the CPU has AVX2 and FMA
//! (checked at run time, so no `target-cpu` flag is needed) the sums run in
//! AVX registers (`super::avx`); elsewhere one neighbour at a time, by the
//! plain definitions the tests hold the lanes to. The two add in different
//! orders, so results agree to the last bits, not bit for bit, between a
//! CPU with AVX2 and one without; the height and slope moments run in
//! `f32` lanes, so there they agree to `f32`'s rounding of each term.

use nalgebra::Vector3;

#[cfg(target_arch = "x86_64")]
use crate::cpu::wide_lanes;
use crate::neighbours::Neighbourhood;

use super::Moments;

pub use crate::neighbours::LANES;

/// What the fit adds to the columns of a neighbourhood (which it reads
/// where the gather wrote them, padded to whole [`LANES`]): each
/// neighbour's weight and, for the slope equations, its normal; each
/// column padded like the neighbourhood's, with zeros (the padding adds
/// zero to every sum).
#[derive(Debug, Default)]
pub struct Columns {
    /// Number of neighbours (before the padding).
    len: usize,
    /// Each neighbour's weight in the fit. (Its weight in the fit's frame
    /// is summed into the frame's moments as it is set, never stored: see
    /// [`super::Kernel::weigh`].)
    pub(crate) weight: Vec<f64>,
    /// The neighbours' unit normals, one column per axis, when loaded with
    /// them (empty otherwise).
    pub(crate) normal: [Vec<f64>; 3],
}

impl Columns {
    /// Takes the neighbours' `normals` (indexed by neighbour index, when
    /// given) into columns for the neighbourhood `neighbours`. Weights are
    /// set later, by [`super::Kernel::weigh`].
    pub fn load(&mut self, neighbours: &Neighbourhood, normals: Option<&[Vector3<f32>]>) {
        self.len = neighbours.len();
        let padded = self.padded_len();
        let [nxs, nys, nzs] = &mut self.normal;
        let Some(normals) = normals else {
            for column in [nxs, nys, nzs] {
                column.clear();
            }
            return;
        };
        for column in [&mut *nxs, nys, nzs] {
            column.resize(padded, 0.0);
            column[self.len..].fill(0.0);
        }
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if wide_lanes() {
            // SAFETY: the CPU has AVX2 and FMA.
            done = unsafe {
                super::avx::gather_normals(neighbours.indices(), normals, [nxs, nys, nzs])
            };
        }
        let columns = nxs.iter_mut().zip(nys.iter_mut()).zip(nzs.iter_mut());
        for (((x, y), z), &n) in columns.zip(neighbours.indices()).skip(done) {
            let normal = normals[n as usize];
            (*x, *y, *z) = (normal.x.into(), normal.y.into(), normal.z.into());
        }
    }

    /// Number of neighbours.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Length of every column: [`Self::len`] rounded up to whole lanes.
    pub(crate) fn padded_len(&self) -> usize {
        self.len.div_ceil(LANES) * LANES
    }

    /// The moments of `neighbours` (those loaded) under their weights in
    /// the fit.
    pub fn moments(&self, neighbours: &Neighbourhood) -> Moments {
        debug_assert_eq!(neighbours.len(), self.len, "the neighbourhood loaded");
        #[cfg(target_arch = "x86_64")]
        if wide_lanes() {
            // SAFETY: the CPU has AVX2 and FMA.
            let sums = unsafe { super::avx::weighted_moments(neighbours, &self.weight) };
            return Moments::from_sums(sums);
        }
        let mut moments = Moments::default();
        for (neighbour, &w) in neighbours.iter().zip(self.weights()) {
            moments.add(&neighbour.offset, w);
        }
        moments
    }

    /// `Σ w n` of the neighbours' weights and normals, when the columns
    /// carry normals.
    pub fn weighted_normal_sum(&self) -> Option<Vector3<f64>> {
        if !self.has_normals() {
            return None;
        }
        #[cfg(target_arch = "x86_64")]
        if wide_lanes() {
            // SAFETY: the CPU has AVX2 and FMA.
            let [x, y, z] = unsafe { super::avx::weighted_normal_sum(self) };
            return Some(Vector3::new(x, y, z));
        }
        Some(
            self.weights()
                .iter()
                .enumerate()
                .map(|(i, &w)| w * self.normal_of(i))
                .sum(),
        )
    }

    /// `Σ w n` of the neighbours' weights and their normals in `normals`
    /// (indexed by neighbour index), read from there: for columns loaded
    /// without normals.
    pub fn weighted_normal_sum_of(
        &self,
        neighbours: &Neighbourhood,
        normals: &[Vector3<f32>],
    ) -> Vector3<f64> {
        debug_assert_eq!(neighbours.len(), self.len, "the neighbourhood loaded");
        #[cfg(target_arch = "x86_64")]
        if wide_lanes() {
            // SAFETY: the CPU has AVX2 and FMA.
            let [x, y, z] = unsafe {
                super::avx::weighted_normal_sum_at(neighbours.indices(), normals, &self.weight)
            };
            return Vector3::new(x, y, z);
        }
        neighbours
            .indices()
            .iter()
            .zip(self.weights())
            .map(|(&n, &w)| w * normals[n as usize].cast::<f64>())
            .sum()
    }

    /// True when the columns carry the neighbours' normals.
    pub fn has_normals(&self) -> bool {
        !self.normal[0].is_empty()
    }

    /// The normal of neighbour `i` (the columns must carry normals).
    pub(crate) fn normal_of(&self, i: usize) -> Vector3<f64> {
        Vector3::new(self.normal[0][i], self.normal[1][i], self.normal[2][i])
    }

    /// Sets each neighbour's weight in the fit to `weight(i)`, the
    /// padding's to zero (tests of the sums over given weights).
    #[cfg(test)]
    pub(crate) fn set_weights(&mut self, weight: impl Fn(usize) -> f64) {
        self.weight = (0..self.padded_len())
            .map(|i| if i < self.len { weight(i) } else { 0.0 })
            .collect();
    }

    /// Each neighbour's weight in the fit, without the padding.
    pub fn weights(&self) -> &[f64] {
        &self.weight[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::wavy_neighbourhood;

    #[test]
    fn normals_are_loaded_and_padded_to_whole_lanes_with_nothing() {
        // Longer neighbourhoods first: a shorter one must zero the padding
        // over what the longer left behind. Each reads the last normal
        // (the lanes read no further).
        let normals: Vec<Vector3<f32>> = (0..11)
            .map(|i| Vector3::new(0.3 * i as f32, 1.0, -0.5 * i as f32).normalize())
            .collect();
        let mut columns = Columns::default();
        for count in [11, 9, 8, 5, 4, 1, 0] {
            let hood = wavy_neighbourhood(count);
            columns.load(&hood, Some(&normals[..count]));
            assert_eq!(columns.len(), count);
            assert_eq!(columns.padded_len() % LANES, 0);
            assert!(columns.padded_len() < count + LANES);
            for (axis, column) in columns.normal.iter().enumerate() {
                assert_eq!(column.len(), columns.padded_len());
                let mut loaded = hood.indices().iter().zip(column);
                assert!(loaded.all(|(&n, &x)| x == f64::from(normals[n as usize][axis])));
                assert!(column[count..].iter().all(|&x| x == 0.0));
            }
        }
        columns.load(&wavy_neighbourhood(3), None);
        assert!(columns.normal[0].is_empty());
    }

    #[test]
    fn normal_sum_in_lanes_is_the_plain_sum() {
        let hood = wavy_neighbourhood(11);
        let normals: Vec<Vector3<f32>> = (0..11)
            .map(|i| Vector3::new(0.3 * i as f32, 1.0, -0.5).normalize())
            .collect();
        let mut columns = Columns::default();
        columns.load(&hood, Some(&normals));
        columns.weight = (0..columns.padded_len())
            .map(|i| if i < hood.len() { 0.5 + i as f64 } else { 0.0 })
            .collect();
        let plain: Vector3<f64> = hood
            .iter()
            .zip(columns.weights())
            .map(|(n, &w)| w * normals[n.index as usize].cast::<f64>())
            .sum();
        let lanes = columns.weighted_normal_sum().unwrap();
        assert!((lanes - plain).norm() < 1e-12 * plain.norm());
        // Read by index, with the columns loaded without them (a last
        // lane of three).
        let weight = std::mem::take(&mut columns.weight);
        columns.load(&hood, None);
        columns.weight = weight;
        let by_index = columns.weighted_normal_sum_of(&hood, &normals);
        assert!((by_index - plain).norm() < 1e-12 * plain.norm());
    }

    #[test]
    fn moments_in_lanes_are_the_plain_sums() {
        let hood = wavy_neighbourhood(13);
        let mut columns = Columns::default();
        columns.load(&hood, None);
        columns.weight = (0..columns.padded_len())
            .map(|i| if i < hood.len() { 1.0 + i as f64 } else { 0.0 })
            .collect();
        let mut plain = Moments::default();
        for (n, &w) in hood.iter().zip(columns.weights()) {
            plain.add(&n.offset, w);
        }
        assert!(
            columns.weighted_normal_sum().is_none(),
            "loaded without normals"
        );
        let lanes = columns.moments(&hood);
        let (a, b) = (lanes.frame().unwrap(), plain.frame().unwrap());
        assert!((a.centroid - b.centroid).norm() < 1e-12);
        assert!((a.normal.dot(&b.normal).abs() - 1.0).abs() < 1e-12);
        for (x, y) in a.spread.iter().zip(b.spread) {
            assert!((x - y).abs() < 1e-12 * (1.0 + y.abs()));
        }
    }
}
