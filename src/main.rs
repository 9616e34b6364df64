//! `chatwire`: command-line dispatch only.
use anyhow::Context;
use chatwire::app::App;
use chatwire::config::Config;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "chatwire",
    version,
    about = "Self-hosted gateway between chatbots and the phone network"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Serve(Box<Config>),
    /// Run a local Twilio emulator (REST subset + signed webhooks) for tests and demos.
    TwilioEmulator(chatwire::emulator::EmulatorArgs),
    /// Run database migrations and exit.
    Migrate {
        #[arg(
            long,
            env = "CHATWIRE_DATABASE_URL",
            default_value = "sqlite://chatwire.db"
        )]
        database_url: String,
    },
    /// Manage management-API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Print the OpenAPI document of the management API, webhooks and operations routes.
    Openapi,
    /// Try Chatwire in one command: SQLite, the Twilio emulator in-process, demo bots and a
    /// phone page in the browser (or `--chat` in this terminal).
    Dev(chatwire::dev::DevArgs),
    /// Manage human agents, who sign in to the inbox at /console.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Create an agent. The password is read from CHATWIRE_AGENT_PASSWORD, or else from the
    /// first line of standard input; it is stored only as an argon2 hash.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// An integration the agent works on (repeat for several).
        #[arg(long = "integration")]
        integrations: Vec<String>,
        /// Most conversations at once.
        #[arg(long, default_value_t = 5)]
        max_conversations: i64,
        #[arg(
            long,
            env = "CHATWIRE_DATABASE_URL",
            default_value = "sqlite://chatwire.db"
        )]
        database_url: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token; it is printed once and stored only as a hash.
    Create {
        #[arg(long, default_value = "")]
        name: String,
        #[arg(
            long,
            env = "CHATWIRE_DATABASE_URL",
            default_value = "sqlite://chatwire.db"
        )]
        database_url: String,
    },
    /// List tokens: ids, names, creation times (never their values).
    List {
        #[arg(
            long,
            env = "CHATWIRE_DATABASE_URL",
            default_value = "sqlite://chatwire.db"
        )]
        database_url: String,
    },
    /// Revoke a token by id (or by name when one token has it).
    Revoke {
        /// The token's id (from `chatwire token list`) or name.
        token: String,
        #[arg(
            long,
            env = "CHATWIRE_DATABASE_URL",
            default_value = "sqlite://chatwire.db"
        )]
        database_url: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let command = match cli.command {
        Some(command) => command,
        None => Command::Serve(Box::new(
            Cli::parse_from(["chatwire", "serve"]).serve_config()?,
        )),
    };
    // Only the server exports traces; the other commands log.
    let otlp = match &command {
        Command::Serve(config) => config.otlp_endpoint.clone(),
        _ => None,
    };
    let telemetry =
        chatwire::logging::init(chatwire::logging::LogFormat::from_env()?, otlp.as_deref())?;
    match command {
        Command::Serve(config) => {
            let app = App::build(*config).await?;
            let served = app.run_until_stopped(shutdown_signal()).await;
            // The spans of the last messages are still queued for export.
            telemetry.shutdown().await;
            served
        }
        Command::TwilioEmulator(args) => chatwire::emulator::serve(args, shutdown_signal()).await,
        Command::Migrate { database_url } => {
            chatwire::store::Db::connect(&database_url).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Token { command } => token(command).await,
        Command::Openapi => {
            println!("{:#}", chatwire::http::openapi_document());
            Ok(())
        }
        Command::Dev(args) => chatwire::dev::run(args, shutdown_signal()).await,
        Command::Agent {
            command:
                AgentCommand::Create {
                    email,
                    name,
                    integrations,
                    max_conversations,
                    database_url,
                },
        } => {
            let password = match std::env::var("CHATWIRE_AGENT_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("reading the password from standard input")?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            let db = chatwire::store::Db::connect(&database_url).await?;
            let body = serde_json::json!({
                "email": email, "name": name, "password": password,
                "integrationIds": integrations, "maxConversations": max_conversations,
            });
            let body = body.as_object().cloned().unwrap_or_default();
            let id = chatwire::handoff::accounts::create(&db, &body)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{id}");
            Ok(())
        }
    }
}

async fn token(command: TokenCommand) -> anyhow::Result<()> {
    use chatwire::store::tokens::{self, Revoked};
    match command {
        TokenCommand::Create { name, database_url } => {
            let db = chatwire::store::Db::connect(&database_url).await?;
            let (_, token) = tokens::create(&db, &name).await.context("creating token")?;
            println!("{token}");
        }
        TokenCommand::List { database_url } => {
            let db = chatwire::store::Db::connect(&database_url).await?;
            let all = tokens::list(&db).await.context("listing tokens")?;
            if all.is_empty() {
                eprintln!("no tokens stored; create one with `chatwire token create --name NAME`");
            }
            for t in all {
                println!("{}\t{}\t{}", t.id, iso_ms(t.created_at), t.name);
            }
        }
        TokenCommand::Revoke {
            token,
            database_url,
        } => {
            let db = chatwire::store::Db::connect(&database_url).await?;
            match tokens::revoke(&db, &token)
                .await
                .context("revoking token")?
            {
                Revoked::One(t) => println!("revoked {} ({})", t.id, t.name),
                Revoked::NotFound => anyhow::bail!("no token has the id or name \"{token}\""),
                Revoked::Ambiguous(all) => anyhow::bail!(
                    "{} tokens are named \"{token}\"; revoke one by id: {}",
                    all.len(),
                    all.iter()
                        .map(|t| t.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
    }
    Ok(())
}

/// A millisecond timestamp as RFC 3339 (UTC).
fn iso_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

impl Cli {
    fn serve_config(self) -> anyhow::Result<Config> {
        match self.command {
            Some(Command::Serve(config)) => Ok(*config),
            _ => anyhow::bail!("could not build the default serve configuration"),
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
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
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
