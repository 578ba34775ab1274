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
    /// The portal's public address, for links in mail (invitations),
    /// e.g. `https://support.example.com`.
    #[arg(long, env = "PORTICO_PUBLIC_URL")]
    public_url: Option<String>,
    /// The built customer portal (`ui/portal/dist`); default: this repository's.
    #[arg(long, env = "PORTICO_PORTAL_UI")]
    portal_ui: Option<PathBuf>,
    #[command(flatten)]
    mail: MailArgs,
    #[command(flatten)]
    ai: AiArgs,
}

/// AI answers and drafts through an OpenAI-compatible endpoint
/// (docs/knowledge.md). Off unless a base URL is set: the built-in
/// extractive composer answers, offline.
#[derive(clap::Args, Clone)]
struct AiArgs {
    /// e.g. `https://api.openai.com/v1` or a local server's `/v1`.
    #[arg(long, env = "PORTICO_AI_BASE_URL")]
    ai_base_url: Option<String>,
    /// Model name sent to the endpoint.
    #[arg(long, env = "PORTICO_AI_MODEL", default_value = "gpt-4o-mini")]
    ai_model: String,
    /// API key for the endpoint (sent as a Bearer token).
    #[arg(long, env = "PORTICO_AI_KEY", hide_env_values = true)]
    ai_key: Option<String>,
    /// Seconds to wait for the endpoint before answering with the built-in composer.
    #[arg(long, env = "PORTICO_AI_TIMEOUT_SECS", default_value_t = 20)]
    ai_timeout_secs: u64,
}

/// The email channel (docs/email.md). Off unless a support address is set.
#[derive(clap::Args, Clone)]
struct MailArgs {
    /// The support address mail is received at and replies are sent from;
    /// setting it turns the email channel on.
    #[arg(long, env = "PORTICO_MAIL_ADDRESS")]
    mail_address: Option<String>,
    /// Display name on replies, e.g. "Acme Support".
    #[arg(long, env = "PORTICO_MAIL_NAME", default_value = "Support")]
    mail_name: String,
    /// Bearer secret of POST /v1/mail/inbound (a provider's inbound hook);
    /// the hook is off without it.
    #[arg(long, env = "PORTICO_MAIL_HOOK_SECRET", hide_env_values = true)]
    mail_hook_secret: Option<String>,
    /// authserv-id of the receiving server whose Authentication-Results are
    /// trusted (default: the topmost header).
    #[arg(long, env = "PORTICO_MAIL_AUTHSERV_ID")]
    mail_authserv_id: Option<String>,
    /// IMAP server of the support mailbox; without it mail arrives only by the hook.
    #[arg(long, env = "PORTICO_IMAP_HOST")]
    imap_host: Option<String>,
    #[arg(long, env = "PORTICO_IMAP_PORT", default_value_t = 993)]
    imap_port: u16,
    #[arg(long, env = "PORTICO_IMAP_SECURITY", value_enum, default_value = "tls")]
    imap_security: portico_portal::mail::imap::ImapSecurity,
    #[arg(long, env = "PORTICO_IMAP_USER")]
    imap_user: Option<String>,
    #[arg(long, env = "PORTICO_IMAP_PASSWORD", hide_env_values = true)]
    imap_password: Option<String>,
    #[arg(long, env = "PORTICO_IMAP_MAILBOX", default_value = "INBOX")]
    imap_mailbox: String,
    /// Poll interval in seconds for servers without IDLE.
    #[arg(long, env = "PORTICO_IMAP_POLL_SECS", default_value_t = 60)]
    imap_poll_secs: u64,
    /// SMTP server replies go out through; without it they stay queued.
    #[arg(long, env = "PORTICO_SMTP_HOST")]
    smtp_host: Option<String>,
    #[arg(long, env = "PORTICO_SMTP_PORT", default_value_t = 587)]
    smtp_port: u16,
    #[arg(
        long,
        env = "PORTICO_SMTP_SECURITY",
        value_enum,
        default_value = "starttls"
    )]
    smtp_security: portico_portal::mail::outbox::Security,
    #[arg(long, env = "PORTICO_SMTP_USER")]
    smtp_user: Option<String>,
    #[arg(long, env = "PORTICO_SMTP_PASSWORD", hide_env_values = true)]
    smtp_password: Option<String>,
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
    // Blocking work here is short SQLite calls (8 pooled readers, one
    // writer) and password checks (two at a time): more threads than that
    // only wait. Without a cap a burst of connections (10,000 live sockets
    // opened 500 at a time) started ~300 threads, each with its own stack
    // and allocator cache, and the memory stayed.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(32)
        .build()?;
    let command = match cli.command {
        Some(c) => c,
        // No subcommand: `demo` with its defaults and environment variables.
        None => {
            use clap::{Args, FromArgMatches};
            let matches = ServeArgs::augment_args(clap::Command::new("demo"))
                .try_get_matches_from(["demo"])?;
            Command::Demo(ServeArgs::from_arg_matches(&matches)?)
        }
    };
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
    if let Some(url) = &args.public_url {
        portico_portal::mail::invitation::set_public_url(&state.store, url)?;
    }
    if let Some(dir) = args.portal_ui.clone() {
        portico_portal::web::serve_from(dir);
    }
    if let Some(base_url) = &args.ai.ai_base_url {
        let chat = portico_knowledge::compose::ChatCompletions::new(
            portico_knowledge::compose::ChatConfig {
                base_url: base_url.clone(),
                model: args.ai.ai_model.clone(),
                api_key: args.ai.ai_key.clone(),
                timeout: std::time::Duration::from_secs(args.ai.ai_timeout_secs),
                stream: false,
            },
        )
        .context("configuring the AI endpoint")?;
        state.knowledge.use_chat_completions(chat);
        tracing::info!(%base_url, model = %args.ai.ai_model, "AI answers through a chat-completions endpoint");
    }
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
    start_mail(&mut state, &args.mail)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("portal-core listening on http://{addr}  (health: http://{addr}/v1/health)");
    println!("customer portal: http://{addr}/portal/");
    if demo {
        println!("{}", seed::DEMO_SIGN_INS);
    }
    portico_portal::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped; in-flight requests finished");
    Ok(())
}

/// Turns the email channel on when a support address is configured: the
/// inbound hook, the IMAP fetcher and the SMTP sender, each if configured.
fn start_mail(state: &mut portico_portal::AppState, m: &MailArgs) -> anyhow::Result<()> {
    use portico_portal::mail::{MailIdentity, MailSettings, imap, outbox};
    let Some(address) = &m.mail_address else {
        return Ok(());
    };
    let mut identity = MailIdentity::new(address, &m.mail_name);
    identity.authserv_id = m.mail_authserv_id.clone();
    outbox::configure(&state.store, &identity).context("storing the mail settings")?;
    state.mail = Some(Arc::new(MailSettings {
        identity: identity.clone(),
        hook_secret: m.mail_hook_secret.clone(),
    }));
    match (&m.imap_host, &m.imap_user, &m.imap_password) {
        (Some(host), Some(user), Some(password)) => {
            let config = imap::ImapConfig {
                host: host.clone(),
                port: m.imap_port,
                security: m.imap_security,
                username: user.clone(),
                password: password.clone(),
                mailbox: m.imap_mailbox.clone(),
                poll: std::time::Duration::from_secs(m.imap_poll_secs.max(5)),
            };
            imap::spawn_fetcher(
                config,
                state.store.clone(),
                state.clock.clone(),
                identity.clone(),
            );
        }
        (None, _, _) => {
            tracing::info!("no IMAP mailbox configured: mail arrives only by the inbound hook")
        }
        _ => anyhow::bail!(
            "IMAP needs PORTICO_IMAP_HOST, PORTICO_IMAP_USER and PORTICO_IMAP_PASSWORD together"
        ),
    }
    match &m.smtp_host {
        Some(host) => {
            let config = outbox::SmtpConfig {
                host: host.clone(),
                port: m.smtp_port,
                security: m.smtp_security,
                username: m.smtp_user.clone(),
                password: m.smtp_password.clone(),
            };
            let sender = outbox::Sender::new(&config, identity).context("configuring SMTP")?;
            outbox::spawn_worker(
                state.store.clone(),
                state.clock.clone(),
                sender,
                std::time::Duration::from_secs(5),
            );
        }
        None => tracing::warn!("no SMTP server configured: email replies stay queued until one is"),
    }
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
