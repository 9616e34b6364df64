//! A local Twilio: the REST subset Chatwire calls (under `/2010-04-01/`) and a control API
//! (under `/_emulator/`) that plays the phone network, so every path of the gateway can be
//! exercised offline, in tests and by hand (`chatwire twilio-emulator`).
//!
//! Fidelity comes from `shared/reference/twilio-protocol.md`: Basic auth with 20003, the JSON
//! resources and error shape, the 2010 paging envelope, synchronous create errors (21211,
//! 21602, 21610, 21617, ...), segment counts from [`crate::sms`], signed form webhooks with
//! retries, asynchronous signed status callbacks (sent, then delivered) and STOP/START opt-out.
//! State is in memory; tests drive it in-process through [`EmulatorHandle`].

mod control;
mod conversations;
mod handle;
mod messages;
mod rest;
mod state;
mod webhook;

use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;

use crate::channel::twilio::address::Address;

pub use control::ControlError;
pub use conversations::{
    ConvMessage, Conversation, ConversationInbound, ConversationInboundResult, Participant,
    DEFAULT_SERVICE_SID,
};
pub use handle::EmulatorHandle;
pub use state::{
    AccountConfig, DeliveryRecord, Emulator, Fault, FaultKind, InboundRequest, InboundResult,
    NumberConfig, Timing, WebhookRetries,
};

/// The default account's SID, used when no `--account` is given.
pub const DEFAULT_ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
/// The default account's token. It is a fake development credential, printed at start.
pub const DEFAULT_AUTH_TOKEN: &str = "emulator0auth0token0000000000001";
/// Numbers of the default account when no `--number` is given (Twilio's magic test number and
/// WhatsApp sandbox number).
pub const DEFAULT_NUMBERS: [&str; 2] = ["+15005550006", "whatsapp:+14155238886"];

/// `chatwire twilio-emulator` options.
#[derive(Debug, Clone, clap::Args)]
pub struct EmulatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// A fake account, `SID:TOKEN` (repeatable). Default: one deterministic development account.
    #[arg(long = "account", value_name = "SID:TOKEN")]
    pub accounts: Vec<AccountArg>,
    /// A number, `ACCOUNT_SID:+E164` or `ACCOUNT_SID:whatsapp:+E164`, optionally `=SMS_URL`
    /// (repeatable). Default: +15005550006 and whatsapp:+14155238886 on the first account.
    #[arg(long = "number", value_name = "ACCOUNT_SID:[whatsapp:]+E164[=SMS_URL]")]
    pub numbers: Vec<NumberArg>,
    /// Pause before each status change of a sent message (queued -> sent -> delivered).
    #[arg(long, default_value_t = 200)]
    pub status_delay_ms: u64,
    /// Inbound webhook retries: `twilio` (as Twilio: the URL's connection overrides, else one
    /// retry on a failed connection) or a fixed number of attempts on any failure or 5xx.
    #[arg(long, default_value = "twilio")]
    pub webhook_retries: WebhookRetries,
    /// Pause before the first retry of a webhook, doubled for each further one.
    #[arg(long, default_value_t = 500)]
    pub webhook_backoff_ms: u64,
}

/// `--account SID:TOKEN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountArg(pub AccountConfig);

impl FromStr for AccountArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (sid, token) = s.split_once(':').ok_or("expected SID:TOKEN")?;
        let shaped = sid.len() == 34
            && sid.starts_with("AC")
            && sid.bytes().all(|b| b.is_ascii_alphanumeric());
        if !shaped || token.is_empty() {
            return Err(format!(
                "expected AC followed by 32 hex digits, then :TOKEN, got {sid:?}"
            ));
        }
        Ok(AccountArg(AccountConfig {
            sid: sid.to_owned(),
            auth_token: token.to_owned(),
        }))
    }
}

/// `--number ACCOUNT_SID:[whatsapp:]+E164[=SMS_URL]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberArg(pub NumberConfig);

impl FromStr for NumberArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (account_sid, rest) = s.split_once(':').ok_or("expected ACCOUNT_SID:+E164")?;
        let (address, sms_url) = match rest.split_once('=') {
            Some((address, url)) => (address, Some(url.to_owned())),
            None => (rest, None),
        };
        let address = Address::parse(address).map_err(|e| e.to_string())?;
        Ok(NumberArg(NumberConfig {
            account_sid: account_sid.to_owned(),
            address,
            sms_url,
            status_callback: None,
        }))
    }
}

/// Everything [`spawn`] needs.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub accounts: Vec<AccountConfig>,
    pub numbers: Vec<NumberConfig>,
    pub timing: Timing,
}

impl Default for EmulatorConfig {
    /// The default account with the default numbers and test-speed timing.
    fn default() -> Self {
        EmulatorConfig::from_parts(Vec::new(), Vec::new(), Timing::default())
    }
}

impl EmulatorConfig {
    fn from_parts(
        accounts: Vec<AccountConfig>,
        numbers: Vec<NumberConfig>,
        timing: Timing,
    ) -> Self {
        let accounts = if accounts.is_empty() {
            vec![AccountConfig {
                sid: DEFAULT_ACCOUNT_SID.to_owned(),
                auth_token: DEFAULT_AUTH_TOKEN.to_owned(),
            }]
        } else {
            accounts
        };
        let numbers = if numbers.is_empty() {
            let owner = accounts[0].sid.clone();
            DEFAULT_NUMBERS
                .iter()
                .filter_map(|n| Address::parse(n).ok())
                .map(|address| NumberConfig {
                    account_sid: owner.clone(),
                    address,
                    sms_url: None,
                    status_callback: None,
                })
                .collect()
        } else {
            numbers
        };
        EmulatorConfig {
            accounts,
            numbers,
            timing,
        }
    }

    /// The configuration the CLI arguments describe.
    pub fn from_args(args: &EmulatorArgs) -> Self {
        let timing = Timing {
            status_delay: Duration::from_millis(args.status_delay_ms),
            webhook_backoff: Duration::from_millis(args.webhook_backoff_ms),
            webhook_retries: args.webhook_retries,
            ..Timing::default()
        };
        EmulatorConfig::from_parts(
            args.accounts.iter().map(|a| a.0.clone()).collect(),
            args.numbers.iter().map(|n| n.0.clone()).collect(),
            timing,
        )
    }
}

fn router(emulator: Arc<Emulator>) -> Router {
    rest::routes()
        .merge(control::routes())
        .merge(conversations::routes())
        .fallback(rest::not_found)
        .with_state(emulator)
}

/// Runs the emulator on `args.listen` until `shutdown` resolves.
pub async fn serve(
    args: EmulatorArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let config = EmulatorConfig::from_args(&args);
    let emulator = Arc::new(Emulator::new(
        config.accounts.clone(),
        &config.numbers,
        config.timing,
    )?);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    println!("Twilio emulator listening on {url}");
    println!("  REST API {url}/2010-04-01/   control API {url}/_emulator/");
    // These are fake development credentials that only this emulator accepts, so printing the
    // token is what makes them usable; never do this with a real Twilio token.
    for account in &config.accounts {
        println!(
            "  account {} token {} (fake, emulator only)",
            account.sid, account.auth_token
        );
    }
    for number in &config.numbers {
        let url = number.sms_url.as_deref().unwrap_or("(no SmsUrl yet)");
        println!(
            "  number {} of {} -> {url}",
            number.address, number.account_sid
        );
    }
    axum::serve(listener, router(emulator))
        .with_graceful_shutdown(shutdown)
        .await
        .context("emulator server failed")
}

/// Starts an emulator on `127.0.0.1:0` in the background, for tests.
pub async fn spawn(config: EmulatorConfig) -> anyhow::Result<EmulatorHandle> {
    let emulator = Arc::new(Emulator::new(
        config.accounts,
        &config.numbers,
        config.timing,
    )?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = router(emulator.clone());
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(%error, "emulator server failed");
        }
    });
    Ok(EmulatorHandle::new(addr, emulator, stop, task))
}

#[cfg(test)]
mod tests;
