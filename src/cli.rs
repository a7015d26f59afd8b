//! The CLI commands behind `akm` (main.rs parses, these run).

use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use akm::bus::{BusConsumer, KafkaBus, Message, Topics};
use akm::config::Settings;
use akm::crypto::{CipherKind, DataKey, Keyring};
use akm::domain::resident::Resident;
use akm::durability::Durable;
use akm::signing::{SignMethod, Signer};
use akm::sim::{CardSim, PushSim};
use akm::store::Store;
use akm::Roles;

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

pub async fn serve(settings: Settings, role: Roles) -> anyhow::Result<()> {
    let platform = akm::start(settings.clone(), role).await?;
    if role == Roles::All {
        if let Some(demo) = akm::demo::seed(&platform, &settings).await? {
            println!(
                "\nDemo data is loaded. Try a signed transcode as the demo terminal (the QR code is fresh for a few minutes):\n\n{}\n\nThe demo card system is app {} with secret {} (shown once; new on every start).\n",
                demo.call, demo.card_app, demo.card_secret
            );
        }
    }
    tracing::info!(roles = ?role, "platform ready");
    shutdown_signal().await;
    tracing::info!("shutting down");
    platform.shutdown().await;
    Ok(())
}

pub async fn sim(settings: Settings) -> anyhow::Result<()> {
    let card = CardSim::start(tokio::net::TcpListener::bind(&settings.sim_card_listen).await?)?;
    let push = PushSim::start(tokio::net::TcpListener::bind(&settings.sim_push_listen).await?)?;
    tracing::info!(addr = %card.addr, "card-system simulator ready");
    tracing::info!(addr = %push.addr, "push-gateway simulator ready");
    shutdown_signal().await;
    Ok(())
}

pub async fn import(settings: Settings, file: &Path) -> anyhow::Result<()> {
    let f = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let total = std::io::BufReader::new(std::fs::File::open(file)?)
        .lines()
        .count() as u64;
    let durable = Durable::open_with_cache(&settings.data_dir, settings.cache_mb)
        .context("open the province data dir (is the node running?)")?;
    let keys = akm::startup::keyring(&settings, Roles::Province)?;
    let store = Store::open(&durable, std::sync::Arc::new(keys))?;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} residents ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut ok, mut bad) = (0u64, 0u64);
    for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line?;
        bar.inc(1);
        if line.trim().is_empty() {
            continue;
        }
        match parse_resident(&line) {
            Ok(r) => {
                store.put_resident(&r)?;
                ok += 1;
            }
            Err(e) => {
                bad += 1;
                bar.suspend(|| eprintln!("line {}: {e}", n + 1));
            }
        }
    }
    store.sync().await?;
    bar.finish();
    println!("imported {ok} residents, {bad} lines rejected");
    Ok(())
}

/// One import line, read by the admin API's resident parser.
fn parse_resident(line: &str) -> Result<Resident, String> {
    let r: Resident = akm::api::parse_body(line.as_bytes()).map_err(|e| e.message())?;
    tracing::debug!(idcard = %r.idcard_no, "parsed");
    Ok(r)
}

pub async fn replay(settings: Settings, base: &str) -> anyhow::Result<()> {
    let durable = Durable::open_with_cache(&settings.data_dir, settings.cache_mb)
        .context("open the data dir (is the node running?)")?;
    let bus = akm::startup::open_bus(&settings, &durable, akm::clock::system()).await?;
    let source = format!("{}{base}", settings.topic_prefix);
    let dlq = format!("{source}.dlq");
    let mut consumer = bus.subscribe(&dlq, "akm-replay").await?;
    let mut n = 0;
    while let Ok(r) = tokio::time::timeout(Duration::from_secs(2), consumer.next()).await {
        let r = r?;
        let mut m = Message::new(source.clone(), r.key.clone(), r.payload.clone());
        m.headers = r
            .headers
            .iter()
            .filter(|(k, _)| !k.starts_with("dlq"))
            .cloned()
            .collect();
        bus.publish(m.header("replayedFrom", format!("{dlq}@{}", r.offset)))
            .await?;
        consumer.commit(&r)?;
        n += 1;
    }
    durable.sync().await?;
    println!("replayed {n} records from {dlq} to {source}");
    Ok(())
}

pub async fn apply(settings: &Settings) -> anyhow::Result<()> {
    let topics =
        Topics::new(&settings.topic_prefix)?.cap_personal_dlq(settings.pii_dlq_retention_days);
    let bus = KafkaBus::connect(akm::bus::KafkaOptions::from_settings(settings), topics).await?;
    for line in bus.apply().await? {
        println!("{line}");
    }
    Ok(())
}

pub fn topics(settings: &Settings) -> anyhow::Result<()> {
    for d in Topics::new(&settings.topic_prefix)?.declared() {
        println!(
            "{}\tpartitions={}\treplication={}\tretention_ms={}\tkey={}\tschema={}",
            d.name, d.partitions, d.replication, d.retention_ms, d.key, d.schema
        );
    }
    Ok(())
}

/// How `akm call` signs.
pub struct CallArgs {
    pub app: Option<String>,
    pub secret: Option<String>,
    pub sm3: bool,
    pub method: String,
    pub url: String,
    pub body: Option<String>,
}

/// Sign and send one request; print the status and the answer. Exits
/// non-zero when the answer is not a 2xx.
pub async fn call(a: CallArgs) -> anyhow::Result<()> {
    let app = a
        .app
        .or_else(|| std::env::var("AKM_APP_ID").ok())
        .context("--app or AKM_APP_ID")?;
    let secret = a
        .secret
        .or_else(|| std::env::var("AKM_APP_SECRET").ok())
        .context("--secret or AKM_APP_SECRET")?;
    let method = if a.sm3 {
        SignMethod::HmacSm3
    } else {
        SignMethod::HmacSha256
    };
    let (status, text) = send_signed(
        &Signer::new(app, secret, method),
        &a.method,
        &a.url,
        a.body.as_deref(),
    )
    .await?;
    println!("{text}");
    if !(200..300).contains(&status) {
        anyhow::bail!("HTTP {status}");
    }
    Ok(())
}

/// Send a signed request; the status and the body.
async fn send_signed(
    signer: &Signer,
    method: &str,
    url: &str,
    body: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let method_up = method.to_ascii_uppercase();
    let url = &if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    let m = reqwest::Method::from_bytes(method_up.as_bytes()).context("HTTP method")?;
    let bytes = body.unwrap_or("").as_bytes().to_vec();
    let now = chrono::Utc::now().timestamp_millis();
    let mut req = reqwest::Client::new().request(m, url);
    for (k, v) in signer.headers_for_url(&method_up, url, &bytes, now) {
        req = req.header(k, v);
    }
    if body.is_some() {
        req = req
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("{method_up} {url}"))?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await.unwrap_or_default()))
}

/// What `akm apps` does.
pub enum AppsAction {
    Add {
        app_id: String,
        kind: String,
        city_nos: Vec<String>,
        target_types: Vec<String>,
        rate_limit: u32,
    },
    List,
    Rotate {
        app_id: String,
        retire: Option<String>,
    },
}

/// The operator app of the settings (`AKM_ADMIN_APP_ID`,
/// `AKM_ADMIN_APP_SECRET`) and the node's base URL (`url`, default: the
/// province listener), without a trailing slash.
fn operator(settings: &Settings, url: Option<String>) -> anyhow::Result<(Signer, String)> {
    let (id, secret) = operator_app(settings)?;
    let signer = Signer::new(id, secret, SignMethod::HmacSha256);
    Ok((signer, base_url(settings, url)))
}

/// The operator app's id and secret from the settings.
fn operator_app(settings: &Settings) -> anyhow::Result<(&str, &str)> {
    match (&settings.admin_app_id, &settings.admin_app_secret) {
        (Some(id), Some(secret)) => Ok((id.as_str(), secret.expose())),
        _ => {
            anyhow::bail!("set AKM_ADMIN_APP_ID and AKM_ADMIN_APP_SECRET (the node's operator app)")
        }
    }
}

/// `url` (default: the province listener) without a trailing slash.
fn base_url(settings: &Settings, url: Option<String>) -> String {
    let base = url.unwrap_or_else(|| format!("http://{}", settings.province_listen));
    base.trim_end_matches('/').to_string()
}

/// `akm schemas apply`: register the Confluent topics' schemas (every
/// version, oldest first) under `<topic>-value` with BACKWARD
/// compatibility at `AKM_SCHEMA_REGISTRY_URL`. Idempotent.
pub async fn schemas_apply(settings: &Settings) -> anyhow::Result<()> {
    let url = settings
        .schema_registry_url
        .as_deref()
        .context("set AKM_SCHEMA_REGISTRY_URL (the registry's Confluent REST API)")?;
    let topics = Topics::new(&settings.topic_prefix)?;
    let http = akm::clients::http_client(None)?;
    let registry = akm::clients::registry::Registry::new(http, url);
    for (subject, id) in registry.apply(&topics).await? {
        println!("{subject}: schema id {id}, compatibility BACKWARD");
    }
    Ok(())
}

/// `akm dashboard-link`: a sign-in link to the node's dashboard for the
/// operator app of the settings, good once, for `minutes` (at most 15).
pub fn dashboard_link(
    settings: &Settings,
    url: Option<String>,
    minutes: u64,
) -> anyhow::Result<()> {
    anyhow::ensure!((1..=15).contains(&minutes), "--minutes must be 1 to 15");
    let (app, secret) = operator_app(settings)?;
    let base = base_url(settings, url);
    let expires = chrono::Utc::now().timestamp_millis() + (minutes * 60_000) as i64;
    let signature =
        SignMethod::HmacSha256.sign(secret, &akm::signing::dashboard_link_text(app, expires));
    println!("{base}/dashboard/link?appId={app}&expires={expires}&signature={signature}");
    Ok(())
}

/// `akm stats`: the node's statistics (`GET /admin/v1/stats`) as a table,
/// with each kind's total by outcome, as the operator app.
pub async fn stats(
    settings: &Settings,
    url: Option<String>,
    from: &str,
    to: &str,
    city: Option<&str>,
) -> anyhow::Result<()> {
    let (signer, base) = operator(settings, url)?;
    let mut query = format!("from={from}&to={to}");
    if let Some(c) = city {
        query.push_str(&format!("&cityNo={c}"));
    }
    let (status, text) = send_signed(
        &signer,
        "GET",
        &format!("{base}/admin/v1/stats?{query}"),
        None,
    )
    .await?;
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if !(200..300).contains(&status) {
        println!("{text}");
        anyhow::bail!("HTTP {status}");
    }
    let rows = answer["data"].as_array().cloned().unwrap_or_default();
    print!("{}", stats_table(&rows));
    Ok(())
}

/// The rows as aligned columns, then the totals per kind and outcome.
fn stats_table(rows: &[serde_json::Value]) -> String {
    const COLUMNS: [&str; 7] = [
        "day",
        "kind",
        "cityNo",
        "targetType",
        "sceneCode",
        "outcome",
        "count",
    ];
    let cell = |r: &serde_json::Value, f: &str| match &r[f] {
        serde_json::Value::String(s) if s.is_empty() => "-".to_string(),
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let mut lines: Vec<Vec<String>> = vec![COLUMNS.iter().map(|h| h.to_string()).collect()];
    let mut totals: std::collections::BTreeMap<(String, String), u64> = Default::default();
    for r in rows {
        lines.push(COLUMNS.iter().map(|f| cell(r, f)).collect());
        *totals
            .entry((cell(r, "kind"), cell(r, "outcome")))
            .or_default() += r["count"].as_u64().unwrap_or(0);
    }
    for ((kind, outcome), n) in &totals {
        let mut line = vec!["total".to_string(), kind.clone()];
        line.extend(["", "", ""].map(String::from));
        line.extend([outcome.clone(), n.to_string()]);
        lines.push(line);
    }
    let widths: Vec<usize> = (0..COLUMNS.len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if rows.is_empty() {
        out.push_str("(no counts in these days)\n");
    }
    out
}

/// The apps admin API, signed as the operator app of the settings
/// (`AKM_ADMIN_APP_ID`, `AKM_ADMIN_APP_SECRET`), at `url` (default: the
/// province listener).
pub async fn apps(
    settings: &Settings,
    url: Option<String>,
    action: AppsAction,
) -> anyhow::Result<()> {
    let (signer, base) = operator(settings, url)?;
    let base = base.as_str();
    let (status, text) = match action {
        AppsAction::Add {
            app_id,
            kind,
            city_nos,
            target_types,
            rate_limit,
        } => {
            let body = serde_json::json!({
                "kind": kind, "cityNos": city_nos, "targetTypes": target_types, "rateLimit": rate_limit,
            })
            .to_string();
            send_signed(
                &signer,
                "PUT",
                &format!("{base}/admin/v1/apps/{app_id}"),
                Some(&body),
            )
            .await?
        }
        AppsAction::List => {
            send_signed(&signer, "GET", &format!("{base}/admin/v1/apps"), None).await?
        }
        AppsAction::Rotate {
            app_id,
            retire: None,
        } => {
            send_signed(
                &signer,
                "POST",
                &format!("{base}/admin/v1/apps/{app_id}/secrets"),
                None,
            )
            .await?
        }
        AppsAction::Rotate {
            app_id,
            retire: Some(secret_id),
        } => {
            send_signed(
                &signer,
                "DELETE",
                &format!("{base}/admin/v1/apps/{app_id}/secrets/{secret_id}"),
                None,
            )
            .await?
        }
    };
    println!("{text}");
    if !(200..300).contains(&status) {
        anyhow::bail!("HTTP {status}");
    }
    Ok(())
}

/// `akm keys new`: a fresh data key for the configured cipher.
pub fn new_key(settings: &Settings) -> anyhow::Result<()> {
    let cipher = CipherKind::parse(&settings.data_cipher).context("AKM_DATA_CIPHER")?;
    println!("{}", DataKey::generate(cipher));
    Ok(())
}

/// `akm keys rotate`: re-seal a stopped node's data under a new key.
pub async fn rotate(settings: Settings, new_key_file: &Path) -> anyhow::Result<()> {
    let cipher = CipherKind::parse(&settings.data_cipher).context("AKM_DATA_CIPHER")?;
    let old = akm::startup::keyring(&settings, Roles::Province)?;
    let text = std::fs::read_to_string(new_key_file)
        .with_context(|| format!("cannot read {}", new_key_file.display()))?;
    let new = Keyring::new(
        DataKey::parse(cipher, &text).context("the new key")?,
        vec![],
    )
    .opening(&old);
    let durable = Durable::open_with_cache(&settings.data_dir, settings.cache_mb)
        .context("open the data dir (is the node running?)")?;
    let store = Store::open(&durable, std::sync::Arc::new(old.clone()))?;
    let bar = ProgressBar::new(store.sealed_count());
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} sealed values ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    store.rekey(&new, || bar.inc(1))?;
    durable.sync().await?;
    bar.finish();
    println!(
        "re-sealed under key {} (was {}); run with the new key, and keep the old one in AKM_DATA_KEY_OLD until the topics' older records are consumed",
        new.current_id(),
        old.current_id()
    );
    Ok(())
}
