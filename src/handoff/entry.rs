//! Entering the queue: what a turn that hands its conversation over adds to its one write.
use super::texts;
use crate::app::AppState;
use crate::bot::labels::Labels;
use crate::domain::ids;
use crate::pipeline::render::Route;
use crate::store::handoff::{HandoffState, HandoffWrite, NewHandoff};
use serde_json::Value;

/// The hand-off a turn opens and what the person is told about it.
#[derive(Debug)]
pub struct Entry {
    pub write: HandoffWrite,
    /// Queue position, or that nobody is online and how to leave a message.
    pub texts: Vec<String>,
    /// Written into the history, never sent.
    pub marker: String,
}

/// The request to hand a conversation over.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub reason: Option<String>,
    pub attributes: Option<Value>,
}

/// Opens a hand-off for `conversation_id`: queued when an agent of the integration is online
/// with room, otherwise an offer to leave a message. `already_said` are the texts the turn
/// sends anyway: an engine that announced the hand-off itself (the FAQ's `creating_chat`, the
/// LLM's own words) is not followed by a second announcement, only by the queue position.
pub async fn enter(
    state: &AppState,
    route: &Route,
    conversation_id: &str,
    bot_id: Option<&str>,
    labels: &Labels,
    request: Request,
    already_said: &[String],
) -> anyhow::Result<Entry> {
    let db = &state.db;
    let online = db.agents_available(&route.integration_id).await? > 0;
    let (handoff_state, told, texts) = if online {
        let ahead = db.queue_ahead(&route.integration_id, i64::MAX, "").await?;
        let mut texts = Vec::new();
        if already_said.iter().all(|t| t.trim().is_empty()) {
            texts.push(labels.get("creating_chat"));
        }
        if ahead > 0 {
            texts.push(texts::position(labels, ahead));
        }
        (HandoffState::Queued, Some(ahead), texts)
    } else {
        (
            HandoffState::LeavingMessage,
            None,
            vec![labels.get("no_agents"), labels.get("leave_message")],
        )
    };
    let marker = texts::marker_start(request.reason.as_deref());
    Ok(Entry {
        write: HandoffWrite::Open(NewHandoff {
            id: ids::new_id(),
            conversation_id: conversation_id.to_owned(),
            integration_id: route.integration_id.clone(),
            channel: route.channel.clone(),
            person: route.to.to_string(),
            ours: route.from.to_string(),
            bot_id: bot_id.map(str::to_owned),
            state: handoff_state,
            agent_id: None,
            reason: request.reason,
            attributes: request.attributes.map(|a| a.to_string()),
            told_ahead: told,
        }),
        texts,
        marker,
    })
}
