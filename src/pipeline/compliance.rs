//! Keywords and compliance, before any bot runs: opt-out words silence the sender (and fail
//! every queued message to them), opt-in words lift it, a sender who opted out gets no turn,
//! HELP answers with the help text, the reset words start a new conversation. The words are
//! the one table in [`crate::domain::keywords`]; on WhatsApp only the reset words count unless
//! the integration sets `whatsappKeywords`.
use super::render::{self, Route, Text};
use crate::app::AppState;
use crate::domain::address::ChannelKind;
use crate::domain::keywords::{self, Keyword};
use crate::store::channel::Inbound;
use crate::store::outgoing::{Author, Claim, Outgoing};

/// Whether the message was fully handled here (no bot turn follows).
pub enum Verdict {
    Handled,
    ToBot,
}

/// Applies the keyword rules to a claimed message of a sender in the state given.
pub async fn screen(
    state: &AppState,
    route: &Route,
    m: &Inbound,
    opted_out: bool,
) -> anyhow::Result<Verdict> {
    let db = &state.db;
    let finish = |reason: &'static str| async move {
        db.finish_inbound(&m.id, &m.claim_token, Some(reason))
            .await
            .map(|_| Verdict::Handled)
    };
    let integration = route.integration_id.as_str();
    let kind = route.to.channel();
    // Only WhatsApp asks the integration (a cached read) whether carrier keywords apply.
    let whatsapp_keywords = kind == ChannelKind::WhatsApp
        && db
            .integration(&state.cipher, integration)
            .await?
            .is_some_and(|i| i.whatsapp_keywords);
    match keywords::classify(&m.body, kind, whatsapp_keywords) {
        Some(Keyword::OptOut) => {
            db.set_opt_out(integration, &m.sender, true).await?;
            db.outbox_fail_recipient(integration, &m.sender, "recipient opted out (STOP)")
                .await?;
            tracing::info!(integration, "sender opted out");
            Ok(finish("opt-out").await?)
        }
        Some(Keyword::OptIn) if opted_out => {
            db.set_opt_out(integration, &m.sender, false).await?;
            Ok(finish("opt-in").await?)
        }
        _ if opted_out => Ok(finish("sender opted out").await?),
        Some(Keyword::Help) => {
            // Outside any conversation: the help text is the carrier's business, not the bot's.
            let (_, mut outbox) = render::render(
                route,
                None,
                Author::System,
                None,
                &[Text::plain(state.config.help_text.clone())],
            );
            for row in &mut outbox {
                row.correlation_id = Some(m.message_sid.clone());
            }
            let write = Outgoing {
                claim: Some(Claim {
                    inbound_id: m.id.clone(),
                    token: m.claim_token.clone(),
                }),
                outbox,
                ..Outgoing::default()
            };
            db.record_outgoing(write).await?;
            Ok(Verdict::Handled)
        }
        Some(Keyword::Reset) => {
            db.end_session(integration, &m.sender).await?;
            Ok(finish("reset").await?)
        }
        Some(Keyword::OptIn) | None => Ok(Verdict::ToBot),
    }
}
