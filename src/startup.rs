//! Wiring: settings -> each role's services -> listeners and supervised
//! workers. For `all`, the simulators, the province and one city side by
//! side (demo data is seeded beside this, by `demo.rs`).

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
use crate::events::{CallbackReplied, TranscodeReplied};
use crate::service::admin::Admin;
use crate::service::applied::{Applied, Restore};
use crate::service::apps::{self, Apps};
use crate::service::callback::CallbackIngress;
use crate::service::decode::Decoder;
use crate::service::gate::Gate;
use crate::service::pending::Answer;
use crate::service::pending::Pending;
use crate::service::qr::QrIssuer;
use crate::service::reference::Reference;
use crate::service::sources::{ConfigSource, IdentitySource, ProvinceAnswers};
use crate::service::state_log::StateLog;
use crate::service::stats::Outcomes;
use crate::service::trade::{Emitter, TradeDesk};
use crate::service::transcode::{TranscodeIngress, Transcoder};
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
    pub pending: Arc<Pending<TranscodeReplied>>,
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
        for s in &self.stores {
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
    async fn node(
        &mut self,
        spec: RoleSpec,
        dir: &Path,
        listen: &str,
    ) -> anyhow::Result<(RunningNode, Option<QrIssuer>)> {
        let s = self.settings.clone();
        let clock = self.clock.clone();
        let cancel = self.cancel.child_token();
        let durable = Durable::open(dir)
            .with_context(|| format!("cannot open data dir {}", dir.display()))?
            .with_flush_timeout(s.flush_timeout);
        durable.watch(dir, s.min_free_mb);
        // the node's own registry: role `all` runs two nodes in one process
        let metrics = crate::metrics::Metrics::new();
        durable.observe(&metrics);
        let store = Store::open(&durable, self.keys.clone())?;
        let bus = open_bus(&s, &durable, clock.clone())
            .await?
            .instrumented(metrics.clone());
        let replies = bus.partitions(&bus.topics().name(Topic::TranscodeReply))?;
        let reply_partition = match s.reply_partition {
            Some(p) if p < replies => p,
            Some(p) => anyhow::bail!("reply_partition (AKM_REPLY_PARTITION) {p} is not below the {replies} partitions of the reply topic"),
            None => rand::random::<u32>() % replies,
        };
        let http = self.http.clone();
        let schedule = Schedule::new(s.retry_max);
        let alerts = Alerts::default();
        let (role, node_id, configs, identity, emitter) = match &spec {
            RoleSpec::Province { .. } => (
                "province",
                "province".to_string(),
                ConfigSource::Local(store.clone()),
                IdentitySource::Local {
                    store: store.clone(),
                    clock: clock.clone(),
                },
                Emitter::Province {
                    subject_key: self.subject.clone().context(
                        "AKM_SUBJECT_KEY is required for the province (base64 of at least 32 bytes, the same on every province instance)",
                    )?,
                },
            ),
            RoleSpec::City {
                province_url,
                signing,
            } => {
                let province = ProvinceClient::new(
                    http.clone(),
                    province_url,
                    signing.clone(),
                    alerts.clone(),
                    metrics.clone(),
                );
                (
                    "city",
                    format!("city-{}", s.city_no),
                    ConfigSource::LocalThenProvince(
                        store.clone(),
                        province.clone(),
                        Arc::new(ProvinceAnswers::new(s.province_config_ttl, clock.clone())),
                    ),
                    IdentitySource::Province(province),
                    Emitter::City,
                )
            }
        };
        let pending = Arc::new(Pending::new(s.max_pending));
        let callback_pending = Arc::new(Pending::<CallbackReplied>::new(s.max_pending));
        let callback_replies = bus.partitions(&bus.topics().name(Topic::CallbackReply))?;
        anyhow::ensure!(
            reply_partition < callback_replies,
            "akm.callback.reply has {callback_replies} partitions, fewer than akm.transcode.reply: declare as many"
        );
        let (requests, changelog) = (
            bus.partitions(&bus.topics().name(Topic::CallbackRequest))?,
            bus.partitions(&bus.topics().name(Topic::CallbackState))?,
        );
        anyhow::ensure!(
            requests == changelog,
            "akm.callback.request ({requests}) and akm.callback.state ({changelog}) must have as many partitions: a key's acceptance goes to its request's partition number"
        );
        // The audit's pseudonyms: the province's subject key; a city without
        // one keeps a key of its own.
        let subject_key = match &self.subject {
            Some(k) => k.clone(),
            None => store.secret("subject")?,
        };
        let gate = Arc::new(Gate::new(
            store.clone(),
            clock.clone(),
            s.auth == AuthMode::On,
            subject_key.clone(),
        ));
        // this instance: its replicas' groups are its own
        let instance = store.instance_id()?;
        let reference = Reference {
            store: store.clone(),
            bus: Some(bus.clone()),
            scope: node_id.clone(),
            applied: Applied::default(),
        };
        {
            let replica = reference_replica::Replica {
                bus: bus.clone(),
                store: store.clone(),
                scope: node_id.clone(),
                instance: instance.clone(),
                applied: reference.applied.clone(),
                cancel: cancel.clone(),
            };
            self.supervise(&format!("{role}/reference-replica"), &cancel, move || {
                reference_replica::run(replica.clone())
            });
        }
        let state = StateLog {
            caught_up: Default::default(),
            bus: bus.clone(),
            scope: node_id.clone(),
            applied: Applied::default(),
        };
        {
            let replica = state_replica::Replica {
                bus: bus.clone(),
                store: store.clone(),
                scope: node_id.clone(),
                instance: instance.clone(),
                applied: state.applied.clone(),
                cancel: cancel.clone(),
            };
            self.supervise(&format!("{role}/state-replica"), &cancel, move || {
                state_replica::run(replica.clone())
            });
        }
        let restore = Restore::default();
        let apps = Apps {
            store: store.clone(),
            clock: clock.clone(),
            reference: reference.clone(),
        };
        if let (Some(id), Some(secret)) = (&s.admin_app_id, &s.admin_app_secret) {
            // every instance has the bootstrap operator from its settings
            Apps {
                reference: Reference::local(store.clone()),
                ..apps.clone()
            }
            .ensure(
                &AppId::parse(id)?,
                AppKind::Operator,
                Scopes::default(),
                secret.expose(),
            )
            .await?;
        }
        let relay_wake = Arc::new(Notify::new());
        let desk = TradeDesk {
            store: store.clone(),
            topics: bus.topics().clone(),
            configs: configs.clone(),
            emitter,
            relay: relay_wake.clone(),
            clock: clock.clone(),
            state: state.clone(),
        };
        let admin = Admin {
            store: store.clone(),
            reference: reference.clone(),
            card_hosts: s.card_hosts.as_ref().map(|h| {
                h.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            }),
        };
        let api = Arc::new(NodeApi {
            role,
            decoder: Decoder {
                identity: identity.clone(),
                configs: configs.clone(),
                timeout: s.transcode_timeout,
            },
            configs: configs.clone(),
            callbacks: CallbackIngress {
                partitions: requests,
                desk: desk.clone(),
                bus: bus.clone(),
                pending: callback_pending.clone(),
                reply_partition,
                node_id: node_id.clone(),
                timeout: s.callback_timeout,
                clock: clock.clone(),
                keys: self.keys.clone(),
            },
            state: state.clone(),
            restore: restore.clone(),
            transcode: TranscodeIngress {
                bus: bus.clone(),
                pending: pending.clone(),
                reply_partition,
                node_id: node_id.clone(),
                timeout: s.transcode_timeout,
                clock: clock.clone(),
                keys: self.keys.clone(),
            },
            dashboard: Default::default(),
            outcomes: Outcomes {
                store: store.clone(),
                topics: bus.topics().clone(),
                relay: relay_wake.clone(),
                clock: clock.clone(),
                node_id: node_id.clone(),
            },
            admin: admin.clone(),
            apps,
            gate: gate.clone(),
            alerts: alerts.clone(),
            tasks: self.health.clone(),
        });

        // The reply partitions are owned before the listener serves.
        self.replies(role, &bus, pending.clone(), reply_partition, &cancel)
            .await?;
        self.replies(
            role,
            &bus,
            callback_pending.clone(),
            reply_partition,
            &cancel,
        )
        .await?;
        {
            let (store, bus, cancel2) = (store.clone(), bus.clone(), cancel.clone());
            let (restore, relay_wake) = (restore.clone(), relay_wake.clone());
            self.supervise(&format!("{role}/relay"), &cancel, move || {
                relay::run(
                    store.clone(),
                    bus.clone(),
                    relay_wake.clone(),
                    restore.clone(),
                    cancel2.clone(),
                )
            });
        }
        {
            let counter = stats::Counter {
                bus: bus.clone(),
                store: store.clone(),
                node_id: node_id.clone(),
                instance: instance.clone(),
                cancel: cancel.clone(),
            };
            let c = counter.clone();
            self.supervise(&format!("{role}/stats-transcodes"), &cancel, move || {
                stats::transcodes(c.clone())
            });
            if matches!(spec, RoleSpec::Province { .. }) {
                self.supervise(&format!("{role}/stats-trades"), &cancel, move || {
                    stats::trades(counter.clone())
                });
            }
        }
        let worker = transcoder::Worker {
            bus: bus.clone(),
            transcoder: Arc::new(Transcoder {
                configs: configs.clone(),
                identity,
                http: http.clone(),
                clock: clock.clone(),
                subject_key,
                keys: self.keys.clone(),
                metrics: metrics.clone(),
            }),
            node_id: node_id.clone(),
            limit: Arc::new(Semaphore::new(s.transcode_concurrency)),
            cancel: cancel.clone(),
        };
        let (ready_tx, mut ready) = tokio::sync::mpsc::channel(s.workers);
        for i in 0..s.workers {
            let (worker, ready_tx) = (worker.clone(), ready_tx.clone());
            self.supervise(&format!("{role}/transcoder-{i}"), &cancel, move || {
                transcoder::run(worker.clone(), ready_tx.clone())
            });
        }
        let owner = callbacks::Owner {
            bus: bus.clone(),
            desk: desk.clone(),
            node_id: node_id.clone(),
            keys: self.keys.clone(),
            limit: Arc::new(Semaphore::new(s.transcode_concurrency)),
            cancel: cancel.clone(),
        };
        for i in 0..s.workers {
            let owner = owner.clone();
            self.supervise(&format!("{role}/callbacks-{i}"), &cancel, move || {
                callbacks::run(owner.clone(), None)
            });
        }
        let qr = match &spec {
            RoleSpec::City {
                province_url,
                signing,
            } => {
                let f = Forwarder {
                    bus: bus.clone(),
                    province: ProvinceClient::new(
                        http.clone(),
                        province_url,
                        signing.clone(),
                        alerts.clone(),
                        metrics.clone(),
                    ),
                    schedule,
                    timeout: s.http_timeout,
                    cancel: cancel.clone(),
                    keys: self.keys.clone(),
                    window: s.worker_window,
                };
                for i in 0..s.workers {
                    let f = f.clone();
                    self.supervise(&format!("{role}/forwarder-{i}"), &cancel, move || {
                        forwarder::run(f.clone())
                    });
                }
                None
            }
            RoleSpec::Province { push_url } => {
                let n = Notifier {
                    bus: bus.clone(),
                    store: store.clone(),
                    http: http.clone(),
                    push_url: push_url.clone(),
                    schedule,
                    timeout: s.http_timeout,
                    clock: clock.clone(),
                    cancel: cancel.clone(),
                    keys: self.keys.clone(),
                    unrecorded: Arc::default(),
                    pushing: Arc::default(),
                    window: s.worker_window,
                    state: state.clone(),
                };
                for i in 0..s.workers {
                    let n = n.clone();
                    self.supervise(&format!("{role}/notifier-{i}"), &cancel, move || {
                        notifier::run(n.clone())
                    });
                }
                let qr = QrIssuer {
                    store: store.clone(),
                    bus: bus.clone(),
                    clock: clock.clone(),
                    default_ttl: s.qr_ttl,
                };
                {
                    let replica = qr_replica::Replica {
                        bus: bus.clone(),
                        store: store.clone(),
                        clock: clock.clone(),
                        instance: instance.clone(),
                        cancel: cancel.clone(),
                    };
                    self.supervise(&format!("{role}/qr-replica"), &cancel, move || {
                        qr_replica::run(replica.clone(), None)
                    });
                }
                {
                    let (qr, cancel2) = (qr.clone(), cancel.clone());
                    self.supervise(&format!("{role}/qr-sweep"), &cancel, move || {
                        sweep_qr(qr.clone(), cancel2.clone())
                    });
                }
                Some(qr)
            }
        };
        // Ready when every transcoder member holds partitions (Kafka group joins
        // take a moment), so the first terminal request is not spent waiting.
        let waited = tokio::time::timeout(Duration::from_secs(60), async {
            for _ in 0..s.workers {
                ready.recv().await;
            }
        })
        .await;
        if waited.is_err() {
            tracing::warn!(
                role,
                "transcoder group not fully assigned after 60 s; serving anyway"
            );
        }
        {
            let (store, clock, days, cancel2) = (
                store.clone(),
                clock.clone(),
                s.audit_retention_days,
                cancel.clone(),
            );
            self.supervise(&format!("{role}/audit-trim"), &cancel, move || {
                trim_audit(store.clone(), clock.clone(), days, cancel2.clone())
            });
        }
        {
            let (store, clock, days, cancel2) = (
                store.clone(),
                clock.clone(),
                s.idempotency_days,
                cancel.clone(),
            );
            self.supervise(&format!("{role}/idempotency-prune"), &cancel, move || {
                prune_idempotency(store.clone(), clock.clone(), days, cancel2.clone())
            });
        }
        let edge = Arc::new(Edge::new(
            gate,
            s.request_timeout,
            s.body_timeout,
            s.max_inflight,
            metrics.clone(),
        ));
        let app = match &qr {
            Some(qr) => crate::api::router::province(
                api,
                Arc::new(ProvinceApi {
                    admin,
                    qr: qr.clone(),
                }),
                edge,
            ),
            None => crate::api::router::city(api, edge),
        };
        let listener = bind(role, listen).await?;
        let addr = listener.local_addr()?;
        let limits = ConnLimits {
            header_timeout: s.header_timeout,
            max_connections: s.max_connections,
        };
        // The listener stops first at shutdown (its own token), and lets
        // the requests in flight finish while the workers still run.
        let stop = CancellationToken::new();
        self.servers.push((
            stop.clone(),
            tokio::spawn(server::serve(
                listener,
                app,
                limits,
                stop,
                s.shutdown_timeout,
            )),
        ));
        self.stores.push(store.clone());
        tracing::info!(role, %addr, data_dir = %dir.display(), bus = bus.backend(), reply_partition, "listening; restoring state from the bus");
        // /readyz answers 503, and the services 5003, until the scope's
        // reference data and callback state are here (a new or wiped
        // instance restores them from the topics first)
        let restored =
            crate::service::reference::caught_up(&bus, &reference.applied, &instance, RESTORE_WAIT)
                .await?
                && state.restored(&instance, RESTORE_WAIT).await?;
        if !restored {
            tracing::warn!(
                role,
                "state not restored from the bus after {RESTORE_WAIT:?}; serving anyway"
            );
        }
        restore.finish();
        tracing::info!(role, %addr, "restored; ready");
        Ok((
            RunningNode {
                node_id,
                addr,
                bus,
                store,
                pending,
                reply_partition,
                reference,
            },
            qr,
        ))
    }
}

/// How long start-up waits for a restore before it serves anyway.
const RESTORE_WAIT: Duration = Duration::from_secs(60);

/// The data keys: `AKM_DATA_KEY`, else `AKM_DATA_KEY_FILE`, else (role
/// `all`, the demo) a key file the data directory keeps; older keys from
/// `AKM_DATA_KEY_OLD`. Without a key a node does not start.
pub fn keyring(s: &Settings, roles: Roles) -> anyhow::Result<Keyring> {
    let cipher = CipherKind::parse(&s.data_cipher).context("AKM_DATA_CIPHER")?;
    let text = match (&s.data_key, &s.data_key_file) {
        (Some(k), _) => k.expose().to_string(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the data key file {} (AKM_DATA_KEY_FILE)", f.display()))?,
        (None, None) if roles == Roles::All => demo_file(&s.data_dir.join("akm.key"), || DataKey::generate(cipher))?,
        (None, None) => anyhow::bail!(
            "no data key: set AKM_DATA_KEY or AKM_DATA_KEY_FILE (base64 of {} bytes for {}); personal data is never stored in the clear",
            cipher.key_len(),
            s.data_cipher
        ),
    };
    let current =
        DataKey::parse(cipher, &text).context("the data key (AKM_DATA_KEY / AKM_DATA_KEY_FILE)")?;
    let older = s
        .data_key_old
        .as_ref()
        .map(|o| {
            o.expose()
                .split(',')
                .filter(|k| !k.trim().is_empty())
                .map(|k| DataKey::parse(cipher, k))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .context("AKM_DATA_KEY_OLD")?
        .unwrap_or_default();
    Ok(Keyring::new(current, older))
}

/// `AKM_SUBJECT_KEY`, decoded (at least 32 bytes); in role `all` without
/// one, a key file the data directory keeps.
fn subject_key(s: &Settings, roles: Roles) -> anyhow::Result<Option<Vec<u8>>> {
    use base64::Engine as _;
    let text = match &s.subject_key {
        Some(k) => k.expose().to_string(),
        None if roles == Roles::All => demo_file(&s.data_dir.join("akm.subject-key"), || {
            base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
        })?,
        None => return Ok(None),
    };
    let key = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .filter(|k| k.len() >= 32)
        .context("AKM_SUBJECT_KEY must be base64 of at least 32 bytes")?;
    Ok(Some(key))
}

/// A key file of the demo: read it, or write a fresh one (mode 0600).
fn demo_file(path: &Path, fresh: impl FnOnce() -> String) -> anyhow::Result<String> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return Ok(text);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = fresh();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    std::io::Write::write_all(
        &mut opts
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))?,
        text.as_bytes(),
    )?;
    tracing::warn!(file = %path.display(), "generated a demo key file; a deployment sets its keys itself");
    Ok(text)
}

/// The extra CA of `AKM_CA_FILE`, PEM.
fn ca(s: &Settings) -> anyhow::Result<Option<Vec<u8>>> {
    s.ca_file
        .as_ref()
        .map(|f| {
            std::fs::read(f).with_context(|| format!("cannot read AKM_CA_FILE {}", f.display()))
        })
        .transpose()
}

/// The app a city signs its calls to the province with: the configured
/// one; in role `all` also registered at the province here (generated when
/// not configured), scoped to the city's prefecture.
async fn city_app(
    s: &Settings,
    province: Option<&RunningNode>,
    clock: &SharedClock,
) -> anyhow::Result<Option<Signing>> {
    let configured = match (&s.province_app_id, &s.province_app_secret) {
        (Some(id), Some(secret)) => Some((id.clone(), secret.expose().to_string())),
        _ => None,
    };
    let (id, secret) = match (configured, province) {
        (Some(c), None) => c,
        (None, None) => {
            if s.auth == AuthMode::On {
                tracing::warn!("AKM_PROVINCE_APP_ID is not set: this city calls the province unsigned, and a province with signing on refuses it");
            }
            return Ok(None);
        }
        (c, Some(p)) => {
            let (id, secret) = c.unwrap_or_else(|| {
                (
                    format!("city-{}", s.city_no.region()),
                    apps::generate_secret(),
                )
            });
            let province_apps = Apps {
                store: p.store.clone(),
                clock: clock.clone(),
                // role `all`: the one province of this process
                reference: Reference::local(p.store.clone()),
            };
            let scopes = Scopes::parse(&[s.city_no.region().to_string()], &[])?;
            province_apps
                .ensure(&AppId::parse(&id)?, AppKind::City, scopes, &secret)
                .await?;
            (id, secret)
        }
    };
    Ok(Some(Signing {
        signer: Signer::new(id, secret, SignMethod::HmacSha256),
        clock: clock.clone(),
    }))
}

/// Every hour: remove audit records past their retention.
async fn trim_audit(store: Store, clock: SharedClock, days: u32, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
        let before = clock.now_ms() - i64::from(days) * 86_400_000;
        match store.trim_audit(before) {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "audit records past retention removed"),
            Err(e) => tracing::error!(error = %crate::service::chain(&e), "audit trim failed"),
        }
    }
}

impl Wiring {
    /// Spawn a supervised task (restarted with backoff if it ends before
    /// `cancel`).
    /// Own `partition` of `R`'s reply topic and hand its replies to
    /// `pending`; the first listener is assigned before this returns (no
    /// reply published after start is missed), a restart assigns again.
    async fn replies<R: Channel + Answer>(
        &mut self,
        role: &str,
        bus: &Bus,
        pending: Arc<Pending<R>>,
        partition: u32,
        cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        let first =
            replies::listen(bus.clone(), pending.clone(), partition, cancel.clone()).await?;
        let first = Arc::new(std::sync::Mutex::new(Some(Box::pin(first))));
        let (bus, cancel2) = (bus.clone(), cancel.clone());
        let name = format!("{role}/replies/{}", R::TOPIC.base());
        self.supervise(&name, cancel, move || {
            let (first, bus, pending, cancel) =
                (first.clone(), bus.clone(), pending.clone(), cancel2.clone());
            async move {
                let assigned = first.lock().unwrap_or_else(|p| p.into_inner()).take();
                match assigned {
                    Some(listening) => listening.await,
                    None => match replies::listen(bus, pending, partition, cancel).await {
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

/// Every hour: prune idempotency records and delivered marks older than
/// `AKM_IDEMPOTENCY_DAYS`.
async fn prune_idempotency(store: Store, clock: SharedClock, days: u32, cancel: CancellationToken) {
    loop {
        let before = clock.now_ms() - i64::from(days) * 86_400_000;
        match store.prune_trades(before) {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                removed = n,
                "idempotency records past their keeping removed"
            ),
            Err(e) => {
                tracing::error!(error = %crate::service::chain(&e), "idempotency prune failed")
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}

/// Every minute: remove expired QR grants (province).
async fn sweep_qr(qr: QrIssuer, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        match qr.sweep() {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "expired QR tokens removed"),
            Err(e) => tracing::error!(error = %crate::service::chain(&e), "QR sweep failed"),
        }
    }
}
