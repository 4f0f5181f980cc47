//! Pickup and return records (API.md, Rental operations): what happened at handover, and
//! the late fee and extra km added at return.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

fn db_time(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

async fn post(app: &TestApp, path: &str, body: Option<Value>, token: &str) -> reqwest::Response {
    let req = app
        .client
        .post(format!("{}{path}", app.address))
        .bearer_auth(token);
    match body {
        Some(body) => req.json(&body),
        None => req,
    }
    .send()
    .await
    .unwrap()
}

db_test! {
    async fn a_return_adds_the_late_fee_and_the_km_beyond_the_allowance(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let customer = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({"pricePerDay": 100,
            "mileageLimitKmPerDay": 100, "extraKmPrice": 0.5})).await);
        let res = app.book(&customer, &car, days_ahead(3), 48).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let booking: Value = res.json().await.unwrap();
        let id = id_of(&booking);
        assert_eq!(booking["totalPrice"], 200.0);
        assert_eq!((booking["pickup"].clone(), booking["return"].clone()), (Value::Null, Value::Null));

        // The rental ended 26 hours ago: two started days late.
        let now = Utc::now();
        app.db.execute(&format!(
            "UPDATE bookings SET pickup_time = '{}', dropoff_time = '{}' WHERE id = '{id}'",
            db_time(now - Duration::hours(74)), db_time(now - Duration::hours(26))));

        let out = post(&app, &format!("/bookings/{id}/pickup"), Some(json!({
            "odometerKm": 1000, "fuelPercent": 80, "notes": "Scratch on the rear door"})), &admin).await;
        assert_eq!(out.status(), StatusCode::OK);
        let out: Value = out.json().await.unwrap();
        assert_eq!(out["status"], "active");
        assert_eq!((out["pickup"]["odometerKm"].as_i64(), out["pickup"]["fuelPercent"].as_i64(),
                    out["pickup"]["notes"].as_str()), (Some(1000), Some(80), Some("Scratch on the rear door")));
        assert!(out["pickup"]["at"].is_string());
        let again = post(&app, &format!("/bookings/{id}/pickup"), None, &admin).await;
        assert_error(again, StatusCode::CONFLICT, "CONFLICT").await;

        for (body, field) in [
            (json!({"odometerKm": 900}), "odometerKm"),
            (json!({"odometerKm": -1}), "odometerKm"),
            (json!({"fuelPercent": 101}), "fuelPercent"),
            (json!({"at": (now + Duration::hours(1)).to_rfc3339()}), "at"),
            (json!({"at": (now - Duration::hours(1)).to_rfc3339()}), "at"),
            (json!({"notes": "x".repeat(1001)}), "notes"),
            (json!({"damages": [{"description": " "}]}), "damages[0].description"),
            (json!({"damages": (0..21).map(|_| json!({"description": "dent"})).collect::<Vec<_>>()}), "damages"),
        ] {
            let res = post(&app, &format!("/bookings/{id}/return"), Some(body.clone()), &admin).await;
            assert_eq!(validation_fields(res).await, vec![field], "{body}");
        }
        let back = post(&app, &format!("/bookings/{id}/return"), Some(json!({
            "odometerKm": 1350, "fuelPercent": 50, "damages": [{"description": "Dent on the bonnet"}]})), &admin).await;
        assert_eq!(back.status(), StatusCode::OK);
        let back: Value = back.json().await.unwrap();
        assert_eq!(back["status"], "completed");
        assert_eq!(back["return"]["damages"], json!([{"description": "Dent on the bonnet"}]));
        let kinds: Vec<&str> = back["lines"].as_array().unwrap().iter().map(|l| l["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["rental", "late_fee", "extra_km"]);
        assert_eq!((back["lines"][1]["quantity"].as_i64(), back["lines"][1]["amount"].as_f64()), (Some(2), Some(200.0)));
        // 350 km driven, 2 × 100 included: 150 km at 0.50.
        assert_eq!((back["lines"][2]["quantity"].as_i64(), back["lines"][2]["amount"].as_f64()), (Some(150), Some(75.0)));
        assert_eq!(back["totalPrice"], 475.0);
        let read: Value = app.get(&format!("/bookings/{id}"), Some(&customer)).await.json().await.unwrap();
        assert_eq!((read["totalPrice"].clone(), read["lines"].clone()), (back["totalPrice"].clone(), back["lines"].clone()));

        let list = app.get("/notifications", Some(&customer)).await;
        let list: Value = list.json().await.unwrap();
        assert!(list["data"].as_array().unwrap().iter().any(|m| m["kind"] == "booking_completed"), "{list}");
    }
}

db_test! {
    async fn handovers_without_a_body_and_their_states(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let customer = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let booking: Value = app.book(&customer, &car, days_ahead(1), 24).await.json().await.unwrap();
        let id = id_of(&booking);
        let res = post(&app, &format!("/bookings/{id}/return"), None, &admin).await;
        assert_error(res, StatusCode::CONFLICT, "CONFLICT").await;
        let res = post(&app, &format!("/bookings/{id}/pickup"), None, &customer).await;
        assert_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
        let res = post(&app, &format!("/bookings/{id}/pickup"), None, &admin).await;
        assert_eq!(res.status(), StatusCode::OK);
        let out: Value = res.json().await.unwrap();
        assert_eq!((out["pickup"]["odometerKm"].clone(), out["pickup"]["notes"].clone()), (Value::Null, Value::Null));
        let res = post(&app, &format!("/bookings/{id}/return"), None, &admin).await;
        assert_eq!(res.status(), StatusCode::OK);
        let back: Value = res.json().await.unwrap();
        assert_eq!(back["status"], "completed");
        assert_eq!(back["lines"].as_array().unwrap().len(), 1, "on time, no mileage rule: nothing added");
        assert_eq!(back["totalPrice"], booking["totalPrice"]);
        let res = app.send(Method::PATCH, &format!("/cars/{car}"), &json!({"mileageLimitKmPerDay": 0}), Some(&admin)).await;
        assert_eq!(validation_fields(res).await, vec!["mileageLimitKmPerDay"]);
        let res = app.send(Method::PATCH, &format!("/cars/{car}"), &json!({"extraKmPrice": 0}), Some(&admin)).await;
        assert_eq!(validation_fields(res).await, vec!["extraKmPrice"]);
    }
}

/// Sets a booking's window in the database (to make it late, or due now).
fn move_booking(
    app: &TestApp,
    id: &str,
    pickup: chrono::DateTime<Utc>,
    dropoff: chrono::DateTime<Utc>,
) {
    app.db.execute(&format!(
        "UPDATE bookings SET pickup_time = '{}', dropoff_time = '{}' WHERE id = '{id}'",
        db_time(pickup),
        db_time(dropoff)
    ));
}

db_test! {
    async fn no_return_bills_an_amount_that_does_not_fit(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let customer = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({"pricePerDay": 100000,
            "mileageLimitKmPerDay": 1, "extraKmPrice": 100000})).await);
        let id = id_of(&app.book(&customer, &car, days_ahead(1), 24).await.json::<Value>().await.unwrap());
        for km in [json!(10_000_001), json!(i64::MAX), json!(-1)] {
            let res = post(&app, &format!("/bookings/{id}/pickup"), Some(json!({"odometerKm": km})), &admin).await;
            assert_eq!(validation_fields(res).await, ["odometerKm"], "{km}");
        }
        let res = post(&app, &format!("/bookings/{id}/pickup"), Some(json!({"odometerKm": 0})), &admin).await;
        assert_eq!(res.status(), StatusCode::OK);
        for km in [json!(9_223_372_036_854_775_807_i64), json!(10_000_001)] {
            let res = post(&app, &format!("/bookings/{id}/return"), Some(json!({"odometerKm": km})), &admin).await;
            assert_eq!(validation_fields(res).await, ["odometerKm"], "{km}");
        }
        // The most a return can add: 9,999,999 km at 100,000.00, written out to the cent.
        let res = post(&app, &format!("/bookings/{id}/return"), Some(json!({"odometerKm": 10_000_000})), &admin).await;
        assert_eq!(res.status(), StatusCode::OK);
        let text = res.text().await.unwrap();
        assert!(!text.contains("e+") && !text.contains("E+"), "{text}");
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["lines"][1]["kind"], "extra_km");
        assert_eq!(back["lines"][1]["quantity"], 9_999_999);
        assert!(text.contains("\"amount\":999999900000.0") || text.contains("\"amount\":999999900000"), "{text}");
        assert_eq!(back["totalPrice"].as_f64(), Some(999_999_900_000.0 + 100_000.0));
        let total: f64 = back["lines"].as_array().unwrap().iter().map(|l| l["amount"].as_f64().unwrap()).sum();
        assert_eq!(total, back["totalPrice"].as_f64().unwrap());
    }
}

db_test! {
    async fn a_pickup_is_not_too_early_nor_before_its_booking_nor_beside_another_rental(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let customer = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let later = id_of(&app.book(&customer, &car, days_ahead(3), 24).await.json::<Value>().await.unwrap());
        let res = post(&app, &format!("/bookings/{later}/pickup"), None, &admin).await;
        let body = assert_error(res, StatusCode::CONFLICT, "CONFLICT").await;
        assert!(body["error"]["message"].as_str().unwrap().contains("Too early"), "{body}");

        let soon = id_of(&app.book(&customer, &car, days_ahead(1), 24).await.json::<Value>().await.unwrap());
        let made = (Utc::now() - Duration::hours(2)).to_rfc3339();
        let res = post(&app, &format!("/bookings/{soon}/pickup"), Some(json!({"at": made})), &admin).await;
        assert_eq!(validation_fields(res).await, ["at"], "not before the booking was made");
        let res = post(&app, &format!("/bookings/{soon}/pickup"), None, &admin).await;
        assert_eq!(res.status(), StatusCode::OK);

        // The later booking is due now while the first is still out: 409 until it is back.
        let now = Utc::now();
        move_booking(&app, &later, now + Duration::hours(1), now + Duration::hours(30));
        let res = post(&app, &format!("/bookings/{later}/pickup"), None, &admin).await;
        let body = assert_error(res, StatusCode::CONFLICT, "CONFLICT").await;
        assert!(body["error"]["message"].as_str().unwrap().contains("still out"), "{body}");
        assert_eq!(post(&app, &format!("/bookings/{soon}/return"), None, &admin).await.status(), StatusCode::OK);
        assert_eq!(post(&app, &format!("/bookings/{later}/pickup"), None, &admin).await.status(), StatusCode::OK);

        let wide = spawn_app_with(backend, &[("PICKUP_EARLY_WINDOW", "4d")]).await;
        let admin = wide.admin_token().await;
        let customer = wide.customer_token().await;
        let car = id_of(&wide.create_car(&admin, json!({})).await);
        let early = id_of(&wide.book(&customer, &car, days_ahead(3), 24).await.json::<Value>().await.unwrap());
        assert_eq!(post(&wide, &format!("/bookings/{early}/pickup"), None, &admin).await.status(), StatusCode::OK);
    }
}
