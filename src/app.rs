//! Building and running the server: `App::build` binds (port 0 in tests) and reports its
//! address; `run_until_stopped` serves until the shutdown future resolves, then drains.
use crate::channel::conversations::TwilioConversations;
use crate::channel::twilio::messaging::TwilioMessaging;
use crate::channel::{Channel, Channels};
use crate::config::Config;
use crate::crypto::Cipher;
use crate::store::{Backend, Db};
use anyhow::Context;
use secrecy::ExposeSecret;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Shared by every handler and worker; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub cipher: Cipher,
    /// Base URL Twilio calls, without a trailing slash.
    pub public_base: Arc<str>,
    pub http: reqwest::Client,
    /// What bots' and flows' settings may reach (see `net::outbound`).
    pub outbound: crate::net::outbound::Outbound,
    /// Woken when an inbound message is stored, or becomes claimable because its sender's
    /// earlier message is finished (the store's `inbound_claimable`).
    pub inbound_ready: Arc<Notify>,
    /// Woken when outbox rows are written, or become claimable because the row before them to
    /// the same recipient is sent or failed (the store's `outbox_claimable`).
    pub outbox_ready: Arc<Notify>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The claim loops' last signs of life, for `/readyz`.
    pub liveness: Arc<crate::dispatch::Liveness>,
    /// Every channel this process serves; queued rows name theirs.
    pub channels: Channels,
    /// The Twilio Messaging channel itself, for its `setup` operation.
    pub twilio: Arc<TwilioMessaging>,
    /// The Twilio Conversations channel itself, for its `setup` operation.
    pub conversations: Arc<TwilioConversations>,
    /// The web chat channel, for the widget's routes.
    pub webchat: Arc<crate::channel::webchat::WebChat>,
    /// Bumped whenever something the agents' consoles show changes (see `handoff::changed`).
    pub desk_events: Arc<tokio::sync::watch::Sender<u64>>,
    /// Failed management-API authentications per client address.
    pub auth_throttle: Arc<crate::http::auth_throttle::AuthThrottle>,
}

impl AppState {
    /// What a bot engine gets of the application: the database only as its narrow
    /// [`crate::bot::EngineStore`], and the client, settings, cipher and counters.
    pub fn engine_context(&self) -> crate::bot::EngineContext {
        crate::bot::EngineContext::new(
            Arc::new(self.db.clone()),
            self.http.clone(),
            self.outbound.clone(),
            self.config.clone(),
            self.cipher.clone(),
            self.metrics.clone(),
        )
    }
}

pub struct App {
    listener: TcpListener,
    state: AppState,
    /// Routes served beside the application's own (`chatwire dev`'s phone page).
    extra_routes: Option<axum::Router<AppState>>,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with(config, Vec::new()).await
    }

    /// Like [`App::build`], serving `extra` channels beside Twilio Messaging.
    pub async fn build_with(config: Config, extra: Vec<Arc<dyn Channel>>) -> anyhow::Result<Self> {
        let db = Db::connect(&config.database_url).await?;
        let merged = db.refingerprint_phone_contacts().await?;
        if merged > 0 {
            tracing::info!(
                contacts = merged,
                "contacts re-fingerprinted the way ChatBotKit fingerprints them"
            );
        }
        first_start_notice(&config, &db).await;
        let cipher = load_cipher(&config, db.backend)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        let outbound = crate::net::outbound::Outbound::new(crate::net::outbound::Policy::new(
            config.allow_private_http,
        ))?;
        let twilio = Arc::new(TwilioMessaging::new(&config.twilio_api_url, http.clone()));
        let conversations = Arc::new(TwilioConversations::new(
            &config.twilio_conversations_url,
            http.clone(),
        ));
        let webchat = Arc::new(crate::channel::webchat::WebChat::new(cipher.clone()));
        let channels = extra.into_iter().fold(
            Channels::default()
                .with(twilio.clone())
                .with(conversations.clone())
                .with(webchat.clone()),
            Channels::with,
        );
        let metrics = Arc::new(crate::metrics::Metrics::default());
        for channel in channels.iter() {
            metrics.register_channel(channel.name());
        }
        let auth_throttle = Arc::new(crate::http::auth_throttle::AuthThrottle::new(
            config.auth_failure_limit,
        ));
        warn_if_weak(&config);
        let inbound_ready = db.inbound_claimable.clone();
        let outbox_ready = db.outbox_claimable.clone();
        let state = AppState {
            db,
            cipher,
            public_base: config.public_base(addr).into(),
            config: Arc::new(config),
            inbound_ready,
            outbox_ready,
            metrics,
            liveness: Arc::default(),
            auth_throttle,
            channels,
            twilio,
            conversations,
            webchat,
            http,
            outbound,
            desk_events: Arc::new(tokio::sync::watch::Sender::new(0)),
        };
        Ok(Self {
            listener,
            state,
            extra_routes: None,
        })
    }

    /// Serves `routes` beside the application's own.
    pub fn with_routes(mut self, routes: axum::Router<AppState>) -> Self {
        self.extra_routes = Some(match self.extra_routes.take() {
            Some(existing) => existing.merge(routes),
            None => routes,
        });
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves HTTP and runs the background workers until `shutdown` resolves; in-flight requests
    /// finish, workers stop claiming new work.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut workers = crate::pipeline::spawn_workers(self.state.clone(), stop_rx.clone());
        workers.push(tokio::spawn(prune_channel_log(
            self.state.clone(),
            stop_rx.clone(),
        )));
        let mut router = crate::http::router(self.state.clone());
        if let Some(extra) = self.extra_routes.clone() {
            router = router.merge(extra.with_state(self.state.clone()));
        }
        tracing::info!(addr = %self.local_addr(), public_url = %self.state.public_base, "chatwire listening");
        // The peer address feeds the webhook edge's per-client cap.
        axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await?;
        for worker in workers {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), worker).await;
        }
        Ok(())
    }
}

/// Without any token the management API refuses every call; say so at start, with the way
/// out, rather than leave a newcomer to find it from 401s.
async fn first_start_notice(config: &Config, db: &Db) {
    if config.api_token.is_some() {
        return;
    }
    match crate::store::tokens::count(db).await {
        Ok(0) => tracing::warn!(
            "no API token: every management API call will answer 401 until one exists. \
             Set CHATWIRE_API_TOKEN, or create a token with `chatwire token create --name admin` \
             (same CHATWIRE_DATABASE_URL); it is printed once"
        ),
        Ok(n) => tracing::info!(
            tokens = n,
            "management API accepts the stored API tokens (CHATWIRE_API_TOKEN not set)"
        ),
        Err(err) => tracing::warn!(error = %err, "could not count API tokens"),
    }
}

/// How often old channel log entries are deleted.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Deletes channel log entries older than `CHATWIRE_CHANNEL_LOG_DAYS`, at start and hourly.
async fn prune_channel_log(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let keep_ms = i64::from(state.config.channel_log_days) * 86_400_000;
        match state
            .db
            .prune_channel_log(crate::domain::now_ms() - keep_ms)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                entries = n,
                days = state.config.channel_log_days,
                "old channel log entries deleted"
            ),
            Err(err) => tracing::warn!(error = %err, "pruning the channel log failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Tokens shorter than this are guessable (the README's example `dev` is 3 characters).
const MIN_TOKEN_LEN: usize = 32;

/// Warns, without refusing to start, when `CHATWIRE_API_TOKEN` is short: a development token
/// like `dev` must not reach production unnoticed. The token itself is never logged.
fn warn_if_weak(config: &Config) {
    if let Some(token) = &config.api_token {
        let len = token.expose_secret().chars().count();
        if len < MIN_TOKEN_LEN {
            tracing::warn!(
                length = len,
                minimum = MIN_TOKEN_LEN,
                "CHATWIRE_API_TOKEN is short and guessable; use at least {MIN_TOKEN_LEN} random characters (e.g. `openssl rand -hex 32`) outside development"
            );
        }
    }
}

fn load_cipher(config: &Config, backend: Backend) -> anyhow::Result<Cipher> {
    if let Some(key) = &config.secret_key {
        return Cipher::from_key_text(key.expose_secret());
    }
    let path = match (&config.secret_key_file, backend) {
        (Some(path), _) => path.clone(),
        (None, Backend::Sqlite) => sqlite_dir(&config.database_url).join("chatwire.key"),
        (None, Backend::Postgres) => anyhow::bail!(
            "CHATWIRE_SECRET_KEY is required with PostgreSQL: every replica must share the same key"
        ),
    };
    Cipher::from_key_file(&path)
}

/// The directory of the SQLite database file, where the generated key file is kept.
fn sqlite_dir(url: &str) -> PathBuf {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or("");
    PathBuf::from(path)
        .parent()
        .map(PathBuf::from)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."))
}
