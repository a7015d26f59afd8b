//! Wiring: settings -> each role's services -> listeners and supervised
//! workers. For `all`, the simulators, the province and one city side by
//! side (demo data is seeded beside this, by `demo.rs`).

mod chores;
mod keys;
mod node;

use chores::{prune_idempotency, sweep_qr, trim_audit, write_audit};
pub use keys::keyring;
use keys::{ca, city_app, subject_key};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::edge::Edge;
use crate::api::server::{self, ConnLimits};
use crate::api::state::{NodeApi, ProvinceApi};
use crate::bus::{Bus, Channel, Topic, Topics};
use crate::clients::province::ProvinceClient;
use crate::clients::registry::Registry;
use crate::clients::{Alerts, Signing};
use crate::clock::{self, SharedClock};
use crate::config::{AuthMode, BusKind, Settings};
use crate::crypto::{CipherKind, DataKey, Keyring};
use crate::domain::app::{AppId, AppKind, Scopes};
use crate::durability::Durable;
use crate::events::CallbackReplied;
use crate::service::admin::Admin;
use crate::service::answers::Answers;
use crate::service::applied::{Applied, Restore};
use crate::service::apps::{self, Apps};
use crate::service::callback::CallbackIngress;
use crate::service::decode::Decoder;
use crate::service::gate::Gate;
use crate::service::outcomes::Outcomes;
use crate::service::pending::Answer;
use crate::service::pending::Pending;
use crate::service::qr::QrIssuer;
use crate::service::reference::Reference;
use crate::service::sources::{ConfigSource, IdentitySource, ProvinceAnswers};
use crate::service::state_log::StateLog;
use crate::service::trade::{Emitter, TradeDesk};
use crate::service::transcode::{TranscodeAnswer, TranscodeIngress, Transcoder};
use crate::signing::{SignMethod, Signer};
use crate::sim::{CardSim, PushSim};
use crate::store::Store;
use crate::workers::forwarder::{self, Forwarder};
use crate::workers::notifier::{self, Notifier};
use crate::workers::retry::Schedule;
use crate::workers::supervise::{supervise, TaskHealth};
use crate::workers::{
    callbacks, qr_replica, reference_replica, relay, replies, state_replica, stats, transcoder,
};

/// Which roles this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Roles {
    Province,
    City,
    All,
}

/// A running node: its address and the handles operators' tools and tests
/// look at.
#[derive(Debug)]
pub struct RunningNode {
    /// `province` or `city-<cityNo>`.
    pub node_id: String,
    pub addr: SocketAddr,
    pub bus: Bus,
    pub store: Store,
    pub pending: Arc<Pending<TranscodeAnswer>>,
    /// The reply partition this ingress owns.
    pub reply_partition: u32,
    /// Admin writes to every instance of this node's scope.
    pub reference: Reference,
}

impl RunningNode {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A running platform (some roles of it) and its handles.
#[derive(Debug)]
pub struct Platform {
    pub province: Option<RunningNode>,
    pub city: Option<RunningNode>,
    /// QR issuing of the province, when it runs here.
    pub qr: Option<QrIssuer>,
    pub card_sim: Option<CardSim>,
    pub push_sim: Option<PushSim>,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    /// Each listener's stop and task, in the order they started.
    servers: Vec<(CancellationToken, JoinHandle<()>)>,
    stores: Vec<Store>,
    shutdown_timeout: Duration,
}

impl Platform {
    /// Stop listeners and workers; in-flight work ends or is left uncommitted.
    /// Stop within `AKM_SHUTDOWN_TIMEOUT_MS` overall: stop accepting and
    /// let the requests in flight finish (transcoders and the reply
    /// listener still run), then stop the workers between records (their
    /// offsets committed), then flush the stores.
    pub async fn shutdown(self) {
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        // Last started first: a city's requests in flight may still call
        // the province of the same process.
        for (stop, t) in self.servers.into_iter().rev() {
            stop.cancel();
            let _ = tokio::time::timeout_at(deadline, t).await;
        }
        self.cancel.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout_at(deadline, t).await;
        }
        for node in self.province.iter().chain(&self.city) {
            if let Err(e) = node.bus.write_offsets() {
                tracing::error!(error = %e, "committed offsets not written; those records come again");
            }
        }
        for s in &self.stores {
            if let Err(e) = s.write_audit() {
                tracing::error!(error = %crate::service::chain(&e), "the last audit records not written");
            }
            if let Ok(Err(e)) = tokio::time::timeout_at(deadline, s.sync()).await {
                tracing::error!(error = %crate::service::chain(&e), "final flush failed");
            }
        }
        tracing::info!("stopped");
    }

    /// Base URL of the province listener.
    pub fn province_url(&self) -> Option<String> {
        self.province.as_ref().map(RunningNode::url)
    }

    /// Base URL of the city listener.
    pub fn city_url(&self) -> Option<String> {
        self.city.as_ref().map(RunningNode::url)
    }
}

async fn bind(what: &str, addr: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({what})"))
}

/// Start `roles` with `settings` on the wall clock.
pub async fn start(settings: Settings, roles: Roles) -> anyhow::Result<Platform> {
    start_with_clock(settings, roles, clock::system()).await
}

/// What differs between the roles, decided once here.
enum RoleSpec {
    Province {
        push_url: String,
    },
    City {
        province_url: String,
        /// This city's app at the province, when it signs.
        signing: Option<Signing>,
    },
}

/// Start `roles` with `settings` and `clock` (tests move time with a
/// [`crate::clock::ManualClock`]).
pub async fn start_with_clock(
    settings: Settings,
    roles: Roles,
    clock: SharedClock,
) -> anyhow::Result<Platform> {
    let settings = Arc::new(settings);
    if settings.auth == AuthMode::Off {
        tracing::warn!("AKM_AUTH=off: NO caller is authenticated and every scope check is off. For local development only; never run a deployment like this.");
    }
    if settings.card_hosts.is_none() {
        tracing::warn!("AKM_CARD_HOSTS is not set: a transcode config may name any host; set it to the card systems' hosts");
    }
    let cancel = CancellationToken::new();
    let mut p = Platform {
        province: None,
        city: None,
        qr: None,
        card_sim: None,
        push_sim: None,
        cancel: cancel.clone(),
        tasks: Vec::new(),
        servers: Vec::new(),
        stores: Vec::new(),
        shutdown_timeout: settings.shutdown_timeout,
    };
    if roles == Roles::All {
        let card = CardSim::start(bind("card simulator", &settings.sim_card_listen).await?)?;
        let push = PushSim::start(bind("push simulator", &settings.sim_push_listen).await?)?;
        tracing::info!(addr = %card.addr, "card-system simulator ready");
        tracing::info!(addr = %push.addr, "push-gateway simulator ready");
        p.card_sim = Some(card);
        p.push_sim = Some(push);
    }
    let (dir_p, dir_c) = match roles {
        Roles::All => (
            settings.data_dir.join("province"),
            settings.data_dir.join("city"),
        ),
        _ => (settings.data_dir.clone(), settings.data_dir.clone()),
    };
    let keys = Arc::new(keyring(&settings, roles)?);
    let subject = subject_key(&settings, roles)?;
    let http = crate::clients::http_client(ca(&settings)?.as_deref())?;
    let mut wiring = Wiring {
        settings: settings.clone(),
        clock,
        cancel,
        keys,
        subject,
        http,
        tasks: Vec::new(),
        servers: Vec::new(),
        stores: Vec::new(),
        health: TaskHealth::default(),
    };
    if matches!(roles, Roles::Province | Roles::All) {
        let push_url = settings
            .push_url
            .clone()
            .or_else(|| p.push_sim.as_ref().map(PushSim::url))
            .unwrap_or_else(|| format!("http://{}/push", settings.sim_push_listen));
        let (node, qr) = wiring
            .node(
                RoleSpec::Province { push_url },
                &dir_p,
                &settings.province_listen,
            )
            .await?;
        p.province = Some(node);
        p.qr = qr;
    }
    if matches!(roles, Roles::City | Roles::All) {
        let province_url = settings
            .province_url
            .clone()
            .or_else(|| p.province_url())
            .unwrap_or_else(|| format!("http://{}", settings.province_listen));
        let signing = city_app(&settings, p.province.as_ref(), &wiring.clock).await?;
        let (node, _) = wiring
            .node(
                RoleSpec::City {
                    province_url,
                    signing,
                },
                &dir_c,
                &settings.city_listen,
            )
            .await?;
        p.city = Some(node);
    }
    p.tasks = wiring.tasks;
    p.servers = wiring.servers;
    p.stores = wiring.stores;
    Ok(p)
}

/// The node's bus: the embedded log in its database, or Kafka
/// (`AKM_BUS=kafka`), which must have every declared topic.
pub async fn open_bus(
    settings: &Settings,
    durable: &Durable,
    clock: SharedClock,
) -> anyhow::Result<Bus> {
    let mut topics = Topics::new(&settings.topic_prefix)
        .context("topic declarations")?
        .cap_personal_dlq(settings.pii_dlq_retention_days);
    if let Some(url) = &settings.schema_registry_url {
        let http = crate::clients::http_client(ca(settings)?.as_deref())?;
        let registered = Registry::new(http, url)
            .resolve(&topics)
            .await
            .context("AKM_SCHEMA_REGISTRY_URL")?;
        tracing::info!(url = %url, ids = ?registered.ids, "akm.trade is written in the Confluent wire format");
        topics = topics.with_registry(registered);
    }
    Ok(match settings.bus {
        BusKind::Kafka => Bus::kafka(crate::bus::KafkaOptions::from_settings(settings), topics)
            .await
            .with_context(|| format!("Kafka at {}", settings.kafka_brokers))?,
        BusKind::Embedded => Bus::embedded(durable, topics, clock)?,
    })
}

/// Builds nodes and collects their tasks.
struct Wiring {
    servers: Vec<(CancellationToken, JoinHandle<()>)>,
    stores: Vec<Store>,
    health: TaskHealth,
    keys: Arc<Keyring>,
    /// `AKM_SUBJECT_KEY` (or the demo's), decoded.
    subject: Option<Vec<u8>>,
    http: reqwest::Client,
    settings: Arc<Settings>,
    clock: SharedClock,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Wiring {
    /// Spawn a supervised task (restarted with backoff if it ends before
    /// `cancel`).
    /// Own `partition` of `R`'s reply topic and hand its replies to
    /// `pending`; the first listener is assigned before this returns (no
    /// reply published after start is missed), a restart assigns again.
    async fn replies<R: Answer>(
        &mut self,
        role: &str,
        bus: &Bus,
        pending: Arc<Pending<R>>,
        partition: u32,
        cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        let keys = self.keys.clone();
        let first = replies::listen(
            bus.clone(),
            pending.clone(),
            partition,
            keys.clone(),
            cancel.clone(),
        )
        .await?;
        let first = Arc::new(std::sync::Mutex::new(Some(Box::pin(first))));
        let (bus, cancel2) = (bus.clone(), cancel.clone());
        let name = format!("{role}/replies/{}", R::Wire::TOPIC.base());
        self.supervise(&name, cancel, move || {
            let (first, bus, pending, keys, cancel) = (
                first.clone(),
                bus.clone(),
                pending.clone(),
                keys.clone(),
                cancel2.clone(),
            );
            async move {
                let assigned = first.lock().unwrap_or_else(|p| p.into_inner()).take();
                match assigned {
                    Some(listening) => listening.await,
                    None => match replies::listen(bus, pending, partition, keys, cancel).await {
                        Ok(listening) => listening.await,
                        Err(e) => tracing::error!(error = %e, "reply partition not assigned"),
                    },
                }
            }
        });
        Ok(())
    }

    fn supervise<F, Fut>(&mut self, name: &str, cancel: &CancellationToken, make: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tasks.push(supervise(
            name.to_string(),
            self.health.clone(),
            cancel.clone(),
            make,
        ));
    }
}
