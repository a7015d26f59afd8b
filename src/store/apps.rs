//! Registered apps (SPEC §9): kind, scopes, rate limit and one or two
//! active secrets, keyed by appId, sealed at rest. A secret's `Debug`
//! never shows it.

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::domain::app::{AppKind, Scopes};

/// One active secret of an app.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppSecret {
    pub secret_id: String,
    pub secret: String,
    pub created_at: i64,
}

impl std::fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSecret")
            .field("secret_id", &self.secret_id)
            .finish_non_exhaustive()
    }
}

/// An app as the node keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRecord {
    pub app_id: String,
    pub kind: AppKind,
    pub scopes: Scopes,
    /// Requests per second; 0 = no limit.
    pub rate_limit: u32,
    pub secrets: Vec<AppSecret>,
}

impl Store {
    /// The app (cached unsealed in memory: every signed request reads it;
    /// every write here clears the cache).
    pub fn app(&self, app_id: &str) -> Result<Option<AppRecord>, StoreError> {
        self.app_cache.get_or(app_id.to_string(), || {
            self.apps
                .get(app_id.as_bytes())?
                .map(|v| self.unseal(&v))
                .transpose()
        })
    }

    pub fn put_app(&self, a: &AppRecord) -> Result<(), StoreError> {
        self.apps.insert(a.app_id.as_bytes(), self.seal(a)?)?;
        self.app_cache.clear();
        Ok(())
    }

    /// Remove an app; whether it existed.
    pub fn remove_app(&self, app_id: &str) -> Result<bool, StoreError> {
        let existed = self.apps.remove(app_id.as_bytes())?.is_some();
        self.app_cache.clear();
        Ok(existed)
    }

    pub fn apps(&self) -> Result<Vec<AppRecord>, StoreError> {
        self.apps
            .iter()
            .map(|item| {
                let (_, v) = item?;
                self.unseal(&v)
            })
            .collect()
    }
}
