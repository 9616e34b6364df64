//! Storage of hand-offs to human agents: who owns a conversation, the queue, tickets.
//!
//! A conversation belongs to its bot unless it has an open hand-off row (queued, with an agent,
//! or waiting for the person's message to an absent team). Rows are opened and moved only
//! through the one door ([`super::outgoing`]), as a compare-and-set on their state written in
//! the same transaction as the messages that announce the move: two agents taking one
//! conversation at once write one `agent_joined`, never two.
use super::channel::{int, opt_text, text};
use super::{Db, Param, Sql};
use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

/// Where a hand-off stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffState {
    /// Waiting for an agent, first come first served per integration.
    Queued,
    /// An agent owns the conversation.
    Agent,
    /// Nobody was online: the person's next message is taken as a message for the team.
    LeavingMessage,
    /// A message left for the team, waiting for an agent's answer; the bot owns the
    /// conversation meanwhile.
    Ticket,
    /// A ticket an agent answered.
    Answered,
    /// An agent closed it; the bot owns the conversation again.
    Closed,
    /// Given back to the bot without an agent (waited too long, or the person cancelled).
    Returned,
}

impl HandoffState {
    pub const ALL: [HandoffState; 7] = [
        Self::Queued,
        Self::Agent,
        Self::LeavingMessage,
        Self::Ticket,
        Self::Answered,
        Self::Closed,
        Self::Returned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Agent => "agent",
            Self::LeavingMessage => "leaving_message",
            Self::Ticket => "ticket",
            Self::Answered => "answered",
            Self::Closed => "closed",
            Self::Returned => "returned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the bot is kept out of the conversation (the partial unique indexes' set).
    pub fn is_open(self) -> bool {
        matches!(self, Self::Queued | Self::Agent | Self::LeavingMessage)
    }
}

/// One hand-off as stored, with its agent's name.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Handoff {
    pub id: String,
    pub conversation_id: String,
    pub integration_id: String,
    pub channel: String,
    pub person: String,
    pub ours: String,
    pub bot_id: Option<String>,
    pub state: HandoffState,
    pub agent_id: Option<String>,
    pub agent_name: Option<String>,
    pub reason: Option<String>,
    /// What the bot collected for the agent (Studio `send-to-flex` attributes), as JSON.
    pub attributes: Option<Value>,
    pub ticket_text: Option<String>,
    #[serde(skip)]
    pub told_ahead: Option<i64>,
    pub queued_at: i64,
    pub assigned_at: Option<i64>,
    pub last_activity_at: i64,
    pub closed_at: Option<i64>,
}

/// A hand-off to open.
#[derive(Debug, Clone)]
pub struct NewHandoff {
    pub id: String,
    pub conversation_id: String,
    pub integration_id: String,
    pub channel: String,
    pub person: String,
    pub ours: String,
    pub bot_id: Option<String>,
    pub state: HandoffState,
    pub agent_id: Option<String>,
    pub reason: Option<String>,
    pub attributes: Option<String>,
    /// The queue position the person is told on entering.
    pub told_ahead: Option<i64>,
}

/// A compare-and-set move of an existing hand-off: applied only while the row is in one of
/// `from` (and, when given, owned by `expect_agent` and last told `expect_told`).
#[derive(Debug, Clone)]
pub struct HandoffMove {
    pub id: String,
    pub from: Vec<HandoffState>,
    pub to: HandoffState,
    pub expect_agent: Option<String>,
    /// `Some(x)`: the queue position last told must be `x` (`None` inside: never told).
    pub expect_told: Option<Option<i64>>,
    /// `Some(x)`: set the agent (`None` inside: no agent).
    pub set_agent: Option<Option<String>>,
    pub told_ahead: Option<i64>,
    pub ticket_text: Option<String>,
    /// Taking a conversation: refused when the agent already has this many.
    pub agent_cap: Option<i64>,
    /// Restart the clock of the state's timeout (false for a queue-position notice).
    pub touch: bool,
}

impl HandoffMove {
    /// A move from `from` to `to` with nothing else checked or set.
    pub fn new(id: &str, from: &[HandoffState], to: HandoffState) -> Self {
        Self {
            id: id.to_owned(),
            from: from.to_vec(),
            to,
            expect_agent: None,
            expect_told: None,
            set_agent: None,
            told_ahead: None,
            ticket_text: None,
            agent_cap: None,
            touch: true,
        }
    }
}

/// The hand-off part of a write through the one door.
#[derive(Debug, Clone)]
pub enum HandoffWrite {
    Open(NewHandoff),
    Move(HandoffMove),
}

/// Which hand-offs to list.
#[derive(Debug, Clone, Default)]
pub struct HandoffFilter {
    pub states: Vec<HandoffState>,
    /// Only these integrations (an agent's); `None`: all.
    pub integrations: Option<Vec<String>>,
    pub agent_id: Option<String>,
    pub limit: i64,
}

const COLUMNS: &str = "h.id, h.conversation_id, h.integration_id, h.channel, h.person, h.ours, \
    h.bot_id, h.state, h.agent_id, a.name AS agent_name, h.reason, h.attributes, h.ticket_text, \
    h.told_ahead, h.queued_at, h.assigned_at, h.last_activity_at, h.closed_at";

fn from_row(r: &AnyRow) -> Handoff {
    let opt_int = |col: &str| {
        use sqlx::Row;
        r.try_get::<Option<i64>, _>(col).ok().flatten()
    };
    Handoff {
        id: text(r, "id"),
        conversation_id: text(r, "conversation_id"),
        integration_id: text(r, "integration_id"),
        channel: text(r, "channel"),
        person: text(r, "person"),
        ours: text(r, "ours"),
        bot_id: opt_text(r, "bot_id"),
        state: HandoffState::parse(&text(r, "state")).unwrap_or(HandoffState::Closed),
        agent_id: opt_text(r, "agent_id"),
        agent_name: opt_text(r, "agent_name"),
        reason: opt_text(r, "reason"),
        attributes: opt_text(r, "attributes").and_then(|s| serde_json::from_str(&s).ok()),
        ticket_text: opt_text(r, "ticket_text"),
        told_ahead: opt_int("told_ahead"),
        queued_at: int(r, "queued_at"),
        assigned_at: opt_int("assigned_at"),
        last_activity_at: int(r, "last_activity_at"),
        closed_at: opt_int("closed_at"),
    }
}

fn push_in(sql: &mut Sql, values: impl IntoIterator<Item = impl Into<Param>>) {
    sql.push("(");
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(v);
    }
    sql.push(")");
}

impl Db {
    /// One hand-off by id.
    pub async fn handoff(&self, id: &str) -> Result<Option<Handoff>, sqlx::Error> {
        let sql = Sql::new(format!(
            "SELECT {COLUMNS} FROM handoffs h LEFT JOIN agents a ON a.id = h.agent_id WHERE h.id = $1"
        ))
        .arg(id);
        Ok(self.fetch_optional(&sql).await?.as_ref().map(from_row))
    }

    /// The open hand-off of a conversation, if any.
    pub async fn open_handoff_of(
        &self,
        conversation_id: &str,
    ) -> Result<Option<Handoff>, sqlx::Error> {
        let sql = Sql::new(format!(
            "SELECT {COLUMNS} FROM handoffs h LEFT JOIN agents a ON a.id = h.agent_id \
             WHERE h.conversation_id = $1 AND h.state IN ('queued', 'agent', 'leaving_message')"
        ))
        .arg(conversation_id);
        Ok(self.fetch_optional(&sql).await?.as_ref().map(from_row))
    }

    /// Hand-offs matching `filter`, oldest queued first.
    pub async fn handoffs(&self, filter: &HandoffFilter) -> Result<Vec<Handoff>, sqlx::Error> {
        let mut sql = Sql::new(format!(
            "SELECT {COLUMNS} FROM handoffs h LEFT JOIN agents a ON a.id = h.agent_id WHERE 1 = 1"
        ));
        if !filter.states.is_empty() {
            sql.push(" AND h.state IN ");
            push_in(&mut sql, filter.states.iter().map(|s| s.as_str()));
        }
        if let Some(integrations) = &filter.integrations {
            if integrations.is_empty() {
                return Ok(Vec::new());
            }
            sql.push(" AND h.integration_id IN ");
            push_in(&mut sql, integrations.iter().map(String::as_str));
        }
        if let Some(agent) = &filter.agent_id {
            sql.push(" AND h.agent_id = ").bind(agent.as_str());
        }
        sql.push(" ORDER BY h.queued_at, h.id LIMIT ")
            .bind(filter.limit.clamp(1, 500));
        Ok(self.fetch_all(&sql).await?.iter().map(from_row).collect())
    }

    /// People queued ahead of a hand-off in its integration's queue.
    pub async fn queue_ahead(
        &self,
        integration_id: &str,
        queued_at: i64,
        id: &str,
    ) -> Result<i64, sqlx::Error> {
        let sql = Sql::new(
            "SELECT COUNT(*) AS n FROM handoffs WHERE integration_id = $1 AND state = 'queued' \
             AND (queued_at < $2 OR (queued_at = $2 AND id < $3))",
        )
        .arg(integration_id)
        .arg(queued_at)
        .arg(id);
        Ok(self.fetch_optional(&sql).await?.map_or(0, |r| int(&r, "n")))
    }

    /// The latest `limit` messages of a conversation, oldest first, as the console shows them:
    /// who wrote each (`meta.author`) and, for what was sent, `meta.delivery`.
    pub async fn transcript(
        &self,
        conversation_id: &str,
        limit: i64,
    ) -> Result<Vec<serde_json::Map<String, Value>>, sqlx::Error> {
        let sql = Sql::new(
            "SELECT id, type, text, meta, created_at FROM messages WHERE conversation_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .arg(conversation_id)
        .arg(limit);
        let mut items: Vec<serde_json::Map<String, Value>> = self
            .fetch_all(&sql)
            .await?
            .iter()
            .map(|r| {
                let meta = opt_text(r, "meta")
                    .and_then(|m| serde_json::from_str::<Value>(&m).ok())
                    .unwrap_or(Value::Null);
                let mut item = serde_json::Map::new();
                item.insert("id".into(), Value::String(text(r, "id")));
                item.insert("type".into(), Value::String(text(r, "type")));
                item.insert("text".into(), Value::String(text(r, "text")));
                item.insert("meta".into(), meta);
                item.insert("createdAt".into(), Value::from(int(r, "created_at")));
                item
            })
            .collect();
        items.reverse();
        self.attach_delivery(&mut items).await?;
        Ok(items)
    }

    /// A conversation's `meta` and its engine's state (a flow's variables, a form's answers),
    /// parsed, for the agent to see what the bot collected.
    pub async fn collected(&self, conversation_id: &str) -> Result<(Value, Value), sqlx::Error> {
        let sql = Sql::new("SELECT meta, engine_state FROM conversations WHERE id = $1")
            .arg(conversation_id);
        let parse = |s: Option<String>| {
            s.and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or(Value::Null)
        };
        Ok(match self.fetch_optional(&sql).await? {
            Some(r) => (
                parse(opt_text(&r, "meta")),
                parse(opt_text(&r, "engine_state")),
            ),
            None => (Value::Null, Value::Null),
        })
    }

    /// Where a conversation's messages go, from the latest message the person sent in it:
    /// `(integration, channel, person, our number, bot)`; `None` for a conversation no one
    /// texted into (made through the API).
    pub async fn conversation_route(
        &self,
        conversation_id: &str,
    ) -> Result<Option<(String, String, String, String, Option<String>)>, sqlx::Error> {
        let sql = Sql::new(
            "SELECT i.integration_id, i.channel, i.sender, i.recipient, c.bot_id FROM inbound i \
             JOIN conversations c ON c.id = i.conversation_id \
             WHERE i.conversation_id = $1 AND i.message_sid NOT LIKE 'timer-%' \
             ORDER BY i.created_at DESC LIMIT 1",
        )
        .arg(conversation_id);
        Ok(self.fetch_optional(&sql).await?.map(|r| {
            (
                text(&r, "integration_id"),
                text(&r, "channel"),
                text(&r, "sender"),
                text(&r, "recipient"),
                opt_text(&r, "bot_id"),
            )
        }))
    }

    /// Integrations with people queued, for the queue's periodic work.
    pub async fn integrations_with_queue(&self) -> Result<Vec<String>, sqlx::Error> {
        let sql = Sql::new("SELECT DISTINCT integration_id FROM handoffs WHERE state = 'queued'");
        Ok(self
            .fetch_all(&sql)
            .await?
            .iter()
            .map(|r| text(r, "integration_id"))
            .collect())
    }

    /// Hand-offs in `state` with no activity since `before` (entering the state, an agent's
    /// reply): the queue's and the agents' timeouts.
    pub async fn handoffs_idle(
        &self,
        state: HandoffState,
        before: i64,
    ) -> Result<Vec<Handoff>, sqlx::Error> {
        let sql = Sql::new(format!(
            "SELECT {COLUMNS} FROM handoffs h LEFT JOIN agents a ON a.id = h.agent_id \
             WHERE h.state = $1 AND h.last_activity_at < $2 ORDER BY h.last_activity_at LIMIT 100"
        ))
        .arg(state.as_str())
        .arg(before);
        Ok(self.fetch_all(&sql).await?.iter().map(from_row).collect())
    }
}

/// Applies a write's hand-off part inside the one door's transaction; `false` when the
/// compare-and-set found the row elsewhere (or an open hand-off already there).
pub(super) async fn apply(
    tx: &mut Transaction<'static, Any>,
    write: &HandoffWrite,
    now: i64,
) -> Result<bool, sqlx::Error> {
    match write {
        HandoffWrite::Open(h) => {
            let mut sql = Sql::new(
                "INSERT INTO handoffs (id, conversation_id, integration_id, channel, person, ours, bot_id, \
                 state, agent_id, reason, attributes, told_ahead, queued_at, assigned_at, last_activity_at, \
                 created_at, updated_at) VALUES ",
            );
            sql.values([vec![
                Param::from(h.id.as_str()),
                h.conversation_id.as_str().into(),
                h.integration_id.as_str().into(),
                h.channel.as_str().into(),
                h.person.as_str().into(),
                h.ours.as_str().into(),
                h.bot_id.clone().into(),
                h.state.as_str().into(),
                h.agent_id.clone().into(),
                h.reason.clone().into(),
                h.attributes.clone().into(),
                h.told_ahead.into(),
                now.into(),
                h.agent_id.as_ref().map(|_| now).into(),
                now.into(),
                now.into(),
                now.into(),
            ]])
            // Another open hand-off of the conversation or sender wins.
            .push(" ON CONFLICT DO NOTHING RETURNING id");
            Ok(!sql.query().fetch_all(&mut **tx).await?.is_empty())
        }
        HandoffWrite::Move(m) => {
            let mut sql = Sql::new("UPDATE handoffs SET state = ");
            sql.bind(m.to.as_str()).push(", updated_at = ").bind(now);
            if m.touch {
                sql.push(", last_activity_at = ").bind(now);
            }
            if let Some(agent) = &m.set_agent {
                sql.push(", agent_id = ").bind(agent.clone());
                if agent.is_some() {
                    sql.push(", assigned_at = ").bind(now);
                }
            }
            if let Some(told) = m.told_ahead {
                sql.push(", told_ahead = ").bind(told);
            }
            if let Some(ticket) = &m.ticket_text {
                sql.push(", ticket_text = ").bind(ticket.as_str());
            }
            if !m.to.is_open() {
                sql.push(", closed_at = ").bind(now);
            }
            sql.push(" WHERE id = ").bind(m.id.as_str());
            sql.push(" AND state IN ");
            push_in(&mut sql, m.from.iter().map(|s| s.as_str()));
            if let Some(agent) = &m.expect_agent {
                sql.push(" AND agent_id = ").bind(agent.as_str());
            }
            if let Some(told) = m.expect_told {
                sql.push(" AND COALESCE(told_ahead, -1) = ")
                    .bind(told.unwrap_or(-1));
            }
            if let (Some(cap), Some(Some(agent))) = (m.agent_cap, &m.set_agent) {
                sql.push(
                    " AND (SELECT COUNT(*) FROM handoffs o WHERE o.state = 'agent' AND o.agent_id = ",
                )
                .bind(agent.as_str())
                .push(") < ")
                .bind(cap);
            }
            sql.push(" RETURNING id");
            Ok(!sql.query().fetch_all(&mut **tx).await?.is_empty())
        }
    }
}
