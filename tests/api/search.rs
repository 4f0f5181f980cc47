//! The search suite. It runs on the database engine over SQLite and PostgreSQL, and, when
//! TEST_OPENSEARCH_URL is set, against a real OpenSearch cluster:
//!
//!   TEST_OPENSEARCH_URL=http://127.0.0.1:9200 cargo nextest run --run-ignored only -E 'test(/opensearch_cluster/)'

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Database(Backend),
    OpenSearchCluster,
}

/// Runs the body on the database engine (SQLite, PostgreSQL) and, ignored unless asked
/// for, on a real OpenSearch cluster.
macro_rules! search_test {
    ($(#[$meta:meta])* async fn $name:ident($engine:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            async fn run($engine: Engine) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(Engine::Database(Backend::Sqlite)).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run(Engine::Database(Backend::Postgres)).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "needs TEST_OPENSEARCH_URL (a real cluster)"]
            async fn opensearch_cluster() {
                run(Engine::OpenSearchCluster).await
            }
        }
    };
}

struct SearchApp {
    app: TestApp,
    admin: String,
    engine: Engine,
}

async fn search_app(engine: Engine) -> SearchApp {
    let app = match engine {
        Engine::Database(backend) => spawn_app(backend).await,
        Engine::OpenSearchCluster => {
            let url = std::env::var("TEST_OPENSEARCH_URL")
                .expect("TEST_OPENSEARCH_URL must point at an OpenSearch cluster");
            let index = format!("carrental_test_{}", uuid::Uuid::new_v4().simple());
            let mut env = opensearch_cluster_env();
            env.push(("OPENSEARCH_URL".into(), url));
            env.push(("OPENSEARCH_INDEX".into(), index));
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            spawn_app_with(Backend::Postgres, &env).await
        }
    };
    let admin = app.admin_token().await;
    SearchApp { app, admin, engine }
}

impl SearchApp {
    async fn car(&self, changes: Value) -> Value {
        self.app.create_car(&self.admin, changes).await
    }

    /// Lets the index catch up (changes reach OpenSearch within a second, plus its refresh).
    async fn settle(&self) {
        if self.engine == Engine::OpenSearchCluster {
            tokio::time::sleep(Duration::from_millis(2500)).await;
        }
    }

    async fn search(&self, query: &str) -> Value {
        let res = self.app.get(&format!("/search?{query}"), None).await;
        assert_eq!(res.status(), StatusCode::OK, "{query}");
        res.json().await.unwrap()
    }

    async fn ids(&self, query: &str) -> Vec<String> {
        self.search(query).await["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(id_of)
            .collect()
    }
}

const PARIS: (f64, f64) = (48.8566, 2.3522);

fn at(lat: f64, lng: f64) -> Value {
    json!({"location": {"latitude": lat, "longitude": lng, "city": "Paris", "country": "France"}})
}

/// The great-circle distance, computed here independently of the server.
fn haversine(a: (f64, f64), b: (f64, f64)) -> f64 {
    let r = 6371.0088;
    let (la1, la2) = (a.0.to_radians(), b.0.to_radians());
    let h = ((b.0 - a.0).to_radians() / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((b.1 - a.1).to_radians() / 2.0).sin().powi(2);
    2.0 * r * h.sqrt().asin()
}

search_test! {
    async fn finds_exactly_the_cars_in_the_radius_by_distance(engine) {
        let s = search_app(engine).await;
        // A deterministic scatter up to ~25 km around Paris, plus points just inside and
        // just outside 10 km.
        let mut seed: u64 = 42;
        let mut rand = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut points = Vec::new();
        for _ in 0..48 {
            points.push((PARIS.0 + (rand() - 0.5) * 0.45, PARIS.1 + (rand() - 0.5) * 0.68));
        }
        points.push((PARIS.0 + 9.9 / 111.195, PARIS.1));
        points.push((PARIS.0 - 10.1 / 111.195, PARIS.1));
        let mut cars = Vec::new();
        for p in &points {
            cars.push((id_of(&s.car(at(p.0, p.1)).await), *p));
        }
        s.settle().await;

        let mut expected: Vec<(f64, String)> = cars
            .iter()
            .map(|(id, p)| (haversine(PARIS, *p), id.clone()))
            .filter(|(d, _)| *d <= 10.0)
            .collect();
        expected.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        assert!(expected.len() > 5 && expected.len() < cars.len(), "the fleet straddles the circle");

        let body = s.search(&format!("latitude={}&longitude={}&radius=10&limit=100", PARIS.0, PARIS.1)).await;
        assert_eq!(body["total"].as_i64().unwrap() as usize, expected.len());
        let data = body["data"].as_array().unwrap();
        let got: Vec<String> = data.iter().map(id_of).collect();
        let want: Vec<String> = expected.iter().map(|e| e.1.clone()).collect();
        assert_eq!(got, want, "the right cars, nearest first");
        for (item, (d, _)) in data.iter().zip(&expected) {
            let km = item["distanceKm"].as_f64().unwrap();
            assert!((km - d).abs() <= 0.006, "distance {km} vs {d}");
            assert_eq!(km, (km * 100.0).round() / 100.0, "two decimals");
            assert!(item["pricePerDay"].is_number() && item["location"]["latitude"].is_number());
        }

        // Default radius is 10 km; paging keeps the order and the total.
        let page2 = s.search(&format!("lat={}&lng={}&limit=3&page=2", PARIS.0, PARIS.1)).await;
        assert_eq!(page2["total"].as_i64().unwrap() as usize, expected.len());
        let ids: Vec<String> = page2["data"].as_array().unwrap().iter().map(id_of).collect();
        assert_eq!(ids, want[3..6].to_vec());
        assert_eq!(page2["totalPages"].as_i64().unwrap() as usize, expected.len().div_ceil(3));
        let past = s.search(&format!("lat={}&lon={}&page=50", PARIS.0, PARIS.1)).await;
        assert_eq!(past["data"], json!([]));

        let wide = s.search(&format!("latitude={}&longitude={}&radius=500&limit=100", PARIS.0, PARIS.1)).await;
        assert_eq!(wide["total"].as_i64().unwrap() as usize, cars.len());

        // Totals of other circles, small and large, around other points.
        for (centre, r) in [(PARIS, 1.0), (PARIS, 3.0), (PARIS, 5.5), ((48.9, 2.3), 7.0), ((48.8, 2.45), 15.0), (PARIS, 20.0)] {
            let want = cars.iter().filter(|(_, p)| haversine(centre, *p) <= r).count();
            let body = s.search(&format!("lat={}&lng={}&radius={r}", centre.0, centre.1)).await;
            assert_eq!(body["total"].as_i64().unwrap() as usize, want, "{r} km around {centre:?}");
        }
        // A car moved out of the circle and one deactivated are no longer counted in it.
        let admin = s.admin.clone();
        let far = at(PARIS.0 + 1.0, PARIS.1);
        let res = s.app.send(Method::PATCH, &format!("/cars/{}", want[0]), &far, Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let res = s.app.send(Method::PATCH, &format!("/cars/{}", want[1]), &json!({"isActive": false}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        s.settle().await;
        let body = s.search(&format!("lat={}&lng={}&radius=10", PARIS.0, PARIS.1)).await;
        assert_eq!(body["total"].as_i64().unwrap() as usize, expected.len() - 2);
    }
}

search_test! {
    /// A wide circle (over 30 km) measures its edge's cars in 1.7 km cells, and a cell of
    /// many cars in 430 m ones: a "town" of 90 cars in one 1.7 km cell, the circle's edge
    /// through it, still counts exactly, its nearest cars first.
    async fn a_crowded_cell_on_a_wide_circles_edge_counts_exactly(engine) {
        let s = search_app(engine).await;
        let per = 64.0;
        let cell_centre = |v: f64, origin: f64| ((v + origin) * per).floor() / per + 0.5 / per - origin;
        let town = (cell_centre(45.76, 90.0), cell_centre(4.84, 180.0));
        let mut seed: u64 = 7;
        let mut rand = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut points: Vec<(f64, f64)> = (0..90)
            .map(|_| (town.0 + (rand() - 0.5) * 0.014, town.1 + (rand() - 0.5) * 0.014))
            .collect();
        // And cars spread between the centre and the town, wholly inside.
        let centre = (town.0 - 40.0 / 111.195, town.1);
        points.extend((0..10).map(|i| (centre.0 + 0.03 * i as f64, centre.1 + 0.01)));
        let mut cars = Vec::new();
        for p in &points {
            cars.push((id_of(&s.car(at(p.0, p.1)).await), *p));
        }
        s.settle().await;
        for r in [39.6, 39.9, 40.0, 40.1, 40.4, 45.0] {
            let mut want: Vec<(f64, String)> = cars
                .iter()
                .map(|(id, p)| (haversine(centre, *p), id.clone()))
                .filter(|(d, _)| *d <= r)
                .collect();
            want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let body = s.search(&format!("lat={}&lng={}&radius={r}&limit=5", centre.0, centre.1)).await;
            assert_eq!(body["total"].as_i64().unwrap() as usize, want.len(), "{r} km");
            let first: Vec<String> = want.iter().take(5).map(|w| w.1.clone()).collect();
            let got: Vec<String> = body["data"].as_array().unwrap().iter().map(id_of).collect();
            assert_eq!(got, first, "{r} km");
        }
        let half = cars.iter().filter(|(_, p)| haversine(centre, *p) <= 40.0).count();
        assert!(half > 20 && half < 80, "the edge runs through the town: {half} inside");
    }
}

search_test! {
    async fn filters_and_price_sort(engine) {
        let s = search_app(engine).await;
        let near = at(PARIS.0 + 0.01, PARIS.1);
        let mut body = near.clone();
        merge(&mut body, json!({"fuelType": "diesel", "transmission": "manual", "seats": 7, "pricePerDay": 60}));
        let diesel = id_of(&s.car(body).await);
        let mut body = near.clone();
        merge(&mut body, json!({"fuelType": "electric", "seats": 5, "pricePerDay": 120.5}));
        let electric = id_of(&s.car(body).await);
        let mut body = at(PARIS.0 + 0.02, PARIS.1);
        merge(&mut body, json!({"fuelType": "hybrid", "seats": 4, "pricePerDay": 60}));
        let hybrid = id_of(&s.car(body).await);
        s.settle().await;
        let q = |extra: &str| format!("latitude={}&longitude={}&{extra}", PARIS.0, PARIS.1);

        assert_eq!(s.ids(&q("fuelType=DIESEL")).await, vec![diesel.clone()]);
        assert_eq!(s.ids(&q("transmission=Manual")).await, vec![diesel.clone()]);
        assert_eq!(BTreeSet::from_iter(s.ids(&q("seats=5")).await), BTreeSet::from([diesel.clone(), electric.clone()]));
        assert_eq!(BTreeSet::from_iter(s.ids(&q("maxPrice=60")).await), BTreeSet::from([diesel.clone(), hybrid.clone()]));
        assert_eq!(s.ids(&q("minPrice=60.01")).await, vec![electric.clone()]);
        assert_eq!(s.ids(&q("minPrice=60&maxPrice=60&seats=5")).await, vec![diesel.clone()]);

        let mut cheap = vec![diesel.clone(), hybrid.clone()];
        cheap.sort();
        let mut want = cheap.clone();
        want.push(electric.clone());
        let body = s.search(&q("sort=price")).await;
        assert_eq!(body["data"].as_array().unwrap().iter().map(id_of).collect::<Vec<_>>(), want, "price ascending, ties by id");
        assert!(body["data"][0]["distanceKm"].is_number(), "distance still reported");
    }
}

search_test! {
    async fn inactive_deleted_and_busy_cars_are_not_found(engine) {
        let s = search_app(engine).await;
        let here = at(PARIS.0, PARIS.1 + 0.01);
        let free = id_of(&s.car(here.clone()).await);
        let booked = id_of(&s.car(here.clone()).await);
        let inactive = id_of(&s.car(here.clone()).await);
        let deleted = id_of(&s.car(here.clone()).await);
        let admin = s.admin.clone();
        s.app.send(Method::PATCH, &format!("/cars/{inactive}"), &json!({"isActive": false}), Some(&admin)).await;
        s.app.send(Method::DELETE, &format!("/cars/{deleted}"), &json!({}), Some(&admin)).await;
        let customer = s.app.customer_token().await;
        let pickup = days_ahead(5);
        assert_eq!(s.app.book(&customer, &booked, pickup, 48).await.status(), StatusCode::CREATED);
        s.settle().await;
        let base = format!("latitude={}&longitude={}", PARIS.0, PARIS.1);
        let window = |from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>| {
            format!("{base}&pickupTime={}&dropoffTime={}", from.to_rfc3339().replace('+', "%2B"), to.to_rfc3339().replace('+', "%2B"))
        };

        let all = s.search(&base).await;
        assert_eq!(all["total"], 2);
        assert_eq!(BTreeSet::from_iter(s.ids(&base).await), BTreeSet::from([free.clone(), booked.clone()]));

        // Overlapping the booking: the booked car is gone, and total says so.
        let body = s.search(&window(pickup + chrono::Duration::hours(24), pickup + chrono::Duration::hours(72))).await;
        assert_eq!(body["total"], 1);
        assert_eq!(body["data"][0]["id"], free.as_str());
        // Ending when it starts, or starting when it ends: free.
        assert_eq!(s.search(&window(pickup - chrono::Duration::hours(24), pickup)).await["total"], 2);
        assert_eq!(s.search(&window(pickup + chrono::Duration::hours(48), pickup + chrono::Duration::hours(50))).await["total"], 2);
    }
}

search_test! {
    async fn text_matches_every_word_with_one_typo_each(engine) {
        let s = search_app(engine).await;
        let here = at(PARIS.0, PARIS.1);
        let mut tesla = here.clone();
        merge(&mut tesla, json!({"name": "Tesla Model 3", "brand": "Tesla", "model": "Model 3", "features": ["Autopilot", "Heated seats"]}));
        let tesla = id_of(&s.car(tesla).await);
        let mut bmw = here.clone();
        merge(&mut bmw, json!({"name": "BMW X5", "brand": "BMW", "model": "X5", "features": ["Panoramic roof"]}));
        let bmw = id_of(&s.car(bmw).await);
        s.settle().await;
        let q = |text: &str| format!("latitude={}&longitude={}&query={}", PARIS.0, PARIS.1, text.replace(' ', "%20"));

        for (text, want) in [
            ("tesla", vec![tesla.clone()]), ("TESLA", vec![tesla.clone()]), ("telsa", vec![tesla.clone()]),
            ("tesl", vec![tesla.clone()]), ("modle 3", vec![tesla.clone()]), ("autopilto", vec![tesla.clone()]),
            ("heated", vec![tesla.clone()]), ("bmw", vec![bmw.clone()]), ("panoramic roof", vec![bmw.clone()]),
            ("model 5", vec![]), ("tesla roof", vec![]), ("volvo", vec![]), ("x6", vec![]),
        ] {
            let got = s.ids(&q(text)).await;
            assert_eq!(got, want, "query {text:?}");
        }
        assert_eq!(s.search(&q("tesla")).await["total"], 1);

        // The words follow the car: renamed, it matches its new words and not its old ones.
        let res = s.app.send(reqwest::Method::PATCH, &format!("/cars/{bmw}"),
            &json!({"name": "Volvo XC40", "brand": "Volvo", "model": "XC40", "features": []}), Some(&s.admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        s.settle().await;
        assert_eq!(s.ids(&q("volvo xc40")).await, vec![bmw.clone()]);
        assert_eq!(s.ids(&q("vlovo")).await, vec![bmw.clone()]);
        assert_eq!(s.ids(&q("bmw")).await, Vec::<String>::new());
        assert_eq!(s.ids(&q("panoramic")).await, Vec::<String>::new());

        // And its place: moved to Lyon, its words are found there and no longer in Paris.
        let res = s.app.send(reqwest::Method::PATCH, &format!("/cars/{tesla}"), &at(45.764, 4.8357), Some(&s.admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        s.settle().await;
        assert_eq!(s.ids(&q("tesla")).await, Vec::<String>::new());
        assert_eq!(s.ids("latitude=45.76&longitude=4.84&query=telsa").await, vec![tesla.clone()]);
        assert_eq!(s.ids("latitude=47.5&longitude=3.5&radius=250&query=tesla").await, vec![tesla.clone()]);
    }
}

/// Each query's total and first page in each circle, against what the test computes from
/// the cars' places and kinds (`queries` names the kinds each query matches).
async fn text_totals(
    s: &SearchApp,
    cars: &[(String, (f64, f64), usize)],
    queries: &[(&str, &[usize])],
    circles: &[((f64, f64), f64)],
    when: &str,
) {
    for (text, kinds) in queries {
        for &(centre, r) in circles {
            let mut want: Vec<(f64, String)> = cars
                .iter()
                .filter(|(_, p, kind)| kinds.contains(kind) && haversine(centre, *p) <= r)
                .map(|(id, p, _)| (haversine(centre, *p), id.clone()))
                .collect();
            want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let q = format!(
                "lat={}&lng={}&radius={r}&query={text}&limit=4",
                centre.0, centre.1
            );
            let body = s.search(&q).await;
            assert_eq!(
                body["total"].as_i64().unwrap() as usize,
                want.len(),
                "{when}: {q}"
            );
            let got: Vec<String> = body["data"].as_array().unwrap().iter().map(id_of).collect();
            let nearest: Vec<String> = want.iter().take(4).map(|w| w.1.clone()).collect();
            assert_eq!(got, nearest, "{when}: {q}");
        }
    }
}

search_test! {
    async fn text_totals_count_every_match_as_cars_change(engine) {
        let s = search_app(engine).await;
        // Four kinds of car, two of them sharing the query words "tesla autopilot", two
        // "roof", scattered up to ~30 km around Paris.
        let kinds = [
            json!({"name": "Tesla Model 3", "brand": "Tesla", "model": "Model 3", "features": ["Autopilot"]}),
            json!({"name": "Tesla Model Y", "brand": "Tesla", "model": "Model Y", "features": ["Autopilot", "Tow hitch"]}),
            json!({"name": "BMW X5", "brand": "BMW", "model": "X5", "features": ["Panoramic roof"]}),
            json!({"name": "Citroen Berlingo", "brand": "Citroen", "model": "Berlingo", "features": ["Roof rack"]}),
        ];
        // Which kinds each query matches; kind 4 is a BMW whose features change below.
        let queries: [(&str, &[usize]); 7] = [
            ("tesla%20autopilot", &[0, 1]), ("telsa", &[0, 1]), ("roof", &[2, 3]),
            ("panoramic%20roof", &[2]), ("model%20y", &[1]), ("autopilot", &[0, 1, 4]),
            ("bmw%20autopilot", &[4]),
        ];
        let mut seed: u64 = 7;
        let mut rand = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut cars: Vec<(String, (f64, f64), usize)> = Vec::new();
        for i in 0..60 {
            let p = (PARIS.0 + (rand() - 0.5) * 0.54, PARIS.1 + (rand() - 0.5) * 0.82);
            let mut body = at(p.0, p.1);
            merge(&mut body, kinds[i % 4].clone());
            cars.push((id_of(&s.car(body).await), p, i % 4));
        }
        s.settle().await;

        let circles = [(PARIS, 2.0), (PARIS, 6.0), ((48.9, 2.3), 9.0), (PARIS, 15.0), (PARIS, 40.0)];
        text_totals(&s, &cars, &queries, &circles, "as created").await;
        assert!(
            cars.iter().filter(|(_, p, k)| *k < 2 && haversine(PARIS, *p) <= 15.0).count() > 3,
            "the circles hold matches"
        );

        // A Tesla deactivated, one deleted, a Citroen moved away and a BMW whose features
        // change (its text with them): each counted where it now belongs.
        let admin = s.admin.clone();
        let nearest_of = |kind: usize| {
            cars.iter()
                .filter(|c| c.2 == kind)
                .min_by(|a, b| haversine(PARIS, a.1).total_cmp(&haversine(PARIS, b.1)))
                .map(|c| c.0.clone())
                .unwrap()
        };
        let (tesla, model_y, citroen, bmw) = (nearest_of(0), nearest_of(1), nearest_of(3), nearest_of(2));
        let res = s.app.send(Method::PATCH, &format!("/cars/{tesla}"), &json!({"isActive": false}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let res = s.app.send(Method::DELETE, &format!("/cars/{model_y}"), &json!(null), Some(&admin)).await;
        assert!(res.status().is_success(), "{}", res.status());
        let res = s.app.send(Method::PATCH, &format!("/cars/{citroen}"), &at(PARIS.0 + 1.0, PARIS.1), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let res = s.app.send(Method::PATCH, &format!("/cars/{bmw}"), &json!({"features": ["Autopilot"]}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        s.settle().await;
        let now: Vec<(String, (f64, f64), usize)> = cars
            .into_iter()
            .filter(|c| c.0 != tesla && c.0 != model_y)
            .map(|(id, p, kind)| match id {
                _ if id == citroen => (id, (PARIS.0 + 1.0, PARIS.1), kind),
                _ if id == bmw => (id, p, 4),
                _ => (id, p, kind),
            })
            .collect();
        text_totals(&s, &now, &queries, &circles, "after the changes").await;
    }
}

search_test! {
    async fn punctuation_in_names_and_features_matches_as_typed(engine) {
        let s = search_app(engine).await;
        let mut golf = at(PARIS.0, PARIS.1);
        merge(&mut golf, json!({"name": "Golf 2.0 TDI", "brand": "Volkswagen", "model": "Golf",
            "features": ["Child's seat"]}));
        let golf = id_of(&s.car(golf).await);
        let mut other = at(PARIS.0, PARIS.1);
        merge(&mut other, json!({"name": "Clio", "brand": "Renault", "model": "Clio", "features": ["GPS"]}));
        s.car(other).await;
        s.settle().await;
        for text in ["2.0", "2.0%20tdi", "child%27s", "child%27s%20seat", "CHILD%E2%80%99S"] {
            let got = s.ids(&format!("latitude={}&longitude={}&query={text}", PARIS.0, PARIS.1)).await;
            assert_eq!(got, vec![golf.clone()], "query {text:?}");
        }
    }
}

search_test! {
    async fn bad_search_input_is_named(engine) {
        let s = search_app(engine).await;
        for (query, fields) in [
            ("", vec!["latitude", "longitude"]),
            ("latitude=48", vec!["longitude"]),
            ("lat=91&lng=2", vec!["lat"]),
            ("latitude=48&longitude=east", vec!["longitude"]),
            ("latitude=48&lon=181", vec!["lon"]),
            ("latitude=48&longitude=2&radius=0", vec!["radius"]),
            ("latitude=48&longitude=2&radius=500.1", vec!["radius"]),
            ("latitude=48&longitude=2&sort=rating", vec!["sort"]),
            ("latitude=48&longitude=2&fuelType=steam", vec!["fuelType"]),
            ("latitude=48&longitude=2&minPrice=50&maxPrice=40", vec!["maxPrice"]),
            ("latitude=48&longitude=2&seats=many", vec!["seats"]),
            ("latitude=48&longitude=2&pickupTime=2030-01-01T00:00:00Z", vec!["dropoffTime"]),
            ("latitude=48&longitude=2&dropoffTime=2030-01-01T00:00:00Z", vec!["pickupTime"]),
            ("latitude=48&longitude=2&pickupTime=2030-01-02T00:00:00Z&dropoffTime=2030-01-01T00:00:00Z", vec!["dropoffTime"]),
            ("latitude=48&longitude=2&page=0", vec!["page"]),
            ("latitude=48&longitude=2&limit=101", vec!["limit"]),
        ] {
            let res = s.app.get(&format!("/search?{query}"), None).await;
            assert_eq!(validation_fields(res).await, fields, "{query}");
        }
        let ok = s.search("latitude=48&longitude=2&radius=500").await;
        assert_eq!((ok["total"].as_i64(), ok["totalPages"].as_i64()), (Some(0), Some(0)));
    }
}

db_test! {
    async fn the_database_engine_reports_itself(backend) {
        let app = spawn_app(backend).await;
        let res = app.get("/search?lat=1&lng=1", None).await;
        assert_eq!(res.status(), StatusCode::OK, "{:?}", res.text().await);
        let text = app.metrics_of("search").await;
        assert!(text.contains(r#"carrental_searches_total{engine="database"} 1"#), "{text}");
        let ready = app.ready_of("search").await;
        assert_eq!(ready["checks"]["search"], json!({"status": "up", "engine": "database"}));
    }
}

/// A property-test car's weekend rate and weekly discount, and one season (its first and
/// last dates, its rate).
type Rules = (
    Option<i64>,
    i64,
    Option<(chrono::NaiveDate, chrono::NaiveDate, i64)>,
);

/// One car of the property test's fleet, as the brute force sees it.
struct FleetCar {
    id: String,
    at: (f64, f64),
    fuel: &'static str,
    gearbox: &'static str,
    seats: i64,
    /// Hundredths.
    price: i64,
    pricing: Option<Rules>,
    active: bool,
    /// Booked `[start, end)`.
    busy: Vec<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)>,
}

/// What renting `car` for `days` days from `from` costs, in hundredths, as API.md prices it:
/// day by day (season, else weekend, else the daily price), then the weekly discount from
/// seven days, rounded half up.
fn quote(car: &FleetCar, from: chrono::DateTime<chrono::Utc>, days: i64) -> i64 {
    use chrono::Datelike;
    let Some((weekend, weekly, season)) = car.pricing else {
        return car.price * days;
    };
    let amount: i64 = (0..days)
        .map(|k| {
            let date = (from + chrono::TimeDelta::days(k)).date_naive();
            let on_weekend = matches!(date.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun);
            match (season, weekend) {
                (Some((first, last, p)), _) if first <= date && date <= last => p,
                (_, Some(p)) if on_weekend => p,
                _ => car.price,
            }
        })
        .sum();
    let percent = if days >= 7 { weekly } else { 0 };
    amount - (amount * percent + 50) / 100
}

search_test! {
    async fn a_thousand_random_searches_answer_what_a_brute_force_scan_finds(engine) {
        let s = search_app(engine).await;
        let mut seed: u64 = 2026;
        let mut rand = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        const LYON: (f64, f64) = (45.764, 4.8357);
        const FUELS: [&str; 4] = ["petrol", "diesel", "electric", "hybrid"];
        const GEARBOXES: [&str; 2] = ["automatic", "manual"];
        let pick = |r: f64, n: usize| ((r * n as f64) as usize).min(n - 1);

        let day0 = days_ahead(2);
        let mut fleet = Vec::new();
        for _ in 0..120 {
            let at = (LYON.0 + (rand() - 0.5) * 2.4, LYON.1 + (rand() - 0.5) * 3.2);
            let (fuel, gearbox) = (FUELS[pick(rand(), 4)], GEARBOXES[pick(rand(), 2)]);
            let seats = 2 + pick(rand(), 8) as i64;
            let price = (20 + pick(rand(), 28) as i64 * 10) * 100 + if rand() < 0.3 { 50 } else { 0 };
            let active = rand() > 0.1;
            // Rules that order cars by quote otherwise than by daily price.
            let pricing = (rand() < 0.4).then(|| {
                let weekend = (rand() < 0.7).then(|| (15 + pick(rand(), 30) as i64 * 10) * 100 + 25);
                let weekly = [0, 10, 40][pick(rand(), 3)];
                let season = (rand() < 0.3).then(|| {
                    let from = (day0 + chrono::TimeDelta::days(pick(rand(), 15) as i64)).date_naive();
                    (from, from + chrono::TimeDelta::days(pick(rand(), 6) as i64), 30_000)
                });
                (weekend, weekly, season)
            });
            let rules = pricing.map(|(weekend, weekly, season)| json!({
                "weekendPricePerDay": weekend.map(|p| p as f64 / 100.0),
                "weeklyDiscountPercent": weekly,
                "seasons": season.map(|(from, to, p)| vec![json!({
                    "from": from.to_string(), "to": to.to_string(), "pricePerDay": p as f64 / 100.0,
                })]).unwrap_or_default(),
            }));
            let car = s.car(json!({
                "fuelType": fuel, "transmission": gearbox, "seats": seats,
                "pricePerDay": price as f64 / 100.0, "isActive": active, "pricing": rules,
                "location": {"latitude": at.0, "longitude": at.1, "city": "Lyon", "country": "France"},
            })).await;
            fleet.push(FleetCar { id: id_of(&car), at, fuel, gearbox, seats, price, pricing, active, busy: Vec::new() });
        }
        for _ in 0..60 {
            let i = pick(rand(), fleet.len());
            if !fleet[i].active {
                continue;
            }
            let start = day0 + chrono::TimeDelta::hours(pick(rand(), 24 * 20) as i64);
            let hours = 1 + pick(rand(), 96) as i64;
            if s.app.book(&s.admin, &fleet[i].id, start, hours).await.status() == StatusCode::CREATED {
                fleet[i].busy.push((start, start + chrono::TimeDelta::hours(hours)));
            }
        }
        s.settle().await;

        let (mut checked, mut found, mut kept_out, mut reordered) = (0, 0, 0, 0);
        while checked < 1000 {
            let centre = (LYON.0 + (rand() - 0.5) * 2.6, LYON.1 + (rand() - 0.5) * 3.4);
            let radius = (5.0 + rand() * 145.0).round();
            // A car within a metre of the circle would make the answer hang on rounding.
            if fleet.iter().any(|c| (haversine(centre, c.at) - radius).abs() < 1e-3) {
                continue;
            }
            let mut query = format!("latitude={}&longitude={}&radius={radius}", centre.0, centre.1);
            let fuel = (rand() < 0.3).then(|| FUELS[pick(rand(), 4)]);
            let gearbox = (rand() < 0.2).then(|| GEARBOXES[pick(rand(), 2)]);
            let seats = (rand() < 0.2).then(|| 2 + pick(rand(), 8) as i64);
            let min_price = (rand() < 0.2).then(|| (20 + pick(rand(), 15) as i64 * 10) * 100);
            let max_price = (rand() < 0.2).then(|| (150 + pick(rand(), 15) as i64 * 10) * 100);
            let window = (rand() < 0.4).then(|| {
                let from = day0 + chrono::TimeDelta::hours(pick(rand(), 24 * 22) as i64);
                (from, from + chrono::TimeDelta::hours(1 + pick(rand(), 240) as i64))
            });
            let by_price = rand() < 0.3;
            let (limit, page) = (1 + pick(rand(), 20), 1 + pick(rand(), 3));
            if let Some(f) = fuel { query += &format!("&fuelType={f}"); }
            if let Some(g) = gearbox { query += &format!("&transmission={g}"); }
            if let Some(n) = seats { query += &format!("&seats={n}"); }
            if let Some(p) = min_price { query += &format!("&minPrice={}", p / 100); }
            if let Some(p) = max_price { query += &format!("&maxPrice={}", p / 100); }
            if let Some((from, to)) = window {
                query += &format!("&pickupTime={}&dropoffTime={}",
                    from.format("%Y-%m-%dT%H:%M:%SZ"), to.format("%Y-%m-%dT%H:%M:%SZ"));
            }
            if by_price { query += "&sort=price"; }
            query += &format!("&limit={limit}&page={page}");

            let days = window.map(|(from, to)| ((to - from).num_hours() + 23) / 24);
            let mut expected: Vec<(&FleetCar, f64, i64)> = fleet
                .iter()
                .filter(|c| c.active)
                .filter(|c| fuel.is_none_or(|f| c.fuel == f) && gearbox.is_none_or(|g| c.gearbox == g))
                .filter(|c| seats.is_none_or(|n| c.seats >= n))
                .filter(|c| min_price.is_none_or(|p| c.price >= p) && max_price.is_none_or(|p| c.price <= p))
                .filter(|c| haversine(centre, c.at) <= radius)
                .collect::<Vec<_>>()
                .into_iter()
                .filter(|c| {
                    let free = window.is_none_or(|(from, to)| c.busy.iter().all(|(s, e)| !(*s < to && *e > from)));
                    kept_out += usize::from(!free);
                    free
                })
                .map(|c| (c, haversine(centre, c.at), window.map_or(c.price, |(from, _)| quote(c, from, days.unwrap_or(1)))))
                .collect();
            found += usize::from(!expected.is_empty());
            if by_price {
                expected.sort_by(|a, b| a.2.cmp(&b.2).then(a.0.id.cmp(&b.0.id)));
                let dearer_first = |w: &[(&FleetCar, f64, i64)]| w[0].0.price > w[1].0.price;
                reordered += usize::from(window.is_some() && expected.windows(2).any(dearer_first));
            } else {
                expected.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.id.cmp(&b.0.id)));
            }
            let body = s.search(&query).await;
            assert_eq!(body["total"].as_u64(), Some(expected.len() as u64), "total of {query}");
            let want: Vec<&(&FleetCar, f64, i64)> = expected.iter().skip((page - 1) * limit).take(limit).collect();
            let got = body["data"].as_array().unwrap();
            assert_eq!(
                got.iter().map(id_of).collect::<Vec<_>>(),
                want.iter().map(|(c, _, _)| c.id.clone()).collect::<Vec<_>>(),
                "items of {query}"
            );
            for (item, (_, d, total)) in got.iter().zip(&want) {
                let km = item["distanceKm"].as_f64().unwrap();
                assert!((km - d).abs() <= 0.0051, "distance {km} against {d} in {query}");
                if let Some(days) = days {
                    assert_eq!(item["quote"]["days"], days, "{query}");
                    let quoted = (item["quote"]["totalPrice"].as_f64().unwrap() * 100.0).round() as i64;
                    assert_eq!(quoted, *total, "quote of {query}");
                }
            }
            checked += 1;
        }
        // The draw is worth something: most searches find cars, windows keep booked ones
        // out, and pricing rules put a dearer car before a cheaper one.
        assert!(found > 600 && kept_out > 20, "{found} searches found cars, {kept_out} cars kept out by windows");
        assert!(reordered > 20, "only {reordered} searches by quote ordered cars otherwise than by daily price");
    }
}
