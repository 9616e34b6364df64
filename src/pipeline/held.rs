//! A person's message while a human owns (or is about to own) their conversation: no engine
//! runs. Queued or with an agent, the message is stored for the agent and the consoles are
//! told. Offered to leave a message for an absent team, the message becomes that message (a
//! ticket) and the bot owns the conversation again, unless the person cancels.
use super::render::Route;
use super::turn::user_message;
use crate::app::AppState;
use crate::domain::now_ms;
use crate::handoff::desk::{give_back, notice};
use crate::handoff::{changed, labels_of, texts};
use crate::store::channel::{Inbound, OpenHandoff};
use crate::store::handoff::{HandoffMove, HandoffState};
use crate::store::integration::Integration;
use crate::store::outgoing::{Claim, Outgoing, Recorded, Session};

pub async fn hold(
    state: &AppState,
    integration: &Integration,
    route: &Route,
    m: &Inbound,
    open: OpenHandoff,
) -> anyhow::Result<()> {
    let db = &state.db;
    let mut write = match open.state {
        HandoffState::LeavingMessage => {
            let Some(h) = db.handoff(&open.id).await? else {
                anyhow::bail!("hand-off {} vanished during the turn", open.id);
            };
            let labels = labels_of(state, h.bot_id.as_deref()).await;
            if texts::cancels(&labels, &m.body) {
                give_back(
                    &h,
                    route,
                    vec![labels.get("escalation_rejected")],
                    "The person chose not to leave a message",
                    HandoffState::Returned,
                )
            } else {
                let mut change =
                    HandoffMove::new(&h.id, &[HandoffState::LeavingMessage], HandoffState::Ticket);
                change.ticket_text = Some(m.body.clone());
                notice(&h, route, vec![labels.get("ticket_created")], change)
            }
        }
        _ => Outgoing {
            conversation_id: Some(open.conversation_id.clone()),
            session: Some(Session {
                integration_id: integration.id.clone(),
                address: m.sender.clone(),
                at: now_ms(),
            }),
            ..Outgoing::default()
        },
    };
    write.claim = Some(Claim {
        inbound_id: m.id.clone(),
        token: m.claim_token.clone(),
    });
    write.user_message = Some(user_message(m));
    match db.record_outgoing(write).await? {
        Recorded::Written => {
            changed(state);
            Ok(())
        }
        // An agent closed it or the clock gave it back at this very moment: the next attempt
        // sees who owns the conversation now.
        Recorded::Conflict => anyhow::bail!("the hand-off moved during the turn"),
        Recorded::ClaimLost | Recorded::Repeated(_) => {
            tracing::warn!(sid = %m.message_sid, "claim lost before the message was stored");
            Ok(())
        }
    }
}
