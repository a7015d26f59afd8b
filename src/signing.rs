//! Request signatures (SPEC §9): the canonical string, the body digest and
//! the HMAC (HMAC-SHA256, or HMAC-SM3 with the national hash), verified in
//! constant time. Used by the node to check callers, by a city to sign its
//! calls to the province, by `akm call`, and by vendors' and our tests.

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use sm3::Sm3;

/// The caller's app id.
pub const H_APP_ID: &str = "X-Akm-App-Id";
/// Milliseconds since the Unix epoch.
pub const H_TIMESTAMP: &str = "X-Akm-Timestamp";
/// 16–64 of `[A-Za-z0-9_-]`, fresh per request.
pub const H_NONCE: &str = "X-Akm-Nonce";
/// `HMAC-SHA256` (default when absent) or `HMAC-SM3`.
pub const H_SIGN_METHOD: &str = "X-Akm-Sign-Method";
/// Lowercase hex HMAC of the canonical string.
pub const H_SIGNATURE: &str = "X-Akm-Signature";

/// How a request is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignMethod {
    #[default]
    HmacSha256,
    HmacSm3,
}

impl SignMethod {
    /// The header value; `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "HMAC-SHA256" => Some(SignMethod::HmacSha256),
            "HMAC-SM3" => Some(SignMethod::HmacSm3),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SignMethod::HmacSha256 => "HMAC-SHA256",
            SignMethod::HmacSm3 => "HMAC-SM3",
        }
    }

    /// Lowercase hex digest of `body` (SHA-256 or SM3).
    pub fn body_digest(self, body: &[u8]) -> String {
        match self {
            SignMethod::HmacSha256 => hex::encode(Sha256::digest(body)),
            SignMethod::HmacSm3 => hex::encode(Sm3::digest(body)),
        }
    }

    /// The keyed MAC of `data`, ready to finalize or verify.
    fn keyed<M: Mac + KeyInit>(secret: &str, data: &str) -> Option<M> {
        let mut m = <M as Mac>::new_from_slice(secret.as_bytes()).ok()?;
        m.update(data.as_bytes());
        Some(m)
    }

    /// Whether two secrets are the same, in constant time (their MACs of
    /// a fixed text are compared, never the secrets byte by byte).
    pub fn same_secret(a: &str, b: &str) -> bool {
        const PROBE: &str = "akm-secret-equality";
        SignMethod::HmacSha256.verify(a, PROBE, &SignMethod::HmacSha256.sign(b, PROBE))
    }

    /// The lowercase hex signature of a canonical string.
    pub fn sign(self, secret: &str, canonical: &str) -> String {
        // HMAC takes keys of any length: `keyed` cannot fail.
        let tag = match self {
            SignMethod::HmacSha256 => Self::keyed::<Hmac<Sha256>>(secret, canonical)
                .map(|m| m.finalize().into_bytes().to_vec()),
            SignMethod::HmacSm3 => Self::keyed::<Hmac<Sm3>>(secret, canonical)
                .map(|m| m.finalize().into_bytes().to_vec()),
        };
        hex::encode(tag.unwrap_or_default())
    }

    /// Whether `signature_hex` is the signature of `canonical` under
    /// `secret`, compared in constant time.
    pub fn verify(self, secret: &str, canonical: &str, signature_hex: &str) -> bool {
        let Ok(given) = hex::decode(signature_hex) else {
            return false;
        };
        match self {
            SignMethod::HmacSha256 => Self::keyed::<Hmac<Sha256>>(secret, canonical)
                .is_some_and(|m| m.verify_slice(&given).is_ok()),
            SignMethod::HmacSm3 => Self::keyed::<Hmac<Sm3>>(secret, canonical)
                .is_some_and(|m| m.verify_slice(&given).is_ok()),
        }
    }
}

/// The parts of a request the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub method: &'a str,
    /// The path as sent, without the query string.
    pub path: &'a str,
    /// The query string as sent, without `?` (empty when none).
    pub query: &'a str,
    pub app_id: &'a str,
    pub timestamp: &'a str,
    pub nonce: &'a str,
    pub body: &'a [u8],
}

impl Signed<'_> {
    /// The seven lines joined by `\n`, no trailing newline.
    pub fn canonical(&self, m: SignMethod) -> String {
        [
            self.method.to_ascii_uppercase().as_str(),
            self.path,
            self.query,
            self.app_id,
            self.timestamp,
            self.nonce,
            &m.body_digest(self.body),
        ]
        .join("\n")
    }
}

/// Whether a nonce is well formed: 16–64 of `[A-Za-z0-9_-]`.
pub fn nonce_ok(n: &str) -> bool {
    (16..=64).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether an appId is well formed: 1–64 of `[A-Za-z0-9._-]`.
pub fn app_id_ok(a: &str) -> bool {
    (1..=64).contains(&a.len())
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A fresh nonce.
pub fn fresh_nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Signs requests as one app.
#[derive(Clone)]
pub struct Signer {
    pub app_id: String,
    secret: String,
    pub method: SignMethod,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("app_id", &self.app_id)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub fn new(app_id: impl Into<String>, secret: impl Into<String>, method: SignMethod) -> Self {
        Signer {
            app_id: app_id.into(),
            secret: secret.into(),
            method,
        }
    }

    /// The five headers for a request at `now_ms` with a fresh nonce.
    pub fn headers(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
        now_ms: i64,
    ) -> Vec<(&'static str, String)> {
        let timestamp = now_ms.to_string();
        let nonce = fresh_nonce();
        let canonical = Signed {
            method,
            path,
            query,
            app_id: &self.app_id,
            timestamp: &timestamp,
            nonce: &nonce,
            body,
        }
        .canonical(self.method);
        vec![
            (H_APP_ID, self.app_id.clone()),
            (H_TIMESTAMP, timestamp),
            (H_NONCE, nonce),
            (H_SIGN_METHOD, self.method.as_str().to_string()),
            (H_SIGNATURE, self.method.sign(&self.secret, &canonical)),
        ]
    }

    /// The headers for a full URL (`http://host/path?query`).
    pub fn headers_for_url(
        &self,
        method: &str,
        url: &str,
        body: &[u8],
        now_ms: i64,
    ) -> Vec<(&'static str, String)> {
        let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
        let path_and_query = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        self.headers(method, path, query, body, now_ms)
    }
}

/// What a dashboard sign-in link signs (HMAC-SHA256 under an operator
/// app's secret): the app and when the link expires (Unix ms).
pub fn dashboard_link_text(app_id: &str, expires_ms: i64) -> String {
    format!("akm-dashboard\n{app_id}\n{expires_ms}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"cityNo":"340100","qrCodeUrl":"https://akm.ahzwfw.gov.cn/akm-sj-mgr/index.html#/myAkm?isScan=1&id=akm:qrcode:9ec1b6b993b74b8687b06db24ad36d1b&cityNo=340000000000","targetType":"3401002","sceneCode":"01002"}"#;

    fn example() -> Signed<'static> {
        Signed {
            method: "POST",
            path: "/api/v1/transcode",
            query: "",
            app_id: "hf-terminal-01",
            timestamp: "1593343465000",
            nonce: "n0nce-7f3a9c2e41d8",
            body: BODY.as_bytes(),
        }
    }

    /// SPEC §9's worked example, both methods.
    #[test]
    fn the_worked_example_of_the_spec() {
        let secret = "0123456789abcdef0123456789abcdef";
        let sha = SignMethod::HmacSha256;
        assert_eq!(
            sha.body_digest(BODY.as_bytes()),
            "8416ab27c8b2c5ba4a1de08b3f8d4a840c779921e24a8682e91bbab5a1b53f4b"
        );
        let c = example().canonical(sha);
        assert_eq!(
            sha.sign(secret, &c),
            "c16300d2acbd7ae3c3435fdbd05228481720c7b50382f341f47dbed3b9e1bad6"
        );
        assert!(sha.verify(
            secret,
            &c,
            "c16300d2acbd7ae3c3435fdbd05228481720c7b50382f341f47dbed3b9e1bad6"
        ));
        let sm3 = SignMethod::HmacSm3;
        assert_eq!(
            sm3.body_digest(BODY.as_bytes()),
            "f5ba7966b2b3043222b71758695cc4b560e311a9d524c28b39905b808577f7d4"
        );
        let c = example().canonical(sm3);
        assert_eq!(
            sm3.sign(secret, &c),
            "d3b8efb32281f6862493141bae0cb58fab080f852a2c7b99290e79386aeb6cb2"
        );
        assert!(!sm3.verify(
            "another-secret",
            &c,
            "d3b8efb32281f6862493141bae0cb58fab080f852a2c7b99290e79386aeb6cb2"
        ));
        assert!(!sm3.verify(secret, &c, "not hex"));
    }

    #[test]
    fn nonces_and_app_ids_have_their_shapes() {
        assert!(nonce_ok("n0nce-7f3a9c2e41d8") && nonce_ok(&fresh_nonce()));
        assert!(!nonce_ok("short") && !nonce_ok("n0nce 7f3a9c2e41d8xx"));
        assert!(app_id_ok("hf-terminal-01") && !app_id_ok("a b") && !app_id_ok(""));
    }

    #[test]
    fn url_headers_split_path_and_query() {
        let s = Signer::new("a", "k", SignMethod::HmacSha256);
        let h = s.headers_for_url("GET", "http://h:1/admin/v1/audit?appId=x&limit=5", b"", 1);
        let (ts, nonce) = (&h[1].1, &h[2].1);
        let c = Signed {
            method: "GET",
            path: "/admin/v1/audit",
            query: "appId=x&limit=5",
            app_id: "a",
            timestamp: ts,
            nonce,
            body: b"",
        }
        .canonical(SignMethod::HmacSha256);
        assert!(SignMethod::HmacSha256.verify("k", &c, &h[4].1));
    }
}
