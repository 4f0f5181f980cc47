use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

db_test! {
    async fn admins_create_cars_and_anyone_reads_them(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let customer = app.customer_token().await;

        assert_error(app.post("/cars", &car_body(), None).await, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
        assert_error(app.post("/cars", &car_body(), Some(&customer)).await, StatusCode::FORBIDDEN, "FORBIDDEN").await;

        let mut body = car_body();
        merge(&mut body, json!({"fuelType": "ELECTRIC", "transmission": "Automatic", "pricePerDay": 19.99}));
        body.as_object_mut().unwrap().remove("features");
        let res = app.post("/cars", &body, Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let car: Value = res.json().await.unwrap();
        assert_eq!(car["fuelType"], "electric");
        assert_eq!(car["transmission"], "automatic");
        assert_eq!(car["pricePerDay"], json!(19.99));
        assert_eq!(car["currency"], "USD");
        assert_eq!(car["features"], json!([]));
        assert_eq!(car["isActive"], true);
        assert_eq!(car["location"]["postalCode"], "94103");
        assert_eq!(car["location"]["latitude"], json!(37.7749));
        assert!(car["createdAt"].is_string() && car["updatedAt"].is_string());

        let res = app.get(&format!("/cars/{}", id_of(&car)), None).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.json::<Value>().await.unwrap(), car);

        assert_error(app.get("/cars/not-a-uuid", None).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        let unknown = format!("/cars/{}", uuid::Uuid::new_v4());
        assert_error(app.get(&unknown, None).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    }
}

db_test! {
    async fn car_validation_names_each_field(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let next_year = chrono::Datelike::year(&chrono::Utc::now()) + 1;
        let cases: Vec<(Value, &str)> = vec![
            (json!({"name": ""}), "name"),
            (json!({"name": "n".repeat(256)}), "name"),
            (json!({"brand": "b".repeat(101)}), "brand"),
            (json!({"model": " "}), "model"),
            (json!({"year": 1899}), "year"),
            (json!({"year": next_year + 1}), "year"),
            (json!({"year": "2020"}), "year"),
            (json!({"fuelType": "steam"}), "fuelType"),
            (json!({"transmission": "cvt"}), "transmission"),
            (json!({"seats": 0}), "seats"),
            (json!({"seats": 21}), "seats"),
            (json!({"pricePerDay": 0}), "pricePerDay"),
            (json!({"pricePerDay": 100000.01}), "pricePerDay"),
            (json!({"pricePerDay": 10.999}), "pricePerDay"),
            (json!({"currency": "XXY"}), "currency"),
            (json!({"images": []}), "images"),
            (json!({"images": vec!["https://x.io/a.jpg"; 21]}), "images"),
            (json!({"images": ["ftp://x.io/a.jpg"]}), "images"),
            (json!({"images": ["not a url"]}), "images"),
            (json!({"location": {"latitude": 90.5}}), "location.latitude"),
            (json!({"location": {"longitude": -180.5}}), "location.longitude"),
            (json!({"location": {"city": ""}}), "location.city"),
            (json!({"location": {"latitude": "north"}}), "location.latitude"),
        ];
        for (changes, field) in cases {
            let mut body = car_body();
            merge(&mut body, changes.clone());
            let res = app.post("/cars", &body, Some(&admin)).await;
            assert_eq!(validation_fields(res).await, vec![field], "{changes}");
        }
        let mut body = car_body();
        body["location"].as_object_mut().unwrap().remove("address");
        body.as_object_mut().unwrap().remove("name");
        let res = app.post("/cars", &body, Some(&admin)).await;
        assert_eq!(validation_fields(res).await, vec!["name", "location.address"]);
        let res = app.post("/cars", &json!({}), Some(&admin)).await;
        assert!(validation_fields(res).await.contains(&"location".to_owned()));
        // Largest allowed values pass.
        let ok = json!({"year": next_year, "seats": 20, "pricePerDay": 100000, "currency": "eur",
                        "images": vec!["http://x.io/a.jpg"; 20]});
        let car = app.create_car(&admin, ok).await;
        assert_eq!(car["currency"], "EUR");
        assert_eq!(car["pricePerDay"], json!(100000.0));
    }
}

db_test! {
    async fn listing_filters_and_paginates(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        app.create_car(&admin, json!({"brand": "Tesla", "seats": 5, "pricePerDay": 100})).await;
        app.create_car(&admin, json!({"brand": "BMW", "fuelType": "diesel", "transmission": "manual", "seats": 4, "pricePerDay": 80.5, "location": {"city": "Oakland"}})).await;
        app.create_car(&admin, json!({"brand": "bmw", "fuelType": "petrol", "seats": 7, "pricePerDay": 80.49})).await;
        let hidden = app.create_car(&admin, json!({"brand": "BMW", "isActive": false})).await;

        let total = |q: &'static str| {
            let app = &app;
            async move {
                let res = app.get(&format!("/cars?{q}"), None).await;
                assert_eq!(res.status(), StatusCode::OK, "{q}");
                res.json::<Value>().await.unwrap()["total"].as_i64().unwrap()
            }
        };
        assert_eq!(total("").await, 3);
        assert_eq!(total("brand=bMw").await, 2);
        assert_eq!(total("city=san%20FRANCISCO").await, 2);
        assert_eq!(total("city=San%20Fran").await, 0);
        assert_eq!(total("fuelType=DIESEL").await, 1);
        assert_eq!(total("transmission=manual").await, 1);
        assert_eq!(total("minSeats=5").await, 2);
        assert_eq!(total("maxPrice=80.5").await, 2);
        assert_eq!(total("maxPrice=80.49").await, 1);
        assert_eq!(total("brand=bmw&minSeats=5").await, 1);
        assert_eq!(total("includeInactive=true").await, 3, "ignored for anonymous callers");

        let customer = app.customer_token().await;
        let res = app.get("/cars?includeInactive=true", Some(&customer)).await;
        assert_eq!(res.json::<Value>().await.unwrap()["total"], 3, "ignored for customers");
        let res = app.get("/cars?includeInactive=true", Some(&admin)).await;
        let page: Value = res.json().await.unwrap();
        assert_eq!(page["total"], 4);
        assert!(page["data"].as_array().unwrap().iter().any(|c| c["id"] == hidden["id"]));

        let res = app.get("/cars?limit=2&page=2", None).await;
        let page: Value = res.json().await.unwrap();
        assert_eq!((page["page"].as_i64(), page["limit"].as_i64(), page["total"].as_i64(), page["totalPages"].as_i64()), (Some(2), Some(2), Some(3), Some(2)));
        assert_eq!(page["data"].as_array().unwrap().len(), 1);
        let page: Value = app.get("/cars?page=9", None).await.json().await.unwrap();
        assert_eq!(page["data"], json!([]));
        assert_eq!(page["total"], 3);
        let page: Value = app.get("/cars?brand=none", None).await.json().await.unwrap();
        assert_eq!((page["total"].as_i64(), page["totalPages"].as_i64()), (Some(0), Some(0)));

        for (q, field) in [("page=0", "page"), ("limit=0", "limit"), ("limit=101", "limit"), ("page=x", "page"),
                           ("fuelType=steam", "fuelType"), ("minSeats=many", "minSeats"), ("maxPrice=1.001", "maxPrice"),
                           ("transmission=cvt", "transmission")] {
            let res = app.get(&format!("/cars?{q}"), None).await;
            assert_eq!(validation_fields(res).await, vec![field], "{q}");
        }
    }
}

db_test! {
    async fn put_and_patch_change_only_the_fields_sent(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let car = app.create_car(&admin, json!({})).await;
        let path = format!("/cars/{}", id_of(&car));

        let res = app.send(Method::PATCH, &path, &json!({"pricePerDay": 99.9, "location": {"city": "Oakland"}}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let changed: Value = res.json().await.unwrap();
        assert_eq!(changed["pricePerDay"], json!(99.9));
        assert_eq!(changed["location"]["city"], "Oakland");
        assert_eq!(changed["location"]["address"], car["location"]["address"]);
        assert_eq!(changed["name"], car["name"]);
        assert_eq!(changed["createdAt"], car["createdAt"]);

        let res = app.send(Method::PUT, &path, &json!({"isActive": false, "fuelType": "Hybrid", "location": {"state": null}}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let changed: Value = res.json().await.unwrap();
        assert_eq!(changed["isActive"], false);
        assert_eq!(changed["fuelType"], "hybrid");
        assert_eq!(changed["location"]["state"], Value::Null);
        assert_eq!(changed["pricePerDay"], json!(99.9));

        let fetched: Value = app.get(&path, None).await.json().await.unwrap();
        assert_eq!(fetched, changed, "an inactive car stays visible by id");

        let res = app.send(Method::PATCH, &path, &json!({"seats": 0}), Some(&admin)).await;
        assert_eq!(validation_fields(res).await, vec!["seats"]);
        let customer = app.customer_token().await;
        let res = app.send(Method::PATCH, &path, &json!({"seats": 4}), Some(&customer)).await;
        assert_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
        let res = app.send(Method::PATCH, &format!("/cars/{}", uuid::Uuid::new_v4()), &json!({"seats": 4}), Some(&admin)).await;
        assert_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    }
}

db_test! {
    async fn soft_delete_hides_cars_but_keeps_their_bookings(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let customer = app.customer_token().await;
        let car = app.create_car(&admin, json!({})).await;
        let path = format!("/cars/{}", id_of(&car));

        let res = app.book(&customer, &id_of(&car), days_ahead(3), 24).await;
        let booking: Value = res.json().await.unwrap();
        let res = app.send(Method::DELETE, &path, &json!({}), Some(&admin)).await;
        assert_error(res, StatusCode::CONFLICT, "CONFLICT").await;

        let res = app.send(Method::PATCH, &format!("/bookings/{}", id_of(&booking)), &json!({"status": "cancelled"}), Some(&customer)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let res = app.send(Method::DELETE, &path, &json!({}), Some(&customer)).await;
        assert_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
        let res = app.send(Method::DELETE, &path, &json!({}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);

        assert_error(app.get(&path, None).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        let list: Value = app.get("/cars?includeInactive=true", Some(&admin)).await.json().await.unwrap();
        assert_eq!(list["total"], 0);
        let res = app.send(Method::DELETE, &path, &json!({}), Some(&admin)).await;
        assert_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;

        let res = app.get(&format!("/bookings/{}", id_of(&booking)), Some(&customer)).await;
        assert_eq!(res.status(), StatusCode::OK, "bookings of a deleted car stay readable");
        let kept: Value = res.json().await.unwrap();
        assert_eq!(kept["car"]["name"], car["name"]);

        let res = app.book(&customer, &id_of(&car), days_ahead(10), 24).await;
        assert_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    }
}

db_test! {
    async fn availability_lists_busy_intervals(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let customer = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let base = days_ahead(2);
        let late: Value = app.book(&customer, &car, base + chrono::Duration::days(5), 48).await.json().await.unwrap();
        let early: Value = app.book(&customer, &car, base, 30).await.json().await.unwrap();
        let cancelled: Value = app.book(&customer, &car, base + chrono::Duration::days(10), 24).await.json().await.unwrap();
        app.send(Method::PATCH, &format!("/bookings/{}", id_of(&cancelled)), &json!({"status": "cancelled"}), Some(&customer)).await;

        let res = app.get(&format!("/cars/{car}/availability"), None).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["carId"], car.as_str());
        let busy = body["busy"].as_array().unwrap();
        assert_eq!(busy.len(), 2);
        assert_eq!(busy[0]["start"], early["pickupTime"]);
        assert_eq!(busy[0]["end"], early["dropoffTime"]);
        assert_eq!(busy[1]["start"], late["pickupTime"]);
        let from = chrono::DateTime::parse_from_rfc3339(body["from"].as_str().unwrap()).unwrap();
        let to = chrono::DateTime::parse_from_rfc3339(body["to"].as_str().unwrap()).unwrap();
        assert_eq!((to - from).num_days(), 30);

        // A window that starts inside the first booking still shows it whole (unclipped).
        let from = (base + chrono::Duration::hours(5)).to_rfc3339().replace('+', "%2B");
        let to = (base + chrono::Duration::days(1)).to_rfc3339().replace('+', "%2B");
        let body: Value = app.get(&format!("/cars/{car}/availability?from={from}&to={to}"), None).await.json().await.unwrap();
        assert_eq!(body["busy"].as_array().unwrap().len(), 1);
        assert_eq!(body["busy"][0]["start"], early["pickupTime"]);

        let res = app.get(&format!("/cars/{car}/availability?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"), None).await;
        assert_eq!(validation_fields(res).await, vec!["to"]);
        let res = app.get(&format!("/cars/{car}/availability?from=2026-01-01T00:00:00Z&to=2027-01-03T00:00:00Z"), None).await;
        assert_eq!(validation_fields(res).await, vec!["to"]);
        let res = app.get(&format!("/cars/{car}/availability?from=yesterday"), None).await;
        assert_eq!(validation_fields(res).await, vec!["from"]);
        let res = app.get(&format!("/cars/{}/availability", uuid::Uuid::new_v4()), None).await;
        assert_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    }
}
