//! Human hand-off: who owns a conversation, the queue, and what agents do.
//!
//! A conversation is owned by its bot until a hand-off opens, by an engine's request (Studio's
//! `send-to-flex`, the FAQ's escalation, the LLM's `handoff_to_human` tool, a webhook bot's
//! `handoff` action), by the person (the `handoff_keywords` label of the bot's language), or by
//! an agent taking it over. Then:
//!
//! ```text
//! bot -> queued -> agent -> closed (bot again)
//!          |         \-> queued (the agent went silent)
//!          \-> returned (waited too long)
//! bot -> leaving_message (nobody online) -> ticket (bot again) -> answered by an agent later
//! ```
//!
//! While a hand-off is open no engine runs for the conversation: the person's messages are
//! stored for the agent (see `pipeline::turn`). Every move is a compare-and-set written through
//! the one door with the messages that announce it, so two agents taking one conversation at
//! once produce one winner and one `agent_joined`, and a crash never leaves a move without its
//! message or a message without its move.
pub mod accounts;
pub mod desk;
pub mod entry;
pub mod password;
pub mod sweep;
pub mod texts;

use crate::app::AppState;
use crate::bot::labels::Labels;
use crate::bot::BotConfig;
use crate::domain::address::Address;
use crate::pipeline::render::Route;
use crate::store::handoff::Handoff;

/// Why an agent's action was refused; each is a client mistake or a lost race, never a 500.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error("no such conversation in the queue")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub type DeskResult<T> = Result<T, DeskError>;

/// Where a hand-off's messages go: its conversation's channel, person and number.
pub fn route_of(h: &Handoff) -> DeskResult<Route> {
    let (Ok(to), Ok(from)) = (Address::parse(&h.person), Address::parse(&h.ours)) else {
        return Err(DeskError::Invalid(
            "the conversation's stored addresses do not parse".into(),
        ));
    };
    Ok(Route {
        integration_id: h.integration_id.clone(),
        channel: h.channel.clone(),
        to,
        from,
    })
}

/// The labels of a hand-off's bot (its language and overrides), English when it is gone.
pub async fn labels_of(state: &AppState, bot_id: Option<&str>) -> Labels {
    let Some(bot_id) = bot_id else {
        return Labels::default();
    };
    match state
        .db
        .fetch_resource_cached(&crate::store::schema::BOT, bot_id)
        .await
    {
        Ok(Some(row)) => Labels::for_bot(&BotConfig::from_row(row).raw),
        _ => Labels::default(),
    }
}

/// Tells the consoles' live views that something they show changed.
pub fn changed(state: &AppState) {
    state.desk_events.send_modify(|v| *v = v.wrapping_add(1));
}
