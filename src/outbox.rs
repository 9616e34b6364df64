//! Outbox delivery: a claimed row is sent through its channel (the row names it), in a slot of
//! its sender number's rate (booked in the database, see [`crate::store::send_slots`]), and
//! the outcome recorded: accepted, retry later, or given up.
//!
//! A row claimed while already marked in flight (the process died, or a request timed out,
//! after the call may have reached the provider) is first looked for among the messages the
//! provider already has; only if it is not there is it sent again.
use crate::app::AppState;
use crate::channel::{Channel, OutgoingPart, SendError, StatusUpdate, Template};
use crate::domain::address::{Address, ChannelKind};
use crate::domain::{now_ms, reply_window};
use crate::store::channel_log::NewEntry;
use crate::store::integration::Integration;
use crate::store::outbox::OutboxRow;
use crate::store::send_slots::{self, Slot};
use crate::telemetry;
use rand::Rng;
use std::time::{Duration, Instant};

/// How long a claimed row stays ours without a renewal; a live worker renews it while it waits
/// for the provider (see [`crate::pipeline::holding`]), so this bounds how long the rows of a
/// dead worker wait. It must still outlast the time the provider takes to act on a create whose
/// caller died, so that the next claim's reconciliation finds the message.
pub const LEASE_MS: i64 = 15_000;
/// Longest wait between retries.
const MAX_BACKOFF_MS: i64 = 60_000;

/// How far ahead a send books its number's slot. A send whose slot is further away goes back
/// to the queue until about then (its claim would have to be held that long), booking nothing.
const RATE_HORIZON: Duration = Duration::from_millis((LEASE_MS / 2) as u64);

fn backoff_ms(attempts: i64, retry_after: Option<Duration>) -> i64 {
    let exp = 1000_i64
        .saturating_mul(1 << attempts.clamp(1, 7).saturating_sub(1))
        .min(MAX_BACKOFF_MS);
    let jittered = exp * rand::thread_rng().gen_range(75..=125) / 100;
    let asked = retry_after.map(|d| d.as_millis() as i64).unwrap_or(0);
    jittered.max(asked)
}

/// Delivers one claimed row (or reschedules it, or gives it up). When traces are exported,
/// in a `send` span continuing the trace of the turn that wrote the row.
pub async fn deliver(state: &AppState, row: OutboxRow) {
    use tracing::field::Empty;
    use tracing::Instrument;
    let span = telemetry::span(|| {
        tracing::info_span!("send", otel.kind = "client", integration = %row.integration_id,
            channel = %row.channel, conversation = row.conversation_id.as_deref().unwrap_or("-"),
            correlation = row.correlation_id.as_deref().unwrap_or("-"), attempt = row.attempts,
            outcome = Empty, sid = Empty, status = Empty, error_code = Empty,
            otel.status_code = Empty)
    });
    telemetry::continue_from(&span, row.trace_parent.as_deref());
    deliver_row(state, row).instrument(span).await
}

async fn deliver_row(state: &AppState, row: OutboxRow) {
    let db = &state.db;
    let give_up = |code: Option<i64>, reason: String| {
        let row = &row;
        telemetry::note("outcome", "failed");
        telemetry::note("error_code", code);
        telemetry::note("otel.status_code", "error");
        async move {
            if let Err(err) = db
                .outbox_failed(&row.id, &row.claim_token, code, &reason)
                .await
            {
                tracing::error!(error = %err, "recording a failed send");
            }
        }
    };
    let integration = match db.integration(&state.cipher, &row.integration_id).await {
        Ok(Some(i)) => i,
        Ok(None) => return give_up(None, "integration was deleted".into()).await,
        Err(err) => {
            tracing::error!(error = %err, "loading integration for delivery");
            let in_flight = row.in_flight_since.is_some();
            let at = now_ms() + 1000;
            let _ = db
                .outbox_retry(&row.id, &row.claim_token, at, "database error", in_flight)
                .await;
            return;
        }
    };
    let Some(channel) = state.channels.get(&row.channel) else {
        let reason = format!("no channel named {:?} in this process", row.channel);
        return give_up(None, reason).await;
    };
    if row.recipient_opted_out {
        return give_up(Some(21610), "recipient opted out (STOP)".into()).await;
    }
    let (Ok(to), Ok(from)) = (Address::parse(&row.recipient), Address::parse(&row.sender)) else {
        return give_up(None, "stored addresses do not parse".into()).await;
    };
    let template = match window_template(state, &integration, &row, &to).await {
        Ok(Window::Open) => None,
        Ok(Window::Template(t)) => Some(t),
        Ok(Window::Closed) => {
            return give_up(Some(reply_window::OUTSIDE_WINDOW), reply_window::refusal()).await
        }
        Err(err) => {
            tracing::error!(error = %err, "reading the reply window");
            let in_flight = row.in_flight_since.is_some();
            let _ = db
                .outbox_retry(
                    &row.id,
                    &row.claim_token,
                    now_ms() + 1000,
                    "database error",
                    in_flight,
                )
                .await;
            return;
        }
    };
    let part = OutgoingPart {
        to,
        from,
        body: row.body.clone(),
        media: row.media.clone(),
        status_callback: Some(status_url(state, channel.name(), &integration.id)),
        template,
    };
    if let Some(since) = row.in_flight_since {
        match reconcile(state, &**channel, &integration, &row, &part, since).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(err) => return failed(state, &integration, &row, err, true, None).await,
        }
    }
    let rate = integration
        .send_rate
        .unwrap_or(state.config.send_rate_per_sec);
    // The number's schedule is in the database: replicas sending from one number share it.
    match db.book_send_slot(&row.sender, rate, RATE_HORIZON).await {
        Ok(Slot::At(at_us)) => {
            let wait = at_us - send_slots::now_us();
            if wait > 0 {
                tokio::time::sleep(Duration::from_micros(wait as u64)).await;
            }
        }
        Ok(Slot::Later(at_us)) => {
            telemetry::note("outcome", "rate_limited");
            let at = at_us / 1000;
            let _ = db
                .outbox_retry(
                    &row.id,
                    &row.claim_token,
                    at,
                    crate::store::Db::RATE_LIMITED,
                    false,
                )
                .await;
            return;
        }
        Err(err) => {
            tracing::error!(error = %err, "booking a send slot");
            let at = now_ms() + 1000;
            let _ = db
                .outbox_retry(&row.id, &row.claim_token, at, "database error", false)
                .await;
            return;
        }
    }
    let started = Instant::now();
    let sent = channel.send(&integration, &part).await;
    let elapsed = started.elapsed();
    match sent {
        Ok(accepted) => {
            let attempt = Attempt {
                outcome: "sent",
                code: None,
                detail: accepted.status.clone(),
                sid: Some(accepted.id.0.clone()),
                elapsed: Some(elapsed),
            };
            attempt.record(state, &row);
            state
                .metrics
                .delivery_seconds
                .with_label_values(&[row.channel.as_str(), row.integration_id.as_str()])
                .observe((now_ms() - row.created_at).max(0) as f64 / 1000.0);
            let recorded = db
                .outbox_sent(
                    &row.id,
                    &row.claim_token,
                    accepted.id.as_str(),
                    &accepted.status,
                )
                .await;
            if let Err(err) = recorded {
                // The provider has it; the in-flight mark makes the next claim reconcile.
                tracing::error!(error = %err, id = %accepted.id, "recording a sent message failed");
            }
        }
        Err(err) => failed(state, &integration, &row, err, false, Some(elapsed)).await,
    }
}

/// One send attempt as metrics, the log and the channel log see it.
struct Attempt {
    outcome: &'static str,
    code: Option<i64>,
    /// The provider's status word, or why the attempt failed.
    detail: String,
    sid: Option<String>,
    elapsed: Option<Duration>,
}

impl Attempt {
    fn record(self, state: &AppState, row: &OutboxRow) {
        state
            .metrics
            .send_outcome(&row.channel, &row.integration_id, self.outcome, self.code);
        let correlation = row.correlation_id.as_deref().unwrap_or("-");
        let conversation = row.conversation_id.as_deref().unwrap_or("-");
        let sid = self.sid.as_deref().unwrap_or("-");
        let elapsed_ms = self.elapsed.map(|d| d.as_millis() as i64);
        telemetry::note("outcome", self.outcome);
        telemetry::note("sid", sid);
        if self.outcome == "sent" {
            telemetry::note("status", self.detail.as_str());
        } else {
            telemetry::note("error_code", self.code);
            telemetry::note("otel.status_code", "error");
        }
        if self.outcome == "sent" {
            tracing::info!(integration = %row.integration_id, conversation, channel = %row.channel, sid, status = %self.detail, correlation, elapsed_ms, "message sent");
        } else {
            tracing::warn!(integration = %row.integration_id, conversation, channel = %row.channel, outcome = self.outcome, code = self.code, error = %self.detail, attempts = row.attempts, correlation, "send failed");
        }
        state.db.log_channel_later(NewEntry {
            kind: "send",
            channel: row.channel.clone(),
            integration_id: Some(row.integration_id.clone()),
            outcome: self.outcome,
            detail: Some(self.detail),
            message_sid: self.sid,
            correlation_id: row.correlation_id.clone(),
            error_code: self.code,
            elapsed_ms,
            ..NewEntry::default()
        });
    }
}

/// Records a failed send: retried later, or given up (and, for an opt-out, every queued
/// message to that person with it).
async fn failed(
    state: &AppState,
    integration: &Integration,
    row: &OutboxRow,
    err: SendError,
    reconciling: bool,
    elapsed: Option<Duration>,
) {
    let db = &state.db;
    let outcome = match &err {
        SendError::Retryable { .. } => "retry",
        SendError::Permanent { .. } => "failed",
        SendError::OptedOut { .. } => "opted_out",
    };
    Attempt {
        outcome,
        code: err.code(),
        detail: err.to_string(),
        sid: None,
        elapsed,
    }
    .record(state, row);
    match err {
        SendError::Retryable {
            retry_after,
            maybe_sent,
            message,
            ..
        } => {
            let at = now_ms() + backoff_ms(row.attempts, retry_after);
            let in_flight = maybe_sent || reconciling;
            let _ = db
                .outbox_retry(&row.id, &row.claim_token, at, &message, in_flight)
                .await;
        }
        SendError::Permanent { code, message } => {
            let _ = db
                .outbox_failed(&row.id, &row.claim_token, code, &message)
                .await;
        }
        SendError::OptedOut { code, message } => {
            let _ = db
                .outbox_failed(&row.id, &row.claim_token, code, &message)
                .await;
            let _ = db.set_opt_out(&integration.id, &row.recipient, true).await;
            let _ = db
                .outbox_fail_recipient(&integration.id, &row.recipient, &message)
                .await;
        }
    }
}

/// Was an earlier attempt of this row accepted by the provider? If so, record it and say true.
async fn reconcile(
    state: &AppState,
    channel: &dyn Channel,
    integration: &Integration,
    row: &OutboxRow,
    part: &OutgoingPart,
    since_ms: i64,
) -> Result<bool, SendError> {
    let found = channel.find_sent(integration, part, since_ms).await?;
    for existing in found.iter().filter(|m| m.body == row.body) {
        // A message another row already owns is an earlier reply with the same words (a
        // person who texts "ok" twice gets "ok" twice), not this row's lost attempt.
        let owned = state
            .db
            .outbox_sid_recorded(existing.accepted.id.as_str(), &row.id)
            .await
            .map_err(|err| SendError::Retryable {
                code: None,
                retry_after: None,
                maybe_sent: true,
                message: format!("database error while reconciling: {err}"),
            })?;
        if owned {
            continue;
        }
        tracing::info!(id = %existing.accepted.id, "in-flight message found at the provider; not sending again");
        telemetry::note("outcome", "reconciled");
        telemetry::note("sid", existing.accepted.id.as_str());
        let _ = state
            .db
            .outbox_sent(
                &row.id,
                &row.claim_token,
                existing.accepted.id.as_str(),
                &existing.accepted.status,
            )
            .await;
        return Ok(true);
    }
    Ok(false)
}

/// Where the provider posts delivery receipts for messages of this integration.
pub fn status_url(state: &AppState, channel: &str, integration_id: &str) -> String {
    format!(
        "{}/v1/integration/{channel}/{integration_id}/status",
        state.public_base
    )
}

/// How long a receipt for a message not yet recorded as sent waits for that record.
const EARLY_RECEIPT_WAIT: Duration = Duration::from_secs(3);

/// Applies a delivery receipt, moving the status forward only.
///
/// A provider can post a receipt before the send that caused it is recorded (the provider's
/// answer and its first callback race, and the record is batched): such a receipt waits,
/// bounded, for the record to appear instead of being dropped.
pub async fn apply_status(
    state: &AppState,
    integration: &Integration,
    update: &StatusUpdate,
) -> Result<(), sqlx::Error> {
    let deadline = Instant::now() + EARLY_RECEIPT_WAIT;
    loop {
        let moved = state
            .db
            .outbox_advance_status(
                &integration.id,
                update.id.as_str(),
                update.status,
                update.error_code,
            )
            .await?;
        if moved {
            return Ok(());
        }
        let known = state.db.outbox_sid_recorded(update.id.as_str(), "").await?;
        if known || Instant::now() >= deadline {
            tracing::debug!(id = %update.id, integration = %integration.id, status = %update.status, known, "status callback changed nothing (unknown message or not newer)");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What WhatsApp's 24-hour window allows for one outgoing row.
enum Window {
    Open,
    /// Outside the window: sent as this template.
    Template(Template),
    /// Outside the window and no template: not sent.
    Closed,
}

/// The window of the row's recipient: a WhatsApp address, or a thread (a Conversation) a
/// WhatsApp participant wrote in. Other recipients have no window.
async fn window_template(
    state: &AppState,
    integration: &Integration,
    row: &OutboxRow,
    to: &Address,
) -> Result<Window, sqlx::Error> {
    let last = match to.channel() {
        ChannelKind::WhatsApp => {
            state
                .db
                .whatsapp_last_inbound(&integration.id, &row.recipient)
                .await?
        }
        ChannelKind::Chat => match state
            .db
            .whatsapp_last_inbound(&integration.id, &row.recipient)
            .await?
        {
            Some(at) => Some(at),
            None => return Ok(Window::Open),
        },
        ChannelKind::Sms => return Ok(Window::Open),
    };
    if reply_window::is_open(last, now_ms()) {
        return Ok(Window::Open);
    }
    let given = row
        .template
        .as_deref()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok());
    Ok(given
        .as_ref()
        .or(integration.whatsapp_template.as_ref())
        .and_then(|setting| reply_window::template_for(setting, &row.body))
        .map_or(Window::Closed, |(content_sid, variables)| {
            Window::Template(Template {
                content_sid,
                variables,
            })
        }))
}
