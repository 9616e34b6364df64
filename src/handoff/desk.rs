//! What agents do with a hand-off, for the console and the API alike: take it, reply, close it,
//! answer a ticket. Each is one write through the one door, a compare-and-set on the hand-off
//! with the messages it sends; a lost race is told as such.
use super::{labels_of, route_of, texts, DeskError, DeskResult};
use crate::app::AppState;
use crate::domain::now_ms;
use crate::pipeline::render::{self, Route, Text};
use crate::store::agents::Agent;
use crate::store::handoff::{Handoff, HandoffMove, HandoffState, HandoffWrite};
use crate::store::outgoing::{Author, Outgoing, Recorded, Session};

/// Longest text an agent may send at once (it is split into SMS-sized parts).
pub const MAX_TEXT: usize = 10_000;

/// Whether an agent works on an integration's conversations.
pub fn may_work_on(agent: &Agent, integration_id: &str) -> bool {
    agent.integration_ids.iter().any(|i| i == integration_id)
}

/// A hand-off the agent may see.
pub async fn visible(state: &AppState, agent: &Agent, id: &str) -> DeskResult<Handoff> {
    match state.db.handoff(id).await? {
        Some(h) if may_work_on(agent, &h.integration_id) => Ok(h),
        _ => Err(DeskError::NotFound),
    }
}

/// One write of a hand-off's messages (each with its author) and its move.
fn write(
    h: &Handoff,
    route: &Route,
    said: &[(Author, String)],
    marker: Option<String>,
    change: HandoffMove,
) -> Outgoing {
    let mut out = Outgoing {
        conversation_id: Some(h.conversation_id.clone()),
        // The person's session follows the conversation, so the bot resumes in it.
        session: Some(Session {
            integration_id: h.integration_id.clone(),
            address: h.person.clone(),
            at: now_ms(),
        }),
        handoff: Some(HandoffWrite::Move(change)),
        ..Outgoing::default()
    };
    for (author, text) in said {
        let (messages, outbox) = render::render(
            route,
            Some(&h.conversation_id),
            author.clone(),
            None,
            &[Text::plain(text.clone())],
        );
        out.messages.extend(messages);
        out.outbox.extend(outbox);
    }
    if let Some(marker) = marker {
        let (messages, _) = render::render(
            route,
            Some(&h.conversation_id),
            Author::Marker,
            None,
            &[Text::plain(marker)],
        );
        out.messages.extend(messages);
    }
    out
}

/// Records a desk write; `Conflict` with `why` (computed from the row as it is now) when the
/// hand-off moved meanwhile.
async fn record(
    state: &AppState,
    out: Outgoing,
    id: &str,
    why: impl Fn(&Handoff) -> String,
) -> DeskResult<()> {
    match state.db.record_outgoing(out).await? {
        Recorded::Written => {
            super::changed(state);
            Ok(())
        }
        _ => match state.db.handoff(id).await? {
            Some(now) => Err(DeskError::Conflict(why(&now))),
            None => Err(DeskError::NotFound),
        },
    }
}

fn elsewhere(h: &Handoff) -> String {
    match h.state {
        HandoffState::Agent => format!(
            "the conversation is already with {}",
            h.agent_name.as_deref().unwrap_or("another agent")
        ),
        HandoffState::Queued => "the conversation is waiting in the queue".into(),
        HandoffState::Closed | HandoffState::Returned | HandoffState::Answered => {
            "the conversation is closed: it is with the bot again".into()
        }
        HandoffState::LeavingMessage => "the person has not left their message yet".into(),
        HandoffState::Ticket => "the conversation is a message left for the team: answer it".into(),
    }
}

fn checked_text(text: &str) -> DeskResult<String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DeskError::Invalid("\"text\" must not be empty".into()));
    }
    if text.chars().count() > MAX_TEXT {
        return Err(DeskError::Invalid(format!(
            "\"text\" must be at most {MAX_TEXT} characters"
        )));
    }
    Ok(text.to_owned())
}

async fn refuse_opted_out(state: &AppState, h: &Handoff) -> DeskResult<()> {
    if state.db.is_opted_out(&h.integration_id, &h.person).await? {
        return Err(DeskError::Conflict(
            "the person opted out (STOP): nothing can be sent to them until they text START".into(),
        ));
    }
    Ok(())
}

/// The agent takes a queued conversation; the person is told who joined.
pub async fn take(state: &AppState, agent: &Agent, id: &str) -> DeskResult<()> {
    let h = visible(state, agent, id).await?;
    if h.state == HandoffState::Agent && h.agent_id.as_deref() == Some(&agent.id) {
        return Ok(());
    }
    if h.state != HandoffState::Queued {
        return Err(DeskError::Conflict(elsewhere(&h)));
    }
    if state.db.agent_load(&agent.id).await? >= agent.max_conversations {
        return Err(DeskError::Conflict(format!(
            "you already have {} conversations, your limit",
            agent.max_conversations
        )));
    }
    let labels = labels_of(state, h.bot_id.as_deref()).await;
    let route = route_of(&h)?;
    let joined = labels.fill("agent_joined", &[("agentName", &agent.name)]);
    let mut change = HandoffMove::new(id, &[HandoffState::Queued], HandoffState::Agent);
    change.set_agent = Some(Some(agent.id.clone()));
    change.agent_cap = Some(agent.max_conversations);
    let out = write(&h, &route, &[(Author::System, joined)], None, change);
    record(state, out, id, |now| {
        if now.state == HandoffState::Queued {
            format!(
                "you already have {} conversations, your limit",
                agent.max_conversations
            )
        } else {
            elsewhere(now)
        }
    })
    .await?;
    super::sweep::announce_positions(state, &h.integration_id).await?;
    Ok(())
}

/// The agent's reply, sent through the conversation's channel like the bot's.
pub async fn reply(state: &AppState, agent: &Agent, id: &str, text: &str) -> DeskResult<()> {
    let text = checked_text(text)?;
    let h = visible(state, agent, id).await?;
    if h.state != HandoffState::Agent || h.agent_id.as_deref() != Some(&agent.id) {
        return Err(DeskError::Conflict(if h.state == HandoffState::Ticket {
            elsewhere(&h)
        } else if h.state == HandoffState::Queued {
            "take the conversation before replying".into()
        } else {
            elsewhere(&h)
        }));
    }
    refuse_opted_out(state, &h).await?;
    let route = route_of(&h)?;
    let author = Author::Agent {
        id: agent.id.clone(),
        name: agent.name.clone(),
    };
    let mut change = HandoffMove::new(id, &[HandoffState::Agent], HandoffState::Agent);
    change.expect_agent = Some(agent.id.clone());
    let out = write(&h, &route, &[(author, text)], None, change);
    record(state, out, id, elsewhere).await
}

/// Closes the agent's conversation: the person gets the closing text and the bot answers
/// again, after a marker in the history.
pub async fn close(state: &AppState, agent: &Agent, id: &str) -> DeskResult<()> {
    let h = visible(state, agent, id).await?;
    let from = match h.state {
        HandoffState::Agent if h.agent_id.as_deref() == Some(&agent.id) => HandoffState::Agent,
        HandoffState::Queued => HandoffState::Queued,
        _ => return Err(DeskError::Conflict(elsewhere(&h))),
    };
    let labels = labels_of(state, h.bot_id.as_deref()).await;
    let route = route_of(&h)?;
    let mut said = vec![(Author::System, labels.get("chat_closed"))];
    if state.db.is_opted_out(&h.integration_id, &h.person).await? {
        said.clear();
    }
    let marker = texts::marker_end(Some(&agent.name), "closed the conversation");
    let mut change = HandoffMove::new(id, &[from], HandoffState::Closed);
    change.set_agent = Some(Some(agent.id.clone()));
    let out = write(&h, &route, &said, Some(marker), change);
    record(state, out, id, elsewhere).await?;
    super::sweep::announce_positions(state, &h.integration_id).await?;
    Ok(())
}

/// Answers a message the person left while nobody was online, framed by the ticket texts.
pub async fn answer_ticket(
    state: &AppState,
    agent: &Agent,
    id: &str,
    text: &str,
) -> DeskResult<()> {
    let text = checked_text(text)?;
    let h = visible(state, agent, id).await?;
    if h.state != HandoffState::Ticket {
        return Err(DeskError::Conflict(if h.state == HandoffState::Answered {
            "this message was already answered".into()
        } else {
            elsewhere(&h)
        }));
    }
    refuse_opted_out(state, &h).await?;
    let labels = labels_of(state, h.bot_id.as_deref()).await;
    let route = route_of(&h)?;
    let author = Author::Agent {
        id: agent.id.clone(),
        name: agent.name.clone(),
    };
    let said = [
        (author.clone(), labels.get("ticket_response_intro")),
        (author.clone(), text),
        (author, labels.get("ticket_response_end")),
    ];
    let mut change = HandoffMove::new(id, &[HandoffState::Ticket], HandoffState::Answered);
    change.set_agent = Some(Some(agent.id.clone()));
    let out = write(&h, &route, &said, None, change);
    record(state, out, id, elsewhere).await
}

/// Moves made by the clock or the person rather than an agent, shared with the sweep and the
/// pipeline: gives a hand-off back to the bot with `said` and a marker.
pub(crate) fn give_back(
    h: &Handoff,
    route: &Route,
    said: Vec<String>,
    why: &str,
    to: HandoffState,
) -> Outgoing {
    let said: Vec<(Author, String)> = said.into_iter().map(|t| (Author::System, t)).collect();
    let marker = texts::marker_end(h.agent_name.as_deref(), why);
    write(
        h,
        route,
        &said,
        Some(marker),
        HandoffMove::new(&h.id, &[h.state], to),
    )
}

/// Exposed for the sweep: a write of system texts and a move.
pub(crate) fn notice(
    h: &Handoff,
    route: &Route,
    said: Vec<String>,
    change: HandoffMove,
) -> Outgoing {
    let said: Vec<(Author, String)> = said.into_iter().map(|t| (Author::System, t)).collect();
    write(h, route, &said, None, change)
}

/// Hands a conversation the bot owns to the agents' queue (the API's hand-off request), or,
/// with `agent`, straight to that agent (taking a conversation over from the bot). The
/// person is told as in a turn's hand-off.
pub async fn request(
    state: &AppState,
    conversation_id: &str,
    request: super::entry::Request,
    agent: Option<&Agent>,
) -> DeskResult<String> {
    let db = &state.db;
    if db
        .fetch_resource(&crate::store::schema::CONVERSATION, None, conversation_id)
        .await?
        .is_none()
    {
        return Err(DeskError::NotFound);
    }
    let Some((integration_id, channel, person, ours, bot_id)) =
        db.conversation_route(conversation_id).await?
    else {
        return Err(DeskError::Invalid(
            "the conversation has no person to hand over: nobody texted into it".into(),
        ));
    };
    if let Some(agent) = agent {
        if !may_work_on(agent, &integration_id) {
            return Err(DeskError::Forbidden(
                "the agent is not assigned to this conversation's integration".into(),
            ));
        }
    }
    if let Some(open) = db.open_handoff_of(conversation_id).await? {
        return Err(DeskError::Conflict(elsewhere(&open)));
    }
    let h = Handoff {
        id: String::new(),
        conversation_id: conversation_id.to_owned(),
        integration_id,
        channel,
        person,
        ours,
        bot_id,
        state: HandoffState::Queued,
        agent_id: None,
        agent_name: None,
        reason: None,
        attributes: None,
        ticket_text: None,
        told_ahead: None,
        queued_at: 0,
        assigned_at: None,
        last_activity_at: 0,
        closed_at: None,
    };
    refuse_opted_out(state, &h).await?;
    let route = route_of(&h)?;
    let labels = labels_of(state, h.bot_id.as_deref()).await;
    let entry = super::entry::enter(
        state,
        &route,
        conversation_id,
        h.bot_id.as_deref(),
        &labels,
        request,
        &[],
    )
    .await?;
    let (mut write, said) = match (entry.write, agent) {
        (HandoffWrite::Open(mut open), Some(agent)) => {
            open.state = HandoffState::Agent;
            open.agent_id = Some(agent.id.clone());
            open.told_ahead = None;
            let joined = labels.fill("agent_joined", &[("agentName", &agent.name)]);
            (open, vec![(Author::System, joined)])
        }
        (HandoffWrite::Open(open), None) => {
            let said = entry
                .texts
                .into_iter()
                .map(|t| (Author::System, t))
                .collect();
            (open, said)
        }
        (HandoffWrite::Move(_), _) => return Err(DeskError::Invalid("unexpected move".into())),
    };
    let id = write.id.clone();
    write.conversation_id = conversation_id.to_owned();
    let mut out = self::write(
        &h,
        &route,
        &said,
        Some(entry.marker),
        HandoffMove::new(&id, &[], HandoffState::Queued),
    );
    out.handoff = Some(HandoffWrite::Open(write));
    match db.record_outgoing(out).await? {
        Recorded::Written => {
            super::changed(state);
            Ok(id)
        }
        _ => Err(DeskError::Conflict(
            "the conversation was handed over at the same moment".into(),
        )),
    }
}
