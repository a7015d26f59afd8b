//! The dashboard's operator sessions: a random token in an HttpOnly
//! cookie, held in this instance's memory for [`SESSION`] (behind a
//! balancer, an operator's browser stays on the instance that signed it
//! in, or signs in again), and the sign-in links already used (a link
//! works once).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a session lasts.
pub const SESSION: Duration = Duration::from_secs(3600);
/// How far ahead a sign-in link may expire.
pub const LINK_MAX: Duration = Duration::from_secs(15 * 60);
/// The cookie's name.
pub const COOKIE: &str = "akm_session";

/// The sessions of one node.
#[derive(Debug, Default)]
pub struct Sessions {
    /// token -> (operator app, until)
    open: Mutex<HashMap<String, (String, Instant)>>,
    /// link signature -> until (a used link is refused until it expires)
    used: Mutex<HashMap<String, Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sessions {
    /// A new session of `app`: its token.
    pub fn open(&self, app: String) -> String {
        let mut token = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut token);
        let token = hex::encode(token);
        let now = Instant::now();
        let mut open = lock(&self.open);
        open.retain(|_, (_, until)| *until > now);
        open.insert(token.clone(), (app, now + SESSION));
        token
    }

    /// The operator app of a live session.
    pub fn app(&self, token: &str) -> Option<String> {
        let open = lock(&self.open);
        open.get(token)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(app, _)| app.clone())
    }

    /// End a session.
    pub fn close(&self, token: &str) {
        lock(&self.open).remove(token);
    }

    /// Whether this is the first use of the link signed `signature`.
    pub fn first_use(&self, signature: &str) -> bool {
        let now = Instant::now();
        let mut used = lock(&self.used);
        used.retain(|_, until| *until > now);
        used.insert(signature.to_string(), now + LINK_MAX).is_none()
    }
}

/// The session token in a `Cookie` header, if any.
pub fn token_of(cookie_header: &str) -> Option<&str> {
    cookie_header
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_close_and_links_work_once() {
        let s = Sessions::default();
        let t = s.open("ops".into());
        assert_eq!(s.app(&t).as_deref(), Some("ops"));
        assert_eq!(s.app("nope"), None);
        s.close(&t);
        assert_eq!(s.app(&t), None);
        assert!(s.first_use("sig"));
        assert!(!s.first_use("sig"));
        assert_eq!(token_of("a=1; akm_session=abc; b=2"), Some("abc"));
        assert_eq!(token_of("a=1"), None);
    }
}
