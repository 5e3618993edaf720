//! The neighbour index against brute force on awkward clouds (uniform,
//! clustered, a plane, a line, near-duplicates, a far outlier, coordinates
//! at 10⁶, a 10⁻¹⁰⁰ scale): the same sets within a radius, the same k
//! nearest, the same nearest; neighbours in an order that does not depend
//! on where a search started; and a street-like shell in a 1 km box indexed
//! in memory that follows its point count.

mod common;

use std::num::NonZeroUsize;

use common::Rng;
use mlsproj::config::Support;
use mlsproj::neighbours::{LANES, NeighbourSearch, Neighbourhood};
use nalgebra::{Point3, Vector3};

/// The clouds, by name: each with a few thousand points.
fn clouds() -> Vec<(&'static str, Vec<Point3<f64>>)> {
    let mut rng = Rng::new(15);
    let mut uniform = || Point3::new(rng.uniform(), rng.uniform(), rng.uniform());
    let cube: Vec<Point3<f64>> = (0..3000).map(|_| uniform()).collect();

    let mut rng = Rng::new(16);
    let centres: Vec<Point3<f64>> = (0..5)
        .map(|_| {
            Point3::new(
                rng.range(-50.0, 50.0),
                rng.range(-50.0, 50.0),
                rng.uniform(),
            )
        })
        .collect();
    let clustered = (0..3000)
        .map(|i| {
            let c = centres[i % centres.len()];
            c + Vector3::new(rng.normal(), rng.normal(), rng.normal()) * 0.05
        })
        .collect();
    let plane = (0..3000)
        .map(|_| Point3::new(rng.range(-2.0, 2.0), rng.range(-2.0, 2.0), 0.0))
        .collect();
    let line = (0..2000)
        .map(|_| {
            let t = rng.range(0.0, 10.0);
            Point3::new(t, 0.5 * t, -t)
        })
        .collect();
    // Near-identical: a few positions, each repeated with 1e-12 jitter.
    let near_duplicates = (0..2000)
        .map(|i| {
            let base = Point3::new((i % 7) as f64 * 0.01, 0.0, (i % 3) as f64 * 0.01);
            base + Vector3::new(rng.uniform(), rng.uniform(), rng.uniform()) * 1e-12
        })
        .collect();
    let mut outlier: Vec<Point3<f64>> = cube.clone();
    outlier.push(Point3::new(1e6, -3e5, 2e6));
    let offset = cube
        .iter()
        .map(|p| p + Vector3::new(4.2e6, -1.3e6, 6.5e5))
        .collect();
    let tiny = cube
        .iter()
        .map(|p| Point3::from(p.coords * 1e-100))
        .collect();
    let identical = vec![Point3::new(1.5, -2.0, 3.0); 50];
    vec![
        ("uniform", cube),
        ("clustered", clustered),
        ("plane", plane),
        ("line", line),
        ("near_duplicates", near_duplicates),
        ("far_outlier", outlier),
        ("offset_1e6", offset),
        ("scale_1e-100", tiny),
        ("identical", identical),
    ]
}

/// Query centres for a cloud: points of it, points near it, and far ones,
/// relative to the search's origin.
fn centres(search: &NeighbourSearch, rng: &mut Rng) -> Vec<Vector3<f64>> {
    let n = search.len() as u32;
    let spread = (0..n)
        .map(|i| search.local_point(i).amax())
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let mut centres: Vec<Vector3<f64>> = (0..40)
        .map(|_| search.local_point(rng.below(n as usize) as u32))
        .collect();
    centres.extend((0..40).map(|_| {
        let p = search.local_point(rng.below(n as usize) as u32);
        p + Vector3::new(rng.normal(), rng.normal(), rng.normal()) * spread * 0.01
    }));
    centres.push(Vector3::repeat(spread * 3.0));
    centres.push(Vector3::new(-spread * 5.0, 0.0, spread));
    centres
}

/// Squared distances of every point to `centre`, by index, computed as the
/// index computes them.
fn distances(search: &NeighbourSearch, centre: &Vector3<f64>) -> Vec<f64> {
    (0..search.len() as u32)
        .map(|i| (search.local_point(i) - centre).norm_squared())
        .collect()
}

/// The `k`-th smallest of `distances` (1-based).
fn kth(distances: &[f64], k: usize) -> f64 {
    let mut sorted = distances.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[k - 1]
}

/// Asserts that `hood`'s columns are as the fit reads them in lanes: the
/// neighbours, then zeros up to whole lanes (whatever a larger gather
/// left in the buffers before).
fn assert_padded(hood: &Neighbourhood, name: &str) {
    let distances = hood.distance_lanes();
    assert_eq!(distances.len(), hood.len().div_ceil(LANES), "{name}");
    let columns = hood.offset_lanes().into_iter().zip(hood.offsets());
    for (lanes, column) in columns.chain([(distances, hood.distances_squared())]) {
        let (neighbours, padding) = lanes.as_flattened().split_at(hood.len());
        assert_eq!(neighbours, column, "{name}");
        assert!(padding.iter().all(|&x| x == 0.0), "{name}");
    }
}

#[test]
fn radius_queries_find_exactly_the_points_brute_force_finds() {
    let mut rng = Rng::new(1);
    for (name, points) in clouds() {
        let search = NeighbourSearch::new(&points).unwrap();
        let mut hood = Neighbourhood::default();
        for centre in centres(&search, &mut rng) {
            let all = distances(&search, &centre);
            for k in [1, 5, 30] {
                let radius = kth(&all, k.min(all.len())).sqrt() * 1.01;
                search.gather(&centre, Support::Radius(radius), 1.0, &mut hood);
                assert_padded(&hood, name);
                let mut found: Vec<u32> = hood.iter().map(|n| n.index).collect();
                found.sort_unstable();
                let expected: Vec<u32> = (0..all.len() as u32)
                    .filter(|&i| all[i as usize] <= radius * radius)
                    .collect();
                assert_eq!(found, expected, "{name}: radius {radius} around {centre:?}");
                for n in hood.iter() {
                    assert_eq!(n.distance_squared, all[n.index as usize], "{name}");
                    assert_eq!(n.offset, search.local_point(n.index) - centre, "{name}");
                }
            }
        }
    }
}

#[test]
fn nearest_queries_find_the_brute_force_nearest() {
    let mut rng = Rng::new(2);
    for (name, points) in clouds() {
        let search = NeighbourSearch::new(&points).unwrap();
        for centre in centres(&search, &mut rng) {
            let all = distances(&search, &centre);
            let (index, distance_squared) = search.nearest(&centre);
            assert_eq!(distance_squared, kth(&all, 1), "{name} around {centre:?}");
            assert_eq!(all[index as usize], distance_squared, "{name}");
            // Of points at the same distance (the copies of `identical`),
            // the first in the grid's order, as the k nearest order them,
            // whatever order the search visits its cells in.
            let first = search.nearest_n(&centre, NonZeroUsize::MIN)[0].index;
            assert_eq!(index, first, "{name}: ties around {centre:?}");
            // Bounded: found when it lies inside the limit, not otherwise.
            let distance = distance_squared.sqrt();
            let beyond = search.nearest_within(&centre, (distance * 1.5).max(1e-150));
            assert_eq!(beyond, Some((index, distance_squared)), "{name}");
            if distance > 0.0 {
                assert_eq!(
                    search.nearest_within(&centre, distance * 0.5),
                    None,
                    "{name}"
                );
            }
            for k in [1, 2, 30, 100] {
                let k = k.min(all.len());
                let nearest = search.nearest_n(&centre, NonZeroUsize::new(k).unwrap());
                let got: Vec<f64> = nearest.iter().map(|n| n.distance_squared).collect();
                let mut expected = all.clone();
                expected.sort_by(f64::total_cmp);
                assert_eq!(got, expected[..k], "{name}: {k} nearest around {centre:?}");
                for n in &nearest {
                    assert_eq!(n.distance_squared, all[n.index as usize], "{name}");
                }
            }
        }
    }
}

#[test]
fn nearest_gathers_keep_the_brute_force_k_nearest() {
    let mut rng = Rng::new(3);
    for (name, points) in clouds() {
        let search = NeighbourSearch::new(&points).unwrap();
        // One neighbourhood for every centre: each search starts from the
        // radius of the one before, as a thread's do.
        let mut hood = Neighbourhood::default();
        for centre in centres(&search, &mut rng) {
            let all = distances(&search, &centre);
            for support in [
                Support::Nearest(30),
                Support::RadiusNearest {
                    radius: kth(&all, 10.min(all.len())).sqrt() * 1.5,
                    k: 8,
                },
            ] {
                search.gather(&centre, support, 1.0, &mut hood);
                assert_padded(&hood, name);
                let (k, radius_squared) = match support {
                    Support::Nearest(k) => (k.min(all.len()), f64::INFINITY),
                    Support::RadiusNearest { radius, k } => (k, radius * radius),
                    Support::Radius(_) => unreachable!(),
                };
                let inside = all.iter().filter(|&&d| d <= radius_squared).count();
                assert_eq!(hood.len(), k.min(inside), "{name} {support:?}");
                if hood.is_empty() {
                    continue;
                }
                let farthest = kth(&all, hood.len());
                let closer = all.iter().filter(|&&d| d < farthest).count();
                let kept_closer = hood
                    .iter()
                    .filter(|n| n.distance_squared < farthest)
                    .count();
                assert_eq!(kept_closer, closer, "{name} {support:?} around {centre:?}");
                assert!(
                    hood.iter().all(|n| n.distance_squared <= farthest),
                    "{name} {support:?}"
                );
            }
        }
    }
}

#[test]
fn neighbour_order_does_not_depend_on_the_start_radius() {
    let mut rng = Rng::new(4);
    for (name, points) in clouds() {
        let search = NeighbourSearch::new(&points).unwrap();
        let centres = centres(&search, &mut rng);
        for (i, centre) in centres.iter().enumerate() {
            let mut fresh = Neighbourhood::default();
            search.gather(centre, Support::Nearest(20), 1.0, &mut fresh);
            // Started from the radius of a far and of a near centre.
            for before in [
                &centres[(i + 1) % centres.len()],
                &centres[centres.len() - 1],
            ] {
                let mut warm = Neighbourhood::default();
                search.gather(before, Support::Nearest(20), 1.0, &mut warm);
                search.gather(centre, Support::Nearest(20), 1.0, &mut warm);
                assert_eq!(
                    warm.iter().collect::<Vec<_>>(),
                    fresh.iter().collect::<Vec<_>>(),
                    "{name} around {centre:?}"
                );
            }
            // Two radii: the points of the smaller ball come in the same
            // relative order inside the larger one's.
            let all = distances(&search, centre);
            let radius = kth(&all, 10.min(all.len())).sqrt();
            let mut small = Neighbourhood::default();
            let mut large = Neighbourhood::default();
            search.gather(centre, Support::Radius(radius), 1.0, &mut small);
            search.gather(centre, Support::Radius(radius * 3.0), 1.0, &mut large);
            let inner: Vec<u32> = small.iter().map(|n| n.index).collect();
            let in_large: Vec<u32> = large
                .iter()
                .map(|n| n.index)
                .filter(|i| inner.contains(i))
                .collect();
            assert_eq!(in_large, inner, "{name} around {centre:?}");
        }
    }
}

#[test]
fn a_street_scan_in_a_kilometre_box_indexes_in_memory_of_its_point_count() {
    // A road, two facades along it and one across it: planes over
    // 1000 × 1000 × 50 m, 200,000 points.
    let mut rng = Rng::new(5);
    let mut points = Vec::new();
    for _ in 0..50_000 {
        let along = rng.range(0.0, 1000.0);
        let up = rng.range(0.0, 50.0);
        points.push(Point3::new(along, rng.range(480.0, 520.0), 0.0));
        points.push(Point3::new(along, 480.0, up));
        points.push(Point3::new(along, 520.0, up));
        points.push(Point3::new(rng.range(0.0, 1.0) + 999.0, along, up));
    }
    points.push(Point3::new(0.0, 0.0, 50.0));
    points.push(Point3::new(1000.0, 1000.0, 0.0));
    let search = NeighbourSearch::new(&points).unwrap();
    let (cells, rows) = (search.cell_count(), search.row_count());
    // Bounded by the points, however many cells the box would hold; and
    // not so coarse that a cell holds a crowd.
    assert!(
        rows <= cells && cells <= points.len(),
        "{rows} rows, {cells} cells"
    );
    assert!(
        cells * 64 >= points.len(),
        "{cells} cells for {} points",
        points.len()
    );
    let mut rng = Rng::new(6);
    for centre in centres(&search, &mut rng).iter().take(20) {
        let all = distances(&search, centre);
        let nearest = search.nearest_n(centre, NonZeroUsize::new(30).unwrap());
        let mut expected = all.clone();
        expected.sort_by(f64::total_cmp);
        let got: Vec<f64> = nearest.iter().map(|n| n.distance_squared).collect();
        assert_eq!(got, expected[..30]);
    }
}

#[test]
fn a_far_outlier_does_not_crowd_the_cells() {
    let (_, points) = clouds().swap_remove(5);
    let search = NeighbourSearch::new(&points).unwrap();
    assert!(
        search.cell_count() * 64 >= points.len(),
        "{} cells",
        search.cell_count()
    );
}

/// A stack of copies far off (2% of the points at a scanner's no-return
/// position) is one outlier, not a share of the cloud that holds the
/// cells wide: the distinct index merges it, and the cells stay as fine
/// as without it.
#[test]
fn a_far_stack_of_copies_does_not_crowd_the_cells() {
    let (_, mut points) = clouds().swap_remove(0);
    let count = points.len();
    points.extend(std::iter::repeat_n(Point3::new(-4e5, 2e6, 0.0), count / 50));
    let (search, _) = NeighbourSearch::distinct(&points).unwrap();
    assert!(
        search.cell_count() * 64 >= count,
        "{} cells",
        search.cell_count()
    );
}

/// A damaged file's garbage (2% of the points at 1e20 to 3e38, each
/// somewhere else) is more than the cells' box leaves out at its ends; cut
/// to the cloud's body, the box keeps the cells as fine as without it.
#[test]
fn garbage_coordinates_do_not_crowd_the_cells() {
    let (_, mut points) = clouds().swap_remove(0);
    let count = points.len();
    for (i, point) in points.iter_mut().enumerate().step_by(50) {
        point[i % 3] = 1e20 * (1.0 + (i % 7) as f64) * if i % 2 == 0 { 1.0 } else { 3e17 };
    }
    let search = NeighbourSearch::new(&points).unwrap();
    assert!(
        search.cell_count() * 64 >= count,
        "{} cells",
        search.cell_count()
    );
}

#[test]
fn a_centre_that_is_not_finite_finds_nothing_and_returns() {
    let (_, points) = clouds().swap_remove(0);
    let search = NeighbourSearch::new(&points).unwrap();
    let mut hood = Neighbourhood::default();
    for centre in [
        Vector3::repeat(f64::NAN),
        Vector3::new(f64::INFINITY, 0.0, 0.0),
    ] {
        search.gather(&centre, Support::Nearest(10), 1.0, &mut hood);
        assert!(hood.is_empty());
        assert!(search.nearest(&centre).1.is_nan());
        assert!(
            search
                .nearest_n(&centre, NonZeroUsize::new(3).unwrap())
                .is_empty()
        );
    }
}

/// The distinct index keeps one point of each position, the first of its
/// copies in the input, and says which input point each of its own is;
/// over distinct points it finds what the plain index finds. Copies far
/// apart in the input, side by side, and of points that share their fine
/// cell with others (near duplicates 1e-12 apart stay distinct).
#[test]
fn a_distinct_index_keeps_the_first_of_each_position_and_says_which() {
    for (name, points) in clouds() {
        let mut input = points.clone();
        input.extend(points.iter().step_by(3).copied());
        input.insert(0, points[points.len() / 2]);
        let (search, kept) = NeighbourSearch::distinct(&input).unwrap();
        let mut distinct: Vec<[u64; 3]> = points
            .iter()
            .map(|p| p.coords.map(f64::to_bits).into())
            .collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(search.len(), distinct.len(), "{name}");
        assert_eq!(kept.len(), search.len(), "{name}");
        let mut seen = std::collections::HashSet::new();
        for (i, &k) in kept.iter().enumerate() {
            let point = input[k as usize];
            assert_eq!(
                search.local_point(i as u32),
                point - search.origin(),
                "{name}: point {i} is input {k}"
            );
            let first = input.iter().position(|p| *p == point).unwrap();
            assert_eq!(k as usize, first, "{name}: the first copy is kept");
            assert!(seen.insert(k), "{name}: input {k} kept twice");
        }
    }
}
