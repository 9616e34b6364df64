//! One inbound turn, top to bottom: claim in hand, load the integration and the sender's state,
//! screen keywords, find or start the conversation, run the bot, and record the reply through
//! the one door with the message's completion, all in one transaction.
//!
//! Claims are leased: a worker that dies mid-turn leaves the message to be claimed again, and
//! the one door refuses a claim that was lost, so every stored message gets exactly one
//! recorded reply.
use super::burst::Burst;
use super::compliance::{self, Verdict};
use super::render::{self, Route, Text};
use crate::app::AppState;
use crate::bot::labels::Labels;
use crate::bot::{self, BotConfig, ContactInfo, Turn};
use crate::domain::address::{Address, ChannelKind};
use crate::domain::{ids, now_ms};
use crate::handoff::entry::{self, Request};
use crate::store::channel::{Inbound, LiveConversation};
use crate::store::integration::Integration;
use crate::store::outgoing::{
    Author, Claim, NewConversation, Outgoing, Recorded, Session, Timer, UserMessage,
};
use serde_json::{json, Value};

/// A message whose turn failed this often is given up, so one poison message cannot block its
/// sender's queue forever.
const MAX_ATTEMPTS: i64 = 5;
/// Messages of history an engine sees.
const HISTORY: i64 = 50;

/// One claimed message, start to finish.
pub async fn run(state: &AppState, inbound: Inbound) {
    use tracing::Instrument;
    // The correlation id is the webhook's MessageSid: every line of the turn carries it.
    let span = tracing::info_span!("turn", correlation = %inbound.message_sid,
        integration = %inbound.integration_id, channel = %inbound.channel,
        attempt = inbound.attempts, conversation = tracing::field::Empty);
    // In the trace of the webhook that stored the message, whichever replica runs the turn.
    crate::telemetry::continue_from(&span, inbound.trace_parent.as_deref());
    let started = std::time::Instant::now();
    async {
        if let Err(err) = process(state, &inbound).await {
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
    .instrument(span)
    .await;
    state
        .metrics
        .turn_seconds
        .with_label_values(&[inbound.integration_id.as_str()])
        .observe(started.elapsed().as_secs_f64());
}

/// How long after its due time a timer may still find its session live: the claim loop
/// polls, and a busy replica takes a while to get to it.
const WAIT_SLACK_MS: i64 = 60_000;

/// Where a turn slides its sender's session to, if anywhere. A person's message makes the
/// session active now. An engine waiting for a reply (a Studio wait with its timeout) keeps the
/// session live until the wait is over, however short `sessionDuration` is: the timeout then
/// continues the same execution, and so does a reply that comes late but within the wait.
fn session_slide(is_timer: bool, duration: i64, now: i64, wake_at: Option<i64>) -> Option<i64> {
    if duration <= 0 {
        return None;
    }
    let waiting = wake_at.map(|at| at + WAIT_SLACK_MS - duration);
    match (is_timer, waiting) {
        (false, w) => Some(w.map_or(now, |w| w.max(now))),
        (true, Some(w)) => Some(w),
        (true, None) => None,
    }
}

/// The conversation a turn answers in.
struct Conversation {
    id: String,
    /// Created by this turn's write.
    new: Option<NewConversation>,
    engine_state: Value,
    contact_id: Option<String>,
}

/// Runs one turn for a claimed message.
pub async fn process(state: &AppState, m: &Inbound) -> anyhow::Result<()> {
    let db = &state.db;
    let finish = |reason: &'static str| async move {
        db.finish_inbound(&m.id, &m.claim_token, Some(reason))
            .await
            .map(|_| ())
    };
    let Some(integration) = db.integration(&state.cipher, &m.integration_id).await? else {
        return Ok(finish("integration deleted").await?);
    };
    let (Ok(person), Ok(ours)) = (Address::parse(&m.sender), Address::parse(&m.recipient)) else {
        return Ok(finish("stored addresses do not parse").await?);
    };
    let route = Route {
        integration_id: integration.id.clone(),
        channel: m.channel.clone(),
        to: person,
        from: ours,
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
        if let Verdict::Handled = compliance::screen(state, &route, m, sender.opted_out).await? {
            state
                .metrics
                .turns
                .with_label_values(&[integration.id.as_str(), "handled"])
                .inc();
            return Ok(());
        }
    }
    // A human owns the conversation, or is being waited for: no engine runs.
    if let Some(open) = sender.handoff {
        if is_timer {
            return Ok(finish("the conversation is with a human agent").await?);
        }
        return super::held::hold(state, &integration, &route, m, open).await;
    }
    // Quick messages of one person get one turn (off unless the integration sets a window).
    let folded = if is_timer {
        Vec::new()
    } else {
        match super::burst::gather(db, &integration, m, now).await? {
            Burst::Wait(until) => {
                db.defer_claim(&m.id, &m.claim_token, until).await?;
                return Ok(());
            }
            Burst::Run(folded) => folded,
        }
    };
    // The turn answers the folded messages too: their webhooks' traces link to it.
    for f in &folded {
        crate::telemetry::link(&tracing::Span::current(), f.trace_parent.as_deref());
    }
    let Some(bot_id) = integration.bot_id.clone() else {
        return Ok(finish("integration has no bot").await?);
    };
    let Some(bot) = db
        .fetch_resource_cached(&crate::store::schema::BOT, &bot_id)
        .await?
    else {
        return Ok(finish("bot deleted").await?);
    };
    let bot = BotConfig::from_row(bot);
    let conversation = if is_timer {
        // A timer belongs to the conversation that set it, and only while it is still live.
        match (sender.live, m.conversation_id()) {
            (Some(live), Some(own)) if live.id == own => existing(live),
            _ => return Ok(finish("timer for an ended conversation").await?),
        }
    } else {
        // With a duration of 0 every message starts a new conversation.
        match sender.live.filter(|_| duration > 0) {
            Some(live) => {
                // Everyone who writes in a shared thread is collected, not only the first.
                if m.author.is_some() {
                    collect_contact(state, &integration, &route, m).await?;
                }
                existing(live)
            }
            None => start(state, &integration, &route, m, &bot_id).await?,
        }
    };
    tracing::Span::current().record("conversation", conversation.id.as_str());
    let history = if bot::reads_history(&bot) {
        db.history(&conversation.id, Some(&m.id), HISTORY).await?
    } else {
        Vec::new()
    };
    let turn = Turn {
        conversation_id: conversation.id.clone(),
        bot,
        history,
        text: if is_timer {
            String::new()
        } else {
            super::burst::joined(m, &folded)
        },
        media: std::iter::once(m)
            .chain(&folded)
            .flat_map(|i| {
                i.media
                    .as_deref()
                    .and_then(|s| serde_json::from_str::<Vec<_>>(s).ok())
                    .unwrap_or_default()
            })
            .collect(),
        contact: ContactInfo {
            id: conversation.contact_id.clone(),
            name: m.profile_name.clone(),
            address: m.sender.clone(),
            author: m.author.clone(),
        },
        channel: match route.to.channel() {
            ChannelKind::Sms => bot::ChannelKind::Sms,
            ChannelKind::WhatsApp => bot::ChannelKind::Whatsapp,
            ChannelKind::Chat => bot::ChannelKind::Api,
        },
        channel_address: Some(m.recipient.clone()),
        state: conversation.engine_state.clone(),
        now_ms: now,
        message_sid: (!is_timer).then(|| m.message_sid.clone()),
        account_sid: integration.account_sid.clone(),
    };
    let labels = Labels::for_bot(&turn.bot.raw);
    // The person asking for a human is answered by the queue, not by the bot.
    let reply = if !is_timer && crate::handoff::texts::asks_for_agent(&labels, &turn.text) {
        bot::Reply {
            state: turn.state.clone(),
            actions: vec![bot::Action::Handoff {
                reason: Some("the person asked for an agent".into()),
                attributes: None,
            }],
            ..bot::Reply::default()
        }
    } else {
        respond(state, &turn).await
    };
    let handoff = match reply.actions.iter().find_map(|a| match a {
        bot::Action::Handoff { reason, attributes } => Some(Request {
            reason: reason.clone(),
            attributes: attributes.clone(),
        }),
        _ => None,
    }) {
        Some(request) => Some(
            entry::enter(
                state,
                &route,
                &conversation.id,
                Some(&bot_id),
                &labels,
                request,
                &reply.messages,
            )
            .await?,
        ),
        None => None,
    };

    let markdown = bot::writes_markdown(&turn.bot);
    let texts: Vec<Text> = reply
        .messages
        .iter()
        .enumerate()
        .map(|(i, body)| Text {
            body: body.clone(),
            markdown,
            media: reply.media_of(i).to_vec(),
            to: reply.recipient_of(i).and_then(|to| Address::parse(to).ok()),
            template: None,
        })
        .collect();
    let tokens = reply
        .usage
        .map(|u| (u.prompt_tokens + u.completion_tokens) as i64);
    let (mut messages, mut outbox) =
        render::render(&route, Some(&conversation.id), Author::Bot, tokens, &texts);
    if let Some(entry) = &handoff {
        let notices: Vec<Text> = entry.texts.iter().map(Text::plain).collect();
        let (m2, o2) = render::render(
            &route,
            Some(&conversation.id),
            Author::System,
            None,
            &notices,
        );
        let (marker, _) = render::render(
            &route,
            Some(&conversation.id),
            Author::Marker,
            None,
            &[Text::plain(entry.marker.clone())],
        );
        messages.extend(m2.into_iter().chain(marker));
        outbox.extend(o2);
    }
    // The sends carry the webhook's correlation id (its MessageSid) into logs.
    for row in &mut outbox {
        row.correlation_id = Some(m.message_sid.clone());
    }
    let write = Outgoing {
        conversation_id: Some(conversation.id.clone()),
        new_conversation: conversation.new,
        claim: Some(Claim {
            inbound_id: m.id.clone(),
            token: m.claim_token.clone(),
        }),
        // The person's message is written with the reply, in the turn's one transaction.
        user_message: (!is_timer).then(|| user_message(m)),
        folded: folded.iter().map(user_message).collect(),
        messages,
        outbox,
        session: session_slide(is_timer, duration, now, reply.wake_at_ms).map(|at| Session {
            integration_id: integration.id.clone(),
            address: m.sender.clone(),
            at,
        }),
        engine_state: Some((!reply.state.is_null()).then(|| reply.state.to_string())),
        expires_at: (duration > 0)
            .then(|| (now + duration).max(reply.wake_at_ms.map_or(0, |at| at + WAIT_SLACK_MS))),
        timer: reply.wake_at_ms.map(|at| Timer {
            integration_id: integration.id.clone(),
            channel: m.channel.clone(),
            sender: m.sender.clone(),
            recipient: m.recipient.clone(),
            at,
        }),
        idempotency: None,
        handoff: handoff.map(|e| e.write),
    };
    match db.record_outgoing(write).await? {
        Recorded::Written => {
            state
                .metrics
                .turns
                .with_label_values(&[integration.id.as_str(), "replied"])
                .inc();
            after_turn(state, &integration, m, &conversation.id, &reply).await?;
        }
        // The sender got an open hand-off meanwhile (an agent took the conversation over): the
        // next attempt stores the message for the agent instead.
        Recorded::Conflict => anyhow::bail!("the conversation's owner changed during the turn"),
        Recorded::ClaimLost | Recorded::Repeated(_) => {
            tracing::warn!(sid = %m.message_sid, "claim lost before the reply was recorded; another worker owns it");
        }
    }
    Ok(())
}

/// The bot's reply, or the bot's fallback text when its engine failed.
async fn respond(state: &AppState, turn: &Turn) -> bot::Reply {
    let ctx = state.engine_context();
    let reply = match bot::select(&ctx, &turn.bot) {
        Ok(engine) => engine.respond(turn).await,
        Err(err) => Err(err),
    };
    reply.unwrap_or_else(|err| {
        state.metrics.engine_failed(bot::engine_name(&turn.bot.model));
        tracing::warn!(error = %err, conversation = %turn.conversation_id, "bot engine failed; sending fallback text");
        bot::Reply {
            messages: vec![bot::fallback::fallback_text(&state.config, &turn.bot)],
            state: turn.state.clone(),
            ..bot::Reply::default()
        }
    })
}

/// What the engine asked for besides messages, once its reply is recorded.
async fn after_turn(
    state: &AppState,
    integration: &Integration,
    m: &Inbound,
    conversation_id: &str,
    reply: &bot::Reply,
) -> anyhow::Result<()> {
    for action in &reply.actions {
        match action {
            bot::Action::EndConversation => {
                let threaded = state
                    .channels
                    .get(&m.channel)
                    .is_some_and(|c| c.has_threads());
                if threaded {
                    state
                        .db
                        .end_thread_session(&integration.id, &m.sender)
                        .await?;
                } else {
                    state.db.end_session(&integration.id, &m.sender).await?;
                }
            }
            bot::Action::Handoff { reason, .. } => {
                tracing::info!(conversation = %conversation_id, reason = ?reason, "conversation handed to the agents' queue");
                crate::handoff::changed(state);
            }
        }
    }
    Ok(())
}

/// The person's message as stored with the turn that answers it.
pub(super) fn user_message(m: &Inbound) -> UserMessage {
    UserMessage {
        id: m.id.clone(),
        text: m.body.clone(),
        meta: json!({m.channel.as_str(): {
            "messageSid": m.message_sid,
            "media": m.media.as_deref().and_then(|s| serde_json::from_str::<Value>(s).ok()),
        }})
        .to_string(),
        created_at: m.created_at,
    }
}

fn existing(live: LiveConversation) -> Conversation {
    Conversation {
        id: live.id,
        new: None,
        engine_state: live
            .engine_state
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or(Value::Null),
        contact_id: live.contact_id,
    }
}

/// The person's contact when the integration collects contacts: the sender's phone, or in a
/// shared thread (a Conversation several people write in) the phone of the participant who
/// wrote. An SMS and a WhatsApp address of one number are one contact.
async fn collect_contact(
    state: &AppState,
    integration: &Integration,
    route: &Route,
    m: &Inbound,
) -> anyhow::Result<Option<String>> {
    if !integration.contact_collection {
        return Ok(None);
    }
    let author = m.author.as_deref().and_then(|a| Address::parse(a).ok());
    let Some(phone) = author.as_ref().unwrap_or(&route.to).phone() else {
        return Ok(None);
    };
    // In a thread the provider's only name for the person is their address.
    let name = m
        .profile_name
        .as_deref()
        .filter(|n| Some(*n) != m.author.as_deref());
    Ok(Some(state.db.ensure_phone_contact(phone, name).await?))
}

/// A new conversation for this sender, with its contact when collected; written with the
/// turn's reply.
async fn start(
    state: &AppState,
    integration: &Integration,
    route: &Route,
    m: &Inbound,
    bot_id: &str,
) -> anyhow::Result<Conversation> {
    let contact_id = collect_contact(state, integration, route, m).await?;
    let channel = m.channel.as_str();
    let meta =
        json!({"app": channel, channel: {"integrationId": integration.id, "address": m.sender}});
    Ok(Conversation {
        id: ids::new_id(),
        new: Some(NewConversation {
            bot_id: Some(bot_id.to_owned()),
            contact_id: contact_id.clone(),
            meta: meta.to_string(),
        }),
        engine_state: Value::Null,
        contact_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_longer_than_the_session_keeps_it_live_until_the_wait_ends() {
        let (minute, hour) = (60_000, 3_600_000);
        // A message slides the session to now.
        assert_eq!(session_slide(false, 30 * minute, 1_000, None), Some(1_000));
        // A one-hour wait with a 30-minute session: live until the wait (and its slack) ends.
        let slid = session_slide(false, 30 * minute, 0, Some(hour)).expect("slides");
        assert!(slid + 30 * minute >= hour + WAIT_SLACK_MS);
        // A short wait never moves the session back.
        assert_eq!(
            session_slide(false, 30 * minute, 10 * hour, Some(10 * hour + minute)),
            Some(10 * hour)
        );
        // A timer that sets another wait keeps the session for it; one that does not, leaves it.
        assert!(session_slide(true, 30 * minute, 0, Some(hour)).is_some());
        assert_eq!(session_slide(true, 30 * minute, 0, None), None);
        // Without sessions (duration 0) nothing slides.
        assert_eq!(session_slide(false, 0, 0, Some(hour)), None);
    }
}
