//! Counting the cars in a circle without visiting each of them. The database keeps how many
//! searchable cars (active, not deleted) lie in each cell of four latitude/longitude grids
//! (`car_cells`, kept by triggers on `cars`), each grid's cell split into 4 × 4 of the next
//! finer one. A circle is covered from the coarsest grid down: a cell wholly inside adds its
//! kept count, a cell the circle's edge crosses is looked at in the finer grid, and in the
//! finest grid (the second finest for circles wider than 30 km) the cars of edge cells are
//! counted one by one, by their distance (`cars.geo_cell_0` and `geo_cell_1` number each
//! car's cells in those grids). The work then follows the length of the circle's edge, not
//! the number of cars inside it. A text search adds the counts of its matching texts
//! (`car_text_cells`) the same way.
//!
//! Cells are numbered `row * ROW + column`, row and column counted from 90° S and 180° W,
//! so that the cells of one row side by side are one range of numbers. Grids are powers of
//! two in cells per degree, so every cell's number is exact in floating point and a fine
//! cell always falls inside the coarse cell of the same point.

use std::collections::HashSet;

use crate::db::functions::{haversine_km, EARTH_RADIUS_KM};

/// Cells per degree of each grid, finest first: about 430 m, 1.7 km, 7 km and 28 km of
/// latitude. The SQL of the `car_cells` migrations computes the same numbers.
pub const GRIDS: [f64; 4] = [256.0, 64.0, 16.0, 4.0];
/// Row stride of a cell number: more than the finest grid's 92,160 columns.
pub const ROW: i64 = 100_000;
/// Slack, in degrees, around a cell's edges and, in km, on the radius, far above floating
/// point's error and far below a car's precision: a cell this close to the edge is looked
/// at rather than trusted.
const SLACK_DEG: f64 = 1e-9;
const SLACK_KM: f64 = 1e-6;

/// What counting a circle takes, as `(grid, first cell, last cell)` with `grid` an index
/// into [`GRIDS`]: kept counts to add, and ranges of cells of the two finest grids whose
/// cars are counted by their distance.
#[derive(Debug, Default, PartialEq)]
pub struct Cover {
    pub inside: Vec<(usize, i64, i64)>,
    pub edge: Vec<(usize, i64, i64)>,
}

/// Above this radius the edge is measured in the second grid: the finest one would take a
/// lookup for each of its rows the circle spans (460 for 100 km), more than the cars of the
/// wider edge cells cost to measure.
const FINEST_UP_TO_KM: f64 = 30.0;

fn index(degrees_from_origin: f64, per_degree: f64) -> i64 {
    (degrees_from_origin * per_degree).floor() as i64
}

/// A row's columns wholly inside a circle, and the ranges of columns its edge crosses.
type RowSplit = (Option<(i64, i64)>, Vec<(i64, i64)>);

/// The circle of `radius_km` around a point, in the terms cells need.
struct Circle {
    lat: f64,
    lng: f64,
    /// Radius as an angle, a hair smaller for "wholly inside", a hair larger for "touched".
    inner: f64,
    outer: f64,
}

fn hav(x: f64) -> f64 {
    (x / 2.0).sin().powi(2)
}

impl Circle {
    fn new(lat: f64, lng: f64, radius_km: f64) -> Circle {
        Circle {
            lat,
            lng,
            inner: (radius_km - SLACK_KM).max(0.0) / EARTH_RADIUS_KM,
            outer: (radius_km + SLACK_KM) / EARTH_RADIUS_KM,
        }
    }

    /// Half the circle's width in degrees of longitude at latitude `lat` (for an angular
    /// radius `d`); `None` where the circle does not reach that latitude.
    fn half_width(&self, lat: f64, d: f64) -> Option<f64> {
        let (p0, p) = (self.lat.to_radians(), lat.to_radians());
        let h = (hav(d) - hav(p - p0)) / (p0.cos() * p.cos());
        if h.is_nan() || h < 0.0 {
            return None;
        }
        Some((2.0 * h.sqrt().min(1.0).asin()).to_degrees())
    }

    /// Row `row` of `grid`'s cells, within columns `cols`: the columns wholly inside the
    /// circle and those its edge crosses (at most one range either side of the inside);
    /// `None` where the circle does not reach the row.
    fn split_row(&self, grid: usize, row: i64, (col0, col1): (i64, i64)) -> Option<RowSplit> {
        let per = GRIDS[grid];
        let a = row as f64 / per - 90.0 - SLACK_DEG;
        let b = a + 1.0 / per + 2.0 * SLACK_DEG;
        let wide = self.widest(a, b)?;
        let lng = self.lng;
        let touched = (
            index(lng - wide - SLACK_DEG + 180.0, per).max(col0),
            index(lng + wide + SLACK_DEG + 180.0, per).min(col1),
        );
        if touched.0 > touched.1 {
            return None;
        }
        // Wholly inside: all four corners are (the farthest point of a cell from the
        // centre is one of its corners).
        let inside = self
            .half_width(a, self.inner)
            .zip(self.half_width(b, self.inner))
            .map(|(wa, wb)| {
                let w = wa.min(wb);
                (
                    index(lng - w + 180.0 + SLACK_DEG, per) + 1,
                    index(lng + w + 180.0 - SLACK_DEG, per) - 1,
                )
            })
            .map(|(lo, hi)| (lo.max(touched.0), hi.min(touched.1)))
            .filter(|(lo, hi)| lo <= hi);
        let edges = match inside {
            Some((lo, hi)) => vec![(touched.0, lo - 1), (hi + 1, touched.1)],
            None => vec![touched],
        };
        Some((
            inside,
            edges.into_iter().filter(|(lo, hi)| lo <= hi).collect(),
        ))
    }

    /// The circle's latitudes (touched), in degrees.
    fn latitudes(&self) -> (f64, f64) {
        let d = self.outer.to_degrees();
        (self.lat - d, self.lat + d)
    }

    /// The widest half width over the latitudes `[a, b]`, where the circle reaches them.
    /// Across latitudes it grows up to the parallel where the circle is widest (a little
    /// poleward of the centre) and shrinks after it.
    fn widest(&self, a: f64, b: f64) -> Option<f64> {
        let (lo, hi) = self.latitudes();
        let (a, b) = (a.max(lo), b.min(hi));
        if a > b {
            return None;
        }
        let widest = (self.lat.to_radians().sin() / self.outer.cos())
            .clamp(-1.0, 1.0)
            .asin()
            .to_degrees();
        // At the edge latitudes themselves the width is 0: it is reached, but only just.
        Some(
            self.half_width(widest.clamp(a, b), self.outer)
                .unwrap_or(0.0),
        )
    }
}

/// The cover of the circle, or `None` where the grids do not serve it: near a pole or
/// across the antimeridian (the bounding box says so), where the search counts cars.
pub fn cover(lat: f64, lng: f64, radius_km: f64) -> Option<Cover> {
    let circle = Circle::new(lat, lng, radius_km);
    let (south, north) = circle.latitudes();
    let widest = circle.widest(south, north)? + SLACK_DEG;
    if south <= -89.0 || north >= 89.0 || lng - widest <= -180.0 || lng + widest >= 180.0 {
        return None;
    }
    let top = GRIDS.len() - 1;
    let per = GRIDS[top];
    // Rectangles of cells still to look at, as (rows, columns) of one grid.
    let mut todo = vec![(
        (index(south + 90.0, per), index(north + 90.0, per)),
        (
            index(lng - widest + 180.0, per),
            index(lng + widest + 180.0, per),
        ),
    )];
    let edge_grid = usize::from(radius_km > FINEST_UP_TO_KM);
    let mut cover = Cover::default();
    for grid in (edge_grid..GRIDS.len()).rev() {
        let mut finer = Vec::new();
        for ((row0, row1), (col0, col1)) in todo {
            for row in row0..=row1 {
                let Some((inside, edges)) = circle.split_row(grid, row, (col0, col1)) else {
                    continue;
                };
                if let Some((lo, hi)) = inside {
                    cover.inside.push((grid, row * ROW + lo, row * ROW + hi));
                }
                for (lo, hi) in edges {
                    if grid == edge_grid {
                        cover.edge.push((grid, row * ROW + lo, row * ROW + hi));
                    } else {
                        finer.push(((row * 4, row * 4 + 3), (lo * 4, hi * 4 + 3)));
                    }
                }
            }
        }
        todo = finer;
    }
    cover.inside = merged(cover.inside);
    cover.edge = merged(cover.edge);
    Some(cover)
}

/// Above this many cars, an edge cell of the second grid is looked at in the finest grid:
/// its cars cost more to measure than the lookups of its 16 finer cells (a circle's edge
/// through a city centre crosses cells of thousands of cars).
const DENSE: i64 = 64;

/// `cover` of the circle with its edge cells of the second grid that hold more than
/// [`DENSE`] cars (`counts`: cell and cars) split into the finest grid's cells: those
/// wholly inside add their kept counts, those the edge crosses are measured.
pub fn refine(lat: f64, lng: f64, radius_km: f64, cover: Cover, counts: &[(i64, i64)]) -> Cover {
    let dense: HashSet<i64> = counts
        .iter()
        .filter(|(_, cars)| *cars > DENSE)
        .map(|(cell, _)| *cell)
        .collect();
    if dense.is_empty() {
        return cover;
    }
    let circle = Circle::new(lat, lng, radius_km);
    let mut refined = Cover {
        inside: cover.inside,
        edge: Vec::new(),
    };
    for (grid, lo, hi) in cover.edge {
        if grid != 1 {
            refined.edge.push((grid, lo, hi));
            continue;
        }
        let mut rest = lo;
        for cell in (lo..=hi).filter(|c| dense.contains(c)) {
            if rest < cell {
                refined.edge.push((1, rest, cell - 1));
            }
            rest = cell + 1;
            let (row, col) = (cell / ROW, cell % ROW);
            for row in row * 4..row * 4 + 4 {
                let Some((inside, edges)) = circle.split_row(0, row, (col * 4, col * 4 + 3)) else {
                    continue;
                };
                if let Some((lo, hi)) = inside {
                    refined.inside.push((0, row * ROW + lo, row * ROW + hi));
                }
                for (lo, hi) in edges {
                    refined.edge.push((0, row * ROW + lo, row * ROW + hi));
                }
            }
        }
        if rest <= hi {
            refined.edge.push((1, rest, hi));
        }
    }
    refined.inside = merged(refined.inside);
    refined.edge = merged(refined.edge);
    refined
}

/// Cells across a square window, per side, at most: fine enough that the radius found in
/// it overshoots by little, coarse enough to stay a few dozen lookups.
const WINDOW_CELLS: f64 = 32.0;

/// The cells of a square around a point reaching `half_km` each way: the finest grid that
/// needs at most [`WINDOW_CELLS`] rows for it, and a range of cells for each row.
pub fn window(lat: f64, lng: f64, half_km: f64) -> (usize, Vec<(i64, i64)>) {
    let dlat = (half_km / EARTH_RADIUS_KM).to_degrees();
    let dlng = (dlat / lat.to_radians().cos().max(1e-6)).min(180.0);
    let grid = (0..GRIDS.len())
        .find(|&g| 2.0 * dlat * GRIDS[g] <= WINDOW_CELLS)
        .unwrap_or(GRIDS.len() - 1);
    let per = GRIDS[grid];
    let (col0, col1) = (
        index(lng - dlng + 180.0, per),
        index(lng + dlng + 180.0, per),
    );
    let rows =
        index((lat - dlat).max(-90.0) + 90.0, per)..=index((lat + dlat).min(90.0) + 90.0, per);
    let ranges = rows
        .map(|row| (row * ROW + col0, row * ROW + col1))
        .collect();
    (grid, ranges)
}

/// The smallest radius around the point whose circle holds, whole, cells of `grid` holding
/// `needed` cars in all (`cells`: cell and cars), and how many those cells hold; `None`
/// when all of them hold fewer. The circle then holds at least that many cars: a cell's
/// farthest point is a corner.
pub fn radius_holding(
    lat: f64,
    lng: f64,
    grid: usize,
    cells: &[(i64, i64)],
    needed: i64,
) -> Option<(f64, i64)> {
    let size = 1.0 / GRIDS[grid];
    let mut reach: Vec<(f64, i64)> = cells
        .iter()
        .map(|&(cell, cars)| {
            let south = (cell / ROW) as f64 * size - 90.0;
            let west = (cell % ROW) as f64 * size - 180.0;
            let farthest = [(0.0, 0.0), (0.0, size), (size, 0.0), (size, size)]
                .iter()
                .map(|(dy, dx)| haversine_km(lat, lng, south + dy, west + dx))
                .fold(0.0, f64::max);
            (farthest + SLACK_KM, cars)
        })
        .collect();
    reach.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let mut held = 0;
    reach.into_iter().find_map(|(km, cars)| {
        held += cars;
        (held >= needed).then_some((km, held))
    })
}

/// Most cells of the second grid a search lists one by one to reach its box's cars.
const LISTED_CELLS: i64 = 2048;

/// The cars of a search's bounding box, as `cars.geo_cell_1` (the second grid's cell, the
/// first column of the search's index) selects them: the box's cells listed, each one an
/// index lookup; or, for a box of more cells than [`LISTED_CELLS`], the rows of cells it
/// spans (`first..=last` cell numbers), one range of the index as wide as the box is tall.
#[derive(Debug, PartialEq)]
pub enum BoxCells {
    Listed(Vec<i64>),
    Rows(i64, i64),
}

/// [`BoxCells`] of the box from `min_lat` to `max_lat` and across `longitudes` (all of
/// them when `None`). A car in the box is in one of its cells: a cell number is the floor
/// of a coordinate, and flooring keeps order.
pub fn box_cells(min_lat: f64, max_lat: f64, longitudes: Option<&[(f64, f64)]>) -> BoxCells {
    let per = GRIDS[1];
    let rows = index(min_lat + 90.0, per)..=index(max_lat + 90.0, per);
    let whole_rows = BoxCells::Rows(rows.start() * ROW, rows.end() * ROW + ROW - 1);
    let Some(longitudes) = longitudes else {
        return whole_rows;
    };
    let columns: Vec<(i64, i64)> = longitudes
        .iter()
        .map(|(lo, hi)| (index(lo + 180.0, per), index(hi + 180.0, per)))
        .collect();
    let per_row: i64 = columns.iter().map(|(lo, hi)| hi - lo + 1).sum();
    let count = (rows.end() - rows.start() + 1) * per_row;
    if count > LISTED_CELLS {
        return whole_rows;
    }
    let cells = rows
        .flat_map(|row| {
            columns
                .iter()
                .flat_map(move |&(lo, hi)| (lo..=hi).map(move |col| row * ROW + col))
        })
        .collect();
    BoxCells::Listed(cells)
}

/// Ranges sorted, with ranges of one grid that follow each other joined.
fn merged(mut ranges: Vec<(usize, i64, i64)>) -> Vec<(usize, i64, i64)> {
    ranges.sort_unstable();
    let mut joined: Vec<(usize, i64, i64)> = Vec::with_capacity(ranges.len());
    for (grid, lo, hi) in ranges {
        match joined.last_mut() {
            Some(last) if last.0 == grid && last.2 + 1 == lo => last.2 = hi,
            _ => joined.push((grid, lo, hi)),
        }
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::f64::consts::TAU;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn cell_in(lat: f64, lng: f64, grid: usize) -> i64 {
        let per = GRIDS[grid];
        index(lat + 90.0, per) * ROW + index(lng + 180.0, per)
    }

    /// The point `km` away from (`lat`, `lng`) towards `bearing` (radians from north).
    fn destination(lat: f64, lng: f64, km: f64, bearing: f64) -> (f64, f64) {
        let d = km / EARTH_RADIUS_KM;
        let (p0, l0) = (lat.to_radians(), lng.to_radians());
        let p = (p0.sin() * d.cos() + p0.cos() * d.sin() * bearing.cos()).asin();
        let l = l0 + (bearing.sin() * d.sin() * p0.cos()).atan2(d.cos() - p0.sin() * p.sin());
        (p.to_degrees(), l.to_degrees())
    }

    /// The points a cover counts: kept counts of its inside cells, distances on its edge.
    fn counted(cover: &Cover, points: &[(f64, f64)], (lat, lng, r): (f64, f64, f64)) -> usize {
        let within =
            |g: usize, lo: i64, hi: i64, (a, b): (f64, f64)| (lo..=hi).contains(&cell_in(a, b, g));
        points
            .iter()
            .filter(|&&p| {
                let inside = cover
                    .inside
                    .iter()
                    .filter(|&&(g, lo, hi)| within(g, lo, hi, p));
                let edge = cover
                    .edge
                    .iter()
                    .filter(|&&(g, lo, hi)| within(g, lo, hi, p));
                let (inside, edge) = (inside.count(), edge.count());
                assert!(inside + edge <= 1, "{p:?} in {inside} + {edge} ranges");
                inside == 1 || (edge == 1 && haversine_km(lat, lng, p.0, p.1) <= r)
            })
            .count()
    }

    /// Counting random points through the cover (kept counts per cell, distances on the
    /// edge) gives exactly the points within the radius, for circles small and large, with
    /// points crowded on the circle's edge, on cell edges and in a city on the edge; and so
    /// does the cover with its dense edge cells refined.
    #[test]
    fn the_cover_counts_exactly_the_points_in_the_circle() {
        let mut rng = StdRng::seed_from_u64(7);
        for (lat, lng, r) in [
            (48.8566, 2.3522, 10.0),
            (45.764, 4.8357, 100.0),
            (-33.9, 151.2, 0.5),
            (64.1, -21.9, 300.0),
            (0.0, 0.0, 25.0),
            (48.0, 2.0, 7.0),
            (46.0, 3.0, 45.0),
        ] {
            let cover = cover(lat, lng, r).expect("served");
            let edge_grid = usize::from(r > FINEST_UP_TO_KM);
            let span = (r / 111.0) * 1.3;
            let wide = span / lat.to_radians().cos();
            let mut points: Vec<(f64, f64)> = (0..20_000)
                .map(|_| {
                    (
                        lat + rng.random_range(-span..span),
                        lng + rng.random_range(-wide..wide),
                    )
                })
                .collect();
            // On the circle (to a hair either side) and on cell corners near it.
            let snap = |v: f64| (v * GRIDS[edge_grid]).round() / GRIDS[edge_grid];
            for i in 0..2_000 {
                let km = r + [-1e-7, 0.0, 1e-7][i % 3];
                let (plat, plng) = destination(lat, lng, km, rng.random::<f64>() * TAU);
                points.push((plat, plng));
                points.push((snap(plat), snap(plng)));
            }
            // A city the edge runs through: 5,000 points within 3 km of a point on it.
            let (clat, clng) = destination(lat, lng, r, 0.7);
            for _ in 0..5_000 {
                let km = 3.0 * rng.random::<f64>().powi(2);
                points.push(destination(clat, clng, km, rng.random::<f64>() * TAU));
            }
            let circle = (lat, lng, r);
            let expected = points
                .iter()
                .filter(|(a, b)| haversine_km(lat, lng, *a, *b) <= r)
                .count();
            let inside = counted(
                &Cover {
                    inside: cover.inside.clone(),
                    edge: Vec::new(),
                },
                &points,
                circle,
            );
            assert_eq!(
                counted(&cover, &points, circle),
                expected,
                "({lat}, {lng}) {r} km"
            );
            // And the cover is worth it: beyond a few cells, most points come from kept counts.
            if r >= 5.0 {
                assert!(
                    inside > expected / 2,
                    "({lat}, {lng}) {r} km: {inside} of {expected}"
                );
            }
            // Refined with the kept counts of the second grid's edge cells.
            let mut counts: HashMap<i64, i64> = HashMap::new();
            for &(a, b) in &points {
                let cell = cell_in(a, b, 1);
                if cover
                    .edge
                    .iter()
                    .any(|&(g, lo, hi)| g == 1 && (lo..=hi).contains(&cell))
                {
                    *counts.entry(cell).or_default() += 1;
                }
            }
            let counts: Vec<(i64, i64)> = counts.into_iter().collect();
            let refined = refine(lat, lng, r, cover, &counts);
            assert_eq!(
                counted(&refined, &points, circle),
                expected,
                "refined ({lat}, {lng}) {r} km"
            );
            if edge_grid == 1 {
                let finest = refined.edge.iter().filter(|(g, _, _)| *g == 0).count();
                assert!(finest > 0, "the city's cells are refined: {refined:?}");
            }
        }
    }

    /// Every point of a search's bounding box lies in a cell the box lists, or in its rows
    /// of cells when it lists none; small boxes list, wide ones and polar ones take rows.
    #[test]
    fn a_box_reaches_every_car_inside_it() {
        use crate::search::model::BoundingBox;
        let mut rng = StdRng::seed_from_u64(3);
        for (lat, lng, r, listed) in [
            (48.8566, 2.3522, 0.3, true),
            (48.8566, 2.3522, 10.0, true),
            (45.764, 4.8357, 100.0, false),
            (-33.9, 179.99, 5.0, true),
            (89.9, 0.0, 20.0, false),
        ] {
            let bbox = BoundingBox::around(lat, lng, r);
            let reach = box_cells(bbox.min_lat, bbox.max_lat, bbox.longitudes.as_deref());
            assert_eq!(
                matches!(reach, BoxCells::Listed(_)),
                listed,
                "{lat}, {lng}, {r} km"
            );
            let spans = bbox.longitudes.clone().unwrap_or(vec![(-180.0, 180.0)]);
            for i in 0..5_000 {
                let (lo, hi) = spans[i % spans.len()];
                let mut p = (
                    rng.random_range(bbox.min_lat..=bbox.max_lat),
                    rng.random_range(lo..=hi),
                );
                // And the box's own corners and edges.
                match i % 5 {
                    0 => p.0 = bbox.min_lat,
                    1 => p.0 = bbox.max_lat,
                    2 => p.1 = lo,
                    3 => p.1 = hi,
                    _ => {}
                }
                let cell = cell_in(p.0, p.1, 1);
                let reached = match &reach {
                    BoxCells::Listed(cells) => cells.contains(&cell),
                    BoxCells::Rows(first, last) => (*first..=*last).contains(&cell),
                };
                assert!(reached, "{p:?} in the box of {lat}, {lng}, {r} km");
            }
        }
    }

    /// What makes the count cheap: lookups follow the circle's edge, not its area.
    #[test]
    fn covers_take_lookups_in_proportion_to_the_edge() {
        let lookups = |r: f64| {
            let c = cover(48.81, 2.34, r).expect("served");
            c.inside.len() + c.edge.len()
        };
        assert!(lookups(10.0) < 250, "{}", lookups(10.0));
        assert!(lookups(100.0) < 600, "{}", lookups(100.0));
        assert!(lookups(1.0) < 20, "{}", lookups(1.0));
    }

    /// The radius found from the counts of a window's cells holds the cars asked for, and
    /// overshoots the true distance of the last of them by at most a cell's diagonal.
    #[test]
    fn the_radius_from_cell_counts_holds_the_page() {
        let mut rng = StdRng::seed_from_u64(11);
        let (lat, lng) = (48.85, 2.35);
        // Denser near the centre, as in a city.
        let points: Vec<(f64, f64)> = (0..20_000)
            .map(|_| {
                let r = 0.3 * rng.random::<f64>().powi(2);
                let a = rng.random::<f64>() * std::f64::consts::TAU;
                (
                    lat + r * a.sin(),
                    lng + r * a.cos() / lat.to_radians().cos(),
                )
            })
            .collect();
        let mut distances: Vec<f64> = points
            .iter()
            .map(|p| haversine_km(lat, lng, p.0, p.1))
            .collect();
        distances.sort_by(f64::total_cmp);
        for (half_km, needed) in [
            (0.5, 20),
            (3.0, 40),
            (10.0, 400),
            (30.0, 4000),
            (30.0, 10_000),
        ] {
            let (grid, ranges) = window(lat, lng, half_km);
            assert!(
                ranges.len() <= WINDOW_CELLS as usize + 1,
                "{half_km} km: {} rows",
                ranges.len()
            );
            let mut counts = std::collections::HashMap::<i64, i64>::new();
            for p in &points {
                let cell = cell_in(p.0, p.1, grid);
                if ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&cell)) {
                    *counts.entry(cell).or_default() += 1;
                }
            }
            let cells: Vec<(i64, i64)> = counts.into_iter().collect();
            let (radius, known) = radius_holding(lat, lng, grid, &cells, needed as i64)
                .unwrap_or_else(|| panic!("{half_km} km window holds {needed}"));
            let held = distances.iter().filter(|&&d| d <= radius).count();
            assert!(
                known >= needed as i64 && held as i64 >= known,
                "{radius} km holds {held}, {known} known, {needed} asked"
            );
            let diagonal = 2.0_f64.sqrt() * 111.2 / GRIDS[grid];
            assert!(
                radius <= distances[needed - 1] + diagonal,
                "{radius} km for {needed}"
            );
        }
        // A window holding fewer cars than asked says so.
        let (grid, _) = window(lat, lng, 0.5);
        assert_eq!(
            radius_holding(lat, lng, grid, &[(cell_in(lat, lng, grid), 3)], 4),
            None
        );
    }

    #[test]
    fn poles_and_the_antimeridian_are_left_to_counting_cars() {
        assert_eq!(cover(89.5, 0.0, 100.0), None);
        assert_eq!(cover(-88.95, 10.0, 10.0), None);
        assert_eq!(cover(0.0, 179.95, 50.0), None);
        assert_eq!(cover(10.0, -179.99, 5.0), None);
        assert!(cover(10.0, 179.0, 5.0).is_some());
    }
}
