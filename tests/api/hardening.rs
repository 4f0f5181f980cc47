//! Abuse resistance: rate limits, the password-hashing gate, bad bytes, auth edges, the
//! upcoming-bookings cap, safe defaults.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no {name} header in {:?}", res.headers()))
}

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A key prefix of its own, so that tests running at once on one Redis do not share counts.
fn redis_prefix() -> String {
    format!("carrental-test:{}:", uuid::Uuid::new_v4().simple())
}

db_test! {
    async fn the_general_limit_counts_per_client_and_spares_operations(backend) {
        let app = spawn_app_with(backend, &[("RATE_LIMIT_MAX", "5"), ("RATE_LIMIT_WINDOW", "1m")]).await;
        for i in 0..5 {
            let res = app.get("/cars", None).await;
            assert_eq!(res.status(), StatusCode::OK, "request {i}");
            assert_eq!(header(&res, "ratelimit-limit"), "5");
            assert_eq!(header(&res, "ratelimit-remaining"), (4 - i).to_string());
            assert_eq!(header(&res, "ratelimit-policy"), "\"general\";q=5;w=60");
            assert_eq!(header(&res, "ratelimit"), format!("\"general\";r={};t={}", 4 - i, header(&res, "ratelimit-reset")));
            let reset: u64 = header(&res, "ratelimit-reset").parse().unwrap();
            assert!((1..=60).contains(&reset), "{reset}");
        }
        let res = app.get("/cars", None).await;
        let retry: u64 = header(&res, "retry-after").parse().unwrap();
        assert!((1..=60).contains(&retry));
        assert_eq!(header(&res, "ratelimit-remaining"), "0");
        assert_error(res, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
        // Any route counts, the operations routes do not.
        assert_error(app.get("/search?lat=1&lng=1", None).await, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
        for path in ["/health", "/health/ready", "/metrics"] {
            let res = app.get(path, None).await;
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            assert!(res.headers().get("ratelimit").is_none(), "{path}");
        }
    }
}

db_test! {
    async fn signup_and_login_have_their_own_limit_per_client_and_per_email(backend) {
        let app = spawn_app_with(backend, &[("AUTH_RATE_LIMIT_MAX", "3"), ("TRUSTED_PROXIES", "127.0.0.1, ::1")]).await;
        let login = |email: &str, from: &str| {
            app.client.post(app.url("/auth/login")).header("X-Forwarded-For", from)
                .json(&json!({"email": email, "password": "Wrong1234"})).send()
        };
        // Per client: three attempts, whatever the emails.
        for i in 0..3 {
            let res = login(&format!("u{i}@example.com"), "198.51.100.1").await.unwrap();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
            assert!(header(&res, "ratelimit-policy").contains("\"auth\";q=3;w=60"));
        }
        let res = login("u9@example.com", "198.51.100.1").await.unwrap();
        assert!(header(&res, "retry-after").parse::<u64>().unwrap() >= 1);
        assert_error(res, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
        // Per email: the same address from three other clients, then a fourth is refused.
        for i in 2..5 {
            let res = login(" Target@Example.com", &format!("198.51.100.{i}")).await.unwrap();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "client {i}");
        }
        let res = login("target@example.com", "198.51.100.9").await.unwrap();
        assert_error(res, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
        // Signup shares the limit of its email.
        let res = app.client.post(app.url("/auth/signup")).header("X-Forwarded-For", "198.51.100.20")
            .json(&json!({"email": "target@example.com", "password": PASSWORD})).send().await.unwrap();
        assert_error(res, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
        // Other routes are not under the auth limit.
        let res = app.client.get(app.url("/cars")).header("X-Forwarded-For", "198.51.100.1").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
}

db_test! {
    async fn forwarded_addresses_are_believed_only_from_trusted_proxies(backend) {
        let app = spawn_app_with(backend, &[("RATE_LIMIT_MAX", "2")]).await;
        // Not trusted: a client cannot buy itself new buckets by writing the header.
        for i in 0..2 {
            let res = app.client.get(app.url("/cars")).header("X-Forwarded-For", format!("203.0.113.{i}")).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
        }
        let res = app.client.get(app.url("/cars")).header("X-Forwarded-For", "203.0.113.99").send().await.unwrap();
        assert_error(res, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;

        let app = spawn_app_with(backend, &[("RATE_LIMIT_MAX", "2"), ("TRUSTED_PROXIES", "127.0.0.0/8,::1")]).await;
        for i in 0..6 {
            let res = app.client.get(app.url("/cars")).header("X-Forwarded-For", format!("203.0.113.{i}")).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "client {i} has a bucket of its own");
        }
    }
}

db_test! {
    async fn redis_counts_for_every_replica(backend) {
        let prefix = redis_prefix();
        let settings = [("RATE_LIMIT_MAX", "4"), ("RATE_LIMIT_REDIS_URL", &redis_url()), ("APP__RATE_LIMIT__REDIS_PREFIX", &prefix)];
        let first = spawn_app_with(backend, &settings).await;
        let second = spawn_app_with(backend, &settings).await;
        // The store connects in the background: wait until it counts.
        let mut counted = false;
        for _ in 0..50 {
            if first.get("/cars", None).await.headers().contains_key("ratelimit") {
                counted = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(counted, "Redis at {} counts", redis_url());
        for _ in 0..50 {
            if second.get("/cars", None).await.headers().contains_key("ratelimit") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Two requests so far, one on each: two more on either, then both refuse.
        assert_eq!(first.get("/cars", None).await.status(), StatusCode::OK);
        assert_eq!(second.get("/cars", None).await.status(), StatusCode::OK);
        assert_error(first.get("/cars", None).await, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
        assert_error(second.get("/cars", None).await, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    }
}

db_test! {
    async fn a_redis_that_is_away_fails_open(backend) {
        let app = spawn_app_with(backend, &[("RATE_LIMIT_MAX", "1"), ("RATE_LIMIT_REDIS_URL", "redis://127.0.0.1:1"), ("APP__RATE_LIMIT__REDIS_PREFIX", &redis_prefix())]).await;
        for _ in 0..4 {
            let res = app.get("/cars", None).await;
            assert_eq!(res.status(), StatusCode::OK, "the API stays up");
            assert!(res.headers().get("ratelimit").is_none(), "nothing was counted");
        }
        let metrics = app.metrics_of("gateway").await;
        let line = metrics.lines().find(|l| l.starts_with("carrental_rate_limit_store_errors_total")).expect("metric");
        assert!(!line.ends_with(" 0"), "{line}");
    }
}

db_test! {
    async fn password_hashing_takes_turns_and_refuses_past_its_wait(backend) {
        let app = spawn_app_with(backend, &[("BCRYPT_ROUNDS", "12"), ("BCRYPT_CONCURRENCY", "1"), ("APP__AUTH__BCRYPT_WAIT", "50ms")]).await;
        let emails: Vec<String> = (0..6).map(|i| format!("nobody{i}@example.com")).collect();
        let logins = emails.iter().map(|e| app.login(e, "Wrong1234"));
        let answers = join_all(logins).await;
        let busy: Vec<_> = answers.iter().filter(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE).collect();
        let served = answers.iter().filter(|r| r.status() == StatusCode::UNAUTHORIZED).count();
        assert!(served >= 1 && !busy.is_empty(), "{:?}", answers.iter().map(|r| r.status()).collect::<Vec<_>>());
        assert_eq!(header(busy[0], "retry-after"), "1");
        let res = answers.into_iter().find(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE).unwrap();
        assert_error(res, StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE").await;
        let metrics = app.metrics_of("auth").await;
        assert!(!metrics.contains("carrental_password_hashing_busy_total 0"), "{metrics}");
    }
}

db_test! {
    async fn control_characters_are_a_400_naming_the_field(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        assert_eq!(validation_fields(app.get("/cars?city=%00", None).await).await, ["city"]);
        assert_eq!(validation_fields(app.get("/search?lat=1&lng=1&query=te%0Asla", None).await).await, ["query"]);
        assert_eq!(validation_fields(app.get("/cars?brand=%1B%5B2J", None).await).await, ["brand"]);
        let res = app.post("/auth/login", &json!({"email": "a\u{0}@example.com", "password": PASSWORD}), None).await;
        assert_eq!(validation_fields(res).await, ["email"]);
        let res = app.post("/auth/signup", &json!({"email": "nul@example.com", "password": PASSWORD, "name": "A\u{0}da"}), None).await;
        assert_eq!(validation_fields(res).await, ["name"]);
        let res = app.post("/notifications/subscribe", &json!({"token": "dev\u{0}ice", "platform": "android"}), Some(&token)).await;
        assert_eq!(validation_fields(res).await, ["token"]);
        let mut car = car_body();
        merge(&mut car, json!({"name": "Tesla\tModel 3", "features": ["ok", "GPS\u{7f}"], "location": {"city": "San\nFrancisco"}}));
        let mut fields = validation_fields(app.post("/cars", &car, Some(&admin)).await).await;
        fields.sort();
        assert_eq!(fields, ["features[1]", "location.city", "name"]);
        // Nothing was written with them.
        let list: Value = app.get("/cars", None).await.json().await.unwrap();
        assert_eq!(list["total"], 0);
    }
}

db_test! {
    async fn a_password_past_72_bytes_never_matches(backend) {
        let app = spawn_app(backend).await;
        let password = format!("Secret1{}", "x".repeat(65));
        assert_eq!(password.len(), 72);
        let res = app.post("/auth/signup", &json!({"email": "long@example.com", "password": password}), None).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(app.login("long@example.com", &password).await.status(), StatusCode::OK);
        let longer = format!("{password}and-more");
        assert_error(app.login("long@example.com", &longer).await, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
    }
}

db_test! {
    async fn a_token_whose_user_is_gone_is_refused(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let body = app.signup("gone@example.com").await;
        let token = token_of(&body);
        assert_eq!(app.get("/auth/me", Some(&token)).await.status(), StatusCode::OK);
        app.db.execute(&format!("DELETE FROM refresh_tokens WHERE user_id = '{}'", body["user"]["id"].as_str().unwrap()));
        app.db.execute(&format!("DELETE FROM users WHERE id = '{}'", body["user"]["id"].as_str().unwrap()));
        assert_error(app.get("/auth/me", Some(&token)).await, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
        assert_error(app.book(&token, &car, days_ahead(2), 24).await, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
        assert_error(app.get("/bookings", Some(&token)).await, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
        // On a public route it is just an anonymous caller.
        assert_eq!(app.get("/cars", Some(&token)).await.status(), StatusCode::OK);
    }
}

db_test! {
    async fn a_customer_holds_at_most_so_many_upcoming_bookings(backend) {
        let app = spawn_app_with(backend, &[("MAX_UPCOMING_BOOKINGS_PER_USER", "3")]).await;
        let admin = app.admin_token().await;
        let customer = app.customer_token().await;
        let mut cars = Vec::new();
        for _ in 0..8 {
            cars.push(id_of(&app.create_car(&admin, json!({})).await));
        }
        for (i, car) in cars.iter().take(2).enumerate() {
            assert_eq!(app.book(&customer, car, days_ahead(2 + i as i64), 24).await.status(), StatusCode::CREATED);
        }
        // One place left: of four simultaneous bookings of other cars, one wins.
        let racing = cars[2..6].iter().map(|car| app.book(&customer, car, days_ahead(10), 24));
        let statuses: Vec<StatusCode> = join_all(racing).await.iter().map(|r| r.status()).collect();
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 1, "{statuses:?}");
        assert!(statuses.iter().all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT), "{statuses:?}");
        let body = assert_error(app.book(&customer, &cars[6], days_ahead(20), 24).await, StatusCode::CONFLICT, "CONFLICT").await;
        assert!(body["error"]["message"].as_str().unwrap().contains('3'), "{body}");
        // A cancelled one frees its place; admins are not capped.
        let mine: Value = app.get("/bookings", Some(&customer)).await.json().await.unwrap();
        let first = mine["data"][0]["id"].as_str().unwrap().to_owned();
        let res = app.send(Method::PATCH, &format!("/bookings/{first}"), &json!({"status": "cancelled"}), Some(&customer)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(app.book(&customer, &cars[6], days_ahead(20), 24).await.status(), StatusCode::CREATED);
        for (i, car) in cars.iter().enumerate() {
            assert_eq!(app.book(&admin, car, days_ahead(40 + i as i64), 24).await.status(), StatusCode::CREATED);
        }
    }
}

db_test! {
    async fn a_refused_preflight_is_a_403_with_the_error_body(backend) {
        let app = spawn_app_with(backend, &[("FRONTEND_URL", "https://app.example.com")]).await;
        let res = app.client.request(Method::OPTIONS, app.url("/auth/login"))
            .header("Origin", "https://evil.example.com")
            .header("Access-Control-Request-Method", "POST")
            .send().await.unwrap();
        assert!(res.headers().get("access-control-allow-origin").is_none());
        assert_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    }
}

db_test! {
    async fn every_get_route_answers_head(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let booking = id_of(&app.book(&admin, &car, days_ahead(2), 24).await.json::<Value>().await.unwrap());
        // The worker delivering the booking's message would change /notifications between GET and HEAD.
        assert!(all_sent(&app, &admin).await);
        let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            if item.get("get").is_none() {
                continue;
            }
            let path = path.replace("{id}", if path.starts_with("/bookings") { &booking } else { &car });
            let url = match path.as_str() {
                "/search" => "/search?lat=37.77&lng=-122.42".to_owned(),
                p => p.to_owned(),
            };
            let get = app.client.get(app.url(&url)).bearer_auth(&admin).send().await.unwrap();
            let (status, length) = (get.status(), get.headers().get("content-length").cloned());
            let body = get.bytes().await.unwrap();
            let head = app.client.head(app.url(&url)).bearer_auth(&admin).send().await.unwrap();
            assert_eq!(head.status(), status, "HEAD {url}");
            if status == StatusCode::OK && url != "/health" && !url.starts_with("/health/") {
                assert_eq!(head.headers().get("content-length"), length.as_ref(), "HEAD {url}");
            }
            assert!(head.bytes().await.unwrap().is_empty(), "HEAD {url} sends no body");
            assert!(!body.is_empty() || status == StatusCode::NO_CONTENT);
            checked += 1;
        }
        assert!(checked >= 10, "{checked}");
    }
}

db_test! {
    async fn json_with_anything_after_its_value_is_malformed(backend) {
        let app = spawn_app(backend).await;
        for body in [
            r#"{"email": "x@example.com", "password": "Secret123"}xyz"#,
            r#"{"email": "x@example.com", "password": "Secret123"} {"email": "y@example.com"}"#,
            r#"{"email": "x@example.com", "password": "Secret123"}]"#,
        ] {
            let res = app.client.post(app.url("/auth/signup"))
                .header("Content-Type", "application/json").body(body).send().await.unwrap();
            let body_text = assert_error(res, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
            assert_eq!(body_text["error"]["details"][0]["field"], "body", "{body_text}");
        }
        let res = app.client.post(app.url("/auth/signup"))
            .header("Content-Type", "application/json")
            .body("{\"email\": \"ws@example.com\", \"password\": \"Secret123\"} \r\n\t ").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::CREATED, "whitespace after the value is fine");
    }
}

db_test! {
    async fn a_leap_second_is_the_next_minutes_first_on_every_backend(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let day = (chrono::Utc::now() + chrono::Duration::days(5)).format("%Y-%m-%d").to_string();
        let next = (chrono::Utc::now() + chrono::Duration::days(6)).format("%Y-%m-%d").to_string();
        let res = app.post("/bookings", &json!({"carId": car, "pickupTime": format!("{day}T23:59:60Z"),
            "dropoffTime": format!("{next}T23:59:60.500Z")}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let booking: Value = res.json().await.unwrap();
        let after = |d: &str| (chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap() + chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
        assert_eq!(booking["pickupTime"], format!("{}T00:00:00Z", after(&day)));
        assert_eq!(booking["dropoffTime"], format!("{}T00:00:00.500Z", after(&next)));
        let read: Value = app.get(&format!("/bookings/{}", id_of(&booking)), Some(&admin)).await.json().await.unwrap();
        assert_eq!((read["pickupTime"].clone(), read["dropoffTime"].clone()), (booking["pickupTime"].clone(), booking["dropoffTime"].clone()));
        // The next booking may start at that very instant, written the ordinary way.
        let res = app.post("/bookings", &json!({"carId": car, "pickupTime": booking["dropoffTime"],
            "dropoffTime": format!("{}T10:00:00Z", after(&after(&next)))}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
}

db_test! {
    async fn answers_that_depend_on_the_caller_are_kept_by_no_cache(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let customer = app.customer_token().await;
        app.create_car(&admin, json!({})).await;
        let cache_control = |res: &reqwest::Response| res.headers().get("cache-control").map(|v| v.to_str().unwrap().to_owned());
        for path in ["/auth/me", "/bookings", "/notifications"] {
            let res = app.get(path, Some(&customer)).await;
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            assert_eq!(cache_control(&res).as_deref(), Some("private, no-store"), "{path}");
        }
        assert_eq!(cache_control(&app.get("/admin/bookings", Some(&admin)).await).as_deref(), Some("private, no-store"));
        let res = app.login(ADMIN_EMAIL, PASSWORD).await;
        assert_eq!(cache_control(&res).as_deref(), Some("no-store"), "tokens are never kept");
        // A public listing is cacheable, and says that the role changes it.
        for token in [None, Some(customer.as_str()), Some(admin.as_str())] {
            let res = app.get("/cars?includeInactive=true", token).await;
            let vary = res.headers().get("vary").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
            assert!(vary.split(',').any(|v| v.trim() == "Authorization"), "{vary}");
            let private = cache_control(&res).as_deref() == Some("private, no-store");
            assert_eq!(private, token == Some(admin.as_str()), "{token:?}");
        }
        assert_eq!(cache_control(&app.get("/search?lat=1&lng=1", None).await), None);
    }
}

db_test! {
    async fn an_optional_body_sent_empty_is_none_and_permission_comes_first(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let customer = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let id = id_of(&app.book(&customer, &car, days_ahead(1), 24).await.json::<Value>().await.unwrap());
        let post = |token: &str, content_type: Option<&str>, body: &'static str| {
            let mut req = app.client.post(app.url(&format!("/bookings/{id}/pickup"))).bearer_auth(token).body(body);
            if let Some(t) = content_type {
                req = req.header("Content-Type", t);
            }
            req.send()
        };
        // A customer learns only that it may not: not what was wrong with the body.
        for (content_type, body) in [(Some("application/json"), "{\"odometerKm\": -5}"),
                                     (Some("application/json"), "{oops"), (Some("text/plain"), "x")] {
            let res = post(&customer, content_type, body).await.unwrap();
            assert_error(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
        }
        let res = app.post("/bookings", &json!({"carId": "nope"}), Some("not-a-token")).await;
        assert_error(res, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
        let res = post(&admin, Some("application/json"), "").await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "an empty JSON body is no body");
        let res = app.client.post(app.url(&format!("/bookings/{id}/return"))).bearer_auth(&admin)
            .header("Content-Type", "text/plain").body("").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "an empty body is no body, whatever its type");
    }
}

db_test! {
    async fn a_query_parameter_given_twice_is_refused_and_details_are_capped(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let window = format!("pickupTime={}&dropoffTime={}",
            days_ahead(2).to_rfc3339().replace('+', "%2B"), days_ahead(3).to_rfc3339().replace('+', "%2B"));
        let res = app.get(&format!("/cars/{car}/quote?{window}&extras=gps:1&extras=seat:1"), None).await;
        assert_eq!(validation_fields(res).await, ["extras"]);
        assert_eq!(validation_fields(app.get("/cars?page=1&page=2", None).await).await, ["page"]);
        let many: Vec<String> = (0..2000).map(|i| format!("x{i}:1")).collect();
        let res = app.get(&format!("/cars/{car}/quote?{window}&extras={}", many.join(",")), None).await;
        let body = assert_error(res, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
        assert_eq!(body["error"]["details"].as_array().unwrap().len(), 50, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("2000"), "{body}");
        let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
        let params = doc["paths"]["/cars/{id}/quote"]["get"]["parameters"].as_array().unwrap();
        for name in ["pickupTime", "dropoffTime"] {
            let p = params.iter().find(|p| p["name"] == name).unwrap();
            assert_eq!(p["required"], true, "{name}");
        }
    }
}
