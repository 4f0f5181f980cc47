//! Blocks and turnaround buffers (API.md, Rental operations): a car out of service, the
//! time kept free after each rental, and how bookings, availability and search honour both.

use chrono::{DateTime, Duration, Utc};
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn block_body(from: DateTime<Utc>, to: DateTime<Utc>) -> Value {
    json!({"from": time(from), "to": time(to), "reason": "Brake service"})
}

fn window(pickup: DateTime<Utc>, dropoff: DateTime<Utc>) -> Value {
    json!({"pickupTime": time(pickup), "dropoffTime": time(dropoff)})
}

async fn book_window(
    app: &TestApp,
    token: &str,
    car: &str,
    pickup: DateTime<Utc>,
    dropoff: DateTime<Utc>,
) -> StatusCode {
    let mut body = window(pickup, dropoff);
    body["carId"] = json!(car);
    app.post("/bookings", &body, Some(token)).await.status()
}

async fn block(
    app: &TestApp,
    admin: &str,
    car: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> StatusCode {
    app.post(
        &format!("/cars/{car}/blocks"),
        &block_body(from, to),
        Some(admin),
    )
    .await
    .status()
}

async fn busy(app: &TestApp, car: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Value> {
    let res = app
        .get(
            &format!(
                "/cars/{car}/availability?from={}&to={}",
                time(from),
                time(to)
            ),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    body["busy"].as_array().unwrap().clone()
}

/// Ids of the cars a search for the window finds near the test cars, in order.
async fn search_window(
    app: &TestApp,
    pickup: DateTime<Utc>,
    dropoff: DateTime<Utc>,
    sort: &str,
) -> Value {
    let path = format!(
        "/search?lat=37.7749&lng=-122.4194&radius=50&pickupTime={}&dropoffTime={}&sort={sort}",
        time(pickup),
        time(dropoff)
    );
    let res = app.get(&path, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

fn ids(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(id_of).collect()
}

db_test! {
    async fn blocks_are_checked_listed_and_deleted(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let customer = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let path = format!("/cars/{car}/blocks");
        let start = days_ahead(3);

        for (body, fields) in [
            (json!({}), vec!["from", "to", "reason"]),
            (json!({"from": "soon", "to": time(start), "reason": "x"}), vec!["from"]),
            (block_body(start, start), vec!["to"]),
            (block_body(start, start - Duration::hours(1)), vec!["to"]),
            (block_body(start, start + Duration::days(367)), vec!["to"]),
            (json!({"from": time(start), "to": time(start + Duration::days(1)), "reason": "  "}), vec!["reason"]),
            (json!({"from": time(start), "to": time(start + Duration::days(1)), "reason": "r".repeat(201)}), vec!["reason"]),
        ] {
            let res = app.post(&path, &body, Some(&admin)).await;
            assert_eq!(validation_fields(res).await, fields, "{body}");
        }
        let body = block_body(start, start + Duration::days(1));
        assert_eq!(app.post(&path, &body, None).await.status(), StatusCode::UNAUTHORIZED);
        assert_error(app.post(&path, &body, Some(&customer)).await, StatusCode::FORBIDDEN, "FORBIDDEN").await;
        assert_error(app.get(&path, Some(&customer)).await, StatusCode::FORBIDDEN, "FORBIDDEN").await;
        let unknown = format!("/cars/{}/blocks", uuid::Uuid::new_v4());
        assert_error(app.post(&unknown, &body, Some(&admin)).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        assert_error(app.get(&unknown, Some(&admin)).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;

        // 366 days is the longest block; a past block is kept and listed with all=true.
        let res = app.post(&path, &block_body(start + Duration::days(10), start + Duration::days(376)), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let long: Value = res.json().await.unwrap();
        let res = app.post(&path, &body, Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let first: Value = res.json().await.unwrap();
        assert_eq!(first["carId"], car.as_str());
        assert_eq!(first["from"], time(start).as_str());
        assert_eq!(first["to"], time(start + Duration::days(1)).as_str());
        assert_eq!(first["reason"], "Brake service");
        assert!(first["createdAt"].is_string());
        let past = Utc::now() - Duration::days(5);
        assert_eq!(block(&app, &admin, &car, past, past + Duration::days(1)).await, StatusCode::CREATED);

        let page: Value = app.get(&path, Some(&admin)).await.json().await.unwrap();
        assert_eq!(ids(&page), vec![id_of(&first), id_of(&long)], "ending after now, in from order");
        assert_eq!(page["total"], 2);
        let every: Value = app.get(&format!("{path}?all=true&limit=1&page=2"), Some(&admin)).await.json().await.unwrap();
        assert_eq!(ids(&every), vec![id_of(&first)]);
        assert_eq!(every["total"], 3);
        assert_eq!(validation_fields(app.get(&format!("{path}?all=maybe"), Some(&admin)).await).await, vec!["all"]);

        // Availability lists blocks by kind.
        let listed = busy(&app, &car, start - Duration::hours(1), start + Duration::days(2)).await;
        assert_eq!(listed, vec![json!({"start": first["from"], "end": first["to"], "kind": "block"})]);

        let one = format!("{path}/{}", id_of(&first));
        assert_error(app.send(Method::DELETE, &one, &json!(null), Some(&customer)).await, StatusCode::FORBIDDEN, "FORBIDDEN").await;
        let elsewhere = id_of(&app.create_car(&admin, json!({})).await);
        let res = app.send(Method::DELETE, &format!("/cars/{elsewhere}/blocks/{}", id_of(&first)), &json!(null), Some(&admin)).await;
        assert_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        assert_eq!(app.send(Method::DELETE, &one, &json!(null), Some(&admin)).await.status(), StatusCode::NO_CONTENT);
        assert_error(app.send(Method::DELETE, &one, &json!(null), Some(&admin)).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        assert!(busy(&app, &car, start - Duration::hours(1), start + Duration::days(2)).await.is_empty());

        // A deleted car takes no blocks.
        assert_eq!(app.send(Method::DELETE, &format!("/cars/{car}"), &json!(null), Some(&admin)).await.status(), StatusCode::NO_CONTENT);
        assert_error(app.post(&path, &body, Some(&admin)).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    }
}

db_test! {
    async fn blocks_and_bookings_never_overlap(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let customer = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let t = days_ahead(4);

        assert_eq!(block(&app, &admin, &car, t, t + Duration::days(1)).await, StatusCode::CREATED);
        // A booking across the block, inside it, or ending inside it: 409.
        for (from, to) in [(t - Duration::hours(2), t + Duration::hours(30)),
                           (t + Duration::hours(2), t + Duration::hours(3)),
                           (t - Duration::hours(2), t + Duration::hours(1))] {
            let res = app.post("/bookings", &json!({"carId": car, "pickupTime": time(from), "dropoffTime": time(to)}), Some(&customer)).await;
            assert_error(res, StatusCode::CONFLICT, "CONFLICT").await;
        }
        // Half-open: a rental may end as the block starts and start as it ends.
        assert_eq!(book_window(&app, &customer, &car, t - Duration::hours(5), t).await, StatusCode::CREATED);
        assert_eq!(book_window(&app, &customer, &car, t + Duration::days(1), t + Duration::days(2)).await, StatusCode::CREATED);
        // A block over a booking, or over another block: 409.
        let res = app.post(&format!("/cars/{car}/blocks"), &block_body(t + Duration::hours(40), t + Duration::hours(50)), Some(&admin)).await;
        assert_error(res, StatusCode::CONFLICT, "CONFLICT").await;
        assert_eq!(block(&app, &admin, &car, t + Duration::hours(20), t + Duration::hours(22)).await, StatusCode::CONFLICT);

        // Cancelling the booking frees its time for a block at once.
        let mine: Value = app.get("/bookings", Some(&customer)).await.json().await.unwrap();
        let later = mine["data"].as_array().unwrap().iter()
            .find(|b| b["pickupTime"] == time(t + Duration::days(1)).as_str()).unwrap().clone();
        let res = app.send(Method::PATCH, &format!("/bookings/{}", id_of(&later)), &json!({"status": "cancelled"}), Some(&customer)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(block(&app, &admin, &car, t + Duration::hours(40), t + Duration::hours(50)).await, StatusCode::CREATED);
        // An inactive car can still be blocked.
        app.send(Method::PATCH, &format!("/cars/{car}"), &json!({"isActive": false}), Some(&admin)).await;
        assert_eq!(block(&app, &admin, &car, t + Duration::days(5), t + Duration::days(6)).await, StatusCode::CREATED);
    }
}

db_test! {
    async fn a_turnaround_buffer_holds_the_car_after_each_rental(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let customer = app.customer_token().await;
        for bad in [json!(-1), json!(1441), json!("60"), json!(null), json!(1.5)] {
            let mut body = car_body();
            body["bufferMinutes"] = bad.clone();
            let res = app.post("/cars", &body, Some(&admin)).await;
            assert_eq!(validation_fields(res).await, vec!["bufferMinutes"], "{bad}");
        }
        assert_eq!(app.create_car(&admin, json!({})).await["bufferMinutes"], 0);
        let created = app.create_car(&admin, json!({"bufferMinutes": 60})).await;
        assert_eq!(created["bufferMinutes"], 60);
        let car = id_of(&created);

        // Booked until 10:00 (here: `end`) with a 60-minute buffer.
        let end = days_ahead(3);
        assert_eq!(book_window(&app, &customer, &car, end - Duration::hours(24), end).await, StatusCode::CREATED);
        assert_eq!(book_window(&app, &customer, &car, end + Duration::minutes(30), end + Duration::hours(5)).await, StatusCode::CONFLICT);
        assert_eq!(block(&app, &admin, &car, end + Duration::minutes(59), end + Duration::hours(2)).await, StatusCode::CONFLICT);
        let listed = busy(&app, &car, end - Duration::hours(1), end + Duration::minutes(30)).await;
        assert_eq!(listed, vec![json!({"start": time(end - Duration::hours(24)), "end": time(end + Duration::hours(1)), "kind": "booking"})]);

        // A quote says the 10:30 window is not available, the 11:00 one is.
        let quote = |from: DateTime<Utc>, to: DateTime<Utc>| format!("/cars/{car}/quote?pickupTime={}&dropoffTime={}", time(from), time(to));
        let q: Value = app.get(&quote(end + Duration::minutes(30), end + Duration::hours(5)), None).await.json().await.unwrap();
        assert_eq!(q["available"], false);
        let q: Value = app.get(&quote(end + Duration::hours(1), end + Duration::hours(5)), None).await.json().await.unwrap();
        assert_eq!(q["available"], true);

        // The buffer the booking was made with stays when the car's changes.
        let res = app.send(Method::PATCH, &format!("/cars/{car}"), &json!({"bufferMinutes": 0}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(book_window(&app, &customer, &car, end + Duration::minutes(30), end + Duration::hours(5)).await, StatusCode::CONFLICT);
        assert_eq!(book_window(&app, &customer, &car, end + Duration::hours(1), end + Duration::hours(5)).await, StatusCode::CREATED);

        // A new booking's own buffer may not run into the next hold: with 120 minutes, a
        // rental ending 90 minutes before the next one is refused, one ending 2 h before fits.
        let res = app.send(Method::PATCH, &format!("/cars/{car}"), &json!({"bufferMinutes": 120}), Some(&admin)).await;
        assert_eq!(res.json::<Value>().await.unwrap()["bufferMinutes"], 120);
        let next = end + Duration::days(3);
        assert_eq!(block(&app, &admin, &car, next, next + Duration::hours(4)).await, StatusCode::CREATED);
        assert_eq!(book_window(&app, &customer, &car, next - Duration::hours(6), next - Duration::minutes(90)).await, StatusCode::CONFLICT);
        assert_eq!(book_window(&app, &customer, &car, next - Duration::hours(6), next - Duration::hours(2)).await, StatusCode::CREATED);
    }
}

db_test! {
    /// A block and 20 bookings for the same window, released together: exactly one wins.
    async fn a_block_racing_bookings_for_one_window_lets_exactly_one_win(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let mut tokens = Vec::new();
        for _ in 0..4 {
            tokens.push(app.customer_token().await);
        }
        let from = days_ahead(6);
        let to = from + Duration::days(2);
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(21));
        let mut requests = Vec::new();
        for i in 0..21i64 {
            let (client, barrier) = (app.client.clone(), barrier.clone());
            let (url, token, body) = if i == 10 {
                (app.url(&format!("/cars/{car}/blocks")), admin.clone(), block_body(from, to))
            } else {
                let mut body = window(from + Duration::hours(i % 5), to - Duration::hours(i % 3));
                body["carId"] = json!(car);
                (app.url("/bookings"), tokens[i as usize % 4].clone(), body)
            };
            requests.push(tokio::spawn(async move {
                barrier.wait().await;
                client.post(url).bearer_auth(token).json(&body).send().await.unwrap().status()
            }));
        }
        let statuses: Vec<StatusCode> = join_all(requests).await.into_iter().map(Result::unwrap).collect();
        let created = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
        let conflicts = statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count();
        assert_eq!((created, conflicts), (1, 20), "{statuses:?}");
        assert_eq!(busy(&app, &car, from, to).await.len(), 1);
    }
}

db_test! {
    async fn search_with_a_window_honours_blocks_buffers_and_prices_it(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let customer = app.customer_token().await;
        // Cheapest per day but dear at weekends; mid-priced; dearest per day with a weekly discount.
        let weekend = id_of(&app.create_car(&admin, json!({"pricePerDay": 90, "pricing": {"weekendPricePerDay": 300}})).await);
        let plain = id_of(&app.create_car(&admin, json!({"pricePerDay": 100})).await);
        let weekly = id_of(&app.create_car(&admin, json!({"pricePerDay": 110, "pricing": {"weeklyDiscountPercent": 20}, "bufferMinutes": 120})).await);

        // A week from a Monday: 90×5 + 300×2 = 1050; 700; 770 − 154 = 616.
        let mut monday = days_ahead(14);
        while chrono::Datelike::weekday(&monday) != chrono::Weekday::Mon {
            monday += Duration::days(1);
        }
        let week = monday + Duration::days(7);
        let page = search_window(&app, monday, week, "price").await;
        assert_eq!(ids(&page), vec![weekly.clone(), plain.clone(), weekend.clone()]);
        assert_eq!(page["total"], 3);
        assert_eq!(page["data"][0]["quote"], json!({"days": 7, "totalPrice": 616.0, "currency": "USD"}));
        assert_eq!(page["data"][1]["quote"], json!({"days": 7, "totalPrice": 700.0, "currency": "USD"}));
        assert_eq!(page["data"][2]["quote"], json!({"days": 7, "totalPrice": 1050.0, "currency": "USD"}));
        let by_distance = search_window(&app, monday, week, "distance").await;
        assert_eq!(by_distance["data"][0]["quote"]["days"], 7, "every item is quoted");
        let second: Value = app.get(&format!(
            "/search?lat=37.7749&lng=-122.4194&pickupTime={}&dropoffTime={}&sort=price&limit=1&page=2",
            time(monday), time(week)), None).await.json().await.unwrap();
        assert_eq!(ids(&second), vec![plain.clone()]);
        assert_eq!(second["total"], 3);
        let undated: Value = app.get("/search?lat=37.7749&lng=-122.4194&sort=price", None).await.json().await.unwrap();
        assert_eq!(ids(&undated), vec![weekend.clone(), plain.clone(), weekly.clone()], "without dates: by pricePerDay");
        assert!(undated["data"][0].get("quote").is_none());

        // A block leaves its car out of the window's results.
        assert_eq!(block(&app, &admin, &plain, monday + Duration::days(2), monday + Duration::days(3)).await, StatusCode::CREATED);
        assert_eq!(ids(&search_window(&app, monday, week, "price").await), vec![weekly.clone(), weekend.clone()]);

        // The weekly car is booked until `monday` with a 120-minute buffer: a window starting
        // an hour later leaves it out, one starting two hours later has it.
        assert_eq!(book_window(&app, &customer, &weekly, monday - Duration::days(1), monday).await, StatusCode::CREATED);
        let later = |h: i64| monday + Duration::hours(h);
        assert!(!ids(&search_window(&app, later(1), later(1) + Duration::days(1), "distance").await).contains(&weekly));
        assert!(ids(&search_window(&app, later(2), later(2) + Duration::days(1), "distance").await).contains(&weekly));
        // Nor does search offer a window whose own buffer would run into the next hold.
        let before = monday - Duration::days(3);
        assert_eq!(book_window(&app, &customer, &weekly, before, before + Duration::hours(10)).await, StatusCode::CREATED);
        let ending = |h: i64| search_window(&app, before - Duration::days(1), before - Duration::hours(h), "distance");
        assert!(!ids(&ending(1).await).contains(&weekly), "its 2 h buffer would run into the booking");
        assert!(ids(&ending(2).await).contains(&weekly));
    }
}
