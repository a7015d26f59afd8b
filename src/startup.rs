//! Wiring: open a role's store and bus, start its workers and listener;
//! for `all`, the simulators, the province, one city and the demo data.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, Topic, Topics};
use crate::clients::province::ProvinceClient;
use crate::config::Settings;
use crate::domain::CityNo;
use crate::node::{Node, Role};
use crate::sim::{CardSim, PushSim};
use crate::store::Store;
use crate::workers::replies::Pending;
use crate::workers::{forwarder, notifier, relay, replies, transcoder};

/// Which roles this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Roles {
    Province,
    City,
    All,
}

/// A running platform (some roles of it) and its handles.
#[derive(Debug)]
pub struct Platform {
    pub province: Option<(Arc<Node>, SocketAddr)>,
    pub city: Option<(Arc<Node>, SocketAddr)>,
    pub card_sim: Option<CardSim>,
    pub push_sim: Option<PushSim>,
    /// The ready-to-paste transcode curl of the demo, if demo data is on.
    pub demo_curl: Option<String>,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Platform {
    /// Stop listeners and workers; in-flight work ends or is left uncommitted.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), t).await;
        }
    }

    /// Base URL of the province listener.
    pub fn province_url(&self) -> Option<String> {
        self.province.as_ref().map(|(_, a)| format!("http://{a}"))
    }

    /// Base URL of the city listener.
    pub fn city_url(&self) -> Option<String> {
        self.city.as_ref().map(|(_, a)| format!("http://{a}"))
    }
}

async fn bind(what: &str, addr: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({what})"))
}

/// Start `roles` with `settings`.
pub async fn start(settings: Settings, roles: Roles) -> anyhow::Result<Platform> {
    let settings = Arc::new(settings);
    let cancel = CancellationToken::new();
    let mut p = Platform {
        province: None,
        city: None,
        card_sim: None,
        push_sim: None,
        demo_curl: None,
        cancel: cancel.clone(),
        tasks: Vec::new(),
    };
    if roles == Roles::All {
        let card = CardSim::start(bind("card simulator", &settings.sim_card_listen).await?)?;
        let push = PushSim::start(bind("push simulator", &settings.sim_push_listen).await?)?;
        tracing::info!(addr = %card.addr, "card-system simulator ready");
        tracing::info!(addr = %push.addr, "push-gateway simulator ready");
        p.card_sim = Some(card);
        p.push_sim = Some(push);
    }
    let push_url = settings
        .push_url
        .clone()
        .or_else(|| p.push_sim.as_ref().map(PushSim::url))
        .unwrap_or_else(|| format!("http://{}/push", settings.sim_push_listen));
    let (dir_p, dir_c) = match roles {
        Roles::All => (
            settings.data_dir.join("province"),
            settings.data_dir.join("city"),
        ),
        _ => (settings.data_dir.clone(), settings.data_dir.clone()),
    };
    if matches!(roles, Roles::Province | Roles::All) {
        let (node, addr) = start_node(
            Role::Province,
            &settings,
            &dir_p,
            &settings.province_listen,
            None,
            &push_url,
            &cancel,
            &mut p.tasks,
        )
        .await?;
        p.province = Some((node, addr));
    }
    if matches!(roles, Roles::City | Roles::All) {
        let province_url = settings
            .province_url
            .clone()
            .or_else(|| p.province_url())
            .unwrap_or_else(|| format!("http://{}", settings.province_listen));
        let (node, addr) = start_node(
            Role::City,
            &settings,
            &dir_c,
            &settings.city_listen,
            Some(province_url),
            &push_url,
            &cancel,
            &mut p.tasks,
        )
        .await?;
        p.city = Some((node, addr));
    }
    if roles == Roles::All {
        p.demo_curl = crate::demo::seed(&p, &settings)?;
        for (node, _) in p.province.iter().chain(p.city.iter()) {
            node.store.sync().await?;
        }
    }
    tracing::info!(roles = ?roles, "platform ready");
    Ok(p)
}

#[allow(clippy::too_many_arguments)]
async fn start_node(
    role: Role,
    settings: &Arc<Settings>,
    dir: &Path,
    listen: &str,
    province_url: Option<String>,
    push_url: &str,
    cancel: &CancellationToken,
    tasks: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<(Arc<Node>, SocketAddr)> {
    let store =
        Store::open(dir).with_context(|| format!("cannot open data dir {}", dir.display()))?;
    let bus = open_bus(settings, &store).await?;
    let replies = bus.partitions(&bus.topics().name(Topic::TranscodeReply));
    let reply_partition = match settings.reply_partition {
        Some(p) if p < replies => p,
        Some(p) => anyhow::bail!("reply_partition (AKM_REPLY_PARTITION) {p} is not below the {replies} partitions of the reply topic"),
        None => rand::random::<u32>() % replies,
    };
    let http = crate::clients::http_client();
    let node = Arc::new(Node {
        role,
        subject_key: store.secret("subject")?,
        store,
        bus,
        settings: settings.clone(),
        province: province_url.map(|u| ProvinceClient::new(http.clone(), &u)),
        http,
        pending: Pending::new(settings.max_pending),
        reply_partition,
        city_no: CityNo::parse(&settings.city_no)?,
        push_url: push_url.to_string(),
        relay: Arc::new(Notify::new()),
        cancel: cancel.child_token(),
    });
    // The reply partition is owned before the listener serves.
    tasks.push(tokio::spawn(replies::listen(node.clone()).await?));
    tasks.push(tokio::spawn(relay::run(node.clone())));
    let limit = Arc::new(Semaphore::new(settings.transcode_concurrency));
    let (ready_tx, mut ready) = tokio::sync::mpsc::channel(settings.workers);
    for _ in 0..settings.workers {
        tasks.push(tokio::spawn(transcoder::run(
            node.clone(),
            limit.clone(),
            ready_tx.clone(),
        )));
        match role {
            Role::City => tasks.push(tokio::spawn(forwarder::run(node.clone()))),
            Role::Province => tasks.push(tokio::spawn(notifier::run(node.clone()))),
        }
    }
    tasks.push(tokio::spawn(housekeeping(node.clone())));
    // Ready when every transcoder member holds partitions (Kafka group joins
    // take a moment), so the first terminal request is not spent waiting.
    let waited = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        for _ in 0..settings.workers {
            ready.recv().await;
        }
    })
    .await;
    if waited.is_err() {
        tracing::warn!(
            role = role.as_str(),
            "transcoder group not fully assigned after 60 s; serving anyway"
        );
    }
    let listener = bind(role.as_str(), listen).await?;
    let addr = listener.local_addr()?;
    let app = crate::api::router::router(node.clone());
    let stop = node.cancel.clone();
    tasks.push(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "listener stopped");
        }
    }));
    tracing::info!(role = role.as_str(), %addr, data_dir = %dir.display(), bus = node.bus.backend(), reply_partition, "listening");
    Ok((node, addr))
}

/// The node's bus: the embedded log in `store`, or Kafka (`AKM_BUS=kafka`),
/// which must have every declared topic.
pub async fn open_bus(settings: &Settings, store: &Store) -> anyhow::Result<Bus> {
    let topics = Topics::new(&settings.topic_prefix).context("topic declarations")?;
    Ok(match settings.bus.as_str() {
        "kafka" => Bus::kafka(settings.kafka_options(), topics)
            .await
            .with_context(|| format!("Kafka at {}", settings.kafka_brokers))?,
        _ => Bus::embedded(store, topics)?,
    })
}

/// Every minute: remove expired QR grants (province) and records past
/// their topic's retention (embedded bus).
async fn housekeeping(node: Arc<Node>) {
    loop {
        tokio::select! {
            _ = node.cancel.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
        }
        if node.role == Role::Province {
            match node.store.sweep_qr(Node::now_ms()) {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "expired QR tokens removed"),
                Err(e) => tracing::error!(error = %e, "QR sweep failed"),
            }
        }
        match node.bus.trim(Node::now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "records past retention removed"),
            Err(e) => tracing::error!(error = %e, "retention trim failed"),
        }
    }
}
