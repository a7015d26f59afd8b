//! Admin API (SPEC §7): residents, fused cards, QR issuing (province) and
//! transcode configs, apps and the audit trail (both roles). Only operator
//! apps reach these handlers (`edge.rs`).

use std::sync::Arc;

use std::collections::HashMap;

use axum::extract::{Path, Query, State};

use super::state::{NodeApi, ProvinceApi};
use super::{ApiError, Body};
use crate::domain::app::AppId;
use crate::domain::resident::{FusedCard, Resident, TranscodeConfig};
use crate::domain::{IdcardNo, ParseError, TargetType};
use crate::protocol::Envelope;
use crate::service::apps::{AppInput, AppView, NewSecret};
use crate::service::qr::{Issued, QrRequest};
use crate::service::stats::StatsQuery;
use crate::store::{AuditFilter, AuditRecord, StatsRow};

/// `PUT /admin/v1/residents`
pub async fn put_resident(
    State(api): State<Arc<ProvinceApi>>,
    Body(r): Body<Resident>,
) -> Result<Envelope<Resident>, ApiError> {
    api.admin.put_resident(&r).await?;
    Ok(Envelope::ok(r, "保存成功"))
}

/// `PUT /admin/v1/residents/{idcardNo}/cards/{targetType}`
pub async fn put_card(
    State(api): State<Arc<ProvinceApi>>,
    Path((idcard, target)): Path<(String, String)>,
    Body(card): Body<FusedCard>,
) -> Result<Envelope<FusedCard>, ApiError> {
    let idcard = IdcardNo::parse(&idcard)?;
    let target = TargetType::parse(&target)?;
    api.admin.put_card(&idcard, &target, &card).await?;
    Ok(Envelope::ok(card, "保存成功"))
}

/// `POST /admin/v1/qrcodes`
pub async fn issue(
    State(api): State<Arc<ProvinceApi>>,
    Body(r): Body<QrRequest>,
) -> Result<Envelope<Issued>, ApiError> {
    Ok(Envelope::ok(api.qr.issue_durable(&r).await?, "亮码成功"))
}

/// `PUT /admin/v1/transcode-configs`
pub async fn put_config(
    State(api): State<Arc<NodeApi>>,
    Body(c): Body<TranscodeConfig>,
) -> Result<Envelope<TranscodeConfig>, ApiError> {
    api.admin.put_config(&c).await?;
    Ok(Envelope::ok(c, "保存成功"))
}

/// `PUT /admin/v1/apps/{appId}`: create (answers the secret, once) or update.
pub async fn put_app(
    State(api): State<Arc<NodeApi>>,
    Path(id): Path<String>,
    Body(input): Body<AppInput>,
) -> Result<Envelope<Option<NewSecret>>, ApiError> {
    let id = AppId::parse(&id)?;
    let created = api.apps.put(&id, input).await?;
    let msg = if created.is_some() {
        "应用已创建，密钥仅显示一次"
    } else {
        "应用已更新"
    };
    Ok(Envelope::ok(created, msg))
}

/// `POST /admin/v1/apps/{appId}/secrets`: a second secret for rotation.
pub async fn add_secret(
    State(api): State<Arc<NodeApi>>,
    Path(id): Path<String>,
) -> Result<Envelope<NewSecret>, ApiError> {
    let id = AppId::parse(&id)?;
    Ok(Envelope::ok(
        api.apps.add_secret(&id).await?,
        "密钥已创建，仅显示一次",
    ))
}

/// `DELETE /admin/v1/apps/{appId}/secrets/{secretId}`: retire a secret.
pub async fn retire_secret(
    State(api): State<Arc<NodeApi>>,
    Path((id, secret)): Path<(String, String)>,
) -> Result<Envelope<()>, ApiError> {
    let id = AppId::parse(&id)?;
    api.apps.retire_secret(&id, &secret).await?;
    Ok(Envelope::done("密钥已停用"))
}

/// `GET /admin/v1/apps`: the apps, without secrets.
pub async fn list_apps(
    State(api): State<Arc<NodeApi>>,
) -> Result<Envelope<Vec<AppView>>, ApiError> {
    Ok(Envelope::ok(api.apps.list()?, "查询成功"))
}

/// `DELETE /admin/v1/apps/{appId}`.
pub async fn remove_app(
    State(api): State<Arc<NodeApi>>,
    Path(id): Path<String>,
) -> Result<Envelope<()>, ApiError> {
    let id = AppId::parse(&id)?;
    api.apps.remove(&id).await?;
    Ok(Envelope::done("应用已删除"))
}

fn ms_param(q: &HashMap<String, String>, name: &'static str) -> Result<Option<i64>, ParseError> {
    q.get(name)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| ParseError::malformed(name, "应为毫秒时间戳"))
        })
        .transpose()
}

/// `GET /admin/v1/stats?from=YYYYMMDD&to=YYYYMMDD&cityNo=PREFIX`: the
/// node's per-day counters (统计考核) of transcodes (by errCode) and, at
/// the province, trades (by tradeState).
pub async fn stats(
    State(api): State<Arc<NodeApi>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Envelope<Vec<StatsRow>>, ApiError> {
    let get = |k: &str| q.get(k).map(String::as_str);
    let query = StatsQuery::parse(get("from"), get("to"), get("cityNo"))?;
    let rows = crate::service::stats::query(&api.admin.store, &query)?;
    Ok(Envelope::ok(rows, "查询成功"))
}

/// `GET /admin/v1/audit?idcardNo=&appId=&from=&to=&limit=`: newest first;
/// `idcardNo` is matched through its pseudonym and never stored.
pub async fn audit(
    State(api): State<Arc<NodeApi>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Envelope<Vec<AuditRecord>>, ApiError> {
    let subject_id = match q.get("idcardNo").filter(|v| !v.is_empty()) {
        Some(id) => Some(api.gate.subject(&IdcardNo::parse(id)?)),
        None => None,
    };
    let app_id = match q.get("appId").filter(|v| !v.is_empty()) {
        Some(a) => Some(AppId::parse(a)?.to_string()),
        None => None,
    };
    let limit = match q.get("limit").filter(|v| !v.is_empty()) {
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ParseError::malformed("limit", "应为1至1000"))?,
        None => 100,
    };
    let filter = AuditFilter {
        subject_id,
        app_id,
        from_ms: ms_param(&q, "from")?,
        to_ms: ms_param(&q, "to")?,
        limit,
    };
    let records = api
        .admin
        .store
        .audit(&filter)
        .map_err(crate::service::ServiceError::from)?;
    Ok(Envelope::ok(records, "查询成功"))
}
