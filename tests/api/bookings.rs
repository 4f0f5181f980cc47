use chrono::{DateTime, Duration, Utc};
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("time"))
        .expect("rfc3339")
        .with_timezone(&Utc)
}

/// Every non-cancelled booking of `car`, as the admin sees them.
async fn live_bookings(app: &TestApp, admin: &str, car: &str) -> Vec<Value> {
    let res = app
        .get(
            &format!("/admin/bookings?carId={car}&limit=100"),
            Some(admin),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page: Value = res.json().await.unwrap();
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["status"] != "cancelled")
        .cloned()
        .collect()
}

db_test! {
    async fn a_booking_prices_started_days_at_the_price_of_the_day(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let customer = app.customer_token().await;
        let car = app.create_car(&admin, json!({"pricePerDay": 120.5, "currency": "EUR"})).await;
        let pickup = days_ahead(2);
        let res = app
            .post("/bookings", &json!({"carId": id_of(&car), "pickupTime": pickup.with_timezone(&chrono::FixedOffset::east_opt(7200).unwrap()).to_rfc3339(),
                                        "dropoffTime": (pickup + Duration::hours(25)).to_rfc3339()}), Some(&customer))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let b: Value = res.json().await.unwrap();
        assert_eq!(b["days"], 2);
        assert_eq!(b["totalPrice"], json!(241.0));
        assert_eq!(b["currency"], "EUR");
        assert_eq!(b["status"], "confirmed");
        assert_eq!(time(&b["pickupTime"]), pickup);
        assert!(b["pickupTime"].as_str().unwrap().ends_with('Z'), "answered in UTC");
        assert_eq!(b["car"], json!({"id": car["id"], "name": car["name"], "images": car["images"]}));
        for field in ["cancelledAt", "pickedUpAt", "returnedAt"] {
            assert_eq!(b[field], Value::Null);
        }
        let me: Value = app.get("/auth/me", Some(&customer)).await.json().await.unwrap();
        assert_eq!(b["userId"], me["id"]);

        // A later price change does not touch the booking.
        app.send(Method::PATCH, &format!("/cars/{}", id_of(&car)), &json!({"pricePerDay": 500}), Some(&admin)).await;
        let again: Value = app.get(&format!("/bookings/{}", id_of(&b)), Some(&customer)).await.json().await.unwrap();
        assert_eq!(again["totalPrice"], json!(241.0));

        let b: Value = app.book(&customer, &id_of(&car), pickup + Duration::days(5), 1).await.json().await.unwrap();
        assert_eq!((b["days"].as_i64(), b["totalPrice"].as_f64()), (Some(1), Some(500.0)));
    }
}

db_test! {
    async fn booking_rules_and_their_errors(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let customer = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let future = days_ahead(3);

        assert_error(app.book("", &car, future, 24).await, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
        let cases = [
            (json!({}), vec!["carId", "pickupTime", "dropoffTime"]),
            (json!({"carId": "nope", "pickupTime": future.to_rfc3339(), "dropoffTime": (future + Duration::days(1)).to_rfc3339()}), vec!["carId"]),
            (booking_body(&car, Utc::now() - Duration::hours(1), 24), vec!["pickupTime"]),
            (booking_body(&car, future, 0), vec!["dropoffTime"]),
            (booking_body(&car, future, -5), vec!["dropoffTime"]),
            (booking_body(&car, future, 90 * 24 + 1), vec!["dropoffTime"]),
            (json!({"carId": car, "pickupTime": "soon", "dropoffTime": "later"}), vec!["pickupTime", "dropoffTime"]),
        ];
        for (body, fields) in cases {
            let res = app.post("/bookings", &body, Some(&customer)).await;
            assert_eq!(validation_fields(res).await, fields, "{body}");
        }
        assert_eq!(app.book(&customer, &car, future, 90 * 24).await.status(), StatusCode::CREATED, "90 days is allowed");

        let res = app.book(&customer, &uuid::Uuid::new_v4().to_string(), future, 24).await;
        assert_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        let inactive = id_of(&app.create_car(&admin, json!({"isActive": false})).await);
        let res = app.book(&customer, &inactive, future, 24).await;
        assert_error(res, StatusCode::CONFLICT, "CONFLICT").await;
    }
}

db_test! {
    async fn overlaps_are_refused_and_adjacent_slots_accepted(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let (a, b) = (app.customer_token().await, app.customer_token().await);
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let t = days_ahead(5);

        assert_eq!(app.book(&a, &car, t, 48).await.status(), StatusCode::CREATED);
        for (start, hours) in [(t, 48), (t - Duration::hours(1), 2), (t + Duration::hours(47), 5), (t + Duration::hours(1), 1), (t - Duration::hours(5), 60)] {
            let res = app.book(&b, &car, start, hours).await;
            assert_error(res, StatusCode::CONFLICT, "CONFLICT").await;
        }
        // Half-open: one may start the instant the other ends, on both sides.
        assert_eq!(app.book(&b, &car, t + Duration::hours(48), 24).await.status(), StatusCode::CREATED);
        assert_eq!(app.book(&b, &car, t - Duration::hours(24), 24).await.status(), StatusCode::CREATED);
        // Another car is free at the same time.
        let other = id_of(&app.create_car(&admin, json!({})).await);
        assert_eq!(app.book(&b, &other, t, 48).await.status(), StatusCode::CREATED);

        let text = app.metrics_of("bookings").await;
        assert!(text.contains("carrental_bookings_created_total 4"), "{text}");
        assert!(text.contains("carrental_booking_conflicts_total 5"), "{text}");
    }
}

db_test! {
    async fn cancelling_frees_the_slot_at_once(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let (a, b) = (app.customer_token().await, app.customer_token().await);
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let t = days_ahead(4);
        let first: Value = app.book(&a, &car, t, 24).await.json().await.unwrap();
        let path = format!("/bookings/{}", id_of(&first));

        assert_error(app.send(Method::PATCH, &path, &json!({"status": "cancelled"}), Some(&b)).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        let res = app.send(Method::PATCH, &path, &json!({"status": "active"}), Some(&a)).await;
        assert_eq!(validation_fields(res).await, vec!["status"]);

        let res = app.send(Method::PATCH, &path, &json!({"status": "cancelled"}), Some(&a)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let cancelled: Value = res.json().await.unwrap();
        assert_eq!(cancelled["status"], "cancelled");
        assert!(cancelled["cancelledAt"].is_string());
        assert_error(app.send(Method::PATCH, &path, &json!({"status": "cancelled"}), Some(&a)).await, StatusCode::CONFLICT, "CONFLICT").await;

        assert_eq!(app.book(&b, &car, t, 24).await.status(), StatusCode::CREATED);
    }
}

db_test! {
    async fn lifecycle_pickup_and_return(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let customer = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let b: Value = app.book(&customer, &car, days_ahead(1), 24).await.json().await.unwrap();
        let id = id_of(&b);

        let post = |path: String, token: String| {
            let app = &app;
            async move { app.post(&path, &json!({}), Some(&token)).await }
        };
        assert_error(post(format!("/bookings/{id}/pickup"), customer.clone()).await, StatusCode::FORBIDDEN, "FORBIDDEN").await;
        assert_error(post(format!("/bookings/{id}/return"), admin.clone()).await, StatusCode::CONFLICT, "CONFLICT").await;
        assert_error(post(format!("/bookings/{}/pickup", uuid::Uuid::new_v4()), admin.clone()).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;

        let res = post(format!("/bookings/{id}/pickup"), admin.clone()).await;
        assert_eq!(res.status(), StatusCode::OK);
        let active: Value = res.json().await.unwrap();
        assert_eq!(active["status"], "active");
        assert!(active["pickedUpAt"].is_string());
        assert_error(post(format!("/bookings/{id}/pickup"), admin.clone()).await, StatusCode::CONFLICT, "CONFLICT").await;
        let res = app.send(Method::PATCH, &format!("/bookings/{id}"), &json!({"status": "cancelled"}), Some(&customer)).await;
        assert_error(res, StatusCode::CONFLICT, "CONFLICT").await;

        let res = post(format!("/bookings/{id}/return"), admin.clone()).await;
        assert_eq!(res.status(), StatusCode::OK);
        let done: Value = res.json().await.unwrap();
        assert_eq!(done["status"], "completed");
        assert!(done["returnedAt"].is_string() && done["pickedUpAt"] == active["pickedUpAt"]);
        assert_error(post(format!("/bookings/{id}/return"), admin.clone()).await, StatusCode::CONFLICT, "CONFLICT").await;
    }
}

db_test! {
    async fn lists_show_own_bookings_newest_first_and_admins_all(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let (a, b) = (app.customer_token().await, app.customer_token().await);
        let car1 = id_of(&app.create_car(&admin, json!({})).await);
        let car2 = id_of(&app.create_car(&admin, json!({"name": "Other"})).await);
        let mut mine = Vec::new();
        for i in 0..3 {
            let res = app.book(&a, &car1, days_ahead(2 + 2 * i), 24).await;
            mine.push(id_of(&res.json().await.unwrap()));
        }
        let theirs: Value = app.book(&b, &car2, days_ahead(3), 24).await.json().await.unwrap();
        app.send(Method::PATCH, &format!("/bookings/{}", mine[0]), &json!({"status": "cancelled"}), Some(&a)).await;

        let page: Value = app.get("/bookings", Some(&a)).await.json().await.unwrap();
        assert_eq!(page["total"], 3);
        let ids: Vec<String> = page["data"].as_array().unwrap().iter().map(id_of).collect();
        assert_eq!(ids, mine.iter().rev().cloned().collect::<Vec<_>>(), "newest first");
        assert!(page["data"][0]["car"]["name"].is_string());

        let page: Value = app.get("/bookings?status=CONFIRMED&limit=1&page=2", Some(&a)).await.json().await.unwrap();
        assert_eq!((page["total"].as_i64(), page["totalPages"].as_i64()), (Some(2), Some(2)));
        assert_eq!(page["data"][0]["id"], mine[1].as_str());
        let page: Value = app.get("/bookings?status=cancelled", Some(&a)).await.json().await.unwrap();
        assert_eq!(page["total"], 1);
        assert_eq!(validation_fields(app.get("/bookings?status=lost", Some(&a)).await).await, vec!["status"]);
        assert_error(app.get("/bookings", None).await, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;

        // Another customer's booking is a 404; the admin sees it.
        let theirs_path = format!("/bookings/{}", id_of(&theirs));
        assert_error(app.get(&theirs_path, Some(&a)).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        assert_eq!(app.get(&theirs_path, Some(&admin)).await.status(), StatusCode::OK);
        assert_eq!(app.get(&theirs_path, Some(&b)).await.status(), StatusCode::OK);
        assert_error(app.get("/bookings/123", Some(&b)).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;

        assert_error(app.get("/admin/bookings", Some(&a)).await, StatusCode::FORBIDDEN, "FORBIDDEN").await;
        let all: Value = app.get("/admin/bookings", Some(&admin)).await.json().await.unwrap();
        assert_eq!(all["total"], 4);
        let by_car: Value = app.get(&format!("/admin/bookings?carId={car2}"), Some(&admin)).await.json().await.unwrap();
        assert_eq!(by_car["total"], 1);
        let user_b = theirs["userId"].as_str().unwrap();
        let by_user: Value = app.get(&format!("/admin/bookings?userId={user_b}&status=confirmed"), Some(&admin)).await.json().await.unwrap();
        assert_eq!(by_user["total"], 1);
        let res = app.get("/admin/bookings?carId=zzz&userId=1", Some(&admin)).await;
        assert_eq!(validation_fields(res).await, vec!["userId", "carId"]);
    }
}

db_test! {
    /// 40 requests for one car and one slot, released together: exactly one wins.
    async fn concurrent_requests_for_one_slot_book_it_once(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let mut tokens = Vec::new();
        for _ in 0..8 {
            tokens.push(app.customer_token().await);
        }
        let body = booking_body(&car, days_ahead(7), 72);
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(40));
        let requests = (0..40).map(|i| {
            let (client, url, token, body, barrier) =
                (app.client.clone(), app.url("/bookings"), tokens[i % 8].clone(), body.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                client.post(url).bearer_auth(token).json(&body).send().await.unwrap().status()
            })
        });
        let statuses: Vec<StatusCode> = join_all(requests).await.into_iter().map(Result::unwrap).collect();
        let created = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
        let conflicts = statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count();
        assert_eq!((created, conflicts), (1, 39), "{statuses:?}");
        assert_eq!(live_bookings(&app, &admin, &car).await.len(), 1);
    }
}

db_test! {
    /// Many overlapping windows at once: whatever is accepted never overlaps.
    async fn concurrent_overlapping_windows_never_overlap(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let base = days_ahead(10);
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(48));
        let requests = (0..48i64).map(|i| {
            // Windows of 5 to 29 hours starting every 3 hours: heavy overlap, some adjacency.
            let body = booking_body(&car, base + Duration::hours(3 * (i % 16)), 5 + (i * 7) % 25);
            let (client, url, token, barrier) = (app.client.clone(), app.url("/bookings"), token.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                client.post(url).bearer_auth(token).json(&body).send().await.unwrap().status()
            })
        });
        let statuses: Vec<StatusCode> = join_all(requests).await.into_iter().map(Result::unwrap).collect();
        assert!(statuses.iter().all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT), "{statuses:?}");
        let created = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
        assert!(created >= 1);

        let mut live: Vec<(DateTime<Utc>, DateTime<Utc>)> = live_bookings(&app, &admin, &car)
            .await
            .iter()
            .map(|b| (time(&b["pickupTime"]), time(&b["dropoffTime"])))
            .collect();
        assert_eq!(live.len(), created);
        live.sort();
        for pair in live.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "overlap: {pair:?}");
        }
    }
}

db_test! {
    async fn idempotency_keys_replay_the_first_answer(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let (a, b) = (app.customer_token().await, app.customer_token().await);
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let body = booking_body(&car, days_ahead(6), 24);
        let send = |token: &str, key: &str, body: &Value| {
            app.client.post(app.url("/bookings")).bearer_auth(token).header("Idempotency-Key", key).json(body).send()
        };

        let first = send(&a, "key-1", &body).await.unwrap();
        assert_eq!(first.status(), StatusCode::CREATED);
        let first_bytes = first.bytes().await.unwrap();
        // The same document spaced differently is the same body.
        let respaced = app.client.post(app.url("/bookings")).bearer_auth(&a).header("Idempotency-Key", "key-1")
            .header("Content-Type", "application/json").body(serde_json::to_string_pretty(&body).unwrap()).send().await.unwrap();
        assert_eq!(respaced.status(), StatusCode::CREATED);
        assert_eq!(respaced.bytes().await.unwrap(), first_bytes, "replayed byte for byte");
        assert_eq!(live_bookings(&app, &admin, &car).await.len(), 1);

        let mut other = body.clone();
        other["dropoffTime"] = json!((days_ahead(6) + Duration::hours(30)).to_rfc3339());
        assert_error(send(&a, "key-1", &other).await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_MISMATCH").await;

        // A refused request is replayed as refused, with its first body.
        let conflict = send(&b, "key-1", &body).await.unwrap();
        assert_eq!(conflict.status(), StatusCode::CONFLICT, "keys are per user");
        let conflict_bytes = conflict.bytes().await.unwrap();
        let again = send(&b, "key-1", &body).await.unwrap();
        assert_eq!(again.status(), StatusCode::CONFLICT);
        assert_eq!(again.bytes().await.unwrap(), conflict_bytes);

        assert_eq!(validation_fields(send(&a, &"k".repeat(256), &body).await.unwrap()).await, vec!["Idempotency-Key"]);
        assert_eq!(send(&a, &"k".repeat(255), &other).await.unwrap().status(), StatusCode::CONFLICT);
    }
}

db_test! {
    async fn simultaneous_identical_idempotent_requests_book_once(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let body = booking_body(&car, days_ahead(8), 24);
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(16));
        let requests = (0..16).map(|_| {
            let (client, url, token, body, barrier) = (app.client.clone(), app.url("/bookings"), token.clone(), body.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let res = client.post(url).bearer_auth(token).header("Idempotency-Key", "same").json(&body).send().await.unwrap();
                (res.status(), res.bytes().await.unwrap())
            })
        });
        let answers: Vec<_> = join_all(requests).await.into_iter().map(Result::unwrap).collect();
        assert!(answers.iter().all(|(s, _)| *s == StatusCode::CREATED), "{:?}", answers.iter().map(|a| a.0).collect::<Vec<_>>());
        assert!(answers.iter().all(|(_, b)| *b == answers[0].1), "every answer is the first one");
        assert_eq!(live_bookings(&app, &admin, &car).await.len(), 1);
    }
}
