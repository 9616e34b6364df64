//! What a hand-off says to the person and writes into the history, from the bot's labels.
use crate::bot::labels::Labels;

/// The queue-position text for `ahead` people in front.
pub fn position(labels: &Labels, ahead: i64) -> String {
    match ahead {
        i64::MIN..=0 => labels.get("queue_next"),
        1 => labels.get("queue_estimation_first"),
        n => labels.fill("queue_estimation", &[("queuePosition", &n.to_string())]),
    }
}

/// Whether a queued person who was last told `told` people ahead should hear about `ahead`:
/// when the line got shorter and the change means something (near the front, or halved).
pub fn worth_telling(told: Option<i64>, ahead: i64) -> bool {
    match told {
        Some(told) => ahead < told && (ahead <= 2 || ahead * 2 <= told),
        None => true,
    }
}

/// Lower-case words of a message, without punctuation, for keyword matching.
fn normalized(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn matches_any(text: &str, keywords: &[String]) -> bool {
    let text = normalized(text);
    !text.is_empty() && keywords.iter().any(|k| normalized(k) == text)
}

/// Whether the person's whole message asks for a human ("agent", "talk to a human", in the
/// bot's language or its `labels.handoff_keywords` override).
pub fn asks_for_agent(labels: &Labels, text: &str) -> bool {
    matches_any(text, &labels.list("handoff_keywords"))
}

/// Whether the person declines to leave a message for an absent team (a "no", or a word
/// that leaves a form; on SMS, CANCEL and QUIT never get here: they are opt-out keywords).
pub fn cancels(labels: &Labels, text: &str) -> bool {
    let mut words = labels.list("no_synonyms");
    words.extend(labels.list("form_abandon_keywords"));
    matches_any(text, &words)
}

/// The history marker written when an agent's part starts or ends.
pub fn marker_start(reason: Option<&str>) -> String {
    match reason {
        Some(reason) => format!("The conversation was handed to a human agent ({reason})."),
        None => "The conversation was handed to a human agent.".to_owned(),
    }
}

pub fn marker_end(agent: Option<&str>, why: &str) -> String {
    match agent {
        Some(agent) => format!(
            "Human agent {agent} {why}; the messages between the markers were written by people, not by the bot. The bot answers again."
        ),
        None => format!("{why}; the bot answers again."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_position_text_counts_the_people_ahead() {
        let labels = Labels::default();
        assert_eq!(position(&labels, 1), "There is one person ahead of you.");
        assert_eq!(position(&labels, 4), "There are 4 people ahead of you.");
        assert_eq!(position(&labels, 0), "You are next in line.");
        let es = Labels::new("es", None);
        assert_eq!(position(&es, 0), "Eres el siguiente.");
    }

    #[test]
    fn only_meaningful_changes_of_position_are_told() {
        assert!(worth_telling(Some(3), 2));
        assert!(worth_telling(Some(10), 5));
        assert!(!worth_telling(Some(10), 8));
        assert!(!worth_telling(Some(2), 2));
        assert!(!worth_telling(Some(1), 3));
    }

    #[test]
    fn keywords_match_whole_messages_in_the_bots_language() {
        let en = Labels::default();
        assert!(asks_for_agent(&en, "Agent"));
        assert!(asks_for_agent(&en, " talk to a HUMAN! "));
        assert!(!asks_for_agent(&en, "my agent number is 5"));
        let es = Labels::new("es", None);
        assert!(asks_for_agent(&es, "agente"));
        let custom = Labels::new(
            "en",
            Some(&serde_json::json!({"handoff_keywords": "help me"})),
        );
        assert!(asks_for_agent(&custom, "Help me"));
        assert!(!asks_for_agent(&custom, "agent"));
        assert!(cancels(&en, "NO"));
        assert!(cancels(&Labels::new("de", None), "nein"));
        assert!(cancels(&en, "no"));
        assert!(!cancels(&en, "my order 123 is late"));
    }
}
