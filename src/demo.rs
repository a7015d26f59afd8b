//! Demo data for `akm serve --role all`: target configs for the spec's
//! target types, three residents, their cards in the card simulator, a
//! terminal app and a card-system app at the city, and a fresh QR code with
//! a ready-to-paste signed `akm call`. Runs beside
//! `startup` (after it), never inside it.

use crate::clock;
use crate::config::Settings;
use crate::domain::app::{AppId, AppKind, Scopes};
use crate::domain::resident::{FusedCard, Resident, TranscodeConfig};
use crate::domain::{CityNo, IdcardNo, PersonName, Phone, TargetType};
use crate::service::apps::{generate_secret, Apps};
use crate::service::qr::QrRequest;
use crate::startup::Platform;

/// Demo residents: (ID number, name, phone, health level, universal authorization).
pub const RESIDENTS: &[(&str, &str, &str, &str, bool)] = &[
    ("340102199003073238", "张三", "15665439684", "1", true),
    ("340104198805121234", "李四", "13955110000", "2", true),
    ("34011119770101111X", "王五", "18655120000", "1", false),
];

fn scenes_for(t: &str) -> &'static str {
    match (t, &t[4..]) {
        ("3400001", _) => "01001,01002,01003,01005,01006,02002",
        ("3400004", _) => "04001,04002,04003,04004",
        ("3402050", _) => "02001",
        (_, "002") => "01001,01002,01003,01004,01006",
        (_, "003") => "01001,01003,01005,01006",
        _ => "",
    }
}

/// The demo's apps at the city, re-keyed on every start (a secret is shown once).
pub const TERMINAL_APP: &str = "demo-terminal";
pub const CARD_APP: &str = "demo-card-system";

/// What the demo prints: a ready-to-paste signed transcode, and the
/// card-system app a reader can post callbacks with.
#[derive(Debug, Clone)]
pub struct Demo {
    /// `akm call …` as a terminal.
    pub call: String,
    pub card_app: String,
    pub card_secret: String,
}

/// Seed (when asked, or when the province holds nothing yet), flush, and
/// return what to print.
pub async fn seed(p: &Platform, settings: &Settings) -> anyhow::Result<Option<Demo>> {
    let (Some(province), Some(city), Some(card), Some(qr)) =
        (&p.province, &p.city, &p.card_sim, &p.qr)
    else {
        return Ok(None);
    };
    if settings.demo == Some(false) {
        return Ok(None);
    }
    if settings.demo == Some(true) || province.store.is_empty() {
        seed_stores(p, &settings.city_no)?;
    }
    // The simulator keeps cards in memory: give them again on every start,
    // and print a fresh QR code when the demo resident is on file.
    let (zhang, ..) = RESIDENTS[0];
    let zhang_id = IdcardNo::parse(zhang)?;
    if province.store.resident(&zhang_id)?.is_none() {
        return Ok(None);
    }
    let city_no = &settings.city_no;
    let health = TargetType::parse(&format!("{}002", city_no.region()))?;
    let social = TargetType::parse("3400001")?;
    for (t, id) in [(&health, "EHC-0001"), (&social, "SSC-0001")] {
        card.add_card(zhang, t.as_str(), id, "");
    }
    card.add_card(RESIDENTS[1].0, health.as_str(), "EHC-0002", "");
    let issued = qr
        .issue(&QrRequest {
            idcard_no: zhang_id,
            city: CityNo::province(),
            auth_type: "2".into(),
            auth_object: "face-demo".into(),
            ttl: None,
            is_self: true,
        })
        .await?;
    province.store.sync().await?;
    city.store.sync().await?;
    let apps = Apps {
        store: city.store.clone(),
        clock: clock::system(),
        reference: city.reference.clone(),
    };
    let scopes = Scopes::parse(&[city_no.region().to_string()], &[])?;
    let terminal_secret = generate_secret();
    apps.ensure(
        &AppId::parse(TERMINAL_APP)?,
        AppKind::Terminal,
        scopes.clone(),
        &terminal_secret,
    )
    .await?;
    let card_secret = generate_secret();
    apps.ensure(
        &AppId::parse(CARD_APP)?,
        AppKind::CardSystem,
        scopes,
        &card_secret,
    )
    .await?;
    let city_addr = city.addr;
    let body = serde_json::json!({
        "cityNo": city_no.as_str()[..6].to_string(),
        "qrCodeUrl": issued.qr_code_url,
        "targetType": health.as_str(),
        "sceneCode": "01002",
    });
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "akm".into());
    Ok(Some(Demo {
        call: format!(
            "{exe} call --app {TERMINAL_APP} --secret {terminal_secret} POST http://{city_addr}/api/v1/transcode '{body}'"
        ),
        card_app: CARD_APP.to_string(),
        card_secret,
    }))
}

/// Configs, residents and fused cards of the demo.
fn seed_stores(p: &Platform, city_no: &CityNo) -> anyhow::Result<()> {
    let (Some(province), Some(city), Some(card)) = (&p.province, &p.city, &p.card_sim) else {
        return Ok(());
    };
    for t in TargetType::all_builtin() {
        let region = &t.as_str()[..4];
        let area = if t.as_str().starts_with("3400") || t.as_str() == "3402050" {
            CityNo::province()
        } else {
            CityNo::parse(&format!("{region}00"))?
        };
        let c = TranscodeConfig {
            belongarea: area.to_string(),
            target_name: t.builtin_name().unwrap_or_default(),
            target_type: t.to_string(),
            target_url: card.url(t.as_str()),
            scene_code: scenes_for(t.as_str()).to_string(),
        };
        province.store.put_config(&c)?;
        if region == city_no.region() || t.as_str().starts_with("3400") {
            city.store.put_config(&TranscodeConfig {
                belongarea: city_no.prefecture().to_string(),
                ..c
            })?;
        }
    }
    for (id, name, phone, level, auth) in RESIDENTS {
        province.store.put_resident(&Resident {
            idcard_no: IdcardNo::parse(id)?,
            name: PersonName::parse(name)?,
            user_phone: Phone::parse(phone)?,
            health_level: level.to_string(),
            data_source: "1".into(),
            universal_auth: *auth,
        })?;
    }
    let (zhang, ..) = RESIDENTS[0];
    let health = TargetType::parse(&format!("{}002", city_no.region()))?;
    let social = TargetType::parse("3400001")?;
    for (t, id) in [(&health, "EHC-0001"), (&social, "SSC-0001")] {
        province.store.put_card(
            &IdcardNo::parse(zhang)?,
            t,
            &FusedCard {
                target_id: id.into(),
                target_object: String::new(),
            },
        )?;
    }
    Ok(())
}
