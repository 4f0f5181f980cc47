//! Web Push to browsers: the payload encrypted for the subscription (RFC 8291, `aes128gcm`
//! of RFC 8188) and the sender identified by a VAPID JWT (RFC 8292), posted to the push
//! service as RFC 8030 says. On RustCrypto (p256, hkdf, aes-gcm), the curve jsonwebtoken
//! already brings; why not the `web-push` crate, DESIGN.md says.

use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hkdf::Hkdf;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use rand::RngCore;
use sha2::Sha256;

/// The record size announced: one record holds any payload we send (at most 3,000 bytes).
const RECORD_SIZE: u32 = 4096;
/// How long a push service keeps a message for an offline device.
const TTL: Duration = Duration::from_secs(24 * 3600);
/// VAPID tokens live this long (RFC 8292 allows at most 24 hours).
const VAPID_LIFETIME: i64 = 12 * 3600;

/// The application server's VAPID key pair and contact.
pub struct Vapid {
    key: SigningKey,
    /// base64url of the uncompressed public point, as `k=` and `GET /notifications/vapid-public-key` give it.
    public: String,
    subject: String,
}

impl Vapid {
    /// From the settings; `None` when no key is set (Web Push is then off). A public key
    /// that is not the private key's is refused at start rather than at the first push.
    pub fn from_settings(public: &str, private: &str, subject: &str) -> Result<Option<Vapid>, String> {
        if public.is_empty() && private.is_empty() {
            return Ok(None);
        }
        let scalar = decode(private).map_err(|e| format!("VAPID_PRIVATE_KEY: {e}"))?;
        let secret = SecretKey::from_slice(&scalar)
            .map_err(|_| "VAPID_PRIVATE_KEY: not a P-256 private key (32 bytes)".to_owned())?;
        let derived = secret.public_key().to_encoded_point(false);
        let given = decode(public).map_err(|e| format!("VAPID_PUBLIC_KEY: {e}"))?;
        if given.as_slice() != derived.as_bytes() {
            return Err("VAPID_PUBLIC_KEY is not the public key of VAPID_PRIVATE_KEY".into());
        }
        Ok(Some(Vapid {
            key: SigningKey::from(secret),
            public: B64.encode(derived.as_bytes()),
            subject: subject.to_owned(),
        }))
    }

    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// `Authorization: vapid t=<JWT>, k=<public key>` for a push to `endpoint`.
    pub fn authorization(&self, endpoint: &url::Url, now: i64) -> String {
        let audience = endpoint.origin().ascii_serialization();
        let header = B64.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({
            "aud": audience, "exp": now + VAPID_LIFETIME, "sub": self.subject,
        });
        let claims = B64.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let signature: Signature = self.key.sign(signing_input.as_bytes());
        let jwt = format!("{signing_input}.{}", B64.encode(signature.to_bytes()));
        format!("vapid t={jwt}, k={}", self.public)
    }
}

/// base64url, with or without padding (browsers' `toJSON()` gives it without).
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    B64.decode(text.trim().trim_end_matches('='))
        .map_err(|e| format!("not base64url: {e}"))
}

/// A subscription's keys, checked: `p256dh` a P-256 point, `auth` 16 bytes.
pub fn check_keys(p256dh: &str, auth: &str) -> Result<(), (&'static str, String)> {
    let point = decode(p256dh).map_err(|e| ("keys.p256dh", e))?;
    PublicKey::from_sec1_bytes(&point)
        .map_err(|_| ("keys.p256dh", "must be a P-256 public key".to_owned()))?;
    let secret = decode(auth).map_err(|e| ("keys.auth", e))?;
    if secret.len() != 16 {
        return Err(("keys.auth", "must be 16 bytes".into()));
    }
    Ok(())
}

/// `payload` encrypted for the browser holding `p256dh`/`auth` (RFC 8291): one `aes128gcm`
/// record under a fresh key pair and salt.
pub fn encrypt(payload: &[u8], p256dh: &str, auth: &str) -> Result<Vec<u8>, String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    seal(payload, p256dh, auth, &random_secret(), salt)
}

/// [`encrypt`] with the sender's key and salt given (RFC 8291's example fixes both).
fn seal(payload: &[u8], p256dh: &str, auth: &str, ephemeral: &SecretKey, salt: [u8; 16]) -> Result<Vec<u8>, String> {
    let ua_public_bytes = decode(p256dh)?;
    let ua_public = PublicKey::from_sec1_bytes(&ua_public_bytes)
        .map_err(|_| "p256dh is not a P-256 point".to_owned())?;
    let auth_secret = decode(auth)?;
    let as_public = ephemeral.public_key().to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), ua_public.as_affine());
    let ua_public_bytes = ua_public.to_encoded_point(false);

    // RFC 8291 §3.4: the input keying material from the shared secret and the auth secret.
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(ua_public_bytes.as_bytes());
    key_info.extend_from_slice(as_public.as_bytes());
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&auth_secret), shared.raw_secret_bytes())
        .expand(&key_info, &mut ikm)
        .map_err(|e| format!("HKDF: {e}"))?;

    // RFC 8188 §2.2–2.3: the content key and nonce from the salt.
    let prk = Hkdf::<Sha256>::new(Some(&salt), &ikm);
    let mut cek = [0u8; 16];
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .and_then(|()| prk.expand(b"Content-Encoding: nonce\0", &mut nonce))
        .map_err(|e| format!("HKDF: {e}"))?;

    // One record, the last: the payload then the delimiter 0x02.
    let mut record = payload.to_vec();
    record.push(2);
    let sealed = Aes128Gcm::new_from_slice(&cek)
        .map_err(|e| format!("AES-GCM key: {e}"))?
        .encrypt(Nonce::from_slice(&nonce), record.as_slice())
        .map_err(|e| format!("AES-GCM: {e}"))?;

    let mut body = Vec::with_capacity(16 + 4 + 1 + 65 + sealed.len());
    body.extend_from_slice(&salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(65);
    body.extend_from_slice(as_public.as_bytes());
    body.extend_from_slice(&sealed);
    Ok(body)
}

/// A fresh P-256 key from the process's CSPRNG (a 32-byte draw is a valid scalar but for a
/// chance of about 2^-32; draw again then).
fn random_secret() -> SecretKey {
    loop {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        if let Ok(secret) = SecretKey::from_slice(&bytes) {
            return secret;
        }
    }
}

/// What a push service said.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Accepted,
    /// 404 or 410: the subscription is gone; delete it.
    Gone,
    /// 429 or 5xx, or no answer: try again later.
    Retry(String),
    /// Any other refusal: trying again will not help.
    Refused(String),
}

/// Posts one encrypted message to a subscription's endpoint.
pub async fn send(
    client: &reqwest::Client,
    vapid: &Vapid,
    endpoint: &str,
    body: Vec<u8>,
    urgency: &str,
) -> Pushed {
    let Ok(url) = url::Url::parse(endpoint) else {
        return Pushed::Refused(format!("not a URL: {endpoint}"));
    };
    let now = crate::time::now().timestamp();
    let sent = client
        .post(url.clone())
        .header("TTL", TTL.as_secs().to_string())
        .header("Urgency", urgency)
        .header("Content-Encoding", "aes128gcm")
        .header("Content-Type", "application/octet-stream")
        .header("Authorization", vapid.authorization(&url, now))
        .body(body)
        .send()
        .await;
    match sent {
        Err(e) => Pushed::Retry(format!("push service: {e}")),
        Ok(res) => {
            let status = res.status();
            let text = res.text().await.unwrap_or_default();
            let said = format!("push service answered {status}: {}", text.chars().take(200).collect::<String>());
            match status.as_u16() {
                200..=299 => Pushed::Accepted,
                404 | 410 => Pushed::Gone,
                429 | 500..=599 => Pushed::Retry(said),
                _ => Pushed::Refused(said),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (String, String) {
        let secret = random_secret();
        let public = B64.encode(secret.public_key().to_encoded_point(false).as_bytes());
        (public, B64.encode(secret.to_bytes()))
    }

    #[test]
    fn a_vapid_pair_must_match() {
        let (public, private) = keys();
        let (other, _) = keys();
        assert!(Vapid::from_settings(&public, &private, "mailto:a@b.c").unwrap().is_some());
        assert!(Vapid::from_settings(&other, &private, "mailto:a@b.c").is_err());
        assert!(Vapid::from_settings("", "", "").unwrap().is_none());
    }

    #[test]
    fn the_vapid_token_names_the_endpoints_origin_and_verifies() {
        let (public, private) = keys();
        let vapid = Vapid::from_settings(&public, &private, "mailto:ops@x.io").unwrap().unwrap();
        let url = url::Url::parse("https://push.example.net:8443/wpush/v2/abc").unwrap();
        let auth = vapid.authorization(&url, 1_000);
        let (t, k) = auth
            .strip_prefix("vapid t=")
            .and_then(|r| r.split_once(", k="))
            .unwrap();
        assert_eq!(k, public);
        let (input, sig) = t.rsplit_once('.').unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&B64.decode(input.split('.').nth(1).unwrap()).unwrap()).unwrap();
        assert_eq!(claims["aud"], "https://push.example.net:8443");
        assert_eq!(claims["exp"], 1_000 + VAPID_LIFETIME);
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&decode(k).unwrap()).unwrap();
        let sig = Signature::from_slice(&B64.decode(sig).unwrap()).unwrap();
        use p256::ecdsa::signature::Verifier;
        key.verify(input.as_bytes(), &sig).unwrap();
    }

    /// RFC 8291, Appendix A: the same keys and salt give the same message, byte for byte.
    #[test]
    fn rfc_8291s_example_encrypts_to_the_same_bytes() {
        let as_private = SecretKey::from_slice(&decode("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw").unwrap()).unwrap();
        let salt: [u8; 16] = decode("DGv6ra1nlYgDCS1FRnbzlw").unwrap().try_into().unwrap();
        let body = seal(
            b"When I grow up, I want to be a watermelon",
            "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
            "BTBZMqHH6r4Tts7J_aSIgg",
            &as_private,
            salt,
        )
        .unwrap();
        assert_eq!(
            B64.encode(body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
    }

    #[test]
    fn the_body_has_the_rfc_8188_header() {
        let (public, _) = keys();
        let auth = B64.encode([7u8; 16]);
        let body = encrypt(b"hello", &public, &auth).unwrap();
        assert_eq!(&body[16..20], &RECORD_SIZE.to_be_bytes());
        assert_eq!(body[20], 65);
        assert_eq!(body[21], 4, "an uncompressed point");
        // Payload, delimiter and the 16-byte tag.
        assert_eq!(body.len(), 16 + 4 + 1 + 65 + 5 + 1 + 16);
    }
}
