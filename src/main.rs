//! `akm`: serve a role, run the simulators, import residents, replay a DLQ,
//! list topics, sign and send a request, manage apps.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use akm::config::Settings;
use akm::Roles;

mod cli;

// mimalloc, arenas committed on demand (`akm::alloc`)
akm::allocator!();

#[derive(Debug, Parser)]
#[command(
    name = "akm",
    version,
    about = "安康码融合转码平台 (Ankang code fusion transcoding platform)"
)]
struct Cli {
    /// Config file (TOML); keys are the AKM_* names in lower case without the prefix.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// sled data directory (overrides AKM_DATA_DIR).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a role: province, city, or all (province + city + simulators + demo data).
    Serve {
        #[arg(long, value_enum, default_value = "all")]
        role: Roles,
    },
    /// Run only the card-system and push-gateway simulators.
    Sim,
    /// Import residents from a JSON Lines file into the province store (node stopped).
    Import {
        /// One resident per line: idcardNo, name, userPhone, healthLevel, dataSource, universalAuth.
        file: PathBuf,
    },
    /// Re-publish the records of a dead-letter topic to their topic (node stopped).
    Replay {
        /// The DLQ's base topic, e.g. akm.trade.reported or akm.notify.
        topic: String,
    },
    /// Topics as code: `list` the declared topics, `apply` them to the Kafka cluster.
    Topics {
        #[command(subcommand)]
        action: TopicsAction,
    },
    /// Sign (SPEC §9) and send one request; print the answer.
    Call {
        /// The app id (default: AKM_APP_ID).
        #[arg(long)]
        app: Option<String>,
        /// The app's secret (default: AKM_APP_SECRET).
        #[arg(long)]
        secret: Option<String>,
        /// HMAC-SHA256 (default) or HMAC-SM3.
        #[arg(long, default_value = "HMAC-SHA256", value_parser = ["HMAC-SHA256", "HMAC-SM3"])]
        sign_method: String,
        /// GET, POST, PUT or DELETE.
        method: String,
        /// The full URL, e.g. http://127.0.0.1:8081/api/v1/transcode.
        url: String,
        /// The JSON body, sent exactly as given.
        body: Option<String>,
    },
    /// Data keys: `new` prints a fresh key; `rotate` re-seals a stopped
    /// node's data under a new key (the current one from the settings).
    Keys {
        #[command(subcommand)]
        action: KeysCmd,
    },
    /// The node's statistics (统计考核) per day, cityNo, targetType,
    /// sceneCode and outcome, as a table, as the operator app
    /// (AKM_ADMIN_APP_ID, AKM_ADMIN_APP_SECRET).
    Stats {
        /// The node's base URL (default: the province listener).
        #[arg(long)]
        url: Option<String>,
        /// First day, YYYYMMDD (default: today, UTC+8).
        #[arg(long)]
        from: Option<String>,
        /// Last day, YYYYMMDD (default: the first day).
        #[arg(long)]
        to: Option<String>,
        /// Only cityNos starting with this prefix (e.g. 3401).
        #[arg(long)]
        city_no: Option<String>,
    },
    /// The schema registry (AKM_SCHEMA_REGISTRY_URL): `apply` registers
    /// the schemas of akm.trade under `<topic>-value`, BACKWARD.
    Schemas {
        #[command(subcommand)]
        action: SchemasAction,
    },
    /// Print a sign-in link to the node's dashboard (/dashboard) for the
    /// operator app (AKM_ADMIN_APP_ID, AKM_ADMIN_APP_SECRET): good once.
    DashboardLink {
        /// The node's base URL (default: the province listener).
        #[arg(long)]
        url: Option<String>,
        /// Minutes the link stays good, 1 to 15.
        #[arg(long, default_value_t = 10)]
        minutes: u64,
    },
    /// Register, list and rotate apps through the apps admin API, as the
    /// operator app (AKM_ADMIN_APP_ID, AKM_ADMIN_APP_SECRET).
    Apps {
        /// The node's base URL (default: the province listener).
        #[arg(long, global = true)]
        url: Option<String>,
        #[command(subcommand)]
        action: AppsCmd,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCmd {
    /// Print a fresh data key (base64) for AKM_DATA_CIPHER.
    New,
    /// Re-seal every sealed value of the data dir under the key in FILE
    /// (node stopped). Then run with that key, and keep the old one in
    /// AKM_DATA_KEY_OLD until the topics' older records are consumed.
    Rotate {
        /// The new key, base64, as `akm keys new` prints it.
        #[arg(long)]
        new_key_file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AppsCmd {
    /// Create (prints the secret once) or update an app.
    Add {
        app_id: String,
        /// terminal, card-system, city or operator.
        #[arg(long)]
        kind: String,
        /// cityNo prefixes, comma-separated (empty: any).
        #[arg(long, value_delimiter = ',')]
        city_nos: Vec<String>,
        /// Target types, comma-separated (empty: any).
        #[arg(long, value_delimiter = ',')]
        target_types: Vec<String>,
        /// Requests per second (0: none).
        #[arg(long, default_value_t = 0)]
        rate_limit: u32,
    },
    /// The apps, without secrets.
    List,
    /// Add a second secret (prints it once), or retire one with --retire.
    Rotate {
        app_id: String,
        /// Retire this secret id instead of adding one.
        #[arg(long)]
        retire: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum SchemasAction {
    /// Register the schemas with BACKWARD compatibility. Idempotent.
    Apply,
}

#[derive(Debug, Subcommand)]
enum TopicsAction {
    /// Print the declared topics (topics/*.toml) with AKM_TOPIC_PREFIX.
    List,
    /// Create the declared topics on AKM_KAFKA_BROKERS, or grow their partitions. Idempotent.
    Apply,
}

/// Runs the command; an error is one line on stderr (its causes joined
/// with `: `) and exit status 1, never a Rust backtrace, whatever
/// `RUST_BACKTRACE` says: a 4xx from `akm call` is an answer, not a crash.
fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = logging().and_then(|()| run(cli));
    #[cfg(feature = "otlp")]
    akm::otlp::shutdown();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The subscriber below the env filter.
type Base =
    tracing_subscriber::layer::Layered<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// Logs to stderr as text or JSON (`AKM_LOG_FORMAT`, read before the
/// settings, so that loading them logs), and with the `otlp` feature
/// spans to `OTEL_EXPORTER_OTLP_ENDPOINT`.
fn logging() -> anyhow::Result<()> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sled=warn"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let layers: Vec<Box<dyn Layer<Base> + Send + Sync>> =
        vec![match std::env::var("AKM_LOG_FORMAT").as_deref() {
            Err(_) | Ok("") | Ok("text") => fmt.boxed(),
            // one JSON object per line: timestamp, level, target, fields (the
            // message among them) and the current span (its trace_id)
            Ok("json") => fmt
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .boxed(),
            Ok(other) => anyhow::bail!("AKM_LOG_FORMAT must be text or json, not {other:?}"),
        }];
    #[cfg(feature = "otlp")]
    let layers = {
        let mut all = layers;
        all.extend(akm::otlp::layer::<Base>()?);
        all
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(layers)
        .init();
    #[cfg(not(feature = "otlp"))]
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
        tracing::warn!("OTEL_EXPORTER_OTLP_ENDPOINT is set but this build has no OTLP export (cargo build --features otlp)");
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = Settings::load(cli.config.as_deref())?;
    if let Some(d) = cli.data_dir {
        settings.data_dir = d;
    }
    let rt = tokio::runtime::Runtime::new().context("tokio runtime")?;
    rt.block_on(async move {
        match cli.command {
            Command::Serve { role } => cli::serve(settings, role).await,
            Command::Sim => cli::sim(settings).await,
            Command::Import { file } => cli::import(settings, &file).await,
            Command::Replay { topic } => cli::replay(settings, &topic).await,
            Command::Topics {
                action: TopicsAction::List,
            } => cli::topics(&settings),
            Command::Topics {
                action: TopicsAction::Apply,
            } => cli::apply(&settings).await,
            Command::Call {
                app,
                secret,
                sign_method,
                method,
                url,
                body,
            } => {
                cli::call(cli::CallArgs {
                    app,
                    secret,
                    sm3: sign_method == "HMAC-SM3",
                    method,
                    url,
                    body,
                })
                .await
            }
            Command::Keys {
                action: KeysCmd::New,
            } => cli::new_key(&settings),
            Command::Keys {
                action: KeysCmd::Rotate { new_key_file },
            } => cli::rotate(settings, &new_key_file).await,
            Command::Schemas {
                action: SchemasAction::Apply,
            } => cli::schemas_apply(&settings).await,
            Command::DashboardLink { url, minutes } => cli::dashboard_link(&settings, url, minutes),
            Command::Stats {
                url,
                from,
                to,
                city_no,
            } => {
                let today = akm::domain::Day::of_ms(chrono::Utc::now().timestamp_millis());
                let from = from.unwrap_or_else(|| today.to_string());
                let to = to.unwrap_or_else(|| from.clone());
                cli::stats(&settings, url, &from, &to, city_no.as_deref()).await
            }
            Command::Apps { url, action } => {
                let action = match action {
                    AppsCmd::Add {
                        app_id,
                        kind,
                        city_nos,
                        target_types,
                        rate_limit,
                    } => cli::AppsAction::Add {
                        app_id,
                        kind,
                        city_nos,
                        target_types,
                        rate_limit,
                    },
                    AppsCmd::List => cli::AppsAction::List,
                    AppsCmd::Rotate { app_id, retire } => {
                        cli::AppsAction::Rotate { app_id, retire }
                    }
                };
                cli::apps(&settings, url, action).await
            }
        }
    })
}
