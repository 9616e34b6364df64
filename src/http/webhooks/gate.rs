//! What a callback must get through before any work is done for it: a cap on what one client
//! address may have in flight, a time limit on reading the body, then one of the global
//! permits. The permit is taken only once the body is in memory, so clients that trickle their
//! bodies hold nothing a genuine webhook needs.
use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Longest a body may take to arrive; Twilio sends its few kilobytes at once.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Gate {
    permits: Arc<Semaphore>,
    per_client: Mutex<HashMap<IpAddr, usize>>,
    per_client_max: usize,
}

/// One request of one client address in flight; released on drop.
pub struct ClientSlot {
    gate: Arc<Gate>,
    ip: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut counts = self
            .gate
            .per_client
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

impl Gate {
    /// `per_client_max` of 0 means no per-address cap (behind a proxy every client is the
    /// proxy).
    pub fn new(permits: usize, per_client_max: usize) -> Arc<Self> {
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(permits)),
            per_client: Mutex::default(),
            per_client_max,
        })
    }

    /// A slot for `ip`, or `Err` when it already has its share in flight. `None` (no peer
    /// address known, as in router tests) is not capped.
    pub fn enter(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<Option<ClientSlot>, StatusCode> {
        let Some(ip) = ip.filter(|_| self.per_client_max > 0) else {
            return Ok(None);
        };
        let mut counts = self.per_client.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.per_client_max {
            // 503, not 429: Twilio retries a 5xx when the URL's connection overrides ask it to.
            return Err(StatusCode::SERVICE_UNAVAILABLE);
        }
        *n += 1;
        Ok(Some(ClientSlot {
            gate: self.clone(),
            ip,
        }))
    }

    /// Waits for one of the global permits. Past the limit requests wait rather than being
    /// refused: their bodies are already read, so waiting costs only their memory.
    pub async fn permit(&self) -> Result<OwnedSemaphorePermit, StatusCode> {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)
    }
}

/// The whole body within `limit` bytes and `timeout`: 413 past the size, 408 past the time.
pub async fn read_body(body: Body, limit: usize, timeout: Duration) -> Result<Bytes, StatusCode> {
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(StatusCode::REQUEST_TIMEOUT),
        Ok(Err(_)) => Err(StatusCode::PAYLOAD_TOO_LARGE),
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_gets_its_share_and_no_more() {
        let gate = Gate::new(4, 2);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let first = gate.enter(Some(a)).expect("first");
        let _second = gate.enter(Some(a)).expect("second");
        assert!(gate.enter(Some(a)).is_err());
        assert!(
            gate.enter(Some(b)).is_ok(),
            "other addresses are not affected"
        );
        drop(first);
        assert!(
            gate.enter(Some(a)).is_ok(),
            "a finished request frees its slot"
        );
        assert!(gate.enter(None).is_ok());
    }

    #[tokio::test]
    async fn a_trickling_body_times_out() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let _ = tx.send(Ok(Bytes::from_static(b"a"))).await;
        let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
        let got = read_body(body, 1024, Duration::from_millis(100)).await;
        assert_eq!(got, Err(StatusCode::REQUEST_TIMEOUT));
        drop(tx);
    }
}
