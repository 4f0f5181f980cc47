use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

db_test! {
    async fn signup_answers_tokens_and_user(backend) {
        let app = spawn_app(backend).await;
        let res = app
            .post("/auth/signup", &json!({"email": "  Ada@Example.COM ", "password": PASSWORD, "name": "Ada"}), None)
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["tokenType"], "Bearer");
        assert_eq!(body["expiresIn"], 900);
        assert!(body["refreshToken"].as_str().unwrap().len() >= 64);
        let user = &body["user"];
        assert_eq!(user["email"], "ada@example.com");
        assert_eq!(user["name"], "Ada");
        assert_eq!(user["role"], "customer");
        assert!(uuid::Uuid::parse_str(user["id"].as_str().unwrap()).is_ok());
        assert!(chrono::DateTime::parse_from_rfc3339(user["createdAt"].as_str().unwrap()).is_ok());
        let text = body.to_string();
        assert!(!text.contains("password") && !text.contains("$2b$"), "{text}");

        let me = app.get("/auth/me", Some(&token_of(&body))).await;
        assert_eq!(me.status(), StatusCode::OK);
        assert_eq!(me.json::<Value>().await.unwrap(), *user);
    }
}

db_test! {
    async fn signup_validates_every_field(backend) {
        let app = spawn_app(backend).await;
        let cases = [
            (json!({"email": "nope", "password": PASSWORD}), vec!["email"]),
            (json!({"email": "a@b.io", "password": "Sh0rt"}), vec!["password"]),
            (json!({"email": "a@b.io", "password": "nouppercase1"}), vec!["password"]),
            (json!({"email": "a@b.io", "password": "NoDigitsHere"}), vec!["password"]),
            (json!({"email": "a@b.io", "password": format!("A1{}", "x".repeat(71))}), vec!["password"]),
            (json!({"email": "a@b.io", "password": PASSWORD, "name": ""}), vec!["name"]),
            (json!({"email": "a@b.io", "password": PASSWORD, "name": "n".repeat(101)}), vec!["name"]),
            (json!({"email": "bad", "password": "bad", "name": ""}), vec!["email", "password", "name"]),
            (json!({"password": PASSWORD}), vec!["email"]),
            (json!({"email": 5, "password": PASSWORD}), vec!["email"]),
        ];
        for (body, fields) in cases {
            let res = app.post("/auth/signup", &body, None).await;
            assert_eq!(validation_fields(res).await, fields, "{body}");
        }
    }
}

db_test! {
    async fn taken_email_is_a_conflict_in_any_case(backend) {
        let app = spawn_app(backend).await;
        app.signup("dup@example.com").await;
        let res = app
            .post("/auth/signup", &json!({"email": " DUP@example.com", "password": PASSWORD}), None)
            .await;
        assert_error(res, StatusCode::CONFLICT, "CONFLICT").await;
    }
}

db_test! {
    async fn login_folds_email_and_rejects_bad_credentials_alike(backend) {
        let app = spawn_app(backend).await;
        app.signup("ada@example.com").await;

        let res = app.login("  ADA@example.com ", PASSWORD).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["user"]["email"], "ada@example.com");
        assert!(body["accessToken"].is_string() && body["refreshToken"].is_string());

        let wrong = assert_error(app.login("ada@example.com", "Wrong1234").await, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
        let unknown = assert_error(app.login("who@example.com", PASSWORD).await, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
        assert_eq!(wrong["error"]["message"], unknown["error"]["message"]);
        assert_eq!(wrong["error"].as_object().unwrap().len(), unknown["error"].as_object().unwrap().len());

        let res = app.post("/auth/login", &json!({"email": "ada@example.com"}), None).await;
        assert_eq!(validation_fields(res).await, vec!["password"]);
    }
}

db_test! {
    /// Unknown emails are checked against a dummy hash, so they cost what a wrong password
    /// costs. The margin is wide: this guards against skipping bcrypt (a 100x gap), not noise.
    async fn unknown_email_takes_as_long_as_wrong_password(backend) {
        let app = spawn_app_with(backend, &[("BCRYPT_ROUNDS", "10")]).await;
        app.signup("ada@example.com").await;
        let time = |email: &'static str| {
            let app = &app;
            async move {
                let start = Instant::now();
                for _ in 0..3 {
                    let res = app.login(email, "Wrong1234").await;
                    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
                }
                start.elapsed()
            }
        };
        let wrong = time("ada@example.com").await;
        let unknown = time("nobody@example.com").await;
        let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
        assert!((0.33..3.0).contains(&ratio), "unknown {unknown:?} vs wrong {wrong:?}");
    }
}

fn craft(claims: &Value, alg: Algorithm, secret: &str) -> String {
    encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

db_test! {
    async fn bad_access_tokens_are_401(backend) {
        let app = spawn_app(backend).await;
        let body = app.signup("ada@example.com").await;
        let id = body["user"]["id"].as_str().unwrap();
        let now = chrono::Utc::now().timestamp();
        let good = json!({"sub": id, "role": "customer", "iat": now, "exp": now + 600});
        assert_eq!(app.get("/auth/me", Some(&craft(&good, Algorithm::HS256, JWT_SECRET))).await.status(), StatusCode::OK);

        let expired = json!({"sub": id, "role": "customer", "iat": now - 1000, "exp": now - 10});
        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&good));
        let real = token_of(&body);
        let mut parts: Vec<String> = real.split('.').map(str::to_owned).collect();
        parts[1] = b64(&json!({"sub": id, "role": "admin", "iat": now, "exp": now + 600}));
        let tampered = parts.join(".");
        let cases = [
            ("expired", craft(&expired, Algorithm::HS256, JWT_SECRET)),
            ("alg none", none),
            ("other algorithm", craft(&good, Algorithm::HS512, JWT_SECRET)),
            ("other secret", craft(&good, Algorithm::HS256, "some-other-secret")),
            ("tampered payload", tampered),
            ("garbage", "not.a.token".to_owned()),
        ];
        for (what, token) in cases {
            let res = app.get("/auth/me", Some(&token)).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}");
            assert_error(res, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
        }
        assert_error(app.get("/auth/me", None).await, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
        let res = app.client.get(app.url("/auth/me")).header("Authorization", format!("Basic {real}")).send().await.unwrap();
        assert_error(res, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
    }
}

db_test! {
    async fn access_tokens_carry_the_documented_claims(backend) {
        let app = spawn_app_with(backend, &[("JWT_EXPIRY", "20m")]).await;
        let body = app.signup("ada@example.com").await;
        assert_eq!(body["expiresIn"], 1200);
        let token = token_of(&body);
        let payload = token.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap(),
        )
        .unwrap();
        assert_eq!(claims["sub"], body["user"]["id"]);
        assert_eq!(claims["role"], "customer");
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 1200);
        let header = token.split('.').next().unwrap();
        let header: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], "HS256");
    }
}

db_test! {
    async fn refresh_rotates_and_reuse_revokes_the_session(backend) {
        let app = spawn_app(backend).await;
        let first = app.signup("ada@example.com").await;
        let r1 = first["refreshToken"].as_str().unwrap().to_owned();

        let res = app.post("/auth/refresh", &json!({"refreshToken": r1}), None).await;
        assert_eq!(res.status(), StatusCode::OK);
        let second: Value = res.json().await.unwrap();
        assert!(second.get("user").is_none());
        assert_eq!(second["tokenType"], "Bearer");
        let r2 = second["refreshToken"].as_str().unwrap().to_owned();
        assert_ne!(r1, r2);
        assert_eq!(app.get("/auth/me", Some(&token_of(&second))).await.status(), StatusCode::OK);

        // A second login is a separate session and must survive the theft below.
        let other: Value = app.login("ada@example.com", PASSWORD).await.json().await.unwrap();
        let other_refresh = other["refreshToken"].as_str().unwrap().to_owned();

        // r1 was rotated: presenting it again is theft.
        let res = app.post("/auth/refresh", &json!({"refreshToken": r1}), None).await;
        assert_error(res, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
        // ...and the whole session is gone, including the token rotated into.
        let res = app.post("/auth/refresh", &json!({"refreshToken": r2}), None).await;
        assert_error(res, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;

        let res = app.post("/auth/refresh", &json!({"refreshToken": other_refresh}), None).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
}

db_test! {
    async fn concurrent_refreshes_with_one_token_do_not_both_win(backend) {
        let app = spawn_app(backend).await;
        let body = app.signup("ada@example.com").await;
        let token = body["refreshToken"].as_str().unwrap().to_owned();
        let body = json!({"refreshToken": token});
        let calls = (0..8).map(|_| app.post("/auth/refresh", &body, None));
        let results = futures_util::future::join_all(calls).await;
        let ok = results.iter().filter(|r| r.status() == StatusCode::OK).count();
        assert!(ok <= 1, "{ok} refreshes won with one token");
        for r in &results {
            assert!(matches!(r.status(), StatusCode::OK | StatusCode::UNAUTHORIZED), "{}", r.status());
        }
    }
}

db_test! {
    async fn logout_revokes_and_is_idempotent(backend) {
        let app = spawn_app(backend).await;
        let body = app.signup("ada@example.com").await;
        let refresh = body["refreshToken"].as_str().unwrap();
        for _ in 0..2 {
            let res = app.post("/auth/logout", &json!({"refreshToken": refresh}), None).await;
            assert_eq!(res.status(), StatusCode::NO_CONTENT);
        }
        let res = app.post("/auth/logout", &json!({"refreshToken": "unknown"}), None).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        let res = app.post("/auth/refresh", &json!({"refreshToken": refresh}), None).await;
        assert_error(res, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
        let res = app.post("/auth/refresh", &json!({"refreshToken": "never-issued"}), None).await;
        assert_error(res, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
        let res = app.post("/auth/logout", &json!({}), None).await;
        assert_eq!(validation_fields(res).await, vec!["refreshToken"]);
    }
}

db_test! {
    async fn expired_refresh_tokens_are_refused(backend) {
        let app = spawn_app_with(backend, &[("REFRESH_EXPIRY", "1s")]).await;
        let body = app.signup("ada@example.com").await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let res = app.post("/auth/refresh", &json!({"refreshToken": body["refreshToken"]}), None).await;
        assert_error(res, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
    }
}

db_test! {
    async fn admin_create_command_creates_and_promotes(backend) {
        let app = spawn_app(backend).await;
        let cli = |args: &[&str]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_carrental"))
                .args(args)
                .env("APP_ENV", "test")
                .env("APP_CONFIG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
                .env("DATABASE_URL", &app.db.url)
                .output()
                .unwrap()
        };
        let out = cli(&["admin", "create", "--email", "Root@Example.com", "--password", "Admin1234", "--name", "Root"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("created admin root@example.com"));
        let res = app.login("root@example.com", "Admin1234").await;
        assert_eq!(res.json::<Value>().await.unwrap()["user"]["role"], "admin");

        let clerk = app.signup("clerk@example.com").await;
        let out = cli(&["admin", "create", "--email", "clerk@example.com", "--password", "NewPass123"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("promoted"));
        // Setting the password ends the account's earlier sessions; a login right after
        // (in the same second) holds.
        assert_eq!(app.get("/auth/me", Some(&token_of(&clerk))).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(app.login("clerk@example.com", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
        let res = app.login("clerk@example.com", "NewPass123").await;
        let promoted: Value = res.json().await.unwrap();
        assert_eq!(promoted["user"]["role"], "admin");
        assert_eq!(promoted["user"]["emailVerified"], true);
        assert_eq!(app.get("/admin/bookings", Some(&token_of(&promoted))).await.status(), StatusCode::OK);

        let out = cli(&["admin", "create", "--email", "x@example.com", "--password", "weak"]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("password"), "{err}");
    }
}

db_test! {
    local: async fn a_secret_rotation_keeps_everyone_logged_in(backend) {
        let (old_secret, new_secret) = ("old-secret-0123456789abcdef0123456789", "new-secret-0123456789abcdef0123456789");
        let before = spawn_app_with(backend, &[("JWT_SECRET", old_secret)]).await;
        let old_token = before.customer_token().await;
        let during = spawn_app_sharing(&before, &[("JWT_SECRET", new_secret), ("JWT_SECRET_PREVIOUS", old_secret)]).await;
        assert_eq!(during.get("/auth/me", Some(&old_token)).await.status(), StatusCode::OK);
        let new_token = during.customer_token().await;
        assert_eq!(during.get("/auth/me", Some(&new_token)).await.status(), StatusCode::OK);
        assert_eq!(before.get("/auth/me", Some(&new_token)).await.status(), StatusCode::UNAUTHORIZED, "signed with the new secret");

        let after = spawn_app_sharing(&before, &[("JWT_SECRET", new_secret)]).await;
        assert_eq!(after.get("/auth/me", Some(&new_token)).await.status(), StatusCode::OK);
        assert_error(after.get("/auth/me", Some(&old_token)).await, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
    }
}
