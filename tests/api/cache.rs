//! Car reads from memory: ETags and 304, writes here seen by the next read, writes
//! elsewhere seen within a second, totals exact while writes race the reads.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

async fn get_tagged(
    app: &TestApp,
    path: &str,
    if_none_match: Option<&str>,
) -> (StatusCode, String, String) {
    let mut req = app.client.get(app.url(path));
    if let Some(tag) = if_none_match {
        req = req.header("If-None-Match", tag);
    }
    let res = req.send().await.expect("request sent");
    let status = res.status();
    let etag = res
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, etag, res.text().await.unwrap())
}

/// A brand no other test uses, so that `?brand=` counts only this test's cars.
fn brand() -> String {
    format!("Brand{}", uuid::Uuid::new_v4().simple())
}

async fn total(app: &TestApp, query: &str) -> i64 {
    let res = app.get(&format!("/cars?{query}"), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["data"].as_array().unwrap().len() as i64,
        body["total"].as_i64().unwrap().min(20)
    );
    body["total"].as_i64().unwrap()
}

db_test! {
    async fn car_and_list_answers_carry_etags_and_answer_304(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let id = id_of(&app.create_car(&admin, json!({})).await);
        let path = format!("/cars/{id}");

        let (status, tag, body) = get_tagged(&app, &path, None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(tag.starts_with('"') && tag.ends_with('"') && tag.len() > 10, "a strong tag: {tag}");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["id"], id.as_str());
        assert_eq!(get_tagged(&app, &path, None).await, (StatusCode::OK, tag.clone(), body.clone()));

        for held in [tag.clone(), format!("W/{tag}"), format!("\"other\", {tag}"), "*".into()] {
            let (status, etag, body) = get_tagged(&app, &path, Some(&held)).await;
            assert_eq!((status, etag.as_str(), body.as_str()), (StatusCode::NOT_MODIFIED, tag.as_str(), ""), "{held}");
        }
        let (status, _, _) = get_tagged(&app, &path, Some("\"other\"")).await;
        assert_eq!(status, StatusCode::OK);

        // A change makes a new tag, and the old one no longer holds.
        let res = app.send(Method::PATCH, &path, &json!({"name": "Renamed"}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let (status, new_tag, body) = get_tagged(&app, &path, Some(&tag)).await;
        assert_eq!(status, StatusCode::OK);
        assert_ne!(new_tag, tag);
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["name"], "Renamed");

        // Listing pages too, and a new car changes the page's tag.
        let (status, list_tag, _) = get_tagged(&app, "/cars", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(get_tagged(&app, "/cars", Some(&list_tag)).await.0, StatusCode::NOT_MODIFIED);
        app.create_car(&admin, json!({})).await;
        let (status, newer, body) = get_tagged(&app, "/cars", Some(&list_tag)).await;
        assert_eq!(status, StatusCode::OK);
        assert_ne!(newer, list_tag);
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["total"], 2);

        // Errors are not tagged, and a tag does not turn a missing car into 304.
        let gone = format!("/cars/{}", uuid::Uuid::new_v4());
        let (status, etag, _) = get_tagged(&app, &gone, Some("*")).await;
        assert_eq!((status, etag.as_str()), (StatusCode::NOT_FOUND, ""));
    }
}

db_test! {
    async fn a_write_here_is_seen_by_the_next_read(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let brand = brand();
        let query = format!("brand={brand}");
        for n in 1..=10 {
            assert_eq!(total(&app, &query).await, n - 1);
            let car = app.create_car(&admin, json!({"brand": brand, "name": format!("Car {n}")})).await;
            assert_eq!(total(&app, &query).await, n);
            let path = format!("/cars/{}", id_of(&car));
            assert_eq!(app.get(&path, None).await.status(), StatusCode::OK);
            let res = app.send(Method::PATCH, &path, &json!({"seats": 2}), Some(&admin)).await;
            assert_eq!(res.status(), StatusCode::OK);
            let seen: Value = app.get(&path, None).await.json().await.unwrap();
            assert_eq!(seen["seats"], 2);
        }
        let first: Value = app.get(&format!("/cars?{query}&limit=1"), None).await.json().await.unwrap();
        let path = format!("/cars/{}", id_of(&first["data"][0]));
        let res = app.send(Method::DELETE, &path, &json!(null), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(app.get(&path, None).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(total(&app, &query).await, 9);
    }
}

/// Polls `path` on `app` until `done` holds of its body, for at most `limit`.
async fn until(app: &TestApp, path: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let res = app.get(path, None).await;
        if res.status() == StatusCode::OK && done(&res.json().await.unwrap()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

db_test! {
    local: async fn a_write_elsewhere_is_seen_within_a_second(backend) {
        let first = spawn_app(backend).await;
        let second = spawn_app_sharing(&first, &[]).await;
        let admin = first.admin_token().await;
        let id = id_of(&first.create_car(&admin, json!({"name": "Before"})).await);
        let path = format!("/cars/{id}");
        // The second replica holds the car and the page in its cache.
        assert!(until(&second, &path, Duration::from_secs(5), |car| car["name"] == "Before").await);
        assert_eq!(total(&second, "").await, 1);

        let res = first.send(Method::PATCH, &path, &json!({"name": "After"}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        first.create_car(&admin, json!({})).await;
        // The promise is one second; the margin is for a loaded test machine.
        assert!(until(&second, &path, Duration::from_secs(3), |car| car["name"] == "After").await);
        assert!(until(&second, "/cars", Duration::from_secs(3), |page| page["total"] == 2).await);

        // A write from outside the server (psql, a script) is seen as well.
        first.db.execute(&format!("UPDATE cars SET name = 'By hand' WHERE id = '{id}'"));
        assert!(until(&second, &path, Duration::from_secs(3), |car| car["name"] == "By hand").await);
        assert!(until(&first, &path, Duration::from_secs(3), |car| car["name"] == "By hand").await);
    }
}

db_test! {
    async fn totals_stay_exact_while_writes_race_the_reads(backend) {
        let app = std::sync::Arc::new(spawn_app(backend).await);
        let admin = app.admin_token().await;
        let brand = brand();
        let query = format!("brand={brand}");
        let (writers, each) = (6, 5);

        // Readers: each one's totals never go back while cars are only added.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (app, query, stop) = (app.clone(), query.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut last = 0;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        let now = total(&app, &query).await;
                        assert!(now >= last, "total went back from {last} to {now}");
                        last = now;
                    }
                })
            })
            .collect();
        let created: Vec<_> = (0..writers)
            .map(|_| {
                let (app, admin, brand) = (app.clone(), admin.clone(), brand.clone());
                tokio::spawn(async move {
                    let mut ids = Vec::new();
                    for _ in 0..each {
                        ids.push(id_of(&app.create_car(&admin, json!({"brand": brand})).await));
                    }
                    ids
                })
            })
            .collect();
        let mut ids = Vec::new();
        for writer in created {
            ids.extend(writer.await.unwrap());
        }
        assert_eq!(total(&app, &query).await, writers * each);
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for reader in readers {
            reader.await.unwrap();
        }

        // Deletes racing reads: every read after the last delete says 0.
        let deletes: Vec<_> = ids
            .into_iter()
            .map(|id| {
                let (app, admin) = (app.clone(), admin.clone());
                tokio::spawn(async move {
                    let res = app.send(Method::DELETE, &format!("/cars/{id}"), &json!(null), Some(&admin)).await;
                    assert_eq!(res.status(), StatusCode::NO_CONTENT);
                })
            })
            .collect();
        let app2 = app.clone();
        let reads = tokio::spawn(async move {
            for _ in 0..20 {
                let n = total(&app2, &format!("brand={brand}")).await;
                assert!((0..=30).contains(&n), "{n}");
            }
        });
        for delete in deletes {
            delete.await.unwrap();
        }
        reads.await.unwrap();
        assert_eq!(total(&app, &query).await, 0);
    }
}

// Split, search runs in another process than cars: that is the other-replica case above.
db_test! {
    local: async fn searches_follow_car_writes_and_bookings_at_once(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let customer = app.customer_token().await;
        let near = json!({"location": {"latitude": 45.0, "longitude": 5.0, "city": "Grenoble", "country": "France"}});
        let plain = "/search?lat=45&lng=5&radius=5";
        let pickup = days_ahead(3);
        let dated = format!(
            "{plain}&pickupTime={}&dropoffTime={}",
            pickup.to_rfc3339().replace('+', "%2B"),
            (pickup + chrono::Duration::hours(24)).to_rfc3339().replace('+', "%2B")
        );
        let found = |body: String| serde_json::from_str::<Value>(&body).unwrap()["total"].as_i64().unwrap();

        let (_, tag, body) = get_tagged(&app, plain, None).await;
        assert_eq!(found(body), 0);
        assert_eq!(get_tagged(&app, plain, Some(&tag)).await.0, StatusCode::NOT_MODIFIED);
        let car = id_of(&app.create_car(&admin, near.clone()).await);
        let (status, _, body) = get_tagged(&app, plain, Some(&tag)).await;
        assert_eq!((status, found(body)), (StatusCode::OK, 1));
        assert_eq!(found(get_tagged(&app, &dated, None).await.2), 1);

        // A booking changes no car, yet a search with dates sees it at once.
        assert_eq!(app.book(&customer, &car, pickup, 24).await.status(), StatusCode::CREATED);
        assert_eq!(found(get_tagged(&app, &dated, None).await.2), 0);
        assert_eq!(found(get_tagged(&app, plain, None).await.2), 1);

        let res = app.send(Method::PATCH, &format!("/cars/{car}"), &json!({"isActive": false}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(found(get_tagged(&app, plain, None).await.2), 0);
    }
}

db_test! {
    /// Listing totals come from counts the database keeps with every write (the fleet's, and
    /// each combination of filtered values'): after creates, deactivations, reactivations,
    /// changes and deletes racing one another (and reads), they equal the cars that are there.
    async fn the_fleet_totals_follow_writes_racing_each_other(backend) {
        let app = std::sync::Arc::new(spawn_app(backend).await);
        let admin = app.admin_token().await;
        let everyone = |app: std::sync::Arc<TestApp>, admin: String| async move {
            let res = app.get("/cars?includeInactive=true", Some(&admin)).await;
            res.json::<Value>().await.unwrap()["total"].as_i64().unwrap()
        };
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let (app, admin) = (app.clone(), admin.clone());
                tokio::spawn(async move {
                    let mut kept = (0, 0); // (active, inactive) this writer leaves behind
                    for i in 0..6 {
                        let fuel = ["petrol", "electric"][(w + i) % 2];
                        let city = ["Paris", "Lyon", "Paris"][(w + 2 * i) % 3];
                        let gearbox = ["automatic", "manual"][w % 2];
                        let created = json!({"isActive": i % 2 == 0, "fuelType": fuel, "pricePerDay": 40 + 10 * i,
                                             "transmission": gearbox, "location": {"city": city}});
                        let car = id_of(&app.create_car(&admin, created).await);
                        let path = format!("/cars/{car}");
                        match (w + i) % 4 {
                            0 => {
                                let res = app.send(Method::DELETE, &path, &json!(null), Some(&admin)).await;
                                assert_eq!(res.status(), StatusCode::NO_CONTENT);
                            }
                            1 => {
                                // Into another combination of the filtered values as well.
                                let changes = json!({"isActive": i % 2 != 0, "pricePerDay": 95 - 10 * i, "seats": 2 + w % 3});
                                let res = app.send(Method::PATCH, &path, &changes, Some(&admin)).await;
                                assert_eq!(res.status(), StatusCode::OK);
                                if i % 2 == 0 { kept.1 += 1 } else { kept.0 += 1 }
                            }
                            _ => if i % 2 == 0 { kept.0 += 1 } else { kept.1 += 1 },
                        }
                    }
                    kept
                })
            })
            .collect();
        let reader = {
            let (app, admin) = (app.clone(), admin.clone());
            tokio::spawn(async move {
                for _ in 0..30 {
                    let n = everyone(app.clone(), admin.clone()).await;
                    assert!((0..=48).contains(&n), "{n}");
                }
            })
        };
        let (mut active, mut inactive) = (0, 0);
        for writer in writers {
            let (a, i) = writer.await.unwrap();
            active += a;
            inactive += i;
        }
        reader.await.unwrap();
        assert_eq!(total(&app, "").await, active);
        assert_eq!(everyone(app.clone(), admin.clone()).await, active + inactive);
        assert_eq!(total(&app, "brand=Tesla").await, active);
        // Every filtered total (summed from the kept combinations) agrees with the cars.
        let mut cars = Vec::new();
        for page in 1..=3 {
            let res = app.get(&format!("/cars?includeInactive=true&limit=20&page={page}"), Some(&admin)).await;
            let body: Value = res.json().await.unwrap();
            cars.extend(body["data"].as_array().unwrap().iter().cloned());
        }
        assert_eq!(cars.len() as i64, active + inactive);
        type Matches = fn(&Value) -> bool;
        let filters: [(&str, Matches); 5] = [
            ("maxPrice=70", |c| c["pricePerDay"].as_f64().unwrap() <= 70.0),
            ("fuelType=electric", |c| c["fuelType"] == "electric"),
            ("minSeats=4", |c| c["seats"].as_i64().unwrap() >= 4),
            ("fuelType=petrol&maxPrice=60&minSeats=3", |c| {
                c["fuelType"] == "petrol" && c["pricePerDay"].as_f64().unwrap() <= 60.0 && c["seats"].as_i64().unwrap() >= 3
            }),
            ("city=Paris&transmission=automatic", |c| c["location"]["city"] == "Paris" && c["transmission"] == "automatic"),
        ];
        for (query, matches) in filters {
            let expected = cars.iter().filter(|c| c["isActive"] == true && matches(c)).count() as i64;
            assert_eq!(total(&app, query).await, expected, "{query}");
            let res = app.get(&format!("/cars?includeInactive=true&{query}"), Some(&admin)).await;
            let everyone = res.json::<Value>().await.unwrap()["total"].as_i64().unwrap();
            assert_eq!(everyone, cars.iter().filter(|c| matches(c)).count() as i64, "{query}");
        }
    }
}
