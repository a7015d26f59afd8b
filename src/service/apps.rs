//! The apps admin (SPEC §9): register and update callers, rotate their
//! secrets (at most two active), list them without secrets, remove them.
//! A secret is answered once, when it is made, and never logged.

use serde::Serialize;

use super::reference::{Change, Reference};
use super::ServiceError;
use crate::clock::SharedClock;
use crate::domain::app::{AppId, AppKind, Scopes};
use crate::domain::ParseError;
use crate::store::{AppRecord, AppSecret, Store};

/// A parsed `PUT /admin/v1/apps/{appId}` body.
#[derive(Debug, Clone)]
pub struct AppInput {
    pub kind: AppKind,
    pub scopes: Scopes,
    pub rate_limit: u32,
}

/// A secret as answered once.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSecret {
    pub secret_id: String,
    pub secret: String,
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecret")
            .field("secret_id", &self.secret_id)
            .finish_non_exhaustive()
    }
}

/// An app as listed: no secrets, only their ids.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppView {
    pub app_id: String,
    pub kind: AppKind,
    pub city_nos: Vec<String>,
    pub target_types: Vec<String>,
    pub rate_limit: u32,
    pub secret_ids: Vec<String>,
}

/// The apps admin service.
#[derive(Debug, Clone)]
pub struct Apps {
    pub store: Store,
    pub clock: SharedClock,
    /// Where app writes go: every instance of the scope.
    pub reference: Reference,
}

/// A fresh secret: 32 random bytes as 64 hex characters.
pub fn generate_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn secret_id() -> String {
    format!("s{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

impl Apps {
    fn stored(&self, secret: String, id: String) -> AppSecret {
        AppSecret {
            secret_id: id,
            secret,
            created_at: self.clock.now_ms(),
        }
    }

    /// Create (answering the first secret) or update (secrets unchanged).
    pub async fn put(
        &self,
        id: &AppId,
        input: AppInput,
    ) -> Result<Option<NewSecret>, ServiceError> {
        let (record, new) = match self.store.app(id.as_str())? {
            Some(old) => (
                AppRecord {
                    kind: input.kind,
                    scopes: input.scopes,
                    rate_limit: input.rate_limit,
                    ..old
                },
                None,
            ),
            None => {
                let s = self.stored(generate_secret(), secret_id());
                let new = NewSecret {
                    secret_id: s.secret_id.clone(),
                    secret: s.secret.clone(),
                };
                (
                    AppRecord {
                        app_id: id.to_string(),
                        kind: input.kind,
                        scopes: input.scopes,
                        rate_limit: input.rate_limit,
                        secrets: vec![s],
                    },
                    Some(new),
                )
            }
        };
        self.reference
            .write(Change::App {
                app: record.clone(),
            })
            .await?;
        self.store.sync().await?;
        tracing::info!(app_id = %id, kind = record.kind.as_str(), created = new.is_some(), "app saved");
        Ok(new)
    }

    /// Register (or re-key) an app with a known secret: the bootstrap
    /// operator app, and the city's own app at the province in role `all`.
    pub async fn ensure(
        &self,
        id: &AppId,
        kind: AppKind,
        scopes: Scopes,
        secret: &str,
    ) -> Result<(), ServiceError> {
        let mut record = self.store.app(id.as_str())?.unwrap_or(AppRecord {
            app_id: id.to_string(),
            kind,
            scopes: scopes.clone(),
            rate_limit: 0,
            secrets: Vec::new(),
        });
        record.kind = kind;
        record.scopes = scopes;
        record.secrets.retain(|s| s.secret_id != "bootstrap");
        record
            .secrets
            .insert(0, self.stored(secret.to_string(), "bootstrap".into()));
        record.secrets.truncate(2);
        self.reference
            .write(Change::App {
                app: record.clone(),
            })
            .await?;
        self.store.sync().await?;
        Ok(())
    }

    fn existing(&self, id: &AppId) -> Result<AppRecord, ServiceError> {
        self.store
            .app(id.as_str())?
            .ok_or_else(|| ParseError::malformed("appId", "应用不存在").into())
    }

    /// A second secret for rotation; a third is refused (4001).
    pub async fn add_secret(&self, id: &AppId) -> Result<NewSecret, ServiceError> {
        let mut record = self.existing(id)?;
        if record.secrets.len() >= 2 {
            return Err(ParseError::malformed("secrets", "已有两个有效密钥，请先停用一个").into());
        }
        let s = self.stored(generate_secret(), secret_id());
        let new = NewSecret {
            secret_id: s.secret_id.clone(),
            secret: s.secret.clone(),
        };
        record.secrets.push(s);
        self.reference
            .write(Change::App {
                app: record.clone(),
            })
            .await?;
        self.store.sync().await?;
        tracing::info!(app_id = %id, secret_id = %new.secret_id, "app secret added");
        Ok(new)
    }

    /// Retire a secret.
    pub async fn retire_secret(&self, id: &AppId, secret: &str) -> Result<(), ServiceError> {
        let mut record = self.existing(id)?;
        let before = record.secrets.len();
        record.secrets.retain(|s| s.secret_id != secret);
        if record.secrets.len() == before {
            return Err(ParseError::malformed("secretId", "密钥不存在").into());
        }
        self.reference
            .write(Change::App {
                app: record.clone(),
            })
            .await?;
        self.store.sync().await?;
        tracing::info!(app_id = %id, secret_id = secret, "app secret retired");
        Ok(())
    }

    pub fn list(&self) -> Result<Vec<AppView>, ServiceError> {
        Ok(self
            .store
            .apps()?
            .into_iter()
            .map(|a| AppView {
                app_id: a.app_id,
                kind: a.kind,
                city_nos: a.scopes.city_nos,
                target_types: a.scopes.target_types,
                rate_limit: a.rate_limit,
                secret_ids: a.secrets.into_iter().map(|s| s.secret_id).collect(),
            })
            .collect())
    }

    pub async fn remove(&self, id: &AppId) -> Result<(), ServiceError> {
        if self.store.app(id.as_str())?.is_none() {
            return Err(ParseError::malformed("appId", "应用不存在").into());
        }
        self.reference
            .write(Change::AppRemoved {
                app_id: id.to_string(),
            })
            .await?;
        self.store.sync().await?;
        tracing::info!(app_id = %id, "app removed");
        Ok(())
    }
}
