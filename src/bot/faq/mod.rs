//! The FAQ engine (`model: "faq"`): answers from question/answer records of the bot's dataset,
//! designed for text channels the way Inbenta's Twilio connector is.
//!
//! A message is searched in the dataset (full-text search finds candidates, `entries` scores
//! them 0..1, forgiving typos and applying the dataset's synonyms: see `matching.rs`). The best
//! match at or above `minScore` is answered; when several matches are within
//! `ambiguityMargin` of the best, they become a numbered choice ("Reply 1, 2 or 3"), and so do
//! all the questions a one-word message ("insurance") is about; no match gives the `no_result` text and counts towards `triesBeforeEscalation`. After an
//! answer the bot asks for a content rating ("Was this answer helpful?" as numbered options),
//! asks for a comment when the chosen option wants one, and counts negative ratings towards
//! `negativeRatingsBeforeEscalation`; then it offers the entry's related contents. An entry
//! may carry a form, asked field by field after its answer. Escalation hands the conversation
//! to a human ([`Action::Handoff`]), directly or after asking (`askBeforeEscalation`).
//!
//! Whatever is pending (a choice, a rating, a comment, a form, an escalation question), a reply
//! that does not fit it is never a dead end: choices and ratings fall through to a new search,
//! and forms and the escalation question re-ask a bounded number of times. All fixed texts
//! come from the bot's labels (`lang`, `labels`).
pub mod entries;
pub mod matching;
pub mod settings;

use super::dialogue::{self, FormState, FormStep, Options};
use super::engine_store::NewRating;
use super::labels::Labels;
use super::{Action, BotEngine, EngineContext, EngineError, Reply, Turn};
use async_trait::async_trait;
use entries::Entry;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use settings::FaqSettings;

/// Unclear answers to "Do you want to talk to an agent?" before the question is dropped.
const ESCALATION_REASKS: u32 = 2;

/// What the bot is waiting for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Pending {
    #[default]
    Nothing,
    /// A numbered choice of entries (ambiguous matches or related contents).
    Choice { entries: Vec<Entry> },
    /// "Was this answer helpful?" about `entry`; `related` is offered afterwards.
    Rating { entry: String, related: Vec<Entry> },
    /// The comment asked after a rating.
    Comment { rating: String, related: Vec<Entry> },
    /// "Do you want to start a chat with a human agent?"
    Escalation { unclear: u32 },
    /// A form attached to an entry.
    Form {
        entry: Box<Entry>,
        state: FormState,
        related: Vec<Entry>,
    },
}

/// The engine's state between turns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaqState {
    #[serde(default)]
    pub pending: Pending,
    /// No-result answers in a row.
    #[serde(default)]
    pub no_results: u32,
    /// Negative ratings in a row.
    #[serde(default)]
    pub negative_ratings: u32,
}

impl FaqState {
    fn from_turn(state: &Value) -> Self {
        state
            .get("faq")
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .unwrap_or_default()
    }
}

pub struct FaqEngine {
    ctx: EngineContext,
}

impl FaqEngine {
    pub fn new(ctx: EngineContext) -> Self {
        Self { ctx }
    }
}

/// One turn in progress.
struct Step<'a> {
    ctx: &'a EngineContext,
    turn: &'a Turn,
    settings: FaqSettings,
    labels: Labels,
    dataset: String,
    state: FaqState,
    reply: Reply,
}

#[async_trait]
impl BotEngine for FaqEngine {
    async fn respond(&self, turn: &Turn) -> Result<Reply, EngineError> {
        let settings =
            FaqSettings::from_value(turn.bot.raw.get("faq")).map_err(EngineError::Config)?;
        let dataset = turn
            .bot
            .dataset_id
            .clone()
            .filter(|d| !d.is_empty())
            .ok_or_else(|| EngineError::Config("a FAQ bot needs a datasetId".into()))?;
        let mut step = Step {
            ctx: &self.ctx,
            turn,
            settings,
            labels: Labels::for_bot(&turn.bot.raw),
            dataset,
            state: FaqState::from_turn(&turn.state),
            reply: Reply::default(),
        };
        let text = turn.text.trim();
        if text.is_empty() {
            // A timer or a media-only message: nothing to look up, nothing changes.
            return Ok(Reply {
                state: turn.state.clone(),
                ..Reply::default()
            });
        }
        step.handle(text).await?;
        step.reply.state = json!({ "faq": step.state });
        Ok(step.reply)
    }
}

impl Step<'_> {
    fn say(&mut self, text: impl Into<String>) {
        let text = text.into();
        if !text.trim().is_empty() {
            self.reply.messages.push(text);
        }
    }

    async fn handle(&mut self, text: &str) -> Result<(), EngineError> {
        match std::mem::take(&mut self.state.pending) {
            Pending::Nothing => self.query(text).await,
            Pending::Choice { entries } => {
                match Options::new(entries.iter().map(|e| e.question.clone()).collect()).pick(text)
                {
                    Some(i) => self.answer(entries[i].clone()).await,
                    // Not one of the options: take it as a new question.
                    None => self.query(text).await,
                }
            }
            Pending::Rating { entry, related } => match self.pick_rating(text) {
                Some(option) => self.rated(&entry, option, related).await,
                None => self.query(text).await,
            },
            Pending::Comment { rating, related } => {
                self.save_comment(&rating, text).await;
                self.say(self.labels.get("thanks"));
                if !self.escalate_if_due().await {
                    self.offer_related(related);
                }
                Ok(())
            }
            Pending::Escalation { unclear } => match dialogue::polar(text, &self.labels) {
                Some(true) => {
                    self.hand_off("the person asked for an agent");
                    Ok(())
                }
                Some(false) => {
                    self.state.no_results = 0;
                    self.state.negative_ratings = 0;
                    self.say(self.labels.get("escalation_rejected"));
                    Ok(())
                }
                None if unclear + 1 < ESCALATION_REASKS => {
                    self.state.pending = Pending::Escalation {
                        unclear: unclear + 1,
                    };
                    let question =
                        dialogue::polar_question(&self.labels.get("ask_to_escalate"), &self.labels);
                    self.say(format!("{}\n{question}", self.labels.get("not_understood")));
                    Ok(())
                }
                None => self.query(text).await,
            },
            Pending::Form {
                entry,
                mut state,
                related,
            } => {
                let Some(form) = entry.form.clone() else {
                    return self.query(text).await;
                };
                match form.spec.answer(&mut state, text, &self.labels) {
                    FormStep::Ask(question) => {
                        self.say(question);
                        self.state.pending = Pending::Form {
                            entry,
                            state,
                            related,
                        };
                    }
                    FormStep::Done { values, text } => {
                        self.say(text);
                        if let Some(url) = &form.webhook {
                            self.submit(url, &entry, values).await;
                        }
                        self.offer_related(related);
                    }
                    FormStep::Abandoned(text) => self.say(text),
                }
                Ok(())
            }
        }
    }

    /// Searches the dataset and answers, offers a choice, or says there is no result.
    async fn query(&mut self, text: &str) -> Result<(), EngineError> {
        let found = self
            .ctx
            .store
            .search_dataset(&self.dataset, text, self.settings.candidates, None)
            .await
            .map_err(|e| EngineError::Upstream(format!("dataset search: {e}")))?;
        let synonyms = matching::synonyms(&*self.ctx.store, &self.dataset).await;
        let message = entries::words(&synonyms.apply(text));
        // Full-text candidates first, then the records a misspelling keeps it from finding.
        let mut records: Vec<matching::Record> =
            found.into_iter().map(|r| (r.id, r.text, r.meta)).collect();
        for record in matching::scan(&*self.ctx.store, &self.dataset).await {
            if !records.iter().any(|r| r.0 == record.0) {
                records.push(record);
            }
        }
        let mut scored: Vec<(f64, Entry)> = records
            .iter()
            .map(|(id, text, meta)| {
                Entry::from_record(id, text, meta.as_ref(), &self.settings.forms)
            })
            .map(|e| {
                let question = entries::words(&synonyms.apply(&e.question));
                (matching::confidence(&message, &question), e)
            })
            .collect();
        // Stable: equal scores keep the search's order.
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let close: Vec<Entry> = if let [word] = message.iter().collect::<Vec<_>>().as_slice() {
            self.one_word(word, scored, &synonyms)
        } else {
            let scored: Vec<(f64, Entry)> = scored
                .into_iter()
                .filter(|(score, _)| *score >= self.settings.min_score)
                .collect();
            match scored.first().map(|(s, _)| *s) {
                None => Vec::new(),
                Some(best) => scored
                    .into_iter()
                    .filter(|(s, _)| best - s <= self.settings.ambiguity_margin)
                    .map(|(_, e)| e)
                    .take(self.settings.max_options)
                    .collect(),
            }
        };
        if close.is_empty() {
            self.state.no_results += 1;
            self.say(self.labels.get("no_result"));
            let due = self.settings.tries_before_escalation;
            if due > 0 && self.state.no_results >= due {
                self.escalate("no answer found");
            }
            return Ok(());
        }
        if let [only] = close.as_slice() {
            return self.answer(only.clone()).await;
        }
        let options = Options::new(close.iter().map(|e| e.question.clone()).collect());
        self.say(options.render(&self.labels.get("multiple_options"), &self.labels));
        self.state.pending = Pending::Choice { entries: close };
        Ok(())
    }

    /// A one-word message ("insurance", "parking") says what it is about but not which of the
    /// questions about it is meant: every entry whose question has the word (or a close
    /// spelling of it) is offered, best first, unless one question is that word alone.
    fn one_word(
        &self,
        word: &str,
        scored: Vec<(f64, Entry)>,
        synonyms: &matching::Synonyms,
    ) -> Vec<Entry> {
        let about: Vec<(f64, Entry)> = scored
            .into_iter()
            .filter(|(_, e)| {
                matching::best(word, &entries::words(&synonyms.apply(&e.question))) > 0.0
            })
            .collect();
        if let Some((score, entry)) = about.first() {
            if *score >= 1.0 && about.get(1).is_none_or(|(s, _)| *s < 1.0) {
                return vec![entry.clone()];
            }
        }
        about
            .into_iter()
            .map(|(_, e)| e)
            .take(self.settings.max_options)
            .collect()
    }

    /// Sends an entry's answer and what follows it.
    async fn answer(&mut self, entry: Entry) -> Result<(), EngineError> {
        self.state.no_results = 0;
        self.say(entry.answer.clone());
        if entry.escalate {
            self.hand_off("the answer asks for an agent");
            return Ok(());
        }
        let related = self.related(&entry).await;
        if let Some(form) = &entry.form {
            let (state, question) = form.spec.start(&self.labels);
            self.say(question);
            self.state.pending = Pending::Form {
                entry: Box::new(entry),
                state,
                related,
            };
        } else if self.settings.ratings.enabled {
            let options = Options::new(
                self.settings
                    .ratings
                    .options
                    .iter()
                    .map(|o| self.labels.get(&o.label))
                    .collect(),
            );
            self.say(options.render(&self.labels.get("rate_content_intro"), &self.labels));
            self.state.pending = Pending::Rating {
                entry: entry.id,
                related,
            };
        } else {
            self.offer_related(related);
        }
        Ok(())
    }

    /// The rating option a reply picks: a number, a label, or (for yes/no ratings) a synonym.
    fn pick_rating(&self, text: &str) -> Option<usize> {
        let opts = &self.settings.ratings.options;
        let labels: Vec<String> = opts.iter().map(|o| self.labels.get(&o.label)).collect();
        if let Some(i) = Options::new(labels).pick(text) {
            return Some(i);
        }
        let keys: Vec<&str> = opts.iter().map(|o| o.label.as_str()).collect();
        match (keys.as_slice(), dialogue::polar(text, &self.labels)) {
            (["yes", "no"], Some(yes)) => Some(if yes { 0 } else { 1 }),
            _ => None,
        }
    }

    async fn rated(
        &mut self,
        entry: &str,
        index: usize,
        related: Vec<Entry>,
    ) -> Result<(), EngineError> {
        let Some(option) = self.settings.ratings.options.get(index).cloned() else {
            return Ok(());
        };
        let rating_id = self
            .save_rating(entry, &option.id, option.is_negative)
            .await;
        if option.is_negative {
            self.state.negative_ratings += 1;
        } else {
            self.state.negative_ratings = 0;
        }
        if option.comment {
            self.say(self.labels.get("ask_rating_comment"));
            self.state.pending = Pending::Comment {
                rating: rating_id,
                related,
            };
            return Ok(());
        }
        self.say(self.labels.get("thanks"));
        if !self.escalate_if_due().await {
            self.offer_related(related);
        }
        Ok(())
    }

    /// Escalates when the negative ratings reached the limit; true when it did.
    async fn escalate_if_due(&mut self) -> bool {
        let due = self.settings.negative_ratings_before_escalation;
        if due > 0 && self.state.negative_ratings >= due {
            self.escalate("negative ratings");
            true
        } else {
            false
        }
    }

    fn escalate(&mut self, reason: &str) {
        if self.settings.ask_before_escalation {
            self.say(dialogue::polar_question(
                &self.labels.get("ask_to_escalate"),
                &self.labels,
            ));
            self.state.pending = Pending::Escalation { unclear: 0 };
        } else {
            self.hand_off(reason);
        }
    }

    fn hand_off(&mut self, reason: &str) {
        self.state = FaqState::default();
        self.say(self.labels.get("creating_chat"));
        self.reply.actions.push(Action::Handoff {
            reason: Some(format!("FAQ: {reason}")),
            attributes: None,
        });
    }

    fn offer_related(&mut self, related: Vec<Entry>) {
        if related.is_empty() {
            return;
        }
        let options = Options::new(related.iter().map(|e| e.question.clone()).collect());
        self.say(options.render(&self.labels.get("related_contents"), &self.labels));
        self.state.pending = Pending::Choice { entries: related };
    }

    /// The entry's related records, in the order given, at most `maxOptions`.
    async fn related(&self, entry: &Entry) -> Vec<Entry> {
        let mut out = Vec::new();
        for id in entry
            .related
            .iter()
            .filter(|id| **id != entry.id)
            .take(self.settings.max_options)
        {
            match self.ctx.store.dataset_record(&self.dataset, id).await {
                Ok(Some(record)) => out.push(Entry::from_record(
                    &record.id,
                    &record.text,
                    record.meta.as_ref(),
                    &self.settings.forms,
                )),
                Ok(None) => {}
                Err(err) => tracing::warn!(error = %err, "reading related contents failed"),
            }
        }
        out
    }

    async fn save_rating(&self, record: &str, rating: &str, negative: bool) -> String {
        let id = crate::domain::ids::new_id();
        let rating = NewRating {
            id: &id,
            bot_id: &self.turn.bot.id,
            conversation_id: &self.turn.conversation_id,
            record_id: record,
            rating_id: rating,
            negative,
            created_at: self.turn.now_ms,
        };
        if let Err(err) = self.ctx.store.record_rating(&rating).await {
            tracing::warn!(error = %err, "recording a content rating failed");
        }
        id
    }

    async fn save_comment(&self, rating: &str, comment: &str) {
        if let Err(err) = self.ctx.store.record_rating_comment(rating, comment).await {
            tracing::warn!(error = %err, "recording a rating comment failed");
        }
    }

    /// POSTs a completed form as JSON; a failure is logged, the person already got their answer.
    async fn submit(&self, url: &str, entry: &Entry, values: serde_json::Map<String, Value>) {
        let body = json!({
            "botId": self.turn.bot.id,
            "conversationId": self.turn.conversation_id,
            "contact": self.turn.contact.address,
            "recordId": entry.id,
            "values": values,
        });
        let req = super::studio::http::Request {
            method: reqwest::Method::POST,
            url: url.to_owned(),
            query: Vec::new(),
            body: super::studio::http::Body::Raw {
                content_type: "application/json".into(),
                text: body.to_string(),
            },
            timeout: super::studio::http::TIMEOUT,
        };
        match super::studio::http::send(self.ctx, req).await {
            Ok(resp) if resp.is_success() => {}
            Ok(resp) => tracing::warn!(
                status = resp.status_code,
                "form webhook refused the answers"
            ),
            Err(err) => tracing::warn!(error = %err, "form webhook failed"),
        }
    }
}

#[cfg(test)]
mod tests;
