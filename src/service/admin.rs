//! The admin services (SPEC §7): residents and their fused cards
//! (province) and transcode configs (both roles). Each write is flushed
//! before it is answered, and goes to every instance of the scope
//! (`reference.rs`).

use super::reference::{Change, Reference};
use super::ServiceError;
use crate::domain::resident::{FusedCard, Resident, TranscodeConfig};
use crate::domain::ParseError;
use crate::domain::{IdcardNo, TargetType};
use crate::store::Store;

/// Writes of the admin API.
#[derive(Debug, Clone)]
pub struct Admin {
    pub store: Store,
    /// Where admin writes go: every instance of the scope.
    pub reference: Reference,
    /// `AKM_CARD_HOSTS`: the hosts a config's targetUrl may name; `None` = any.
    pub card_hosts: Option<Vec<String>>,
}

/// Whether `url`'s host (and port) is on the allow-list: `host`,
/// `host:port` or `*.domain` entries.
pub fn host_allowed(url: &str, allowed: &[String]) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    let Some(host) = u.host_str().map(str::to_ascii_lowercase) else {
        return false;
    };
    let port = u.port_or_known_default().unwrap_or(0);
    allowed.iter().any(|entry| {
        let entry = entry.trim().to_ascii_lowercase();
        if let Some(domain) = entry.strip_prefix("*.") {
            host.ends_with(&format!(".{domain}"))
        } else if let Some((h, p)) = entry.rsplit_once(':') {
            h == host && p.parse::<u16>().ok() == Some(port)
        } else {
            entry == host
        }
    })
}

impl Admin {
    pub async fn put_resident(&self, r: &Resident) -> Result<(), ServiceError> {
        self.reference
            .write(Change::Resident {
                resident: r.clone(),
            })
            .await?;
        self.store.sync().await?;
        tracing::info!(idcard = %r.idcard_no, "resident saved");
        Ok(())
    }

    pub async fn put_card(
        &self,
        idcard: &IdcardNo,
        target: &TargetType,
        card: &FusedCard,
    ) -> Result<(), ServiceError> {
        if self.store.resident(idcard)?.is_none() {
            return Err(ParseError::malformed("idcardNo", "居民不存在，请先创建居民").into());
        }
        self.reference
            .write(Change::Card {
                idcard_no: idcard.clone(),
                target_type: target.to_string(),
                card: card.clone(),
            })
            .await?;
        self.store.sync().await?;
        Ok(())
    }

    pub async fn put_config(&self, c: &TranscodeConfig) -> Result<(), ServiceError> {
        if let Some(hosts) = &self.card_hosts {
            if !host_allowed(&c.target_url, hosts) {
                return Err(
                    ParseError::malformed("targetUrl", "主机不在AKM_CARD_HOSTS允许列表中").into(),
                );
            }
        }
        self.reference
            .write(Change::Config { config: c.clone() })
            .await?;
        self.store.sync().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::host_allowed;

    #[test]
    fn the_card_host_allow_list_takes_hosts_ports_and_wildcards() {
        let list: Vec<String> = ["cards.example", "10.0.0.5:8443", "*.hefei.gov.cn"]
            .map(String::from)
            .to_vec();
        assert!(host_allowed("https://cards.example/gen", &list));
        assert!(host_allowed("https://10.0.0.5:8443/x", &list));
        assert!(!host_allowed("https://10.0.0.5:8444/x", &list));
        assert!(host_allowed("http://ehc.hefei.gov.cn/x", &list));
        assert!(!host_allowed("http://hefei.gov.cn.evil.example/x", &list));
        assert!(!host_allowed("http://evil.example/x", &list));
    }
}
