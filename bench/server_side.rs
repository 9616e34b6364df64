//! The server's own account of webhook handling: `chatwire_webhook_duration_seconds`, the histogram it
//! exports on `/metrics`, read before and after a phase. Beside the load generator's figure it
//! tells the time spent inside the handler (body, signature, the insert) from the time spent
//! reaching it (accept queue, the server's scheduling, the load generator's own delays).

/// Cumulative counts of the inbound-message webhook histogram, by upper bound in seconds.
#[derive(Debug, Clone, Default)]
pub struct Handled(Vec<(f64, u64)>);

/// The histogram now; empty when the server does not answer.
pub async fn scrape(client: &reqwest::Client, base: &str) -> Handled {
    let text = match client.get(format!("{base}/metrics")).send().await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    let mut buckets: Vec<(f64, u64)> = Vec::new();
    for line in text.lines() {
        let Some(labels) = line.strip_prefix("chatwire_webhook_duration_seconds_bucket{") else {
            continue;
        };
        if !labels.contains("kind=\"message\"") {
            continue;
        }
        let bound = labels
            .split("le=\"")
            .nth(1)
            .and_then(|s| s.split('"').next());
        let count = line.rsplit(' ').next().and_then(|c| c.parse::<u64>().ok());
        let (Some(bound), Some(count)) = (bound, count) else {
            continue;
        };
        let bound = bound.parse::<f64>().unwrap_or(f64::INFINITY);
        // One series per channel: added up by bound.
        match buckets.iter_mut().find(|(b, _)| *b == bound) {
            Some((_, n)) => *n += count,
            None => buckets.push((bound, count)),
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    Handled(buckets)
}

impl Handled {
    /// The upper bound (ms) of the bucket holding quantile `q` of what was handled since
    /// `before`; `None` when nothing was.
    pub fn quantile_since(&self, before: &Handled, q: f64) -> Option<f64> {
        let since = |bound: f64, count: u64| {
            let earlier = before
                .0
                .iter()
                .find(|(b, _)| *b == bound)
                .map_or(0, |c| c.1);
            count.saturating_sub(earlier)
        };
        let total = self.0.last().map(|&(b, c)| since(b, c))?;
        if total == 0 {
            return None;
        }
        let wanted = (q * total as f64).ceil() as u64;
        self.0
            .iter()
            .find(|&&(b, c)| since(b, c) >= wanted)
            .map(|&(b, _)| b * 1_000.0)
    }
}
