//! `chatwire dev`: a newcomer's first minute. One command starts Chatwire on SQLite with the
//! Twilio emulator in the same process, creates three demo bots (echo, a small Studio flow,
//! an FAQ over a small dataset) each with an integration on its own emulated number, prints
//! an API token and what to try next, and serves a phone page (`/dev/phone`) where a person
//! texts the bots from the browser and sees replies and delivery statuses arrive live.
//! `--chat` does the same in the terminal.
//!
//! The demo is built through the public API, as a user would build it (see [`demo`]), so
//! the walk-through in the README and this command cannot drift apart.
mod chat;
pub mod demo;
mod phone;

use crate::app::App;
use crate::config::Config;
use crate::emulator::{AccountConfig, EmulatorConfig, NumberConfig, Timing};
use anyhow::Context;
use clap::Parser;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// `chatwire dev` options.
#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// Address to serve Chatwire and the phone page on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// SQLite database file to keep the demo in between runs. Default: a fresh database in a
    /// temporary directory, removed on exit.
    #[arg(long)]
    pub database: Option<PathBuf>,
    /// Chat with the demo bots in this terminal instead of the browser.
    #[arg(long)]
    pub chat: bool,
    /// The demo bot `--chat` starts with: echo, flow or faq.
    #[arg(long, default_value = "echo")]
    pub bot: String,
}

/// The person's phone number on the phone page and in `--chat`.
pub const PERSON: &str = "+15551230001";

/// Everything the phone page and the terminal chat need of the running demo.
#[derive(Clone)]
pub struct Dev {
    pub emulator: Arc<crate::emulator::Emulator>,
    pub bots: Arc<Vec<demo::DemoBot>>,
}

/// A `serve` configuration with the defaults (and the user's `CHATWIRE_*` settings, such as
/// an LLM endpoint), aimed at `database_url`, `listen` and the emulator.
fn config(args: &DevArgs, database_url: &str, twilio_api_url: &str) -> anyhow::Result<Config> {
    #[derive(Parser)]
    struct Defaults {
        #[command(flatten)]
        config: Config,
    }
    let mut config = Defaults::try_parse_from(["chatwire"])
        .context("reading CHATWIRE_* settings")?
        .config;
    config.listen = args.listen;
    config.database_url = database_url.to_owned();
    config.public_url = None;
    config.twilio_api_url = twilio_api_url.to_owned();
    config.secret_key_file = None;
    // Replies to the phone page should not queue behind a carrier's one message per second.
    config.send_rate_per_sec = config.send_rate_per_sec.max(10.0);
    Ok(config)
}

fn emulator_config() -> EmulatorConfig {
    let account = AccountConfig {
        sid: crate::emulator::DEFAULT_ACCOUNT_SID.to_owned(),
        auth_token: crate::emulator::DEFAULT_AUTH_TOKEN.to_owned(),
    };
    let numbers = demo::NUMBERS
        .iter()
        .filter_map(|n| crate::channel::twilio::address::Address::parse(n).ok())
        .map(|address| NumberConfig {
            account_sid: account.sid.clone(),
            address,
            sms_url: None,
            status_callback: None,
        })
        .collect();
    EmulatorConfig {
        accounts: vec![account],
        numbers,
        // Slow enough to watch a reply go queued, sent, delivered on the phone page.
        timing: Timing {
            status_delay: Duration::from_millis(300),
            ..Timing::default()
        },
    }
}

/// Runs the demo until `shutdown` resolves (or, with `--chat`, until the chat ends).
pub async fn run(
    args: DevArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Without --database the demo lives in a directory removed on exit.
    let tmp = match &args.database {
        Some(_) => None,
        None => Some(tempfile::tempdir().context("creating a temporary directory")?),
    };
    let database_url = match (&args.database, &tmp) {
        (Some(path), _) => format!("sqlite://{}", path.display()),
        (None, Some(dir)) => format!("sqlite://{}", dir.path().join("chatwire.db").display()),
        (None, None) => "sqlite://chatwire-dev.db".to_owned(),
    };
    let emulator = crate::emulator::spawn(emulator_config()).await?;
    let app = App::build(config(&args, &database_url, emulator.url())?).await?;
    let base = format!("http://{}", app.local_addr());
    let (_, token) = crate::store::tokens::create(&app.state().db, "chatwire dev")
        .await
        .context("creating the demo's API token")?;
    let slot = phone::Slot::default();
    let app = app.with_routes(phone::routes(slot.clone()));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        tokio::select! {
            _ = shutdown => {}
            _ = stop_rx => {}
        }
    }));
    let outcome = async {
        let bots = Arc::new(
            demo::create(&base, &token)
                .await
                .context("creating the demo bots")?,
        );
        let dev = Dev {
            emulator: emulator.state().clone(),
            bots: bots.clone(),
        };
        slot.set(dev.clone());
        if args.chat {
            chat::run(&dev, &args.bot).await
        } else {
            print_welcome(&base, &token, &bots);
            std::future::pending::<anyhow::Result<()>>().await
        }
    };
    // The server ends on Ctrl-C; the chat, when it ends, stops the server.
    let mut server = server;
    let result = tokio::select! {
        served = &mut server => served.context("server task").and_then(|r| r),
        outcome = outcome => {
            let _ = stop_tx.send(());
            let _ = server.await;
            outcome
        }
    };
    emulator.shutdown().await;
    drop(tmp);
    result
}

fn print_welcome(base: &str, token: &str, bots: &[demo::DemoBot]) {
    println!();
    println!("Chatwire dev is running: Chatwire, a Twilio emulator and three demo bots.");
    println!();
    println!("  Phone page   {base}/dev/phone   (text the bots from your browser)");
    println!("  API token    {token}   (shown once; valid for this database)");
    println!();
    for bot in bots {
        println!("  {:<6} {}  {}", bot.key, bot.number, bot.hint);
    }
    println!();
    println!("Try the API:");
    println!("  export CHATWIRE=\"{base}\" TOKEN=\"{token}\"");
    println!("  curl -s $CHATWIRE/v1/bot/list -H \"Authorization: Bearer $TOKEN\"");
    println!("  curl -s $CHATWIRE/v1/channel/log/list -H \"Authorization: Bearer $TOKEN\"");
    println!("  curl -s $CHATWIRE/metrics");
    println!();
    println!("Or chat in the terminal: chatwire dev --chat. Ctrl-C stops everything.");
}
