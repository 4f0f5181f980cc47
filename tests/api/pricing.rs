//! Prices (API.md, Rental operations): a car's pricing rules, quotes, and bookings that
//! store the quote's lines.

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc, Weekday};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// A Monday at 10:00 UTC three weeks or more ahead.
fn monday_ahead() -> DateTime<Utc> {
    let mut day = (Utc::now() + Duration::days(21)).date_naive();
    while day.weekday() != Weekday::Mon {
        day = day.succ_opt().unwrap();
    }
    Utc.from_utc_datetime(&day.and_hms_opt(10, 0, 0).unwrap())
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn quote_path(car: &str, pickup: DateTime<Utc>, days: i64) -> String {
    format!(
        "/cars/{car}/quote?pickupTime={}&dropoffTime={}",
        time(pickup),
        time(pickup + Duration::days(days))
    )
}

async fn quote(app: &TestApp, car: &str, pickup: DateTime<Utc>, days: i64) -> Value {
    let res = app.get(&quote_path(car, pickup, days), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

const RULES: &str = r#"{"pricePerDay": 100, "pricing": {"weekendPricePerDay": 140,
    "weeklyDiscountPercent": 10, "monthlyDiscountPercent": 25}}"#;

db_test! {
    async fn pricing_rules_are_checked_and_named(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        for (pricing, field) in [
            (json!([null, null]), "pricing"),
            (json!({"weeklyDiscountPercent": "ten"}), "pricing.weeklyDiscountPercent"),
            (json!({"weekendPricePerDay": 0}), "pricing.weekendPricePerDay"),
            (json!({"weekendPricePerDay": 10.001}), "pricing.weekendPricePerDay"),
            (json!({"weeklyDiscountPercent": 91}), "pricing.weeklyDiscountPercent"),
            (json!({"monthlyDiscountPercent": -1}), "pricing.monthlyDiscountPercent"),
            (json!({"seasons": [{"from": "2026-07-01", "to": "2026-06-30", "pricePerDay": 90}]}),
             "pricing.seasons[0].to"),
            (json!({"seasons": [{"from": "July", "to": "2026-06-30", "pricePerDay": 90}]}),
             "pricing.seasons[0].from"),
            (json!({"seasons": [{"from": "2026-07-01", "to": "2026-07-31", "pricePerDay": 0}]}),
             "pricing.seasons[0].pricePerDay"),
            (json!({"seasons": [{"from": "2026-07-01", "to": "2026-07-31", "pricePerDay": 90},
                                {"from": "2026-07-31", "to": "2026-08-15", "pricePerDay": 95}]}),
             "pricing.seasons[1].from"),
            (json!({"seasons": (0..21).map(|i| json!({"from": format!("2027-01-{:02}", i + 1),
                "to": format!("2027-01-{:02}", i + 1), "pricePerDay": 90})).collect::<Vec<_>>()}),
             "pricing.seasons"),
        ] {
            let mut body = car_body();
            body["pricing"] = pricing.clone();
            let res = app.post("/cars", &body, Some(&admin)).await;
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{pricing}");
            assert_eq!(validation_fields(res).await, vec![field], "{pricing}");
        }
    }
}

db_test! {
    async fn a_car_answers_its_pricing_and_null_removes_it(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let plain = app.create_car(&admin, json!({})).await;
        assert_eq!(plain["pricing"], Value::Null);
        let whole = app.create_car(&admin, json!({"pricing": {"weeklyDiscountPercent": 10.0}})).await;
        assert_eq!(whole["pricing"]["weeklyDiscountPercent"], 10, "an integer written as 10.0");
        let car = app.create_car(&admin, json!({"pricing": {"weekendPricePerDay": 140.5,
            "seasons": [{"from": "2026-08-01", "to": "2026-08-31", "pricePerDay": 160},
                        {"from": "2026-07-01", "to": "2026-07-31", "pricePerDay": 150}]}})).await;
        assert_eq!(car["pricing"], json!({"weekendPricePerDay": 140.5, "weeklyDiscountPercent": 0,
            "monthlyDiscountPercent": 0, "seasons": [
                {"from": "2026-07-01", "to": "2026-07-31", "pricePerDay": 150.0},
                {"from": "2026-08-01", "to": "2026-08-31", "pricePerDay": 160.0}]}));
        let id = id_of(&car);
        let res = app.send(Method::PATCH, &format!("/cars/{id}"), &json!({"seats": 4}), Some(&admin)).await;
        let kept: Value = res.json().await.unwrap();
        assert_eq!(kept["pricing"], car["pricing"], "a patch without pricing keeps it");
        let res = app.send(Method::PATCH, &format!("/cars/{id}"), &json!({"pricing": null}), Some(&admin)).await;
        let cleared: Value = res.json().await.unwrap();
        assert_eq!(cleared["pricing"], Value::Null);
    }
}

db_test! {
    async fn a_quote_prices_day_by_day_and_the_booking_keeps_it(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let car = id_of(&app.create_car(&admin, serde_json::from_str(RULES).unwrap()).await);
        let monday = monday_ahead();

        // Monday to Monday: five weekdays at 100, a weekend at 140, a 10 % weekly discount.
        let q = quote(&app, &car, monday, 7).await;
        assert_eq!(q["days"], 7);
        assert_eq!(q["available"], true);
        assert_eq!(q["currency"], "USD");
        assert_eq!(q["lines"], json!([
            {"kind": "rental", "description": "Rental, 7 days", "quantity": 7, "amount": 780.0},
            {"kind": "discount", "description": "Weekly discount, 10 %", "amount": -78.0}]));
        assert_eq!(q["totalPrice"], 702.0);

        // Six days: no discount; the weekend days are Saturday and Sunday only.
        let q6 = quote(&app, &car, monday, 6).await;
        assert_eq!(q6["totalPrice"], 100.0 * 5.0 + 140.0);
        assert_eq!(q6["lines"].as_array().unwrap().len(), 1);
        // 28 days: the monthly discount instead (4 weeks: 20 × 100 + 8 × 140 = 3120).
        let q28 = quote(&app, &car, monday, 28).await;
        assert_eq!(q28["lines"][1]["amount"], -780.0);
        assert_eq!(q28["totalPrice"], 2340.0);

        let customer = app.customer_token().await;
        let res = app.post("/bookings", &json!({"carId": car, "pickupTime": time(monday),
            "dropoffTime": time(monday + Duration::days(7))}), Some(&customer)).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let booking: Value = res.json().await.unwrap();
        assert_eq!(booking["lines"], q["lines"]);
        assert_eq!(booking["totalPrice"], q["totalPrice"]);

        // Booked: the same window is no longer available, and says so.
        assert_eq!(quote(&app, &car, monday, 7).await["available"], false);

        // A price change reaches new quotes and bookings, never the booking already made.
        let res = app.send(Method::PATCH, &format!("/cars/{car}"),
            &json!({"pricePerDay": 200, "pricing": null}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let later = monday + Duration::days(14);
        assert_eq!(quote(&app, &car, later, 2).await["totalPrice"], 400.0);
        let res = app.post("/bookings", &json!({"carId": car, "pickupTime": time(later),
            "dropoffTime": time(later + Duration::days(2))}), Some(&customer)).await;
        let second: Value = res.json().await.unwrap();
        assert_eq!(second["totalPrice"], 400.0);
        let id = id_of(&booking);
        let again: Value = app.get(&format!("/bookings/{id}"), Some(&customer)).await.json().await.unwrap();
        assert_eq!(again["lines"], q["lines"]);
        assert_eq!(again["totalPrice"], 702.0);
    }
}

db_test! {
    async fn quote_input_is_checked_like_a_booking(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let monday = monday_ahead();
        let past = Utc::now() - Duration::days(1);
        for (path, field) in [
            (format!("/cars/{car}/quote?dropoffTime={}", time(monday)), "pickupTime"),
            (format!("/cars/{car}/quote?pickupTime={}", time(monday)), "dropoffTime"),
            (quote_path(&car, past, 2), "pickupTime"),
            (format!("/cars/{car}/quote?pickupTime={}&dropoffTime={}", time(monday), time(monday)), "dropoffTime"),
            (quote_path(&car, monday, 91), "dropoffTime"),
            (format!("{}&extras=gps:1", quote_path(&car, monday, 2)), "extras"),
        ] {
            let res = app.get(&path, None).await;
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{path}");
            assert_eq!(validation_fields(res).await, vec![field], "{path}");
        }
        let unknown = uuid::Uuid::new_v4();
        let res = app.get(&quote_path(&unknown.to_string(), monday, 2), None).await;
        assert_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        // A partial day is a started day.
        let res = app.get(&format!("/cars/{car}/quote?pickupTime={}&dropoffTime={}",
            time(monday), time(monday + Duration::hours(25))), None).await;
        let q: Value = res.json().await.unwrap();
        assert_eq!((q["days"].as_i64(), q["totalPrice"].as_f64()), (Some(2), Some(241.0)));
    }
}

db_test! {
    async fn the_extras_catalogue(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let customer = app.customer_token().await;
        let seat = json!({"code": "child_seat", "name": "Child seat", "pricePerDay": 8.5, "maxQuantity": 2});
        let res = app.post("/extras", &seat, Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let made: Value = res.json().await.unwrap();
        assert_eq!((made["code"].as_str(), made["pricePerDay"].as_f64(), made["pricePerRental"].is_null(),
                    made["currency"].as_str(), made["maxQuantity"].as_i64(), made["active"].as_bool()),
                   (Some("child_seat"), Some(8.5), true, Some("USD"), Some(2), Some(true)));
        assert_error(app.post("/extras", &seat, Some(&admin)).await, StatusCode::CONFLICT, "CONFLICT").await;
        assert_error(app.post("/extras", &seat, Some(&customer)).await, StatusCode::FORBIDDEN, "FORBIDDEN").await;
        for (body, field) in [
            (json!({"code": "A", "name": "x", "pricePerDay": 1}), "code"),
            (json!({"code": "Child Seat", "name": "x", "pricePerDay": 1}), "code"),
            (json!({"code": "gps", "name": "GPS", "pricePerDay": 1, "pricePerRental": 5}), "pricePerRental"),
            (json!({"code": "gps", "name": "GPS"}), "pricePerDay"),
            (json!({"code": "gps", "name": "GPS", "pricePerRental": 0}), "pricePerRental"),
            (json!({"code": "gps", "name": "GPS", "pricePerRental": 5, "maxQuantity": 11}), "maxQuantity"),
            (json!({"code": "gps", "pricePerRental": 5}), "name"),
            (json!({"code": "gps", "name": "GPS", "pricePerRental": 5, "currency": "EURO"}), "currency"),
        ] {
            let res = app.post("/extras", &body, Some(&admin)).await;
            assert_eq!(validation_fields(res).await, vec![field], "{body}");
        }
        let gps = json!({"code": "gps", "name": "GPS", "pricePerRental": 15});
        assert_eq!(app.post("/extras", &gps, Some(&admin)).await.status(), StatusCode::CREATED);
        let listed: Value = app.get("/extras", None).await.json().await.unwrap();
        let codes: Vec<&str> = listed.as_array().unwrap().iter().map(|e| e["code"].as_str().unwrap()).collect();
        assert_eq!(codes, ["child_seat", "gps"]);

        // Switching the kind of price needs the other sent as null.
        let res = app.send(Method::PATCH, "/extras/gps", &json!({"pricePerDay": 2}), Some(&admin)).await;
        assert_eq!(validation_fields(res).await, vec!["pricePerRental"]);
        let res = app.send(Method::PATCH, "/extras/gps", &json!({"pricePerDay": 2, "pricePerRental": null}), Some(&admin)).await;
        let changed: Value = res.json().await.unwrap();
        assert_eq!((changed["pricePerDay"].as_f64(), changed["pricePerRental"].is_null()), (Some(2.0), true));
        let res = app.send(Method::PATCH, "/extras/gps", &json!({"active": false}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let listed: Value = app.get("/extras", None).await.json().await.unwrap();
        assert_eq!(listed.as_array().unwrap().len(), 1, "withdrawn extras are not listed");
        let res = app.send(Method::PATCH, "/extras/nothing", &json!({"active": false}), Some(&admin)).await;
        assert_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    }
}

db_test! {
    async fn extras_are_added_to_quotes_and_bookings_after_the_discount(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let customer = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, serde_json::from_str(RULES).unwrap()).await);
        for extra in [
            json!({"code": "child_seat", "name": "Child seat", "pricePerDay": 8.5, "maxQuantity": 2}),
            json!({"code": "gps", "name": "GPS", "pricePerRental": 15}),
            json!({"code": "old_radio", "name": "Radio", "pricePerRental": 1, "active": false}),
            json!({"code": "toll_tag", "name": "Toll tag", "pricePerRental": 5, "currency": "EUR"}),
        ] {
            assert_eq!(app.post("/extras", &extra, Some(&admin)).await.status(), StatusCode::CREATED);
        }
        let monday = monday_ahead();
        let path = format!("{}&extras=child_seat:2,gps:1", quote_path(&car, monday, 7));
        let q: Value = app.get(&path, None).await.json().await.unwrap();
        assert_eq!(q["lines"], json!([
            {"kind": "rental", "description": "Rental, 7 days", "quantity": 7, "amount": 780.0},
            {"kind": "discount", "description": "Weekly discount, 10 %", "amount": -78.0},
            {"kind": "extra", "code": "child_seat", "description": "Child seat", "quantity": 2, "amount": 119.0},
            {"kind": "extra", "code": "gps", "description": "GPS", "quantity": 1, "amount": 15.0}]));
        assert_eq!(q["totalPrice"], 836.0);

        let body = json!({"carId": car, "pickupTime": time(monday), "dropoffTime": time(monday + Duration::days(7)),
                          "extras": [{"code": "child_seat", "quantity": 2}, {"code": "gps", "quantity": 1}]});
        let res = app.post("/bookings", &body, Some(&customer)).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let booking: Value = res.json().await.unwrap();
        assert_eq!(booking["lines"], q["lines"]);
        assert_eq!(booking["totalPrice"], 836.0);

        let later = monday + Duration::days(21);
        for (extras, field) in [
            (json!([{"code": "sunroof", "quantity": 1}]), "extras[0].code"),
            (json!([{"code": "gps", "quantity": 1}, {"code": "gps", "quantity": 1}]), "extras[1].code"),
            (json!([{"code": "child_seat", "quantity": 3}]), "extras[0].quantity"),
            (json!([{"code": "child_seat", "quantity": 0}]), "extras[0].quantity"),
            (json!([{"code": "old_radio", "quantity": 1}]), "extras[0].code"),
            (json!([{"code": "toll_tag", "quantity": 1}]), "extras[0].code"),
        ] {
            let body = json!({"carId": car, "pickupTime": time(later), "dropoffTime": time(later + Duration::days(1)),
                              "extras": extras});
            let res = app.post("/bookings", &body, Some(&customer)).await;
            assert_eq!(validation_fields(res).await, vec![field], "{extras}");
            let param = extras.as_array().unwrap().iter()
                .map(|e| format!("{}:{}", e["code"].as_str().unwrap(), e["quantity"]))
                .collect::<Vec<_>>().join(",");
            let res = app.get(&format!("{}&extras={param}", quote_path(&car, later, 1)), None).await;
            assert_eq!(validation_fields(res).await, vec!["extras"], "{param}");
        }
        let res = app.get(&format!("{}&extras=gps", quote_path(&car, later, 1)), None).await;
        assert_eq!(validation_fields(res).await, vec!["extras"]);
    }
}
