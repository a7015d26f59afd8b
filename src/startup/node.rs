//! One node (a role in this process): its store, bus and services, its
//! workers under supervision, its listener, and its restore before it
//! serves.

use super::*;

impl Wiring {
    pub(super) async fn node(
        &mut self,
        spec: RoleSpec,
        dir: &Path,
        listen: &str,
    ) -> anyhow::Result<(RunningNode, Option<QrIssuer>)> {
        let s = self.settings.clone();
        let clock = self.clock.clone();
        let cancel = self.cancel.child_token();
        let durable = Durable::open_with_cache(dir, s.cache_mb)
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
        if let Some(log) = bus.tx_log() {
            // the embedded bus lives in this database: an acceptance's
            // events go to their partitions in its own transaction
            store.append_events_to(log);
        }
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
        // other instances may own this node's partitions, now or later
        // (Kafka); on the embedded bus this one owns them all for good
        let shared = bus.backend() == "kafka";
        let state = StateLog {
            caught_up: Default::default(),
            bus: bus.clone(),
            scope: node_id.clone(),
            applied: Applied::default(),
            kept: shared,
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
        let outcomes = Outcomes::new(
            store.clone(),
            bus.topics().clone(),
            relay_wake.clone(),
            clock.clone(),
            node_id.clone(),
        );
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
            },
            dashboard: Default::default(),
            outcomes: outcomes.clone(),
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
            let (every, cancel2) = (s.stats_flush, cancel.clone());
            self.supervise(&format!("{role}/stats-outcomes"), &cancel, move || {
                outcomes.clone().run(every, cancel2.clone())
            });
        }
        {
            let counter = stats::Counter {
                bus: bus.clone(),
                store: store.clone(),
                node_id: node_id.clone(),
                instance: instance.clone(),
                cancel: cancel.clone(),
                held: Default::default(),
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
            answers: Answers {
                bus: bus.clone(),
                local: pending.clone(),
                keys: self.keys.clone(),
            },
            transcoder: Arc::new(Transcoder {
                configs: configs.clone(),
                identity,
                http: http.clone(),
                clock: clock.clone(),
                subject_key,
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
            answers: Answers {
                bus: bus.clone(),
                local: callback_pending.clone(),
                keys: self.keys.clone(),
            },
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
            let (store, every, cancel2) = (store.clone(), s.audit_write, cancel.clone());
            self.supervise(&format!("{role}/audit-write"), &cancel, move || {
                write_audit(store.clone(), every, cancel2.clone())
            });
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
