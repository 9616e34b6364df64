//! What the person gets when an engine fails: the bot's `fallbackText` (or
//! `CHATWIRE_FALLBACK_TEXT`), so nobody is left without an answer. The failure is logged with
//! the conversation id and counted in `chatwire_engine_failures_total`; the engine state is kept
//! as it was, so the next turn starts from where the last good one left off.
use super::{BotConfig, EngineContext, EngineError, Reply, Turn};
use crate::config::Config;

/// The bot's own fallback text, else the configured default.
pub fn fallback_text(config: &Config, bot: &BotConfig) -> String {
    bot.raw
        .get("fallbackText")
        .and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| config.fallback_text.clone())
}

/// Logs and counts `err`, and answers with the fallback text instead.
pub fn fallback_reply(ctx: &EngineContext, turn: &Turn, engine: &str, err: &EngineError) -> Reply {
    ctx.metrics.engine_failed(engine);
    tracing::warn!(
        conversation_id = %turn.conversation_id,
        bot_id = %turn.bot.id,
        engine,
        error = %err,
        "bot engine failed; sending the fallback text"
    );
    Reply {
        messages: vec![fallback_text(&ctx.config, &turn.bot)],
        state: turn.state.clone(),
        ..Reply::default()
    }
}
