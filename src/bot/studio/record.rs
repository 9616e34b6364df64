//! The public record of executions (`flow_executions`/`flow_steps` for the read-only API and
//! the "one active execution per contact per flow" rule), written through the engine's
//! [`crate::bot::EngineStore`].
//!
//! The execution itself travels in the engine state the pipeline persists with each reply;
//! these rows only describe it. A failed write is logged and never fails the turn: the
//! conversation matters more than its audit trail.
use super::run::{Execution, Outcome};
use crate::bot::engine_store::{FlowExecutionRecord, FlowStepRecord};
use crate::bot::{EngineContext, Turn};

/// Records the execution's current status and the steps this run took.
pub async fn record(ctx: &EngineContext, turn: &Turn, exec: &Execution, out: &Outcome) {
    let execution = FlowExecutionRecord {
        id: &exec.id,
        bot_id: &turn.bot.id,
        conversation_id: Some(&turn.conversation_id),
        contact_address: &turn.contact.address,
        channel_address: turn.channel_address.as_deref(),
        trigger: &exec.trigger,
        ended: out.ended.is_some(),
        error: out.ended.as_ref().and_then(Option::as_deref),
        current_state: exec.waiting.as_ref().map(|w| w.state.as_str()),
        expires_at: exec.waiting.as_ref().map(|w| w.until_ms),
        data: exec.context.pointer("/flow/data"),
        context: &exec.context,
        started_at: exec.started_at,
        updated_at: turn.now_ms,
    };
    let steps: Vec<FlowStepRecord> = out
        .steps
        .iter()
        .map(|s| FlowStepRecord {
            seq: s.seq,
            name: &s.name,
            transitioned_from: &s.transitioned_from,
            transitioned_to: &s.transitioned_to,
            widget_type: s.kind.as_deref(),
            context: (!s.context.is_null()).then_some(&s.context),
            error: s.error.as_deref(),
            at_ms: s.at_ms,
        })
        .collect();
    if let Err(err) = ctx.store.record_flow_execution(&execution, &steps).await {
        tracing::warn!(error = %err, execution = %exec.id, "recording a flow execution failed");
    }
}

/// Was this execution ended outside its conversation (through the API, or superseded)? An
/// unreadable record counts as not ended: the conversation goes on.
pub async fn is_ended(ctx: &EngineContext, id: &str) -> bool {
    ctx.store
        .flow_execution_ended(id)
        .await
        .unwrap_or_else(|err| {
            tracing::warn!(error = %err, execution = %id, "reading a flow execution failed");
            false
        })
}
