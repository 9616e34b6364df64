//! One inbound turn.
use crate::app::AppState;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Starts the background workers (pipeline and outbox).
pub fn spawn_workers(_state: AppState, _stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    Vec::new()
}
