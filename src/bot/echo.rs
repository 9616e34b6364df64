//! The `echo` engine: replies with the person's message verbatim. Tests and benchmarks use it.
use super::{BotEngine, EngineError, Reply, Turn};
use async_trait::async_trait;

pub struct Echo;

#[async_trait]
impl BotEngine for Echo {
    async fn respond(&self, turn: &Turn) -> Result<Reply, EngineError> {
        let messages = if turn.text.trim().is_empty() {
            Vec::new()
        } else {
            vec![turn.text.clone()]
        };
        Ok(Reply {
            messages,
            state: turn.state.clone(),
            ..Reply::default()
        })
    }
}
