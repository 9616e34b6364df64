//! Messages: validating a create the way Twilio does, moving a message through its statuses,
//! and filtering the list.
//!
//! Validation order and error codes follow reference section (d) so the gateway's error
//! classification is exercised against realistic answers: missing `To` (21604), missing `From`
//! (21603), invalid `To` (21211), no body or media (21602), body over 1600 characters (21617),
//! too many media (21623), a `From` the account does not own (21606, 63007 on WhatsApp), an
//! SMS/WhatsApp mix (21910), and an opted-out recipient (21610).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::channel::twilio::address::{Address, ChannelKind};
use crate::channel::twilio::dates::{parse_iso8601, rfc2822};
use crate::channel::twilio::form::MessageStatus;
use crate::channel::twilio::resources::MessageResource;
use crate::sms;

use super::rest::TwilioFailure;
use super::state::{new_sid, Emulator, StoredMessage, API_VERSION};

const MAX_MEDIA: usize = 10;

pub(crate) fn first<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn bad_request(code: i64, message: String) -> TwilioFailure {
    TwilioFailure::new(400, code, message)
}

/// The fields of a new message that vary; the rest is derived.
pub(crate) struct NewMessage<'a> {
    pub account_sid: &'a str,
    pub from: &'a Address,
    pub to: &'a Address,
    pub body: &'a str,
    pub num_media: usize,
    /// `inbound` or `outbound-api`.
    pub direction: &'a str,
    pub status: MessageStatus,
}

impl NewMessage<'_> {
    /// The resource as Twilio returns it on create.
    pub(crate) fn resource(&self, sid: String, now: SystemTime) -> MessageResource {
        let base = format!(
            "/{API_VERSION}/Accounts/{}/Messages/{sid}",
            self.account_sid
        );
        let date = Some(rfc2822(now));
        MessageResource {
            account_sid: self.account_sid.to_owned(),
            api_version: API_VERSION.to_owned(),
            body: self.body.to_owned(),
            date_created: date.clone(),
            date_sent: date.clone(),
            date_updated: date,
            direction: self.direction.to_owned(),
            error_code: None,
            error_message: None,
            from: self.from.to_string(),
            messaging_service_sid: None,
            num_media: self.num_media.to_string(),
            num_segments: sms::segments(self.body).segments.to_string(),
            price: None,
            price_unit: Some("USD".to_owned()),
            status_raw: self.status.as_str().to_owned(),
            subresource_uris: [("media".to_owned(), format!("{base}/Media.json"))].into(),
            to: self.to.to_string(),
            uri: format!("{base}.json"),
            sid,
        }
    }
}

impl Emulator {
    /// Validates a Messages create form and stores the queued message.
    pub(crate) fn create_message(
        &self,
        account_sid: &str,
        form: &[(String, String)],
    ) -> Result<MessageResource, TwilioFailure> {
        let raw_to = first(form, "To")
            .ok_or_else(|| bad_request(21604, "A 'To' phone number is required.".into()))?;
        let raw_from = first(form, "From").ok_or_else(|| {
            bad_request(
                21603,
                "A 'From' phone number is required (the emulator does not model Messaging Services)."
                    .into(),
            )
        })?;
        let to = Address::parse(raw_to).map_err(|_| {
            bad_request(
                21211,
                format!("The 'To' number {raw_to} is not a valid phone number."),
            )
        })?;
        let from = Address::parse(raw_from).map_err(|_| {
            bad_request(
                21212,
                format!("The 'From' number {raw_from} is not a valid phone number."),
            )
        })?;
        let content_sid = first(form, "ContentSid");
        // A template's text is Twilio's to render; the emulator keeps its SID and variables.
        let templated = content_sid.map(|sid| {
            format!(
                "[template {sid}] {}",
                first(form, "ContentVariables").unwrap_or("{}")
            )
        });
        let body = templated
            .as_deref()
            .unwrap_or_else(|| first(form, "Body").unwrap_or_default());
        let media: Vec<&str> = form
            .iter()
            .filter(|(n, v)| n == "MediaUrl" && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect();
        if body.trim().is_empty() && media.is_empty() {
            return Err(bad_request(21602, "Message body is required.".into()));
        }
        if body.chars().count() > sms::MAX_BODY_CHARS {
            return Err(bad_request(
                21617,
                "The concatenated message body exceeds the 1600 character limit.".into(),
            ));
        }
        if media.len() > MAX_MEDIA {
            return Err(bad_request(
                21623,
                "Too many media URLs: at most 10.".into(),
            ));
        }
        let status_callback = first(form, "StatusCallback").map(str::to_owned);
        if let Some(url) = &status_callback {
            if url::Url::parse(url).is_err() {
                return Err(bad_request(
                    21609,
                    format!("Invalid StatusCallback URL {url}."),
                ));
            }
        }

        let mut inner = self.lock();
        let owned = inner
            .number(from.e164())
            .filter(|n| n.account_sid == account_sid);
        match (owned, from.channel()) {
            (None, ChannelKind::Sms) => {
                return Err(bad_request(
                    21606,
                    format!("The From phone number {from} is not a valid, SMS-capable inbound phone number or short code for your account."),
                ))
            }
            (Some(n), ChannelKind::WhatsApp) if !n.whatsapp => {
                return Err(bad_request(
                    63007,
                    format!("Twilio could not find a Channel with the specified From address {from}."),
                ))
            }
            (None, ChannelKind::WhatsApp) => {
                return Err(bad_request(
                    63007,
                    format!("Twilio could not find a Channel with the specified From address {from}."),
                ))
            }
            _ => {}
        }
        if from.channel() != to.channel() {
            return Err(bad_request(
                21910,
                "Invalid From and To pair. From and To should be of the same channel.".into(),
            ));
        }
        let pair = (from.e164().to_owned(), to.e164().to_owned());
        if to.channel() == ChannelKind::Sms && inner.opt_outs.contains(&pair) {
            return Err(bad_request(
                21610,
                "Attempt to send to unsubscribed recipient".into(),
            ));
        }

        if to.channel() == ChannelKind::WhatsApp
            && content_sid.is_none()
            && !inner.whatsapp_window_open(&pair)
        {
            return Err(bad_request(
                63016,
                "Failed to send freeform message because you are outside the allowed window. If you are using WhatsApp, please use a Message Template.".into(),
            ));
        }

        let now = SystemTime::now();
        let prefix = if media.is_empty() { "SM" } else { "MM" };
        let resource = NewMessage {
            account_sid,
            from: &from,
            to: &to,
            body,
            num_media: media.len(),
            direction: "outbound-api",
            status: MessageStatus::Queued,
        }
        .resource(new_sid(prefix), now);
        inner.push_message(StoredMessage {
            resource: resource.clone(),
            sent_at: now,
            status_callback,
        });
        drop(inner);
        self.created.notify_waiters();
        Ok(resource)
    }

    /// Moves a message to `status`; returns the callback to post, if the message has one.
    /// `force` skips the monotonic check (the control API may move a message anywhere).
    pub(crate) fn set_status(
        &self,
        sid: &str,
        status: MessageStatus,
        error_code: Option<i64>,
        force: bool,
    ) -> Option<CallbackJob> {
        let mut inner = self.lock();
        let message = inner.message_mut(sid)?;
        let current = message.resource.status().unwrap_or(MessageStatus::Queued);
        if !force && !status.advances(current) {
            return None;
        }
        let now = SystemTime::now();
        message.resource.status_raw = status.as_str().to_owned();
        message.resource.date_updated = Some(rfc2822(now));
        if error_code.is_some() {
            message.resource.error_code = error_code;
            message.resource.error_message = Some(format!("Emulated error {error_code:?}"));
        }
        let resource = message.resource.clone();
        let explicit = message.status_callback.clone();
        let url = explicit.or_else(|| {
            let e164 = Address::parse(&resource.from).ok()?.e164().to_owned();
            inner.number(&e164)?.status_callback.clone()
        })?;
        let token = inner.token(&resource.account_sid)?;
        Some(CallbackJob {
            url,
            token,
            resource,
        })
    }

    /// Messages matching a list query's filters, newest first, as Twilio lists them.
    pub(crate) fn find_messages(
        &self,
        account_sid: &str,
        query: &[(String, String)],
    ) -> Result<Vec<MessageResource>, TwilioFailure> {
        let filter = DateFilter::from_query(query)?;
        let to = first(query, "To");
        let from = first(query, "From");
        let inner = self.lock();
        Ok(inner
            .messages
            .iter()
            .rev()
            .filter(|m| m.resource.account_sid == account_sid)
            .filter(|m| to.is_none_or(|to| m.resource.to == to))
            .filter(|m| from.is_none_or(|from| m.resource.from == from))
            .filter(|m| filter.matches(m.sent_at))
            .map(|m| m.resource.clone())
            .collect())
    }
}

/// A status callback to deliver once the lock is released.
pub(crate) struct CallbackJob {
    pub url: String,
    pub token: String,
    pub resource: MessageResource,
}

/// `DateSent`, `DateSent>` / `DateSent>=` and `DateSent<` / `DateSent<=`, all inclusive; a
/// bare date as an upper bound or equality covers the whole day.
#[derive(Default)]
struct DateFilter {
    after: Option<SystemTime>,
    before: Option<SystemTime>,
}

impl DateFilter {
    fn from_query(query: &[(String, String)]) -> Result<Self, TwilioFailure> {
        let mut filter = DateFilter::default();
        for (name, value) in query {
            let bound = match name.as_str() {
                "DateSent" | "DateSent>" | "DateSent>=" | "DateSent<" | "DateSent<=" => value,
                _ => continue,
            };
            let start = parse_iso8601(bound)
                .ok_or_else(|| bad_request(20001, format!("Invalid {name} value {bound:?}")))?;
            let end = if bound.trim().len() == 10 {
                start + Duration::from_secs(86_399)
            } else {
                start
            };
            if name == "DateSent" || name.starts_with("DateSent>") {
                filter.after = Some(start);
            }
            if name == "DateSent" || name.starts_with("DateSent<") {
                filter.before = Some(end);
            }
        }
        Ok(filter)
    }

    /// Compares at second resolution, the resolution of Twilio's dates.
    fn matches(&self, time: SystemTime) -> bool {
        let secs = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        };
        self.after.is_none_or(|a| secs(time) >= secs(a))
            && self.before.is_none_or(|b| secs(time) <= secs(b))
    }
}

/// Moves a fresh message queued -> sent -> delivered in the background, posting a signed
/// callback for each change (none for the initial status, as Twilio does).
pub(crate) fn spawn_progress(emulator: Arc<Emulator>, sid: String) {
    tokio::spawn(async move {
        for status in [MessageStatus::Sent, MessageStatus::Delivered] {
            tokio::time::sleep(emulator.timing.status_delay).await;
            if let Some(job) = emulator.set_status(&sid, status, None, false) {
                emulator.post_status_callback(job).await;
            }
            let terminal = emulator
                .lock()
                .message_mut(&sid)
                .and_then(|m| m.resource.status())
                .is_none_or(MessageStatus::is_terminal);
            if terminal {
                return;
            }
        }
    });
}
