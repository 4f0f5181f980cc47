//! `AUTH_PROVIDER=oidc` against node-oidc-provider, a certified OpenID Provider
//! (`tests/oidc/provider.mjs`, which the test script installs as `TEST_OIDC_PROVIDER`). Each
//! test starts its own provider and restarts it with other keys to rotate them.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::smtp::free_port;

const AUDIENCE: &str = "https://api.carrental.test";

fn script() -> Option<String> {
    std::env::var("TEST_OIDC_PROVIDER")
        .ok()
        .filter(|s| !s.is_empty())
}

/// A signing key made by Node: the private JWK the provider signs with, and its DER.
#[derive(Clone)]
struct Key {
    jwk: Value,
    der: Vec<u8>,
    kid: String,
}

fn keygen(script: &str, alg: &str, kid: &str) -> Key {
    let out = Command::new("node")
        .args([script, "keygen", alg, kid])
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made: Value = serde_json::from_slice(&out.stdout).expect("keygen answers JSON");
    use base64::Engine;
    Key {
        jwk: made["jwk"].clone(),
        der: base64::engine::general_purpose::STANDARD
            .decode(made["der"].as_str().expect("der"))
            .expect("base64"),
        kid: kid.to_owned(),
    }
}

/// The test users: each is a client of the provider whose tokens speak for them.
fn users() -> Value {
    json!({
        "alice": {"sub": "u-alice", "email": "alice@example.com", "email_verified": true,
                  "name": "Alice", "groups": ["admin", "staff"]},
        "bob": {"sub": "u-bob", "email": "bob@example.com", "email_verified": false},
        "eve": {"sub": "u-eve", "email": "taken@example.com", "email_verified": true},
        "es-carol": {"sub": "u-carol"},
        "ps-dave": {"sub": "u-dave"},
    })
}

struct Provider {
    script: String,
    port: u16,
    child: Option<Child>,
    http: reqwest::Client,
}

impl Provider {
    async fn start(script: &str, keys: &[&Key]) -> Provider {
        let mut provider = Provider {
            script: script.to_owned(),
            port: free_port(),
            child: None,
            http: reqwest::Client::new(),
        };
        provider.run(keys).await;
        provider
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the provider on its port with `keys` (the first of each algorithm signs).
    async fn run(&mut self, keys: &[&Key]) {
        self.stop();
        let jwks: Vec<Value> = keys.iter().map(|k| k.jwk.clone()).collect();
        let child = Command::new("node")
            .args([&self.script, "serve"])
            .env("PORT", self.port.to_string())
            .env("OIDC_KEYS", serde_json::to_string(&jwks).expect("keys"))
            .env("OIDC_USERS", users().to_string())
            .env("OIDC_AUDIENCE", AUDIENCE)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts");
        self.child = Some(child);
        let url = format!("{}/.well-known/openid-configuration", self.issuer());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self
                .http
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the OpenID Provider did not start on {}", self.port);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// An access token for a test user, from the provider's token endpoint.
    async fn token(&self, user: &str) -> String {
        let res = self
            .http
            .post(format!("{}/token", self.issuer()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&client_id={user}&client_secret=secret-{user}"
            ))
            .send()
            .await
            .expect("token endpoint");
        let body: Value = res.json().await.expect("json");
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}"))
            .to_owned()
    }

    /// A token signed here with `key`, with the provider's issuer and audience unless
    /// `claims` says otherwise.
    fn forge(&self, key: &Key, alg: Algorithm, claims: Value) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut all = json!({"iss": self.issuer(), "aud": AUDIENCE, "sub": "u-forged",
                             "iat": now, "exp": now + 300});
        merge(&mut all, claims);
        let mut header = Header::new(alg);
        header.kid = Some(key.kid.clone());
        let encoding = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_der(&key.der),
            _ => EncodingKey::from_rsa_der(&key.der),
        };
        encode(&header, &all, &encoding).expect("signed")
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.stop();
    }
}

fn settings<'a>(
    issuer: &'a str,
    providers: &'a str,
    more: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut all = vec![
        ("AUTH_PROVIDER", providers),
        ("OIDC_ISSUER", issuer),
        ("OIDC_AUDIENCE", AUDIENCE),
    ];
    all.extend_from_slice(more);
    all
}

async fn me(app: &TestApp, token: &str) -> (StatusCode, Value) {
    let res = app.get("/auth/me", Some(token)).await;
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Unsigned, as `alg: none` would have it.
fn unsigned(claims: &Value) -> String {
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(claims)
    )
}

db_test! {
    async fn provider_tokens_sign_people_in_found_by_subject(backend) {
        let Some(script) = script() else { return eprintln!("TEST_OIDC_PROVIDER is not set: skipped") };
        let (rs, es, ps) = (keygen(&script, "RS256", "rs-1"), keygen(&script, "ES256", "es-1"), keygen(&script, "PS256", "ps-1"));
        let idp = Provider::start(&script, &[&rs, &es, &ps]).await;
        let issuer = idp.issuer();
        let app = spawn_app_with(backend, &settings(&issuer, "local,oidc", &[])).await;

        // A local account holds the address another provider user claims.
        let local = app.signup("taken@example.com").await;

        let alice = idp.token("alice").await;
        let (status, first) = me(&app, &alice).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        assert_eq!(first["email"], "alice@example.com");
        assert_eq!(first["emailVerified"], true);
        assert_eq!(first["name"], "Alice");
        assert_eq!(first["role"], "admin", "the group claim makes an admin");
        assert_eq!(app.get("/admin/bookings", Some(&alice)).await.status(), StatusCode::OK);
        let (_, again) = me(&app, &idp.token("alice").await).await;
        assert_eq!(again["id"], first["id"], "found again by (iss, sub)");

        let bob = idp.token("bob").await;
        let (status, bob_me) = me(&app, &bob).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(bob_me["email"], Value::Null, "an address the provider did not verify is not copied");
        assert_eq!(bob_me["role"], "customer");
        assert_error(app.get("/admin/bookings", Some(&bob)).await, StatusCode::FORBIDDEN, "FORBIDDEN").await;
        let admin = app.admin_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        assert_eq!(app.book(&bob, &car, days_ahead(2), 24).await.status(), StatusCode::CREATED);
        let change = json!({"currentPassword": "Secret123", "newPassword": "Better123"});
        assert_error(app.post("/auth/password/change", &change, Some(&bob)).await, StatusCode::CONFLICT, "CONFLICT").await;

        let (_, eve) = me(&app, &idp.token("eve").await).await;
        assert_eq!(eve["email"], Value::Null, "never found or filled by email");
        assert_ne!(eve["id"], local["user"]["id"]);
        for user in ["es-carol", "ps-dave"] {
            let (status, body) = me(&app, &idp.token(user).await).await;
            assert_eq!(status, StatusCode::OK, "{user}: {body}");
        }
        // Local accounts still sign in beside the provider.
        assert_eq!(app.login("taken@example.com", PASSWORD).await.status(), StatusCode::OK);
    }
}

db_test! {
    local: async fn tokens_the_provider_did_not_sign_as_it_should_are_refused(backend) {
        let Some(script) = script() else { return eprintln!("TEST_OIDC_PROVIDER is not set: skipped") };
        let rs = keygen(&script, "RS256", "rs-1");
        let stranger = keygen(&script, "RS256", "not-published");
        let idp = Provider::start(&script, &[&rs]).await;
        let issuer = idp.issuer();
        let app = spawn_app_with(backend, &settings(&issuer, "oidc", &[])).await;
        let now = chrono::Utc::now().timestamp();

        assert_eq!(me(&app, &idp.forge(&rs, Algorithm::RS256, json!({}))).await.0, StatusCode::OK);
        // Within the 60 s of leeway, and past it.
        let late = json!({"iat": now - 600, "exp": now - 30});
        assert_eq!(me(&app, &idp.forge(&rs, Algorithm::RS256, late)).await.0, StatusCode::OK);
        let expired = json!({"iat": now - 600, "exp": now - 120});
        let refused = [
            ("expired", idp.forge(&rs, Algorithm::RS256, expired)),
            ("another audience", idp.forge(&rs, Algorithm::RS256, json!({"aud": "https://elsewhere.test"}))),
            ("no audience", idp.forge(&rs, Algorithm::RS256, json!({"aud": null}))),
            ("a key not in the set", idp.forge(&stranger, Algorithm::RS256, json!({}))),
            ("alg none", unsigned(&json!({"iss": issuer, "aud": AUDIENCE, "sub": "u-x", "exp": now + 300}))),
        ];
        for (what, token) in &refused {
            let (status, body) = me(&app, token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
            assert_eq!(body["error"]["code"], "AUTH_ERROR", "{what}");
        }
        // HMAC with the public key as the secret (the classic key confusion).
        let public = rs.jwk["n"].as_str().unwrap().to_owned();
        let confused = encode(
            &Header { kid: Some("rs-1".into()), ..Header::new(Algorithm::HS256) },
            &json!({"iss": issuer, "aud": AUDIENCE, "sub": "u-x", "iat": now, "exp": now + 300}),
            &EncodingKey::from_secret(public.as_bytes()),
        )
        .unwrap();
        assert_eq!(me(&app, &confused).await.0, StatusCode::UNAUTHORIZED);
        // The role is read from every token: the same subject, admin and then not.
        let admin = idp.forge(&rs, Algorithm::RS256, json!({"sub": "u-role", "cognito:groups": ["admin"]}));
        assert_eq!(app.get("/admin/bookings", Some(&admin)).await.status(), StatusCode::OK);
        let plain = idp.forge(&rs, Algorithm::RS256, json!({"sub": "u-role", "cognito:groups": ["staff"]}));
        assert_error(app.get("/admin/bookings", Some(&plain)).await, StatusCode::FORBIDDEN, "FORBIDDEN").await;
        let (_, now_customer) = me(&app, &plain).await;
        assert_eq!(now_customer["role"], "customer");
        // Cognito names its client in `client_id` instead of `aud`.
        let cognito = idp.forge(&rs, Algorithm::RS256, json!({"aud": null, "client_id": AUDIENCE}));
        assert_eq!(me(&app, &cognito).await.0, StatusCode::OK);

        // With the provider alone, this server's own accounts are not there.
        let body = json!({"email": "ada@example.com", "password": PASSWORD});
        for path in ["/auth/signup", "/auth/login", "/auth/password/forgot"] {
            assert_error(app.post(path, &body, None).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        }
    }
}

db_test! {
    local: async fn rotated_keys_are_fetched_and_an_absent_issuer_leaves_cached_keys_working(backend) {
        let Some(script) = script() else { return eprintln!("TEST_OIDC_PROVIDER is not set: skipped") };
        let (old, new, later) = (keygen(&script, "RS256", "rs-old"), keygen(&script, "RS256", "rs-new"), keygen(&script, "RS256", "rs-later"));
        let mut idp = Provider::start(&script, &[&old]).await;
        let issuer = idp.issuer();
        let app = spawn_app_with(backend, &settings(&issuer, "oidc", &[("APP__AUTH__OIDC_REFETCH_INTERVAL", "1s")])).await;
        let before = idp.token("alice").await;
        assert_eq!(me(&app, &before).await.0, StatusCode::OK);

        // The provider rotates: it signs with the new key and still publishes the old one.
        idp.run(&[&new, &old]).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let after = idp.token("alice").await;
        assert_eq!(me(&app, &after).await.0, StatusCode::OK, "an unknown kid fetches the keys again");
        assert_eq!(me(&app, &before).await.0, StatusCode::OK);

        // The provider goes away: the keys the server holds keep working; a key it never saw
        // cannot be checked (503, not 500 and not a 401 that would sign people out).
        idp.stop();
        assert_eq!(me(&app, &after).await.0, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let unseen = idp.forge(&later, Algorithm::RS256, json!({}));
        let (status, body) = me(&app, &unseen).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    }
}

db_test! {
    local: async fn an_unknown_kid_fetches_the_keys_at_most_once_a_minute(backend) {
        let Some(script) = script() else { return eprintln!("TEST_OIDC_PROVIDER is not set: skipped") };
        let (old, new) = (keygen(&script, "RS256", "rs-old"), keygen(&script, "RS256", "rs-new"));
        let mut idp = Provider::start(&script, &[&old]).await;
        let issuer = idp.issuer();
        let app = spawn_app_with(backend, &settings(&issuer, "oidc", &[])).await;
        assert_eq!(me(&app, &idp.token("alice").await).await.0, StatusCode::OK);
        idp.run(&[&new, &old]).await;
        // The keys were fetched less than a minute ago: a token of the new key waits for the
        // minute to pass (the rotation test, with a 1 s interval, shows the fetch happening).
        let (status, _) = me(&app, &idp.token("alice").await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

db_test! {
    async fn a_provider_user_can_leave_and_cannot_come_back_under_the_same_subject(backend) {
        let Some(script) = script() else { return eprintln!("TEST_OIDC_PROVIDER is not set: skipped") };
        let rs = keygen(&script, "RS256", "rs-1");
        let idp = Provider::start(&script, &[&rs]).await;
        let issuer = idp.issuer();
        let app = spawn_app_with(backend, &settings(&issuer, "local,oidc", &[])).await;
        let token = idp.token("bob").await;
        assert_eq!(me(&app, &token).await.0, StatusCode::OK);
        let res = app.send(reqwest::Method::DELETE, "/auth/me", &json!(null), Some(&token)).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT, "no password for a provider user");
        assert_eq!(me(&app, &idp.token("bob").await).await.0, StatusCode::UNAUTHORIZED);
    }
}
