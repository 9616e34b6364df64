//! One inbound turn: claim the next stored message, resolve its session and contact, run the
//! bot, and record the reply with its outbox rows in one transaction.
//!
//! Keywords come first and never reach a bot: opt-out words silence the sender (and stop every
//! queued message to them), opt-in words lift it, HELP answers with the configured help text,
//! `///reset` starts a new conversation. Claims are leased: a worker that dies mid-turn leaves
//! the message to be claimed again, and `record_turn` refuses a claim that was lost, so every
//! stored message gets exactly one recorded reply.
use crate::app::AppState;
use crate::bot::{
    self, BotConfig, ChannelKind, ContactInfo, EngineContext, HistoryMessage, Media, Turn,
};
use crate::channel::twilio::address::Address;
use crate::domain::{ids, now_ms};
use crate::http::api::resources::{BOT, CONVERSATION};
use crate::metrics::Metrics;
use crate::sms;
use crate::store::channel::{ClaimQueue, Inbound, LiveConversation};
use crate::store::integration::Integration;
use crate::store::outbox::NewOutbox;
use crate::store::turn::{NewBotMessage, Session, TurnResult, UserMessage};
use crate::store::{Param, Sql};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a claimed message stays ours without a renewal. A live worker renews it every
/// third of this for as long as the turn takes, so this bounds only how long the messages of a
/// worker that died (kill -9, a lost replica) wait before another worker takes them over.
const LEASE_MS: i64 = 15_000;
/// A message whose turn failed this often is given up, so one poison message cannot block its
/// sender's queue forever.
const MAX_ATTEMPTS: i64 = 5;
const HISTORY: i64 = 50;
/// ChatBotKit's namespace for contact fingerprints made from phone numbers.
const CONTACT_NAMESPACE: &str = "5bd7fb78-73be-48aa-8a1e-e4e1984fed22";

const OPT_OUT: &[&str] = &[
    "STOP",
    "STOPALL",
    "STOP ALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "OPTOUT",
    "REVOKE",
];
const OPT_IN: &[&str] = &["START", "YES", "UNSTOP"];
const HELP: &[&str] = &["HELP", "INFO"];
const RESET: &[&str] = &["///reset", "///restart", "///new"];

/// Starts the turn loop and the delivery loop.
pub fn spawn_workers(state: AppState, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let turns = {
        let (state, claimer) = (state.clone(), state.clone());
        tokio::spawn(crate::dispatch::run(
            "inbound",
            state.config.workers,
            state.inbound_ready.clone(),
            stop.clone(),
            move |n| {
                let db = claimer.db.clone();
                async move { db.claim_inbound(LEASE_MS, n).await }
            },
            move |inbound| run_turn(state.clone(), inbound),
        ))
    };
    let limiter = crate::outbox::RateLimiter::default();
    let sends = tokio::spawn(crate::dispatch::run(
        "outbox",
        (state.config.workers / 2).max(2),
        state.outbox_ready.clone(),
        stop,
        {
            let db = state.db.clone();
            move |n| {
                let db = db.clone();
                async move { db.claim_outbox(crate::outbox::LEASE_MS, n).await }
            }
        },
        move |row| crate::outbox::run_delivery(state.clone(), limiter.clone(), row),
    ));
    vec![turns, sends]
}

/// One claimed message, start to finish, holding its lease.
async fn run_turn(state: AppState, inbound: Inbound) {
    let renew = |until| {
        let (db, id, token) = (
            state.db.clone(),
            inbound.id.clone(),
            inbound.claim_token.clone(),
        );
        async move {
            db.renew_claim(ClaimQueue::Inbound, &id, &token, until)
                .await
        }
    };
    let turn = holding(LEASE_MS, renew, process(&state, &inbound)).await;
    if let Err(err) = turn {
        tracing::error!(error = format!("{err:#}"), sid = %inbound.message_sid, attempts = inbound.attempts, "turn failed");
        if inbound.attempts >= MAX_ATTEMPTS {
            let _ = state
                .db
                .finish_inbound(
                    &inbound.id,
                    &inbound.claim_token,
                    Some("gave up after repeated failures"),
                )
                .await;
        }
    }
}

/// Runs `work` while renewing its claim every third of `lease_ms`: a live worker keeps its
/// claim however long a bot turn or a Twilio call takes, and the claim of a worker that died
/// expires within one lease. Renewal stops once the claim is found lost (the final write of
/// `work` is then refused by its claim token).
pub(crate) async fn holding<T, F>(
    lease_ms: i64,
    renew: impl Fn(i64) -> F,
    work: impl std::future::Future<Output = T>,
) -> T
where
    F: std::future::Future<Output = Result<bool, sqlx::Error>>,
{
    let every = Duration::from_millis((lease_ms / 3).max(1) as u64);
    let renewing = async {
        loop {
            tokio::time::sleep(every).await;
            match renew(now_ms() + lease_ms).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(err) => tracing::warn!(error = %err, "renewing a claim's lease failed"),
            }
        }
    };
    tokio::pin!(work);
    tokio::select! {
        out = &mut work => out,
        () = renewing => work.await,
    }
}

/// The keyword class of a message: the whole body, trimmed, case-insensitive.
fn keyword(body: &str, list: &[&str]) -> bool {
    let word = body.trim();
    list.iter().any(|k| k.eq_ignore_ascii_case(word))
}

/// Runs one turn for a claimed message.
pub async fn process(state: &AppState, m: &Inbound) -> anyhow::Result<()> {
    let db = &state.db;
    let finish = |reason: Option<&'static str>| async move {
        db.finish_inbound(&m.id, &m.claim_token, reason)
            .await
            .map(|_| ())
    };
    let Some(integration) = db.integration(&state.cipher, &m.integration_id).await? else {
        return Ok(finish(Some("integration deleted")).await?);
    };
    let is_timer = m.message_sid.starts_with("timer-");
    let now = now_ms();
    let duration = integration
        .session_duration
        .unwrap_or(state.config.session_timeout_ms);
    // One read for everything the turn needs to know of its sender.
    let sender = db
        .sender_state(&integration.id, &m.sender, duration.max(1), now)
        .await?;
    if !is_timer {
        if keyword(&m.body, OPT_OUT) {
            db.set_opt_out(&integration.id, &m.sender, true).await?;
            db.outbox_fail_recipient(&integration.id, &m.sender, "recipient opted out (STOP)")
                .await?;
            tracing::info!(integration = %integration.id, "sender opted out");
            return Ok(finish(Some("opt-out")).await?);
        }
        let opted_out = sender.opted_out;
        if opted_out && keyword(&m.body, OPT_IN) {
            db.set_opt_out(&integration.id, &m.sender, false).await?;
            return Ok(finish(Some("opt-in")).await?);
        }
        if opted_out {
            return Ok(finish(Some("sender opted out")).await?);
        }
        if keyword(&m.body, HELP) {
            let rows = outbox_rows(
                &integration,
                None,
                None,
                &m.sender,
                &m.recipient,
                &state.config.help_text,
            );
            db.enqueue(&rows).await?;
            state.outbox_ready.notify_one();
            return Ok(finish(Some("help")).await?);
        }
        if keyword(&m.body, RESET) {
            db.end_session(&integration.id, &m.sender).await?;
            return Ok(finish(Some("reset")).await?);
        }
    }
    let Some(bot_id) = integration.bot_id.clone() else {
        return Ok(finish(Some("integration has no bot")).await?);
    };
    let Some(bot_row) = db.fetch_resource_cached(&BOT, &bot_id).await? else {
        return Ok(finish(Some("bot deleted")).await?);
    };
    let live = sender.live;
    let context = if is_timer {
        // A timer belongs to the conversation that set it, and only while it is still live.
        match (live, m.conversation_id()) {
            (Some(live), Some(own)) if live.id == own => live,
            _ => return Ok(finish(Some("timer for an ended conversation")).await?),
        }
    } else {
        // With a duration of 0 every message starts a new conversation.
        match live.filter(|_| duration > 0) {
            Some(live) => live,
            None => new_conversation(state, &integration, m, &bot_id, now).await?,
        }
    };
    let conversation_id = context.id.clone();
    // The person's message is written with the reply, in the turn's one transaction.
    let user_message = (!is_timer).then(|| UserMessage {
        id: m.id.clone(),
        text: m.body.clone(),
        meta: json!({"twilio": {"messageSid": m.message_sid, "media": m.media.as_deref().and_then(|s| serde_json::from_str::<Value>(s).ok())}}).to_string(),
        created_at: m.created_at,
    });
    let history = load_history(state, &conversation_id, &m.id).await?;
    let engine_state = context
        .engine_state
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    let contact_id = context.contact_id;
    let channel = match Address::parse(&m.sender).map(|a| a.channel()) {
        Ok(crate::channel::twilio::address::ChannelKind::WhatsApp) => ChannelKind::Whatsapp,
        _ => ChannelKind::Sms,
    };
    let turn = Turn {
        conversation_id: conversation_id.clone(),
        bot: bot_config(bot_row),
        history,
        text: if is_timer {
            String::new()
        } else {
            m.body.clone()
        },
        media: m
            .media
            .as_deref()
            .and_then(|s| serde_json::from_str::<Vec<Media>>(s).ok())
            .unwrap_or_default(),
        contact: ContactInfo {
            id: contact_id,
            name: m.profile_name.clone(),
            address: m.sender.clone(),
        },
        channel,
        channel_address: Some(m.recipient.clone()),
        state: engine_state,
        now_ms: now,
        message_sid: None,
        account_sid: None,
    };
    let ctx = EngineContext::new(state);
    let reply = match bot::select(&ctx, &turn.bot) {
        Ok(engine) => engine.respond(&turn).await,
        Err(err) => Err(err),
    };
    let reply = match reply {
        Ok(reply) => reply,
        Err(err) => {
            Metrics::inc(&state.metrics.engine_failures);
            tracing::warn!(error = %err, conversation = %conversation_id, "bot engine failed; sending fallback text");
            bot::Reply {
                messages: vec![bot::fallback::fallback_text(&state.config, &turn.bot)],
                state: turn.state.clone(),
                ..bot::Reply::default()
            }
        }
    };
    let mut messages = Vec::new();
    let mut outbox = Vec::new();
    for text in reply.messages.iter().filter(|t| !t.trim().is_empty()) {
        // SMS shows markdown as literal asterisks and brackets; WhatsApp renders light formatting.
        let text = &match channel {
            ChannelKind::Sms => bot::markdown::to_plain_text(text),
            _ => text.clone(),
        };
        let message_id = ids::new_id();
        let tokens = reply
            .usage
            .map(|u| (u.prompt_tokens + u.completion_tokens) as i64);
        outbox.extend(outbox_rows(
            &integration,
            Some(&conversation_id),
            Some(&message_id),
            &m.sender,
            &m.recipient,
            text,
        ));
        messages.push(NewBotMessage {
            id: message_id,
            text: text.clone(),
            tokens,
        });
    }
    let ends = reply
        .actions
        .iter()
        .any(|a| matches!(a, bot::Action::EndConversation));
    let result = TurnResult {
        inbound_id: m.id.clone(),
        claim_token: m.claim_token.clone(),
        conversation_id: conversation_id.clone(),
        user_message,
        session: (!is_timer && duration > 0).then(|| Session {
            integration_id: integration.id.clone(),
            address: m.sender.clone(),
            at: now,
        }),
        messages,
        outbox,
        engine_state: (!reply.state.is_null()).then(|| reply.state.to_string()),
        expires_at: (duration > 0).then_some(now + duration),
        timer: reply
            .wake_at_ms
            .map(|at| (format!("timer-{conversation_id}-{at}"), at)),
    };
    if db.record_turn(result).await? {
        Metrics::inc(&state.metrics.turns_completed);
        state.outbox_ready.notify_one();
        if ends {
            db.end_session(&integration.id, &m.sender).await?;
        }
        for action in &reply.actions {
            if let bot::Action::Handoff { reason } = action {
                tracing::info!(conversation = %conversation_id, reason = ?reason, "bot asked for a human agent");
            }
        }
    } else {
        tracing::warn!(sid = %m.message_sid, "claim lost before the reply was recorded; another worker owns it");
    }
    Ok(())
}

/// Splits a reply into outbox rows of at most 1,600 characters, each with its segment count.
pub fn outbox_rows(
    integration: &Integration,
    conversation: Option<&str>,
    message: Option<&str>,
    to: &str,
    from: &str,
    text: &str,
) -> Vec<NewOutbox> {
    sms::split_reply(text, sms::MAX_BODY_CHARS)
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let info = sms::segments(&part);
            NewOutbox {
                integration_id: integration.id.clone(),
                conversation_id: conversation.map(str::to_owned),
                message_id: message.map(str::to_owned),
                part: i as i64,
                recipient: to.to_owned(),
                sender: from.to_owned(),
                segments: i64::from(info.segments),
                encoding: match info.encoding {
                    sms::Encoding::Gsm7 => "GSM-7",
                    sms::Encoding::Ucs2 => "UCS-2",
                },
                body: part,
            }
        })
        .collect()
}

/// A new conversation for this sender (with its contact when collected), made their session.
async fn new_conversation(
    state: &AppState,
    integration: &Integration,
    m: &Inbound,
    bot_id: &str,
    now: i64,
) -> anyhow::Result<LiveConversation> {
    let db = &state.db;
    let contact_id = if integration.contact_collection {
        Some(ensure_contact(state, m).await?)
    } else {
        None
    };
    let id = ids::new_id();
    let meta =
        json!({"app": "twilio", "twilio": {"integrationId": integration.id, "address": m.sender}});
    let cols = [
        ("bot_id", Param::from(bot_id)),
        ("contact_id", Param::from(contact_id.clone())),
        ("meta", Param::from(meta.to_string())),
    ];
    db.insert_resource(&CONVERSATION, &id, &cols, now).await?;
    db.touch_session(&integration.id, &m.sender, &id, now)
        .await?;
    Ok(LiveConversation {
        id,
        engine_state: None,
        contact_id,
    })
}

/// One contact per phone number (fingerprint from the E.164 number, as ChatBotKit derives it).
async fn ensure_contact(state: &AppState, m: &Inbound) -> anyhow::Result<String> {
    let phone = Address::parse(&m.sender)
        .map(|a| a.e164().to_owned())
        .unwrap_or_else(|_| m.sender.clone());
    let fingerprint = hex::encode(Sha256::digest(
        format!("{CONTACT_NAMESPACE}:{phone}").as_bytes(),
    ));
    let now = now_ms();
    let insert = Sql::new(
        "INSERT INTO contacts (id, name, fingerprint, phone, meta, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
         ON CONFLICT (fingerprint) DO NOTHING",
    )
    .arg(ids::new_id())
    .arg(m.profile_name.clone().unwrap_or_default())
    .arg(fingerprint.as_str())
    .arg(phone.as_str())
    .arg(json!({"app": "twilio"}).to_string())
    .arg(now);
    state.db.exec(&insert).await?;
    let select =
        Sql::new("SELECT id FROM contacts WHERE fingerprint = $1").arg(fingerprint.as_str());
    let row = state
        .db
        .fetch_optional(&select)
        .await?
        .ok_or_else(|| anyhow::anyhow!("contact vanished"))?;
    Ok(row.try_get::<String, _>("id")?)
}

/// History, oldest first, without the current message.
async fn load_history(
    state: &AppState,
    conversation_id: &str,
    current: &str,
) -> anyhow::Result<Vec<HistoryMessage>> {
    let sql = Sql::new(
        "SELECT type, text FROM messages WHERE conversation_id = $1 AND id <> $2 ORDER BY created_at DESC, id DESC LIMIT $3",
    )
    .arg(conversation_id)
    .arg(current)
    .arg(HISTORY);
    let mut history: Vec<HistoryMessage> = state
        .db
        .fetch_all(&sql)
        .await?
        .iter()
        .map(|r| HistoryMessage {
            kind: r.try_get::<String, _>("type").unwrap_or_default(),
            text: r.try_get::<String, _>("text").unwrap_or_default(),
        })
        .collect();
    history.reverse();
    Ok(history)
}

/// The bot row as engines see it.
pub fn bot_config(row: serde_json::Map<String, Value>) -> BotConfig {
    let s = |k: &str| row.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    BotConfig {
        id: s("id"),
        name: s("name"),
        model: s("model"),
        backstory: s("backstory"),
        dataset_id: row
            .get("datasetId")
            .and_then(Value::as_str)
            .map(str::to_owned),
        raw: row,
    }
}
