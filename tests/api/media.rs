//! Photos and documents (API.md): uploads offered, sent, completed and attached to cars,
//! with the `local` store and with the `s3` one on moto's S3 server (started by the test
//! script as `TEST_S3_URL`); presigned URLs checked against botocore's SigV4 signer.

use std::io::Cursor;
use std::time::Duration;

use image::{DynamicImage, ImageFormat};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// Runs a scenario with each store on each database: `sqlite_local`, `postgres_local`,
/// `split_local`, `sqlite_s3` and `postgres_s3` (the last two when moto is running).
macro_rules! storage_test {
    (async fn $name:ident($backend:ident, $store:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($backend: Backend, $store: Store) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_local() {
                run(Backend::Sqlite, Store::Local).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_local() {
                run(Backend::Postgres, Store::Local).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn split_local() {
                run(Backend::Split, Store::Local).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_s3() {
                run(Backend::Sqlite, Store::S3).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_s3() {
                run(Backend::Postgres, Store::S3).await
            }
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Local,
    S3,
}

const ACCESS_KEY: &str = "AKIACARRENTALTEST";
const SECRET_KEY: &str = "carrental-test-secret-key";
const REGION: &str = "eu-west-3";

fn moto() -> Option<String> {
    std::env::var("TEST_S3_URL").ok().filter(|u| !u.is_empty())
}

/// A server on `store`, or `None` when that store is not running here.
async fn app_on(backend: Backend, store: Store, more: &[(&str, &str)]) -> Option<TestApp> {
    let mut vars: Vec<(String, String)> = Vec::new();
    if store == Store::S3 {
        let Some(endpoint) = moto() else {
            eprintln!("TEST_S3_URL is not set: skipping the s3 run (scripts/test.sh starts moto)");
            return None;
        };
        let bucket = format!("carrental-{}", uuid::Uuid::new_v4().simple());
        // moto creates a bucket for any request, signed or not. Car photos are read by
        // anyone, as a bucket policy or a CDN makes them in production.
        let res = reqwest::Client::new()
            .put(format!("{endpoint}/{bucket}"))
            .header("x-amz-acl", "public-read")
            .send()
            .await
            .expect("moto answers");
        assert!(res.status().is_success(), "bucket created");
        vars.extend(
            [
                ("STORAGE_PROVIDER", "s3".to_owned()),
                ("S3_ENDPOINT", endpoint),
                ("S3_BUCKET", bucket),
                ("S3_REGION", REGION.to_owned()),
                ("S3_FORCE_PATH_STYLE", "true".to_owned()),
                ("S3_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
                ("S3_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
    }
    vars.extend(more.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Some(spawn_app_with(backend, &vars).await)
}

fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

/// A 2000×1000 photo, as a camera's JPEG would be (with an EXIF block that names a place).
fn photo_jpeg() -> Vec<u8> {
    let image = DynamicImage::ImageRgb8(image::RgbImage::from_fn(2000, 1000, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    }));
    let plain = encoded(&image, ImageFormat::Jpeg);
    // An APP1 "Exif" segment right after SOI: a big-endian TIFF header with an empty IFD,
    // then text a leak would show.
    let mut payload = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\0\0\0\0\0".to_vec();
    payload.extend_from_slice(b"GPS 48.8584N 2.2945E");
    let length = u16::try_from(payload.len() + 2).expect("short segment");
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&plain[2..]);
    out
}

fn small_png() -> Vec<u8> {
    encoded(&DynamicImage::new_rgb8(200, 100), ImageFormat::Png)
}

/// Offers an upload; the answer.
async fn offer(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.post("/uploads", &body, Some(token)).await
}

/// Sends `bytes` as the ticket says; the store's status.
async fn send(ticket: &Value, bytes: Vec<u8>) -> StatusCode {
    let mut req = reqwest::Client::new()
        .put(ticket["url"].as_str().expect("url"))
        .body(bytes);
    for (name, value) in ticket["headers"].as_object().expect("headers") {
        if name.eq_ignore_ascii_case("content-length") {
            continue; // reqwest sets it from the body
        }
        req = req.header(name.as_str(), value.as_str().expect("header value"));
    }
    req.send().await.expect("store answers").status()
}

/// Offers, sends and completes a car photo; the completed upload.
async fn uploaded_photo(app: &TestApp, admin: &str, car: &str, bytes: Vec<u8>) -> Value {
    let body = json!({"purpose": "car_photo", "contentType": "image/jpeg",
                      "size": bytes.len(), "carId": car});
    let res = offer(app, admin, body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let ticket: Value = res.json().await.expect("json");
    assert!(send(&ticket, bytes).await.is_success());
    let res = app
        .post(
            &format!("/uploads/{}/complete", id_of(&ticket)),
            &json!({}),
            Some(admin),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.expect("json")
}

async fn fetch(url: &str) -> (StatusCode, Option<String>, Vec<u8>) {
    let res = reqwest::get(url).await.expect("object answers");
    let cache = res
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (
        res.status(),
        cache,
        res.bytes().await.expect("bytes").to_vec(),
    )
}

storage_test! {
    async fn a_car_photo_goes_from_upload_to_the_car(backend, store) {
        let Some(app) = app_on(backend, store, &[]).await else { return };
        let admin = app.admin_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let bytes = photo_jpeg();
        let res = offer(&app, &admin, json!({"purpose": "car_photo", "contentType": "image/jpeg",
                                             "size": bytes.len(), "carId": car})).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let ticket: Value = res.json().await.expect("json");
        assert_eq!(ticket["method"], "PUT");
        assert_eq!(ticket["headers"]["Content-Type"], "image/jpeg");
        assert_eq!(ticket["maxSize"], 10 * 1024 * 1024);
        let expires: chrono::DateTime<chrono::Utc> =
            ticket["expiresAt"].as_str().expect("expiresAt").parse().expect("a time");
        let left = expires - chrono::Utc::now();
        assert!(left > chrono::TimeDelta::seconds(880) && left <= chrono::TimeDelta::seconds(900));
        if store == Store::S3 {
            let url = ticket["url"].as_str().expect("url");
            assert!(url.contains("X-Amz-Algorithm=AWS4-HMAC-SHA256") && url.contains("X-Amz-Expires=900"), "{url}");
        } else {
            assert!(ticket["url"].as_str().expect("url").contains(&format!("/uploads/{}/content?", id_of(&ticket))));
        }
        let upload = id_of(&ticket);
        assert!(send(&ticket, bytes).await.is_success());

        let complete = format!("/uploads/{upload}/complete");
        let someone = app.customer_token().await;
        assert_error(app.post(&complete, &json!({}), Some(&someone)).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        let res = app.post(&complete, &json!({}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let done: Value = res.json().await.expect("json");
        assert_eq!(done["status"], "ready");
        assert_eq!((done["width"].as_i64(), done["height"].as_i64()), (Some(2000), Some(1000)));
        assert_eq!(done["purpose"], "car_photo");
        assert_error(app.post(&complete, &json!({}), Some(&admin)).await, StatusCode::CONFLICT, "CONFLICT").await;

        let res = app.post(&format!("/cars/{car}/photos"), &json!({"uploadId": upload}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let photo: Value = res.json().await.expect("json");
        assert_eq!(photo["id"], upload.as_str());
        assert_eq!(photo["position"], 0);
        assert_eq!(photo["contentType"], "image/webp");
        assert_eq!((photo["width"].as_i64(), photo["height"].as_i64()), (Some(1600), Some(800)));
        let url = photo["url"].as_str().expect("url").to_owned();
        assert!(url.contains(&format!("cars/{car}/")) && url.ends_with("-large.webp"), "{url}");
        assert_error(
            app.post(&format!("/cars/{car}/photos"), &json!({"uploadId": upload}), Some(&admin)).await,
            StatusCode::CONFLICT, "CONFLICT",
        ).await;

        // Served from its content address, for ever, with nothing of the camera's metadata.
        let (status, cache, large) = fetch(&url).await;
        assert_eq!(status, StatusCode::OK);
        if store == Store::Local {
            assert_eq!(cache.as_deref(), Some("public, max-age=31536000, immutable"));
        }
        assert_eq!(large.len() as u64, photo["size"].as_u64().expect("size"));
        let decoded = image::load_from_memory_with_format(&large, ImageFormat::WebP).expect("a WebP");
        assert_eq!((decoded.width(), decoded.height()), (1600, 800));
        assert!(!large.windows(3).any(|w| w == b"GPS"), "metadata left in the derivative");
        let (_, _, thumb) = fetch(photo["thumbUrl"].as_str().expect("thumbUrl")).await;
        let thumb = image::load_from_memory_with_format(&thumb, ImageFormat::WebP).expect("a WebP");
        assert_eq!((thumb.width(), thumb.height()), (320, 160));

        // The car shows it first in `images`; writing the car back changes nothing.
        let shown: Value = app.get(&format!("/cars/{car}"), None).await.json().await.expect("json");
        assert_eq!(shown["photos"][0]["url"], url.as_str());
        assert_eq!(shown["images"][0], url.as_str());
        let direct = shown["images"].as_array().expect("images").len() - 1;
        let res = app.send(reqwest::Method::PATCH, &format!("/cars/{car}"),
                           &json!({"images": shown["images"]}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let written: Value = res.json().await.expect("json");
        assert_eq!(written["images"], shown["images"]);
        assert_eq!(written["images"].as_array().map(Vec::len), Some(direct + 1));

        // A second photo, moved in front; then the first deleted with its objects.
        let second = id_of(&uploaded_photo(&app, &admin, &car, photo_jpeg()[..].to_vec()).await);
        let res = app.post(&format!("/cars/{car}/photos"), &json!({"uploadId": second}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let res = app.send(reqwest::Method::PATCH, &format!("/cars/{car}/photos/{second}"),
                           &json!({"position": 0}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let moved: Value = res.json().await.expect("json");
        let order: Vec<&str> = moved["photos"].as_array().expect("photos").iter()
            .map(|p| p["id"].as_str().unwrap_or_default()).collect();
        assert_eq!(order, [second.as_str(), upload.as_str()]);
        assert_eq!(moved["photos"][1]["position"], 1);
        // The same picture twice shares its objects: removing one keeps them.
        let res = app.send(reqwest::Method::DELETE, &format!("/cars/{car}/photos/{upload}"), &json!(null), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(fetch(&url).await.0, StatusCode::OK, "still used by the other photo");
        let res = app.send(reqwest::Method::DELETE, &format!("/cars/{car}/photos/{second}"), &json!(null), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        let mut gone = false;
        for _ in 0..50 {
            if fetch(&url).await.0 == StatusCode::NOT_FOUND {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(gone, "the last photo's objects are deleted");
        let shown: Value = app.get(&format!("/cars/{car}"), None).await.json().await.expect("json");
        assert_eq!(shown["photos"], json!([]));
        assert_error(
            app.send(reqwest::Method::DELETE, &format!("/cars/{car}/photos/{second}"), &json!(null), Some(&admin)).await,
            StatusCode::NOT_FOUND, "NOT_FOUND",
        ).await;
    }
}

storage_test! {
    async fn offers_are_checked(backend, store) {
        let Some(app) = app_on(backend, store, &[]).await else { return };
        let admin = app.admin_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        for (body, field) in [
            (json!({"purpose": "avatar", "contentType": "image/png", "size": 10}), "purpose"),
            (json!({"contentType": "image/png", "size": 10}), "purpose"),
            (json!({"purpose": "car_photo", "contentType": "image/jpeg; charset=x", "size": 10, "carId": car}), "contentType"),
            (json!({"purpose": "car_photo", "contentType": "application/pdf", "size": 10, "carId": car}), "contentType"),
            (json!({"purpose": "car_photo", "contentType": "image/png", "size": 0, "carId": car}), "size"),
            (json!({"purpose": "car_photo", "contentType": "image/png", "size": 10 * 1024 * 1024 + 1, "carId": car}), "size"),
            (json!({"purpose": "car_photo", "contentType": "image/png", "size": 1.5, "carId": car}), "size"),
            (json!({"purpose": "car_photo", "contentType": "image/png", "size": 10}), "carId"),
            (json!({"purpose": "car_photo", "contentType": "image/png", "size": 10, "carId": "../x"}), "carId"),
            (json!({"purpose": "car_photo", "contentType": "image/png", "size": 10, "carId": "/etc/passwd"}), "carId"),
            (json!({"purpose": "car_photo", "contentType": "image/png ", "size": 10, "carId": car}), "contentType"),
            (json!({"purpose": "damage_photo", "contentType": "image/png", "size": 10}), "bookingId"),
        ] {
            assert_eq!(validation_fields(offer(&app, &admin, body.clone()).await).await, [field], "{body}");
        }
        let unknown_car = uuid::Uuid::new_v4().to_string();
        let body = json!({"purpose": "car_photo", "contentType": "image/png", "size": 10, "carId": unknown_car});
        assert_eq!(validation_fields(offer(&app, &admin, body).await).await, ["carId"]);

        let customer = app.customer_token().await;
        let photo = json!({"purpose": "car_photo", "contentType": "image/png", "size": 10, "carId": car});
        assert_error(offer(&app, &customer, photo.clone()).await, StatusCode::FORBIDDEN, "FORBIDDEN").await;
        assert_error(app.post("/uploads", &photo, None).await, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
        let licence = json!({"purpose": "licence", "contentType": "application/pdf", "size": 10});
        assert_eq!(offer(&app, &customer, licence).await.status(), StatusCode::CREATED);
    }
}

storage_test! {
    async fn completing_reads_the_bytes_back(backend, store) {
        let Some(app) = app_on(backend, store, &[]).await else { return };
        let admin = app.admin_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let png = small_png();
        let truncated = png[..png.len() / 2].to_vec();
        for (declared, bytes, field) in [
            ("image/jpeg", png.clone(), "contentType"),
            ("image/png", truncated, "upload"),
        ] {
            let res = offer(&app, &admin, json!({"purpose": "car_photo", "contentType": declared,
                                                 "size": bytes.len(), "carId": car})).await;
            let ticket: Value = res.json().await.expect("json");
            assert!(send(&ticket, bytes).await.is_success());
            let res = app.post(&format!("/uploads/{}/complete", id_of(&ticket)), &json!({}), Some(&admin)).await;
            assert_eq!(validation_fields(res).await, [field], "{declared}");
        }
        // Nothing sent yet.
        let res = offer(&app, &admin, json!({"purpose": "car_photo", "contentType": "image/png",
                                             "size": png.len(), "carId": car})).await;
        let ticket: Value = res.json().await.expect("json");
        let complete = format!("/uploads/{}/complete", id_of(&ticket));
        assert_eq!(validation_fields(app.post(&complete, &json!({}), Some(&admin)).await).await, ["upload"]);
        // An image never upscaled: 200×100 stays 200×100 in both derivatives.
        assert!(send(&ticket, png).await.is_success());
        assert_eq!(app.post(&complete, &json!({}), Some(&admin)).await.status(), StatusCode::OK);
        let res = app.post(&format!("/cars/{car}/photos"), &json!({"uploadId": id_of(&ticket)}), Some(&admin)).await;
        let photo: Value = res.json().await.expect("json");
        assert_eq!((photo["width"].as_i64(), photo["height"].as_i64()), (Some(200), Some(100)));
        // Another car's upload is refused.
        let other = id_of(&app.create_car(&admin, json!({})).await);
        let res = app.post(&format!("/cars/{other}/photos"), &json!({"uploadId": id_of(&ticket)}), Some(&admin)).await;
        assert_eq!(validation_fields(res).await, ["uploadId"]);
    }
}

db_test! {
    async fn local_links_hold_to_what_was_signed(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let png = small_png();
        let res = offer(&app, &admin, json!({"purpose": "car_photo", "contentType": "image/png",
                                             "size": png.len(), "carId": car})).await;
        let ticket: Value = res.json().await.expect("json");
        let url = ticket["url"].as_str().expect("url").to_owned();
        let client = reqwest::Client::new();
        let put = |url: String, content_type: &'static str, body: Vec<u8>| {
            client.put(url).header("Content-Type", content_type).body(body).send()
        };
        let forged = format!("{}0000", &url[..url.len() - 4]);
        assert_eq!(put(forged, "image/png", png.clone()).await.expect("answer").status(), StatusCode::FORBIDDEN);
        assert_eq!(put(url.clone(), "image/jpeg", png.clone()).await.expect("answer").status(), StatusCode::FORBIDDEN);
        let longer = format!("{}&expires=99999999999", url);
        assert_eq!(put(longer, "image/png", png.clone()).await.expect("answer").status(), StatusCode::FORBIDDEN);
        let mut more = png.clone();
        more.push(0);
        assert_eq!(put(url.clone(), "image/png", more).await.expect("answer").status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(put(url.clone(), "image/png", png).await.expect("answer").status(), StatusCode::NO_CONTENT);
        // The raw upload is private: no link without a signature reaches it.
        let raw = app.get(&format!("/media/uploads/{}", id_of(&ticket)), None).await;
        assert_eq!(raw.status(), StatusCode::NOT_FOUND);
        for path in ["/media/..%2f..%2fCargo.toml", "/media/cars/%2e%2e/x"] {
            assert!(matches!(app.get(path, None).await.status(), StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST), "{path}");
        }
    }
}

/// Runs botocore's signer over a presigned URL, perhaps altered; whether it still matches.
fn signature_matches(url: &str, headers: Value) -> bool {
    let python = std::env::var("TEST_S3_PYTHON").expect("TEST_S3_PYTHON with TEST_S3_URL");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/s3/sigv4.py");
    let input = json!({"url": url, "method": "PUT", "headers": headers, "accessKey": ACCESS_KEY,
                       "secretKey": SECRET_KEY, "region": REGION});
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("output");
    assert!(out.status.success(), "sigv4.py failed");
    let answer: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        answer["expected"].as_str().is_some_and(|s| s.len() == 64),
        "{answer}"
    );
    answer["given"] == answer["expected"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_puts_sign_type_length_and_expiry() {
    let Some(app) = app_on(Backend::Sqlite, Store::S3, &[]).await else {
        return;
    };
    let admin = app.admin_token().await;
    let car = id_of(&app.create_car(&admin, json!({})).await);
    let res = offer(
        &app,
        &admin,
        json!({"purpose": "car_photo", "contentType": "image/png",
                                         "size": 1234, "carId": car}),
    )
    .await;
    let ticket: Value = res.json().await.expect("json");
    let url = ticket["url"].as_str().expect("url");
    assert!(
        url.contains("X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost"),
        "{url}"
    );
    let sent = |t: &str, n: &str| json!({"Content-Type": t, "Content-Length": n});
    assert!(
        signature_matches(url, sent("image/png", "1234")),
        "the signature is SigV4's"
    );
    assert!(
        !signature_matches(url, sent("image/jpeg", "1234")),
        "another type"
    );
    assert!(
        !signature_matches(url, sent("image/png", "1235")),
        "another length"
    );
    let longer = url.replace("X-Amz-Expires=900", "X-Amz-Expires=3600");
    assert!(
        !signature_matches(&longer, sent("image/png", "1234")),
        "a longer life"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_is_down_stops_uploads_only() {
    if moto().is_none() {
        return;
    }
    let dead = format!("http://127.0.0.1:{}", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        l.local_addr().expect("addr").port()
    });
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("STORAGE_PROVIDER", "s3"),
            ("S3_ENDPOINT", &dead),
            ("S3_BUCKET", "gone"),
            ("S3_FORCE_PATH_STYLE", "true"),
            ("S3_ACCESS_KEY_ID", ACCESS_KEY),
            ("S3_SECRET_ACCESS_KEY", SECRET_KEY),
            ("APP__STORAGE__TIMEOUT", "1s"),
        ],
    )
    .await;
    let admin = app.admin_token().await;
    let car = id_of(&app.create_car(&admin, json!({})).await);
    let res = offer(
        &app,
        &admin,
        json!({"purpose": "car_photo", "contentType": "image/png",
                                         "size": 10, "carId": car}),
    )
    .await;
    assert_error(res, StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE").await;
    assert_eq!(
        app.get(&format!("/cars/{car}"), None).await.status(),
        StatusCode::OK
    );
    let ready: Value = app
        .get("/health/ready", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(ready["checks"]["storage"]["status"], "down", "{ready}");
}

/// A small PDF, as a scanned licence would start.
const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

/// Offers, sends and completes an upload of `purpose`; its id.
async fn completed(app: &TestApp, token: &str, mut body: Value, bytes: Vec<u8>) -> String {
    body["size"] = json!(bytes.len());
    let res = offer(app, token, body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let ticket: Value = res.json().await.expect("json");
    assert!(send(&ticket, bytes).await.is_success());
    let res = app
        .post(
            &format!("/uploads/{}/complete", id_of(&ticket)),
            &json!({}),
            Some(token),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    id_of(&ticket)
}

async fn user_id(app: &TestApp, token: &str) -> String {
    id_of(
        &app.get("/auth/me", Some(token))
            .await
            .json::<Value>()
            .await
            .expect("json"),
    )
}

storage_test! {
    async fn a_licence_is_private_and_checked_by_the_desk(backend, store) {
        let Some(app) = app_on(backend, store, &[]).await else { return };
        let admin = app.admin_token().await;
        let ada = app.customer_token().await;
        let ada_id = user_id(&app, &ada).await;
        let pdf = json!({"purpose": "licence", "contentType": "application/pdf"});
        let upload = completed(&app, &ada, pdf.clone(), PDF.to_vec()).await;

        assert_error(app.get("/me/licence", Some(&ada)).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        let bob = app.customer_token().await;
        let res = app.send(reqwest::Method::PUT, "/me/licence", &json!({"uploadId": upload}), Some(&bob)).await;
        assert_eq!(validation_fields(res).await, ["uploadId"], "someone else's upload");
        let res = app.send(reqwest::Method::PUT, "/me/licence", &json!({"uploadId": upload}), Some(&ada)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let licence: Value = res.json().await.expect("json");
        assert_eq!(licence["status"], "pending");
        let (status, _, bytes) = fetch(licence["url"].as_str().expect("url")).await;
        assert_eq!((status, bytes.as_slice()), (StatusCode::OK, PDF));
        let expires: chrono::DateTime<chrono::Utc> =
            licence["expiresAt"].as_str().expect("expiresAt").parse().expect("a time");
        assert!(expires - chrono::Utc::now() <= chrono::TimeDelta::seconds(300));
        if store == Store::Local {
            // Not reachable without its signature.
            let bare = licence["url"].as_str().expect("url").split('?').next().expect("path").to_owned();
            assert_eq!(fetch(&bare).await.0, StatusCode::NOT_FOUND);
        }
        assert_error(app.get("/me/licence", Some(&bob)).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;

        let desk = format!("/admin/users/{ada_id}/licence");
        assert_error(app.get(&desk, Some(&bob)).await, StatusCode::FORBIDDEN, "FORBIDDEN").await;
        let seen: Value = app.get(&desk, Some(&admin)).await.json().await.expect("json");
        assert_eq!(seen["status"], "pending");
        for body in [json!({"status": "pending"}), json!({}), json!({"status": "verified", "note": "x".repeat(501)})] {
            let res = app.post(&desk, &body, Some(&admin)).await;
            assert_eq!(validation_fields(res).await.len(), 1, "{body}");
        }
        let res = app.post(&desk, &json!({"status": "verified", "note": "Checked at the desk"}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let verified: Value = res.json().await.expect("json");
        assert_eq!((verified["status"].as_str(), verified["note"].as_str()), (Some("verified"), Some("Checked at the desk")));
        let bob_id = user_id(&app, &bob).await;
        assert_error(app.post(&format!("/admin/users/{bob_id}/licence"), &json!({"status": "verified"}), Some(&admin)).await,
                     StatusCode::NOT_FOUND, "NOT_FOUND").await;

        // A new licence (a photo this time) puts it back to pending.
        let photo = completed(&app, &ada, json!({"purpose": "licence", "contentType": "image/png"}), small_png()).await;
        let res = app.send(reqwest::Method::PUT, "/me/licence", &json!({"uploadId": photo}), Some(&ada)).await;
        let replaced: Value = res.json().await.expect("json");
        assert_eq!(replaced["status"], "pending");
        let (status, _, bytes) = fetch(replaced["url"].as_str().expect("url")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(image::load_from_memory_with_format(&bytes, ImageFormat::WebP).is_ok());
    }
}

db_test! {
    async fn a_pickup_can_require_a_verified_licence(backend) {
        let app = spawn_app_with(backend, &[("REQUIRE_VERIFIED_LICENCE", "true")]).await;
        let admin = app.admin_token().await;
        let ada = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let booking = id_of(&app.book(&ada, &car, days_ahead(1), 24).await.json::<Value>().await.expect("json"));
        let pickup = format!("/bookings/{booking}/pickup");
        let body = assert_error(app.post(&pickup, &json!({}), Some(&admin)).await, StatusCode::CONFLICT, "CONFLICT").await;
        assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("licence")), "{body}");
        let upload = completed(&app, &ada, json!({"purpose": "licence", "contentType": "application/pdf"}), PDF.to_vec()).await;
        let res = app.send(reqwest::Method::PUT, "/me/licence", &json!({"uploadId": upload}), Some(&ada)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_error(app.post(&pickup, &json!({}), Some(&admin)).await, StatusCode::CONFLICT, "CONFLICT").await;
        let ada_id = user_id(&app, &ada).await;
        let res = app.post(&format!("/admin/users/{ada_id}/licence"), &json!({"status": "verified"}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(app.post(&pickup, &json!({}), Some(&admin)).await.status(), StatusCode::OK);
    }
}

storage_test! {
    async fn damage_photos_go_with_the_return(backend, store) {
        let Some(app) = app_on(backend, store, &[]).await else { return };
        let admin = app.admin_token().await;
        let ada = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let booking = id_of(&app.book(&ada, &car, days_ahead(1), 24).await.json::<Value>().await.expect("json"));
        let damage = json!({"purpose": "damage_photo", "contentType": "image/png", "bookingId": booking, "size": 10});
        // Not picked up yet: no damage photos for it.
        assert_eq!(validation_fields(offer(&app, &admin, damage.clone()).await).await, ["bookingId"]);
        assert_eq!(app.post(&format!("/bookings/{booking}/pickup"), &json!({}), Some(&admin)).await.status(), StatusCode::OK);
        let photo = completed(&app, &admin, damage.clone(), small_png()).await;

        let other = id_of(&app.create_car(&admin, json!({})).await);
        let elsewhere = id_of(&app.book(&ada, &other, days_ahead(1), 24).await.json::<Value>().await.expect("json"));
        let unknown = uuid::Uuid::new_v4().to_string();
        let back = format!("/bookings/{booking}/return");
        let res = app.post(&back, &json!({"damages": [{"description": "Dent", "photoIds": [photo, unknown]}]}), Some(&admin)).await;
        assert_eq!(validation_fields(res).await, ["damages[0].photoIds[1]"]);
        let res = app.post(&back, &json!({"damages": [{"description": "Dent", "photoIds": [photo, photo]}]}), Some(&admin)).await;
        assert_eq!(validation_fields(res).await, ["damages[0].photoIds"]);
        let res = app.post(&format!("/bookings/{elsewhere}/return"), &json!({"damages": [{"description": "Dent", "photoIds": [photo]}]}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "another booking's photo");

        let res = app.post(&back, &json!({"damages": [{"description": "Dent", "photoIds": [photo]}]}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let returned: Value = res.json().await.expect("json");
        assert_eq!(returned["return"]["damages"][0]["photoIds"], json!([photo]));
        let shown: Value = app.get(&format!("/bookings/{booking}"), Some(&ada)).await.json().await.expect("json");
        let link = &shown["return"]["damages"][0]["photos"][0];
        assert_eq!(link["id"], photo.as_str());
        let (status, _, bytes) = fetch(link["url"].as_str().expect("url")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(image::load_from_memory_with_format(&bytes, ImageFormat::WebP).is_ok());
        let bob = app.customer_token().await;
        assert_error(app.get(&format!("/bookings/{booking}"), Some(&bob)).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    }
}

db_test! {
    local: async fn media_gc_lists_then_deletes_what_no_row_needs(backend) {
        let dir = tempfile::tempdir().expect("tempdir");
        let media = dir.path().to_string_lossy().into_owned();
        let app = spawn_app_with(backend, &[("MEDIA_DIR", &media)]).await;
        let admin = app.admin_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let photo = completed(&app, &admin, json!({"purpose": "car_photo", "contentType": "image/png", "carId": car}), small_png()).await;
        let res = app.post(&format!("/cars/{car}/photos"), &json!({"uploadId": photo}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        // Nobody attaches this one: its objects are garbage once old enough.
        completed(&app, &admin, json!({"purpose": "car_photo", "contentType": "image/jpeg", "carId": car}), photo_jpeg()).await;
        let two_days_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 86_400);
        let mut old = Vec::new();
        for entry in walk(dir.path()) {
            std::fs::File::options().append(true).open(&entry).expect("open")
                .set_modified(two_days_ago).expect("age it");
            old.push(entry);
        }
        let stray = dir.path().join("cars").join(&car).join("stray-large.webp");
        std::fs::write(&stray, b"fresh").expect("write");

        let gc = |apply: bool| {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_carrental"));
            cmd.args(["media", "gc"]).env("APP_ENV", "test")
                .env("APP_CONFIG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
                .env("DATABASE_URL", &app.db.url).env("MEDIA_DIR", &media).env("LOG_LEVEL", "error");
            if apply {
                cmd.arg("--apply");
            }
            let out = cmd.output().expect("the command runs");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let listed = gc(false);
        let garbage: Vec<&str> = listed.lines().filter_map(|l| l.split_whitespace().nth(1)).filter(|k| k.contains('/')).collect();
        assert_eq!(garbage.len(), 2, "the unused upload's two versions: {listed}");
        assert!(garbage.iter().all(|k| !k.contains("stray")), "too new to be garbage: {listed}");
        assert_eq!(walk(dir.path()).len(), old.len() + 1, "a dry run deletes nothing");
        let applied = gc(true);
        assert!(applied.contains("deleted 2 object(s)"), "{applied}");
        assert_eq!(walk(dir.path()).len(), old.len() - 1, "{applied}");
        let shown: Value = app.get(&format!("/cars/{car}"), None).await.json().await.expect("json");
        assert_eq!(fetch(shown["photos"][0]["url"].as_str().expect("url")).await.0, StatusCode::OK);
    }
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

db_test! {
    async fn uploads_never_completed_are_swept_with_their_objects(backend) {
        let dir = tempfile::tempdir().expect("tempdir");
        let media = dir.path().to_string_lossy().into_owned();
        let app = spawn_app_with(backend, &[("MEDIA_DIR", &media), ("APP__STORAGE__ABANDON_AFTER", "1s")]).await;
        let admin = app.admin_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let png = small_png();
        let res = offer(&app, &admin, json!({"purpose": "car_photo", "contentType": "image/png",
                                             "size": png.len(), "carId": car})).await;
        let ticket: Value = res.json().await.expect("json");
        assert!(send(&ticket, png).await.is_success());
        assert_eq!(walk(dir.path()).len(), 1, "the bytes are stored");
        let mut swept = false;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if walk(dir.path()).is_empty() {
                swept = true;
                break;
            }
        }
        assert!(swept, "the abandoned upload's object is deleted");
        let res = app.post(&format!("/uploads/{}/complete", id_of(&ticket)), &json!({}), Some(&admin)).await;
        assert_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    }
}

storage_test! {
    async fn deleting_a_car_deletes_its_photos_objects(backend, store) {
        let Some(app) = app_on(backend, store, &[]).await else { return };
        let admin = app.admin_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let upload = completed(&app, &admin, json!({"purpose": "car_photo", "contentType": "image/png", "carId": car}), small_png()).await;
        let res = app.post(&format!("/cars/{car}/photos"), &json!({"uploadId": upload}), Some(&admin)).await;
        let photo: Value = res.json().await.expect("json");
        let urls = [photo["url"].as_str().expect("url").to_owned(), photo["thumbUrl"].as_str().expect("thumbUrl").to_owned()];
        for url in &urls {
            assert_eq!(fetch(url).await.0, StatusCode::OK);
        }
        let res = app.send(reqwest::Method::DELETE, &format!("/cars/{car}"), &json!(null), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        for url in &urls {
            let mut gone = false;
            for _ in 0..50 {
                if fetch(url).await.0 == StatusCode::NOT_FOUND {
                    gone = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            assert!(gone, "{url} is deleted with the car");
        }
    }
}

/// A TCP proxy in front of moto that the test can cut: down, it drops every connection,
/// open ones included, as a store that went away would.
struct Cut {
    address: String,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Cut {
    async fn to(target: &str) -> Cut {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = format!("http://{}", listener.local_addr().expect("addr"));
        let target = target.trim_start_matches("http://").to_owned();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let open = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (flag, tasks) = (up.clone(), open.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !flag.load(std::sync::atomic::Ordering::SeqCst) {
                    continue;
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut store) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut store).await;
                    }
                });
                tasks.lock().expect("lock").push(task.abort_handle());
            }
        });
        Cut { address, up, open }
    }

    fn set(&self, up: bool) {
        self.up.store(up, std::sync::atomic::Ordering::SeqCst);
        if !up {
            for task in self.open.lock().expect("lock").drain(..) {
                task.abort();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_waits_for_a_store_that_is_down() {
    let Some(moto_url) = moto() else { return };
    let cut = Cut::to(&moto_url).await;
    let bucket = format!("carrental-{}", uuid::Uuid::new_v4().simple());
    let res = reqwest::Client::new()
        .put(format!("{moto_url}/{bucket}"))
        .header("x-amz-acl", "public-read")
        .send()
        .await
        .expect("moto");
    assert!(res.status().is_success());
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("STORAGE_PROVIDER", "s3"),
            ("S3_ENDPOINT", &cut.address),
            ("S3_BUCKET", &bucket),
            ("S3_REGION", REGION),
            ("S3_FORCE_PATH_STYLE", "true"),
            ("S3_ACCESS_KEY_ID", ACCESS_KEY),
            ("S3_SECRET_ACCESS_KEY", SECRET_KEY),
            ("APP__STORAGE__TIMEOUT", "1s"),
        ],
    )
    .await;
    let admin = app.admin_token().await;
    let car = id_of(&app.create_car(&admin, json!({})).await);
    let upload = completed(
        &app,
        &admin,
        json!({"purpose": "car_photo", "contentType": "image/png", "carId": car}),
        small_png(),
    )
    .await;
    let res = app
        .post(
            &format!("/cars/{car}/photos"),
            &json!({"uploadId": upload}),
            Some(&admin),
        )
        .await;
    let photo: Value = res.json().await.expect("json");
    // Read straight from moto, past the cut.
    let object = photo["url"]
        .as_str()
        .expect("url")
        .replace(&cut.address, &moto_url);
    assert_eq!(fetch(&object).await.0, StatusCode::OK);

    cut.set(false);
    let res = app
        .send(
            reqwest::Method::DELETE,
            &format!("/cars/{car}/photos/{upload}"),
            &json!(null),
            Some(&admin),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::NO_CONTENT,
        "the photo goes at once, its objects later"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        fetch(&object).await.0,
        StatusCode::OK,
        "kept while the store is unreachable"
    );
    cut.set(true);
    let mut gone = false;
    for _ in 0..100 {
        if fetch(&object).await.0 == StatusCode::NOT_FOUND {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(gone, "deleted once the store answers again");
}

storage_test! {
    async fn leaving_takes_the_licence_and_its_documents(backend, store) {
        let Some(app) = app_on(backend, store, &[]).await else { return };
        let admin = app.admin_token().await;
        let ada = app.customer_token().await;
        let ada_id = user_id(&app, &ada).await;
        let upload = completed(&app, &ada, json!({"purpose": "licence", "contentType": "application/pdf"}), PDF.to_vec()).await;
        let res = app.send(reqwest::Method::PUT, "/me/licence", &json!({"uploadId": upload}), Some(&ada)).await;
        let licence: Value = res.json().await.expect("json");
        let url = licence["url"].as_str().expect("url").to_owned();
        assert_eq!(fetch(&url).await.0, StatusCode::OK);

        let res = app.send(reqwest::Method::DELETE, "/auth/me", &json!({"password": PASSWORD}), Some(&ada)).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        let desk = format!("/admin/users/{ada_id}/licence");
        assert_error(app.get(&desk, Some(&admin)).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while fetch(&url).await.0 == StatusCode::OK && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_ne!(fetch(&url).await.0, StatusCode::OK, "the document's object is deleted");
    }
}
