//! `portal-core`: run Portico's server, seed demo data.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use portico_portal::seed::{self, SeedSize};
use portico_portal::{SystemClock, clock::Clock};

#[derive(Parser)]
#[command(
    name = "portal-core",
    version,
    about = "Portico's server: accounts, billing, conversations, knowledge, sync."
)]
struct Cli {
    /// SQLite database file (created if missing).
    #[arg(
        long,
        env = "PORTICO_DB",
        default_value = "portico-data/portal.db",
        global = true
    )]
    db: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Seed demo data if the database is empty, then serve (the default).
    Demo(ServeArgs),
    /// Serve the API.
    Serve(ServeArgs),
    /// Fill an empty database with deterministic demo data.
    Seed(SeedArgs),
}

#[derive(clap::Args, Clone)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PORTICO_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Mark cookies Secure (when a TLS proxy fronts the server).
    #[arg(long, env = "PORTICO_SECURE_COOKIES")]
    secure_cookies: bool,
}

#[derive(clap::Args, Clone)]
struct SeedArgs {
    /// Conversations to create.
    #[arg(long, default_value_t = 2_000)]
    conversations: u32,
    /// Messages across all conversations.
    #[arg(long, default_value_t = 20_000)]
    messages: u64,
    /// Customer accounts (default: one per 250 conversations, at least 40).
    #[arg(long)]
    accounts: Option<u32>,
}

impl From<&SeedArgs> for SeedSize {
    fn from(a: &SeedArgs) -> Self {
        SeedSize {
            conversations: a.conversations,
            messages: a.messages,
            accounts: a
                .accounts
                .unwrap_or_else(|| (a.conversations / 250).max(40)),
        }
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    if let Some(dir) = cli.db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the database folder {}", dir.display()))?;
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let runtime = tokio::runtime::Runtime::new()?;
    let command = cli.command.unwrap_or(Command::Demo(ServeArgs {
        listen: "127.0.0.1:8080".parse()?,
        secure_cookies: false,
    }));
    let state = portico_portal::open_state(&cli.db, clock.clone())
        .with_context(|| format!("opening {}", cli.db.display()))?;
    match command {
        Command::Seed(args) => {
            let report = seed::seed(&state.store, SeedSize::from(&args), clock.now())?;
            println!("{report}");
            Ok(())
        }
        Command::Demo(args) => {
            if seed::is_empty(&state.store)? {
                let size = SeedSize::from(&SeedArgs {
                    conversations: 2_000,
                    messages: 20_000,
                    accounts: None,
                });
                seed::seed(&state.store, size, clock.now())?;
            }
            runtime.block_on(run(state, args, true))
        }
        Command::Serve(args) => runtime.block_on(run(state, args, false)),
    }
}

async fn run(
    mut state: portico_portal::AppState,
    args: ServeArgs,
    demo: bool,
) -> anyhow::Result<()> {
    state.secure_cookies = args.secure_cookies;
    // Background work: SLA warnings and breaches, webhook deliveries.
    let every = std::time::Duration::from_secs(30);
    portico_portal::work::spawn_sla_sweeper(state.store.clone(), state.clock.clone(), every);
    let http =
        portico_portal::webhooks::http_client().context("building the webhook HTTP client")?;
    portico_portal::webhooks::spawn_worker(
        state.store.clone(),
        state.clock.clone(),
        http,
        std::time::Duration::from_secs(10),
    );
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("portal-core listening on http://{addr}  (health: http://{addr}/v1/health)");
    if demo {
        println!("{}", seed::DEMO_SIGN_INS);
    }
    portico_portal::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped; in-flight requests finished");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing in-flight requests");
}
