//! The CLI commands behind `akm` (main.rs parses, these run).

use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use akm::bus::{BusConsumer, KafkaBus, Message, Topics};
use akm::config::Settings;
use akm::domain::mask;
use akm::domain::resident::Resident;
use akm::durability::Durable;
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
        if let Some(curl) = akm::demo::seed(&platform, &settings).await? {
            println!("\nDemo data is loaded. Try a transcode (the QR code is fresh for a few minutes):\n\n{curl}\n");
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
    let durable = Durable::open(&settings.data_dir)
        .context("open the province data dir (is the node running?)")?;
    let store = Store::open(&durable)?;
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
    tracing::debug!(idcard = %mask::id(&r.idcard_no), "parsed");
    Ok(r)
}

pub async fn replay(settings: Settings, base: &str) -> anyhow::Result<()> {
    let durable =
        Durable::open(&settings.data_dir).context("open the data dir (is the node running?)")?;
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
    let topics = Topics::new(&settings.topic_prefix)?;
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
