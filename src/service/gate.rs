//! Who may call (SPEC §9): signature, time window and nonce, kind and
//! scopes, rate limit, checked in that order; and the audit trail of
//! decodes, transcodes and refusals. A refused request has no effect.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;

use super::nonces::{Nonces, Refused};
use super::ServiceError;
use crate::clock::SharedClock;
use crate::domain::app::{AppKind, Scopes, Service};
use crate::domain::{CityNo, IdcardNo, SceneCode, TargetType};
use crate::signing::{self, SignMethod, Signed};
use crate::store::{AppRecord, AuditRecord, Store};

/// The time window of a signed request, either side of the node's clock.
pub const WINDOW_MS: i64 = 300_000;
/// Most nonces remembered at once (10 to 20 bytes each: 80 MB at most);
/// beyond it, 4029. It covers 13,000 signed requests per second for a
/// whole window.
const NONCE_CAP: usize = 4_000_000;

/// The five signature headers of a request, as sent (absent = `None`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SignatureHeaders<'a> {
    pub app_id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub sign_method: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub app_id: String,
    pub kind: AppKind,
    pub scopes: Scopes,
    rate_limit: u32,
}

impl Caller {
    /// The caller when authentication is off (`AKM_AUTH=off`): may do anything.
    pub fn anyone() -> Self {
        Caller {
            app_id: String::new(),
            kind: AppKind::Operator,
            scopes: Scopes::default(),
            rate_limit: 0,
        }
    }
}

/// Token bucket of one app.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

/// The caller checks of one node.
#[derive(Debug)]
pub struct Gate {
    store: Store,
    clock: SharedClock,
    /// `false` only with `AKM_AUTH=off`.
    pub enforce: bool,
    hasher: std::collections::hash_map::RandomState,
    nonces: Mutex<Nonces>,
    buckets: Mutex<HashMap<String, Bucket>>,
    /// Key of the residents' pseudonyms in audit records.
    subject_key: Vec<u8>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Gate {
    /// `app_id` as a metrics label: itself when it is a registered app,
    /// else `unknown` (a stranger's made-up ids do not grow the label set).
    pub fn app_label<'a>(&self, app_id: &'a str) -> &'a str {
        match self.store.app(app_id) {
            Ok(Some(_)) => app_id,
            _ => "unknown",
        }
    }

    pub fn new(store: Store, clock: SharedClock, enforce: bool, subject_key: Vec<u8>) -> Self {
        Gate {
            store,
            clock,
            enforce,
            hasher: std::collections::hash_map::RandomState::new(),
            nonces: Mutex::new(Nonces::new(WINDOW_MS, NONCE_CAP)),
            buckets: Mutex::new(HashMap::new()),
            subject_key,
        }
    }

    /// Check the signature (4010), then the time window and the nonce
    /// (4011). `path` is without the query, `query` without `?`.
    pub fn verify(
        &self,
        h: &SignatureHeaders<'_>,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
    ) -> Result<Caller, ServiceError> {
        use ServiceError::Unauthorized as U;
        let (Some(app_id), Some(timestamp), Some(nonce), Some(signature)) =
            (h.app_id, h.timestamp, h.nonce, h.signature)
        else {
            return Err(U(
                "缺少签名请求头X-Akm-App-Id、X-Akm-Timestamp、X-Akm-Nonce或X-Akm-Signature",
            ));
        };
        let sign_method = match h.sign_method {
            None => SignMethod::HmacSha256,
            Some(m) => {
                SignMethod::parse(m).ok_or(U("X-Akm-Sign-Method应为HMAC-SHA256或HMAC-SM3"))?
            }
        };
        if !signing::app_id_ok(app_id) {
            return Err(U("X-Akm-App-Id格式错误"));
        }
        if !signing::nonce_ok(nonce) {
            return Err(U("X-Akm-Nonce应为16至64位字母、数字、下划线或连字符"));
        }
        let ts: i64 = timestamp
            .parse()
            .map_err(|_| U("X-Akm-Timestamp应为毫秒时间戳"))?;
        let app = self.store.app(app_id)?.ok_or(U("应用未注册"))?;
        let canonical = Signed {
            method,
            path,
            query,
            app_id,
            timestamp,
            nonce,
            body,
        }
        .canonical(sign_method);
        let good = app
            .secrets
            .iter()
            .any(|s| sign_method.verify(&s.secret, &canonical, signature));
        if !good {
            return Err(U("签名错误"));
        }
        let now = self.clock.now_ms();
        if (now - ts).abs() > WINDOW_MS {
            return Err(ServiceError::Replayed("时间戳超出±300秒窗口"));
        }
        self.remember_nonce(app_id, nonce, ts, now)?;
        Ok(caller(app))
    }

    /// A dashboard sign-in with an operator app's id and one of its active
    /// secrets (4010 otherwise); the app id.
    pub fn operator_by_secret(&self, app_id: &str, secret: &str) -> Result<String, ServiceError> {
        let app = self.operator(app_id)?;
        if !app
            .secrets
            .iter()
            .any(|s| SignMethod::same_secret(&s.secret, secret))
        {
            return Err(ServiceError::Unauthorized("应用ID或密钥错误"));
        }
        Ok(app.app_id)
    }

    /// A dashboard sign-in link: signed under one of the operator app's
    /// secrets ([`signing::dashboard_link_text`]), not expired, and
    /// expiring within `max_ms` (4010 otherwise); the app id.
    pub fn operator_by_link(
        &self,
        app_id: &str,
        expires_ms: i64,
        signature: &str,
        max_ms: i64,
    ) -> Result<String, ServiceError> {
        let app = self.operator(app_id)?;
        let text = signing::dashboard_link_text(app_id, expires_ms);
        if !app
            .secrets
            .iter()
            .any(|s| SignMethod::HmacSha256.verify(&s.secret, &text, signature))
        {
            return Err(ServiceError::Unauthorized("链接签名错误"));
        }
        let now = self.clock.now_ms();
        if expires_ms <= now || expires_ms > now + max_ms {
            return Err(ServiceError::Unauthorized("链接已过期"));
        }
        Ok(app.app_id)
    }

    fn operator(&self, app_id: &str) -> Result<AppRecord, ServiceError> {
        match self.store.app(app_id)? {
            Some(app) if app.kind == AppKind::Operator => Ok(app),
            _ => Err(ServiceError::Unauthorized("应用ID或密钥错误")),
        }
    }

    fn remember_nonce(
        &self,
        app_id: &str,
        nonce: &str,
        ts: i64,
        now: i64,
    ) -> Result<(), ServiceError> {
        let mut h = self.hasher.build_hasher();
        h.write(app_id.as_bytes());
        h.write_u8(0);
        h.write(nonce.as_bytes());
        let key = h.finish();
        match lock(&self.nonces).take(key, ts, now) {
            Ok(()) => Ok(()),
            Err(Refused::Replayed) => Err(ServiceError::Replayed("随机数X-Akm-Nonce已使用")),
            Err(Refused::Full) => Err(ServiceError::RateLimited),
        }
    }

    /// The caller's kind may call `service` (else 4013).
    pub fn check_kind(&self, c: &Caller, service: Service) -> Result<(), ServiceError> {
        if !self.enforce || c.kind.may_call(service) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "应用类型{}无权调用{}",
                c.kind.as_str(),
                service.as_str()
            )))
        }
    }

    /// Scopes cover the request's cityNo and targetType (else 4013), then
    /// the rate limit (else 4029).
    pub fn authorize(
        &self,
        c: &Caller,
        city: Option<&CityNo>,
        target: Option<&TargetType>,
    ) -> Result<(), ServiceError> {
        if !self.enforce {
            return Ok(());
        }
        if !c.scopes.allows(city, target) {
            return Err(ServiceError::Forbidden(format!(
                "应用{}无权访问地市{}或目标码类型{}",
                c.app_id,
                city.map(CityNo::as_str).unwrap_or("-"),
                target.map(TargetType::as_str).unwrap_or("-")
            )));
        }
        self.rate(c)
    }

    /// The caller's token bucket (rate per second, burst of one second).
    pub fn rate(&self, c: &Caller) -> Result<(), ServiceError> {
        if !self.enforce || c.rate_limit == 0 {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let rate = f64::from(c.rate_limit);
        let mut buckets = lock(&self.buckets);
        let b = buckets.entry(c.app_id.clone()).or_insert(Bucket {
            tokens: rate,
            at_ms: now,
        });
        let elapsed = (now - b.at_ms).max(0) as f64 / 1000.0;
        b.tokens = (b.tokens + elapsed * rate).min(rate);
        b.at_ms = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(ServiceError::RateLimited)
        }
    }

    /// The resident's pseudonym for audit records.
    pub fn subject(&self, idcard_no: &IdcardNo) -> String {
        super::trade::pseudonym(&self.subject_key, "subject", idcard_no.expose())
    }

    /// Append an audit record; a failure is logged, never answered.
    pub fn audit(&self, e: AuditEntry<'_>) {
        let r = AuditRecord {
            time: self.clock.now_ms(),
            app_id: e.app_id.to_string(),
            service: e.service.as_str().to_string(),
            city_no: e.city.map(|c| c.to_string()).unwrap_or_default(),
            target_type: e.target.map(|t| t.to_string()).unwrap_or_default(),
            scene_code: e.scene.map(|s| s.to_string()).unwrap_or_default(),
            terminal_id: e.terminal_id.chars().take(64).collect(),
            operator: e.operator.chars().take(64).collect(),
            subject_id: e.subject_id.to_string(),
            err_code: e.err_code.to_string(),
        };
        self.store.append_audit(r);
    }
}

/// What an audit record says.
#[derive(Debug, Clone, Copy)]
pub struct AuditEntry<'a> {
    pub app_id: &'a str,
    pub service: Service,
    pub city: Option<&'a CityNo>,
    pub target: Option<&'a TargetType>,
    pub scene: Option<SceneCode>,
    pub terminal_id: &'a str,
    pub operator: &'a str,
    pub subject_id: &'a str,
    pub err_code: &'a str,
}

fn caller(app: AppRecord) -> Caller {
    Caller {
        app_id: app.app_id,
        kind: app.kind,
        scopes: app.scopes,
        rate_limit: app.rate_limit,
    }
}
