//! The webhook sink: one POST per block, the batch's JSON ([`Batch::body`])
//! as the body, signed with the Standard Webhooks scheme:
//!
//! | header | value |
//! |---|---|
//! | `webhook-id` | [`Batch::idempotency_key`]: the same on every retry and runner |
//! | `webhook-timestamp` | seconds since the Unix epoch, of this attempt |
//! | `webhook-signature` | `v1,` + base64 of HMAC-SHA256(key, `"{id}.{timestamp}.{body}"`) |
//!
//! The key is the secret's bytes: the secret is `whsec_` + base64 (the
//! Standard Webhooks convention), read from the environment variable the
//! spec names (`secret-env=VAR`), never from the command line.
//!
//! Answers: 2xx acknowledges; 408, 429 and 5xx are transient (retried with
//! backoff); any other status is permanent (a few attempts, then the sink is
//! `failed`); a connection error or a timeout is transient. Redirects are
//! not followed (a redirect must not lead around the host allow-list).
//! Batches without records are acknowledged without a request.
//!
//! The signature is HMAC-SHA256 from the RustCrypto `hmac` and `sha2` crates
//! (already in the tree through the TLS stack) and base64 from `base64`;
//! [`sign`] and [`verify`] are the whole scheme, so receivers written in Rust
//! can use them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use reqwest::{StatusCode, header};
use sha2::Sha256;

use crate::{Batch, BoxFuture, BuildError, DeliveryError, Sink, SinkCursor, SinkSpec};

/// The secret prefix of the Standard Webhooks convention.
pub const SECRET_PREFIX: &str = "whsec_";

/// A signing key, from a `whsec_BASE64` secret (the prefix is optional).
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

impl SigningKey {
    /// Decodes `secret` (`whsec_` + standard base64 of at least 1 byte).
    ///
    /// # Errors
    /// Why it is not one, as text.
    pub fn from_secret(secret: &str) -> Result<Self, String> {
        let b64 = secret
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .unwrap_or(secret.trim());
        let key = STANDARD
            .decode(b64)
            .map_err(|e| format!("not base64 after {SECRET_PREFIX}: {e}"))?;
        if key.is_empty() {
            return Err("empty key".into());
        }
        Ok(Self(key))
    }

    /// The key's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The `webhook-signature` value for `id`, `timestamp` and `body`:
/// `v1,` + base64 HMAC-SHA256 of `"{id}.{timestamp}.{body}"`.
pub fn sign(key: &SigningKey, id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key.0).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Checks a request as a receiver does: one of the space-separated
/// `signatures` is a valid `v1` signature (compared in constant time), and
/// `timestamp` is within `tolerance` of `now` (seconds since the epoch).
///
/// # Errors
/// What is wrong, as text.
pub fn verify(
    key: &SigningKey,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: u64,
    tolerance: Duration,
) -> Result<(), String> {
    let ts: u64 = timestamp
        .parse()
        .map_err(|_| format!("webhook-timestamp {timestamp:?} is not a number"))?;
    if ts.abs_diff(now) > tolerance.as_secs() {
        return Err(format!(
            "webhook-timestamp {ts} is more than {tolerance:?} from now ({now})"
        ));
    }
    for sig in signatures.split(' ') {
        let Some(b64) = sig.strip_prefix("v1,") else {
            continue;
        };
        let Ok(given) = STANDARD.decode(b64) else {
            continue;
        };
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&key.0).expect("HMAC takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        if mac.verify_slice(&given).is_ok() {
            return Ok(());
        }
    }
    Err("no valid v1 signature".into())
}

/// Posts each batch to one URL.
#[derive(Debug)]
pub struct WebhookSink {
    url: reqwest::Url,
    described: String,
    key: SigningKey,
    client: reqwest::Client,
}

impl WebhookSink {
    /// The sink `spec` describes, its key read from `spec.secret_env`.
    ///
    /// # Errors
    /// [`BuildError::SecretMissing`], [`BuildError::SecretInvalid`], or the
    /// HTTP client could not be built.
    pub fn from_spec(spec: &SinkSpec) -> Result<Self, BuildError> {
        let var = spec.secret_env.clone().unwrap_or_default();
        let secret = std::env::var(&var).map_err(|_| BuildError::SecretMissing {
            sink: spec.name.clone(),
            var: var.clone(),
        })?;
        let key = SigningKey::from_secret(&secret).map_err(|reason| BuildError::SecretInvalid {
            sink: spec.name.clone(),
            var,
            reason,
        })?;
        Self::new(spec, key)
    }

    /// The sink `spec` describes, signing with `key`.
    ///
    /// # Errors
    /// The HTTP client could not be built.
    pub fn new(spec: &SinkSpec, key: SigningKey) -> Result<Self, BuildError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(spec.timeout)
            .user_agent(concat!("xxfunc-sinks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| BuildError::Client {
                sink: spec.name.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            url: spec.target.clone(),
            described: spec.redacted(),
            key,
            client,
        })
    }

    async fn post(&self, batch: &Batch) -> Result<(), DeliveryError> {
        if batch.records.is_empty() {
            return Ok(());
        }
        let id = batch.idempotency_key();
        let body = batch.body_bytes();
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let signature = sign(&self.key, &id, timestamp, &body);
        let answer = self
            .client
            .post(self.url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        let response = match answer {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Err(DeliveryError::transient(
                    &self.described,
                    "no answer in time",
                ));
            }
            Err(e) => {
                return Err(DeliveryError::transient(
                    &self.described,
                    format!("request failed: {}", error_chain(&e)),
                ));
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let text: String = text.chars().take(200).collect();
        let message = format!("answered {status} {text}").trim_end().to_string();
        if classify(status) {
            Err(DeliveryError::permanent(&self.described, message))
        } else {
            Err(DeliveryError::transient(&self.described, message))
        }
    }
}

/// Whether a non-2xx status is a permanent refusal.
fn classify(status: StatusCode) -> bool {
    !(status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl Sink for WebhookSink {
    fn describe(&self) -> String {
        self.described.clone()
    }

    fn open(&mut self) -> BoxFuture<'_, Result<Option<SinkCursor>, DeliveryError>> {
        Box::pin(async { Ok(None) })
    }

    fn deliver<'a>(&'a mut self, batch: &'a Batch) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(self.post(batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's test suite.
    #[test]
    fn signature_matches_the_specification_example() {
        let key = SigningKey::from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        verify(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            &format!("v1,bogus {sig}"),
            body,
            1614265330 + 10,
            Duration::from_secs(300),
        )
        .unwrap();
        let other = SigningKey::from_secret("whsec_b3RoZXI=").unwrap();
        assert!(
            verify(
                &other,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                "1614265330",
                &sig,
                body,
                1614265330,
                Duration::from_secs(300)
            )
            .is_err()
        );
        assert!(
            verify(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                "1614265330",
                &sig,
                body,
                1614265330 + 301,
                Duration::from_secs(300)
            )
            .is_err()
        );
        assert!(SigningKey::from_secret("whsec_!!").is_err());
    }

    #[test]
    fn statuses_are_classified() {
        assert!(!classify(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(!classify(StatusCode::BAD_GATEWAY));
        assert!(!classify(StatusCode::REQUEST_TIMEOUT));
        assert!(!classify(StatusCode::TOO_MANY_REQUESTS));
        assert!(classify(StatusCode::GONE));
        assert!(classify(StatusCode::UNAUTHORIZED));
        assert!(classify(StatusCode::BAD_REQUEST));
        // A redirect is not followed, and not a success either.
        assert!(classify(StatusCode::FOUND));
    }
}
