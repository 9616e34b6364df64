//! The emulator's memory: accounts, numbers, messages, opt-outs, pending faults and a log of
//! every webhook it delivered.
//!
//! One `std::sync::Mutex` guards it all. The emulator is a test tool, so simplicity wins over
//! throughput, but handlers stay fast because the lock is only ever held for a few field
//! updates and never across an `.await` (a webhook to the gateway can trigger REST calls back
//! into the emulator while it is in flight).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::channel::twilio::address::Address;
use crate::channel::twilio::dates::rfc2822;
use crate::channel::twilio::form::Media;
use crate::channel::twilio::resources::{Capabilities, IncomingNumber, MessageResource};

pub(crate) const API_VERSION: &str = "2010-04-01";

/// A fake Twilio account the emulator accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountConfig {
    pub sid: String,
    pub auth_token: String,
}

impl fmt::Debug for AccountConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountConfig")
            .field("sid", &self.sid)
            .field("auth_token", &"<redacted>")
            .finish()
    }
}

/// A number owned by an account, with its webhook configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberConfig {
    pub account_sid: String,
    /// `+E164` (SMS) or `whatsapp:+E164`: a WhatsApp address enables WhatsApp on the number.
    pub address: Address,
    #[serde(default)]
    pub sms_url: Option<String>,
    #[serde(default)]
    pub status_callback: Option<String>,
}

/// How the next Messages create should fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultKind {
    /// HTTP 500, code 20500.
    #[serde(rename = "500")]
    ServerError,
    /// HTTP 429, code 20429, `Retry-After: 1`.
    #[serde(rename = "429")]
    TooManyRequests,
    /// HTTP 400, code 21610, as if the recipient had opted out.
    #[serde(rename = "21610")]
    Unsubscribed,
    /// Succeeds after `delay_ms` (default 2000).
    #[serde(rename = "slow")]
    Slow,
}

/// `POST /_emulator/faults`: the next `count` creates fail with `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub count: u32,
    pub kind: FaultKind,
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

/// One pending fault, consumed by one create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PendingFault {
    pub kind: FaultKind,
    pub delay: Duration,
}

/// `POST /_emulator/inbound`: a message someone sends to one of our numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundRequest {
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub media: Vec<Media>,
    /// WhatsApp only; defaults to "Emulator User".
    #[serde(default)]
    pub profile_name: Option<String>,
}

/// What happened to an injected inbound webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundResult {
    pub message_sid: String,
    /// HTTP status of the last attempt; `None` if the gateway never answered.
    pub status: Option<u16>,
    pub attempts: u32,
    #[serde(default)]
    pub error: Option<String>,
    /// `STOP`/`START` when the body was an opt-out keyword Twilio acts on.
    #[serde(default)]
    pub opt_out: Option<String>,
}

/// A webhook the emulator delivered (inbound message or status callback).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub message_sid: String,
    pub account_sid: String,
    pub url: String,
    pub method: String,
    pub params: Vec<(String, String)>,
    pub idempotency_token: String,
    pub attempts: u32,
    pub status: Option<u16>,
}

pub(crate) struct Number {
    pub sid: String,
    pub account_sid: String,
    pub e164: String,
    pub whatsapp: bool,
    pub friendly_name: String,
    pub sms_url: Option<String>,
    pub sms_method: String,
    pub sms_fallback_url: Option<String>,
    pub status_callback: Option<String>,
    pub status_callback_method: String,
    pub created: SystemTime,
    pub updated: SystemTime,
}

impl Number {
    pub fn resource(&self) -> IncomingNumber {
        IncomingNumber {
            sid: self.sid.clone(),
            account_sid: self.account_sid.clone(),
            phone_number: self.e164.clone(),
            friendly_name: self.friendly_name.clone(),
            sms_url: self.sms_url.clone(),
            sms_method: self.sms_method.clone(),
            sms_fallback_url: self.sms_fallback_url.clone(),
            sms_application_sid: None,
            status_callback: self.status_callback.clone(),
            status_callback_method: self.status_callback_method.clone(),
            capabilities: Capabilities {
                voice: true,
                sms: true,
                mms: true,
                fax: false,
            },
            api_version: API_VERSION.to_owned(),
            date_created: Some(rfc2822(self.created)),
            date_updated: Some(rfc2822(self.updated)),
            status: "in-use".to_owned(),
            uri: format!(
                "/{API_VERSION}/Accounts/{}/IncomingPhoneNumbers/{}.json",
                self.account_sid, self.sid
            ),
        }
    }
}

pub(crate) struct StoredMessage {
    pub resource: MessageResource,
    pub sent_at: SystemTime,
    pub status_callback: Option<String>,
}

#[derive(Default)]
pub(crate) struct Inner {
    pub accounts: Vec<AccountConfig>,
    pub numbers: Vec<Number>,
    /// Every message, inbound and outbound, oldest first; add through [`Inner::push_message`].
    pub messages: Vec<StoredMessage>,
    /// Position of each message in `messages` by SID, so status changes stay O(1) when a
    /// benchmark has sent a few hundred thousand messages.
    pub by_sid: HashMap<String, usize>,
    pub webhooks: Vec<DeliveryRecord>,
    pub callbacks: Vec<DeliveryRecord>,
    pub faults: VecDeque<PendingFault>,
    /// (our number, their number), both E.164: Twilio blocks per pair.
    pub opt_outs: HashSet<(String, String)>,
    /// (our WhatsApp number, theirs), both E.164: when they last wrote, which opens WhatsApp's
    /// 24-hour window for free-form messages.
    pub whatsapp_inbound: HashMap<(String, String), SystemTime>,
    /// The Conversations subset.
    pub conversations: super::conversations::ConversationsState,
}

/// WhatsApp's customer-service window.
pub(crate) const WHATSAPP_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

impl Inner {
    /// Whether a free-form WhatsApp message may go from `pair.0` to `pair.1` now.
    pub fn whatsapp_window_open(&self, pair: &(String, String)) -> bool {
        self.whatsapp_inbound
            .get(pair)
            .and_then(|at| at.elapsed().ok())
            .is_some_and(|age| age < WHATSAPP_WINDOW)
    }

    pub fn number(&self, e164: &str) -> Option<&Number> {
        self.numbers.iter().find(|n| n.e164 == e164)
    }

    pub fn message_mut(&mut self, sid: &str) -> Option<&mut StoredMessage> {
        let index = *self.by_sid.get(sid)?;
        self.messages.get_mut(index)
    }

    /// Appends a message and indexes it by SID.
    pub fn push_message(&mut self, message: StoredMessage) {
        self.by_sid
            .insert(message.resource.sid.clone(), self.messages.len());
        self.messages.push(message);
    }

    pub fn token(&self, account_sid: &str) -> Option<String> {
        self.accounts
            .iter()
            .find(|a| a.sid == account_sid)
            .map(|a| a.auth_token.clone())
    }

    /// Adds a number, or enables the channel on an existing one, and applies non-empty URLs.
    pub fn upsert_number(&mut self, config: &NumberConfig) -> &Number {
        let now = SystemTime::now();
        let e164 = config.address.e164().to_owned();
        let index = match self.numbers.iter().position(|n| n.e164 == e164) {
            Some(index) => index,
            None => {
                self.numbers.push(Number {
                    sid: new_sid("PN"),
                    account_sid: config.account_sid.clone(),
                    friendly_name: e164.clone(),
                    e164,
                    whatsapp: false,
                    sms_url: None,
                    sms_method: "POST".to_owned(),
                    sms_fallback_url: None,
                    status_callback: None,
                    status_callback_method: "POST".to_owned(),
                    created: now,
                    updated: now,
                });
                self.numbers.len() - 1
            }
        };
        let number = &mut self.numbers[index];
        number.account_sid.clone_from(&config.account_sid);
        number.whatsapp |=
            config.address.channel() == crate::channel::twilio::address::ChannelKind::WhatsApp;
        if config.sms_url.is_some() {
            number.sms_url.clone_from(&config.sms_url);
        }
        if config.status_callback.is_some() {
            number.status_callback.clone_from(&config.status_callback);
        }
        number.updated = now;
        &self.numbers[index]
    }
}

/// Shared emulator state; cheap to reach through an `Arc`.
pub struct Emulator {
    inner: Mutex<Inner>,
    /// Woken whenever an outbound message is created, for `wait_for_messages`.
    pub(crate) created: Notify,
    pub(crate) http: reqwest::Client,
    pub(crate) timing: Timing,
}

/// How the emulator retries an inbound webhook that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookRetries {
    /// As Twilio does: by the URL's connection overrides (`#rc=5&rp=ct,5xx&tt=15000...`), and
    /// without them once, only when the connection failed, all within 15 s.
    Twilio,
    /// Up to this many attempts, the first included, on any network error or 5xx, whatever the
    /// URL says: more forgiving than Twilio (the emulator's former behaviour).
    Fixed(u32),
}

impl std::str::FromStr for WebhookRetries {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("twilio") {
            return Ok(WebhookRetries::Twilio);
        }
        s.parse::<u32>()
            .ok()
            .filter(|n| (1..=10).contains(n))
            .map(WebhookRetries::Fixed)
            .ok_or_else(|| format!("expected `twilio` or a number of attempts 1..=10, got {s:?}"))
    }
}

/// Delays and retry policy, short in tests, closer to Twilio's in the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Pause before each status change (queued -> sent -> delivered).
    pub status_delay: Duration,
    /// When an inbound webhook is retried.
    pub webhook_retries: WebhookRetries,
    /// Pause before the first retry, doubled for each further one.
    pub webhook_backoff: Duration,
    /// Twilio gives up on a webhook after 15 s.
    pub webhook_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            status_delay: Duration::from_millis(10),
            webhook_retries: WebhookRetries::Twilio,
            webhook_backoff: Duration::from_millis(50),
            webhook_timeout: Duration::from_secs(15),
        }
    }
}

impl Emulator {
    pub(crate) fn new(
        accounts: Vec<AccountConfig>,
        numbers: &[NumberConfig],
        timing: Timing,
    ) -> anyhow::Result<Self> {
        let mut inner = Inner {
            accounts,
            ..Inner::default()
        };
        // Every account starts with a Conversations service, as Twilio's default one.
        if let Some(first) = inner.accounts.first() {
            inner
                .conversations
                .services
                .push(super::conversations::Service {
                    sid: super::conversations::DEFAULT_SERVICE_SID.to_owned(),
                    account_sid: first.sid.clone(),
                    friendly_name: "Default Conversations Service".to_owned(),
                    post_webhook_url: None,
                    filters: Vec::new(),
                });
        }
        for number in numbers {
            anyhow::ensure!(
                inner.token(&number.account_sid).is_some(),
                "number {} belongs to unknown account {}",
                number.address,
                number.account_sid
            );
            inner.upsert_number(number);
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(timing.webhook_timeout)
            .user_agent("TwilioProxy/1.1")
            .build()?;
        Ok(Emulator {
            inner: Mutex::new(inner),
            created: Notify::new(),
            http,
            timing,
        })
    }

    /// Locks the state; a panic in another handler must not wedge the whole emulator.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The configured accounts (tokens included: they are fake).
    pub fn accounts(&self) -> Vec<AccountConfig> {
        self.lock().accounts.clone()
    }

    /// Every message created through the REST API, oldest first, with its current status.
    pub fn sent_messages(&self) -> Vec<MessageResource> {
        self.lock()
            .messages
            .iter()
            .filter(|m| m.resource.direction != "inbound")
            .map(|m| m.resource.clone())
            .collect()
    }

    /// Every inbound webhook delivered (one record per injection or replay).
    pub fn webhooks(&self) -> Vec<DeliveryRecord> {
        self.lock().webhooks.clone()
    }

    /// Every status callback delivered.
    pub fn status_callbacks(&self) -> Vec<DeliveryRecord> {
        self.lock().callbacks.clone()
    }

    /// Queues `fault.count` failures for the next Messages creates.
    pub fn add_fault(&self, fault: Fault) -> usize {
        let delay = Duration::from_millis(fault.delay_ms.unwrap_or(2000));
        let mut inner = self.lock();
        for _ in 0..fault.count {
            inner.faults.push_back(PendingFault {
                kind: fault.kind,
                delay,
            });
        }
        inner.faults.len()
    }

    pub(crate) fn take_fault(&self) -> Option<PendingFault> {
        self.lock().faults.pop_front()
    }

    /// Forgets traffic (messages, webhooks, callbacks, faults, opt-outs); accounts and
    /// numbers, including webhook URLs set through the API, stay as they are.
    pub fn reset(&self) {
        let mut inner = self.lock();
        inner.messages.clear();
        inner.by_sid.clear();
        inner.webhooks.clear();
        inner.callbacks.clear();
        inner.faults.clear();
        inner.opt_outs.clear();
        inner.whatsapp_inbound.clear();
    }

    /// Makes `theirs`' last WhatsApp message to `ours` (both E.164) `age` old, as if time had
    /// passed: what tests of WhatsApp's 24-hour window need.
    pub fn age_whatsapp_window(&self, ours: &str, theirs: &str, age: Duration) {
        let at = SystemTime::now()
            .checked_sub(age)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        self.lock()
            .whatsapp_inbound
            .insert((ours.to_owned(), theirs.to_owned()), at);
    }

    /// Adds or reconfigures a number; its account must exist.
    pub fn add_number(&self, config: &NumberConfig) -> anyhow::Result<IncomingNumber> {
        let mut inner = self.lock();
        anyhow::ensure!(
            inner.token(&config.account_sid).is_some(),
            "unknown account {}",
            config.account_sid
        );
        Ok(inner.upsert_number(config).resource())
    }

    /// Whether Twilio would refuse to send from `ours` to `theirs` because they opted out.
    pub fn is_opted_out(&self, ours: &str, theirs: &str) -> bool {
        self.lock()
            .opt_outs
            .contains(&(ours.to_owned(), theirs.to_owned()))
    }
}

/// A random SID: two-letter prefix and 32 lowercase hex digits, like Twilio's.
pub(crate) fn new_sid(prefix: &str) -> String {
    format!("{prefix}{:032x}", rand::random::<u128>())
}
