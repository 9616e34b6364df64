//! Replaying a refused callback from the channel log: the stored request goes through the
//! same channel checks again, against today's configuration (the public URL this process
//! runs with, the integration's current credentials), and on to the pipeline if it passes.
//! Twilio's signature covers the URL it called, so a webhook refused because
//! `CHATWIRE_PUBLIC_URL` was wrong passes once the setting is fixed.
use super::{called_url, classify};
use crate::app::AppState;
use crate::channel::CallbackRequest;
use crate::pipeline::accept::{self, Accepted};
use crate::store::channel_log::Entry;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};

/// What a replay came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// Passed the checks: `accepted`, `duplicate`, `ignored` (messages) or `applied` (status).
    Passed(&'static str),
    /// Refused again, with the reason word and its explanation.
    Refused(&'static str, String),
    /// Not something that can be replayed (no stored request, unknown channel or integration).
    Impossible(String),
}

impl Replayed {
    /// The word stored with the entry.
    pub fn outcome(&self) -> String {
        match self {
            Replayed::Passed(word) => (*word).to_owned(),
            Replayed::Refused(reason, _) => format!("refused: {reason}"),
            Replayed::Impossible(_) => "impossible".to_owned(),
        }
    }
}

fn headers(stored: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    if let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(stored) {
        for (name, value) in fields {
            let (Ok(name), Some(Ok(value))) = (
                HeaderName::try_from(name),
                value.as_str().map(HeaderValue::from_str),
            ) else {
                continue;
            };
            map.insert(name, value);
        }
    }
    map
}

/// Runs the stored request of `entry` again.
pub async fn replay(state: &AppState, entry: &Entry) -> Result<Replayed, sqlx::Error> {
    let Some(request) = &entry.request else {
        return Ok(Replayed::Impossible(
            "this entry keeps no request to replay (only refused webhooks of a known integration do)".into(),
        ));
    };
    let Some(channel) = state.channels.get(&entry.channel) else {
        return Ok(Replayed::Impossible(format!(
            "this process serves no channel named {}",
            entry.channel
        )));
    };
    let id = entry.integration_id.as_deref().unwrap_or("");
    let Some(integration) = state.db.integration(&state.cipher, id).await? else {
        return Ok(Replayed::Impossible(format!(
            "the integration {id} no longer exists"
        )));
    };
    let uri: Uri = request
        .path
        .parse()
        .unwrap_or_else(|_| Uri::from_static("/"));
    let url = called_url(state, &uri);
    let headers = headers(&request.headers);
    let callback = CallbackRequest {
        url: &url,
        headers: &headers,
        body: request.body.as_bytes(),
    };
    let refusal = match entry.kind.as_str() {
        "status" => match channel.parse_status(&integration, callback) {
            Ok(update) => {
                crate::outbox::apply_status(state, &integration, &update).await?;
                return Ok(Replayed::Passed("applied"));
            }
            Err(refusal) => refusal,
        },
        _ => match channel.parse_inbound(&integration, callback) {
            Ok(message) => {
                let word = match accept::inbound(state, channel.name(), &integration, message)
                    .await?
                {
                    Accepted::New => "accepted",
                    Accepted::Duplicate => "duplicate",
                    Accepted::Ignored => "ignored",
                    Accepted::Misdirected => "refused: addressed to another integration's number",
                };
                return Ok(Replayed::Passed(word));
            }
            Err(refusal) => refusal,
        },
    };
    let (reason, why, _) = classify(&refusal);
    Ok(Replayed::Refused(reason.as_str(), why.to_owned()))
}
