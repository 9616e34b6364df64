//! Outbox delivery: claim a due row, wait for the sender number's rate limit, send it through
//! Twilio's REST API, record the outcome.
//!
//! A row claimed while already marked in flight (the process died, or a request timed out, after
//! the call may have reached Twilio) is first looked up in Twilio's message list by recipient,
//! sender, date and body; only if Twilio has no such message is it sent again.
use crate::app::AppState;
use crate::channel::twilio::form::StatusCallback;
use crate::channel::twilio::rest_client::{Credentials, MessageFilter, SendMessage, TwilioError};
use crate::domain::now_ms;
use crate::metrics::Metrics;
use crate::store::channel::ClaimQueue;
use crate::store::integration::Integration;
use crate::store::outbox::OutboxRow;
use rand::Rng;
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

/// How long a claimed row stays ours without a renewal; a live worker renews it while it waits
/// for Twilio (see [`crate::pipeline::holding`]), so this bounds how long the rows of a dead
/// worker wait. It must still outlast the time Twilio takes to act on a create whose caller
/// died, so that the next claim's reconciliation finds the message.
pub const LEASE_MS: i64 = 15_000;
/// Longest wait between retries.
const MAX_BACKOFF_MS: i64 = 60_000;

/// Per-sender-number pacing shared by the workers of one process.
#[derive(Clone, Default)]
pub struct RateLimiter {
    next_slot: Arc<Mutex<HashMap<String, Instant>>>,
}

impl RateLimiter {
    /// Reserves the sender's next slot and returns how long to wait for it.
    pub fn reserve(&self, sender: &str, per_second: f64) -> Duration {
        let interval = Duration::from_secs_f64(1.0 / per_second.max(0.001));
        let now = Instant::now();
        let Ok(mut slots) = self.next_slot.lock() else {
            return Duration::ZERO;
        };
        let slot = slots
            .get(sender)
            .copied()
            .filter(|s| *s > now)
            .unwrap_or(now);
        slots.insert(sender.to_owned(), slot + interval);
        slot - now
    }
}

/// One claimed row, delivered (or rescheduled) while holding its lease.
pub async fn run_delivery(state: AppState, limiter: RateLimiter, row: OutboxRow) {
    let renew = |until| {
        let (db, id, token) = (state.db.clone(), row.id.clone(), row.claim_token.clone());
        async move { db.renew_claim(ClaimQueue::Outbox, &id, &token, until).await }
    };
    crate::pipeline::holding(LEASE_MS, renew, deliver(&state, &limiter, row.clone())).await;
}

fn backoff_ms(attempts: i64, retry_after: Option<Duration>) -> i64 {
    let exp = 1000_i64
        .saturating_mul(1 << attempts.clamp(1, 7).saturating_sub(1))
        .min(MAX_BACKOFF_MS);
    let jittered = exp * rand::thread_rng().gen_range(75..=125) / 100;
    let asked = retry_after.map(|d| d.as_millis() as i64).unwrap_or(0);
    jittered.max(asked)
}

async fn deliver(state: &AppState, limiter: &RateLimiter, row: OutboxRow) {
    let integration = match state
        .db
        .integration(&state.cipher, &row.integration_id)
        .await
    {
        Ok(Some(i)) => i,
        Ok(None) => {
            let _ = state
                .db
                .outbox_failed(&row.id, &row.claim_token, None, "integration was deleted")
                .await;
            return;
        }
        Err(err) => {
            tracing::error!(error = %err, "loading integration for delivery");
            let _ = state
                .db
                .outbox_retry(
                    &row.id,
                    &row.claim_token,
                    now_ms() + 1000,
                    "database error",
                    row.in_flight_since.is_some(),
                )
                .await;
            return;
        }
    };
    let (Some(account_sid), Some(token)) = (
        integration.account_sid.as_deref(),
        integration.auth_token.as_ref(),
    ) else {
        let _ = state
            .db
            .outbox_failed(
                &row.id,
                &row.claim_token,
                None,
                "integration has no Twilio credentials",
            )
            .await;
        return;
    };
    let creds = Credentials {
        account_sid,
        auth_token: token.expose_secret(),
    };
    if row.recipient_opted_out {
        let _ = state
            .db
            .outbox_failed(
                &row.id,
                &row.claim_token,
                Some(21610),
                "recipient opted out (STOP)",
            )
            .await;
        return;
    }
    if let Some(since) = row.in_flight_since {
        match reconcile(state, &creds, &row, since).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(error = %err, "reconciling with Twilio failed; will retry");
                let _ = state
                    .db
                    .outbox_retry(
                        &row.id,
                        &row.claim_token,
                        now_ms() + backoff_ms(row.attempts, err.retry_after()),
                        &err.to_string(),
                        true,
                    )
                    .await;
                return;
            }
        }
    }
    let rate = integration
        .send_rate
        .unwrap_or(state.config.send_rate_per_sec);
    let wait = limiter.reserve(&row.sender, rate);
    if wait > Duration::from_millis((LEASE_MS / 2) as u64) {
        let _ = state
            .db
            .outbox_retry(
                &row.id,
                &row.claim_token,
                now_ms() + wait.as_millis() as i64,
                "rate limited",
                false,
            )
            .await;
        return;
    }
    tokio::time::sleep(wait).await;
    let message = SendMessage {
        to: row.recipient.clone(),
        from: row.sender.clone(),
        body: row.body.clone(),
        media_urls: Vec::new(),
        status_callback: Some(status_url(state, &integration)),
    };
    match state.twilio.send_message(&creds, &message).await {
        Ok(sent) => {
            Metrics::inc(&state.metrics.messages_sent);
            if let Err(err) = state
                .db
                .outbox_sent(&row.id, &row.claim_token, &sent.sid, &sent.status_raw)
                .await
            {
                // Twilio has it; the in-flight mark makes the next claim reconcile, not resend.
                tracing::error!(error = %err, sid = %sent.sid, "recording a sent message failed");
            }
        }
        Err(err) => handle_send_error(state, &integration, &row, err).await,
    }
}

async fn handle_send_error(
    state: &AppState,
    integration: &Integration,
    row: &OutboxRow,
    err: TwilioError,
) {
    if err.is_retryable() {
        Metrics::inc(&state.metrics.send_retries);
        // No HTTP answer at all means Twilio may have processed the request.
        let maybe_sent = err.status().is_none();
        let at = now_ms() + backoff_ms(row.attempts, err.retry_after());
        tracing::warn!(error = %err, attempts = row.attempts, "send failed; retrying");
        let _ = state
            .db
            .outbox_retry(&row.id, &row.claim_token, at, &err.to_string(), maybe_sent)
            .await;
        return;
    }
    Metrics::inc(&state.metrics.send_failures);
    let reason = match err.code() {
        Some(21610) => "recipient opted out (STOP)".to_owned(),
        Some(21211) => "invalid recipient number".to_owned(),
        Some(21614) => "recipient is not a mobile number".to_owned(),
        Some(21617) => "message body too long".to_owned(),
        Some(63016) => "outside the WhatsApp 24-hour window; a template is required".to_owned(),
        _ => err.to_string(),
    };
    tracing::warn!(error = %err, "send failed permanently");
    let _ = state
        .db
        .outbox_failed(&row.id, &row.claim_token, err.code(), &reason)
        .await;
    if err.is_opt_out() {
        let _ = state
            .db
            .set_opt_out(&integration.id, &row.recipient, true)
            .await;
        let _ = state
            .db
            .outbox_fail_recipient(&integration.id, &row.recipient, &reason)
            .await;
    }
}

/// Was an earlier attempt of this row accepted by Twilio? If so, record it and say true.
async fn reconcile(
    state: &AppState,
    creds: &Credentials<'_>,
    row: &OutboxRow,
    since_ms: i64,
) -> Result<bool, TwilioError> {
    let after = UNIX_EPOCH + Duration::from_millis((since_ms - 60_000).max(0) as u64);
    let filter = MessageFilter {
        to: Some(row.recipient.clone()),
        from: Some(row.sender.clone()),
        date_sent_after: Some(after),
    };
    let found = state.twilio.list_messages(creds, &filter).await?;
    for existing in found.iter().filter(|m| m.body == row.body) {
        // A message another row already owns is an earlier reply with the same words (a
        // person who texts "ok" twice gets "ok" twice), not this row's lost attempt.
        let owned = state
            .db
            .outbox_sid_recorded(&existing.sid, &row.id)
            .await
            .map_err(|err| TwilioError::Retryable {
                status: None,
                code: None,
                retry_after: None,
                message: format!("database error while reconciling: {err}"),
            })?;
        if owned {
            continue;
        }
        tracing::info!(sid = %existing.sid, "in-flight message found at Twilio; not sending again");
        let _ = state
            .db
            .outbox_sent(
                &row.id,
                &row.claim_token,
                &existing.sid,
                &existing.status_raw,
            )
            .await;
        return Ok(true);
    }
    Ok(false)
}

/// Where Twilio posts status changes for messages of this integration.
pub fn status_url(state: &AppState, integration: &Integration) -> String {
    format!(
        "{}/v1/integration/twilio/{}/status",
        state.public_base, integration.id
    )
}

/// Applies a status callback, moving the status forward only.
pub async fn apply_status(
    state: &AppState,
    integration: &Integration,
    cb: &StatusCallback,
) -> Result<(), sqlx::Error> {
    let moved = state
        .db
        .outbox_advance_status(&cb.message_sid, cb.status, cb.error_code)
        .await?;
    if !moved {
        tracing::debug!(sid = %cb.message_sid, integration = %integration.id, status = %cb.status, "status callback changed nothing (unknown message or not newer)");
    }
    Ok(())
}
