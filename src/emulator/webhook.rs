//! Webhooks the emulator sends: inbound messages to a number's `SmsUrl` and status callbacks.
//!
//! Each is signed over exactly the configured URL with the account's token, form-encoded, and
//! carries Twilio's `I-Twilio-Idempotency-Token` and `User-Agent: TwilioProxy/1.1`. Inbound
//! webhooks are retried with the same `MessageSid` and token as Twilio retries them: by the
//! URL's connection overrides, and without them once, only after a failed connection
//! (`Timing::webhook_retries` can make the emulator more forgiving).

use std::sync::Arc;
use std::time::SystemTime;

use crate::channel::twilio::address::{Address, ChannelKind};
use crate::channel::twilio::dates::dlr_done_date;
use crate::channel::twilio::form::MessageStatus;
use crate::channel::twilio::overrides::{ConnectionOverrides, RetryOn};
use crate::channel::twilio::signature;
use crate::sms;

use super::control::ControlError;
use super::messages::{CallbackJob, NewMessage};
use super::state::{
    new_sid, DeliveryRecord, Emulator, InboundRequest, InboundResult, StoredMessage,
    WebhookRetries, API_VERSION,
};

/// The outcome of delivering one webhook, possibly after retries.
pub(super) struct Delivery {
    pub status: Option<u16>,
    pub attempts: u32,
    pub error: Option<String>,
}

fn pairs(items: &[(&str, String)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(n, v)| ((*n).to_owned(), v.clone()))
        .collect()
}

impl Emulator {
    /// When an inbound webhook to `url` is retried, by the emulator's retry setting.
    pub(super) fn retry_plan(&self, url: &str) -> Result<ConnectionOverrides, String> {
        match self.timing.webhook_retries {
            WebhookRetries::Twilio => ConnectionOverrides::of_url(url).map(|(plan, _)| plan),
            WebhookRetries::Fixed(attempts) => Ok(ConnectionOverrides {
                retries: attempts.saturating_sub(1),
                retry_on: RetryOn {
                    connect: true,
                    read_timeout: true,
                    status_4xx: false,
                    status_5xx: true,
                },
                read_timeout: self.timing.webhook_timeout,
                total_timeout: self.timing.webhook_timeout * attempts.max(1),
                ..ConnectionOverrides::default()
            }),
        }
    }

    /// Signs and sends one webhook, retrying as `plan` says: each attempt within the read
    /// timeout, all of them within the total, backing off between them.
    pub(super) async fn deliver(
        &self,
        url: &str,
        method: &str,
        token: &str,
        params: &[(String, String)],
        idempotency: &str,
        plan: &ConnectionOverrides,
    ) -> Delivery {
        // The fragment (connection overrides) is for the emulator, never sent nor signed.
        let url = url.split_once('#').map_or(url, |(base, _)| base);
        // A GET webhook carries the parameters in the URL and signs the URL alone.
        let is_get = method.eq_ignore_ascii_case("GET");
        let (target, signed_params) = if is_get {
            let query = serde_urlencoded::to_string(params).unwrap_or_default();
            let separator = if url.contains('?') { '&' } else { '?' };
            (format!("{url}{separator}{query}"), Vec::new())
        } else {
            (url.to_owned(), params.to_vec())
        };
        let signature = signature::compute(token, &target, &signed_params);
        let mut outcome = Delivery {
            status: None,
            attempts: 0,
            error: None,
        };
        let started = std::time::Instant::now();
        let mut backoff = self.timing.webhook_backoff;
        for attempt in 0..=plan.retries {
            if attempt > 0 {
                if started.elapsed() + backoff >= plan.total_timeout {
                    break;
                }
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            let left = plan.total_timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            outcome.attempts = attempt + 1;
            let request = if is_get {
                self.http.get(&target)
            } else {
                self.http
                    .post(&target)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(serde_urlencoded::to_string(params).unwrap_or_default())
            };
            let result = request
                .timeout(plan.read_timeout.min(left))
                .header("X-Twilio-Signature", &signature)
                .header("I-Twilio-Idempotency-Token", idempotency)
                .send()
                .await;
            let retry = match result {
                Ok(response) => {
                    let status = response.status();
                    outcome.status = Some(status.as_u16());
                    outcome.error = None;
                    (status.is_server_error() && plan.retry_on.status_5xx)
                        || (status.is_client_error() && plan.retry_on.status_4xx)
                }
                Err(error) => {
                    outcome.status = None;
                    outcome.error = Some(error.to_string());
                    if error.is_timeout() {
                        plan.retry_on.read_timeout
                    } else {
                        plan.retry_on.connect
                    }
                }
            };
            if !retry {
                break;
            }
        }
        outcome
    }

    /// Builds, signs and delivers an inbound message webhook, as if someone had texted us.
    pub async fn inject_inbound(
        self: &Arc<Self>,
        request: &InboundRequest,
    ) -> Result<InboundResult, ControlError> {
        let from = Address::parse(&request.from)
            .map_err(|e| ControlError::bad_request(format!("from: {e}")))?;
        let to = Address::parse(&request.to)
            .map_err(|e| ControlError::bad_request(format!("to: {e}")))?;
        if from.channel() != to.channel() {
            return Err(ControlError::bad_request(
                "from and to must be on the same channel",
            ));
        }
        let whatsapp = to.channel() == ChannelKind::WhatsApp;
        let prefix = if request.media.is_empty() { "SM" } else { "MM" };
        let sid = new_sid(prefix);
        let now = SystemTime::now();

        let keyword = request.body.trim().to_ascii_uppercase();
        let (account_sid, url, method, token, opt_out) = {
            let mut inner = self.lock();
            let number = inner
                .number(to.e164())
                .filter(|n| !whatsapp || n.whatsapp)
                .ok_or_else(|| {
                    ControlError::not_found(format!("{to} is not an emulated number"))
                })?;
            let url = number
                .sms_url
                .clone()
                .ok_or_else(|| ControlError::conflict(format!("{to} has no SmsUrl configured")))?;
            let (account_sid, method) = (number.account_sid.clone(), number.sms_method.clone());
            let token = inner.token(&account_sid).unwrap_or_default();
            // Twilio's keyword handling applies to SMS long codes, not WhatsApp.
            let pair = (to.e164().to_owned(), from.e164().to_owned());
            let opt_out = if whatsapp {
                inner.whatsapp_inbound.insert(pair, now);
                None
            } else if crate::domain::keywords::OPT_OUT.contains(&keyword.as_str()) {
                inner.opt_outs.insert(pair);
                Some("STOP".to_owned())
            } else if crate::domain::keywords::OPT_IN.contains(&keyword.as_str()) {
                inner.opt_outs.remove(&pair);
                Some("START".to_owned())
            } else {
                None
            };
            let resource = NewMessage {
                account_sid: &account_sid,
                from: &from,
                to: &to,
                body: &request.body,
                num_media: request.media.len(),
                direction: "inbound",
                status: MessageStatus::Received,
            }
            .resource(sid.clone(), now);
            inner.push_message(StoredMessage {
                resource,
                sent_at: now,
                status_callback: None,
            });
            (account_sid, url, method, token, opt_out)
        };

        let mut items = vec![
            ("SmsMessageSid", sid.clone()),
            ("NumMedia", request.media.len().to_string()),
        ];
        if whatsapp {
            let profile = request
                .profile_name
                .clone()
                .unwrap_or_else(|| "Emulator User".to_owned());
            items.push(("ProfileName", profile));
            items.push(("WaId", from.e164().trim_start_matches('+').to_owned()));
            // WhatsApp names the media kind; anything not image/video/audio is a document.
            let kind = request.media.first().map_or("text", |m| {
                match m.content_type.split('/').next().unwrap_or_default() {
                    top @ ("image" | "video" | "audio") => top,
                    _ => "document",
                }
            });
            items.push(("MessageType", kind.to_owned()));
        }
        items.extend([
            ("SmsSid", sid.clone()),
            ("SmsStatus", "received".to_owned()),
            ("Body", request.body.clone()),
            ("To", to.to_string()),
            (
                "NumSegments",
                sms::segments(&request.body).segments.to_string(),
            ),
            ("ReferralNumMedia", "0".to_owned()),
            ("MessageSid", sid.clone()),
            ("AccountSid", account_sid.clone()),
            ("From", from.to_string()),
            ("ApiVersion", API_VERSION.to_owned()),
        ]);
        let mut params = pairs(&items);
        for (i, media) in request.media.iter().enumerate() {
            params.push((format!("MediaContentType{i}"), media.content_type.clone()));
            params.push((format!("MediaUrl{i}"), media.url.clone()));
        }
        let record = DeliveryRecord {
            message_sid: sid,
            account_sid,
            url,
            method,
            params,
            idempotency_token: new_sid(""),
            attempts: 0,
            status: None,
        };
        let mut result = self.send_recorded(record, &token).await;
        result.opt_out = opt_out;
        Ok(result)
    }

    /// Sends an inbound webhook that was already delivered again, same `MessageSid`, same
    /// idempotency token, to the number's current `SmsUrl`: what a Twilio retry looks like.
    pub async fn replay_inbound(
        self: &Arc<Self>,
        message_sid: &str,
    ) -> Result<InboundResult, ControlError> {
        let (mut record, token) = {
            let inner = self.lock();
            let mut record = inner
                .webhooks
                .iter()
                .rev()
                .find(|w| w.message_sid == message_sid)
                .cloned()
                .ok_or_else(|| {
                    ControlError::not_found(format!("no inbound webhook {message_sid}"))
                })?;
            let to = record
                .params
                .iter()
                .find(|(n, _)| n == "To")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let e164 = Address::parse(&to)
                .map(|a| a.e164().to_owned())
                .unwrap_or_default();
            if let Some(number) = inner.number(&e164) {
                record.url = number.sms_url.clone().unwrap_or(record.url);
                record.method.clone_from(&number.sms_method);
            }
            let token = inner.token(&record.account_sid).unwrap_or_default();
            (record, token)
        };
        record.attempts = 0;
        record.status = None;
        Ok(self.send_recorded(record, &token).await)
    }

    async fn send_recorded(&self, mut record: DeliveryRecord, token: &str) -> InboundResult {
        let delivery = match self.retry_plan(&record.url) {
            Ok(plan) => {
                self.deliver(
                    &record.url,
                    &record.method,
                    token,
                    &record.params,
                    &record.idempotency_token,
                    &plan,
                )
                .await
            }
            // Twilio refuses to call a URL whose overrides it cannot read.
            Err(why) => Delivery {
                status: None,
                attempts: 0,
                error: Some(why),
            },
        };
        record.attempts = delivery.attempts;
        record.status = delivery.status;
        let result = InboundResult {
            message_sid: record.message_sid.clone(),
            status: delivery.status,
            attempts: delivery.attempts,
            error: delivery.error,
            opt_out: None,
        };
        self.lock().webhooks.push(record);
        result
    }

    /// Posts a signed status callback for the message's current state (one attempt: Twilio
    /// does not retry status callbacks by default).
    pub(crate) async fn post_status_callback(&self, job: CallbackJob) -> Option<u16> {
        let message = &job.resource;
        let status = message.status_raw.clone();
        let mut items = vec![
            ("SmsSid", message.sid.clone()),
            ("SmsStatus", status.clone()),
            ("MessageStatus", status.clone()),
            ("To", message.to.clone()),
            ("MessageSid", message.sid.clone()),
            ("AccountSid", message.account_sid.clone()),
            ("From", message.from.clone()),
            ("ApiVersion", API_VERSION.to_owned()),
        ];
        if let Some(code) = message.error_code {
            items.push(("ErrorCode", code.to_string()));
        }
        let whatsapp = message.to.starts_with("whatsapp:");
        if whatsapp {
            items.push(("ChannelPrefix", "whatsapp".to_owned()));
            items.push((
                "ChannelToAddress",
                message.to.trim_start_matches("whatsapp:").to_owned(),
            ));
            if matches!(status.as_str(), "delivered" | "read") {
                items.push(("EventType", status.to_ascii_uppercase()));
            }
        } else if matches!(status.as_str(), "delivered" | "undelivered") {
            items.push(("RawDlrDoneDate", dlr_done_date(SystemTime::now())));
        }
        let params = pairs(&items);
        let token = new_sid("");
        let once = ConnectionOverrides {
            retries: 0,
            ..ConnectionOverrides::default()
        };
        let delivery = self
            .deliver(&job.url, "POST", &job.token, &params, &token, &once)
            .await;
        self.lock().callbacks.push(DeliveryRecord {
            message_sid: message.sid.clone(),
            account_sid: message.account_sid.clone(),
            url: job.url.clone(),
            method: "POST".to_owned(),
            params,
            idempotency_token: token,
            attempts: delivery.attempts,
            status: delivery.status,
        });
        delivery.status
    }
}
