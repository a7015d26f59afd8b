//! `akm`: serve a role, run the simulators, import residents, replay a DLQ,
//! list topics.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use akm::config::Settings;
use akm::Roles;

mod cli;

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
}

#[derive(Debug, Subcommand)]
enum TopicsAction {
    /// Print the declared topics (topics/*.toml) with AKM_TOPIC_PREFIX.
    List,
    /// Create the declared topics on AKM_KAFKA_BROKERS, or grow their partitions. Idempotent.
    Apply,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sled=warn")),
        )
        .init();
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
        }
    })
}
