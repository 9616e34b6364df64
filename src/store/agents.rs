//! Storage of human agents: accounts (passwords as argon2 hashes, hashed by the caller), the
//! integrations each may work on, and their console sessions (tokens stored as SHA-256 hashes).
use super::channel::{int, text};
use super::{Db, Param, Sql};
use crate::domain::{ids, now_ms};
use serde::Serialize;
use sqlx::any::AnyRow;

/// An agent as the API shows it: never the password hash.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub id: String,
    pub email: String,
    pub name: String,
    /// `online` or `away`.
    pub status: String,
    pub max_conversations: i64,
    pub integration_ids: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Fields of an agent to write; `None` leaves a field as it is on update.
#[derive(Debug, Clone, Default)]
pub struct AgentFields {
    pub email: Option<String>,
    pub name: Option<String>,
    pub password_hash: Option<String>,
    pub status: Option<String>,
    pub max_conversations: Option<i64>,
    pub integration_ids: Option<Vec<String>>,
}

/// A console session: who, and the token its state-changing requests must echo.
#[derive(Debug, Clone)]
pub struct AgentSession {
    pub agent: Agent,
    pub csrf: String,
}

const AGENT_COLUMNS: &str =
    "id, email, name, status, max_conversations, created_at, updated_at, password_hash";

fn agent_row(r: &AnyRow) -> Agent {
    Agent {
        id: text(r, "id"),
        email: text(r, "email"),
        name: text(r, "name"),
        status: text(r, "status"),
        max_conversations: int(r, "max_conversations"),
        integration_ids: Vec::new(),
        created_at: int(r, "created_at"),
        updated_at: int(r, "updated_at"),
    }
}

impl Db {
    /// Creates an agent; `Err` with a unique violation when the email is taken.
    pub async fn create_agent(&self, f: &AgentFields) -> Result<String, sqlx::Error> {
        let id = ids::new_id();
        let now = now_ms();
        let mut sql = Sql::new(
            "INSERT INTO agents (id, email, name, password_hash, status, max_conversations, created_at, updated_at) VALUES ",
        );
        sql.values([vec![
            Param::from(id.as_str()),
            f.email.clone().unwrap_or_default().into(),
            f.name.clone().unwrap_or_default().into(),
            f.password_hash.clone().unwrap_or_default().into(),
            f.status.clone().unwrap_or_else(|| "away".into()).into(),
            f.max_conversations.unwrap_or(5).into(),
            now.into(),
            now.into(),
        ]]);
        self.exec(&sql).await?;
        if let Some(integrations) = &f.integration_ids {
            self.set_agent_integrations(&id, integrations).await?;
        }
        Ok(id)
    }

    /// Updates the fields given; `false` when there is no such agent.
    pub async fn update_agent(&self, id: &str, f: &AgentFields) -> Result<bool, sqlx::Error> {
        let mut sql = Sql::new("UPDATE agents SET updated_at = ");
        sql.bind(now_ms());
        let columns = [
            ("email", f.email.clone()),
            ("name", f.name.clone()),
            ("password_hash", f.password_hash.clone()),
            ("status", f.status.clone()),
        ];
        for (column, value) in columns {
            if let Some(value) = value {
                sql.push(&format!(", {column} = ")).bind(value);
            }
        }
        if let Some(max) = f.max_conversations {
            sql.push(", max_conversations = ").bind(max);
        }
        sql.push(" WHERE id = ").bind(id);
        if self.exec(&sql).await? == 0 {
            return Ok(false);
        }
        if let Some(integrations) = &f.integration_ids {
            self.set_agent_integrations(id, integrations).await?;
        }
        Ok(true)
    }

    async fn set_agent_integrations(
        &self,
        agent_id: &str,
        integrations: &[String],
    ) -> Result<(), sqlx::Error> {
        self.exec(&Sql::new("DELETE FROM agent_integrations WHERE agent_id = $1").arg(agent_id))
            .await?;
        if integrations.is_empty() {
            return Ok(());
        }
        let mut sql = Sql::new("INSERT INTO agent_integrations (agent_id, integration_id) VALUES ");
        sql.values(
            integrations
                .iter()
                .map(|i| vec![Param::from(agent_id), i.as_str().into()]),
        )
        .push(" ON CONFLICT DO NOTHING");
        self.exec(&sql).await.map(|_| ())
    }

    /// Deletes an agent, their sessions, and gives their conversations back to the queue.
    pub async fn delete_agent(&self, id: &str) -> Result<bool, sqlx::Error> {
        let gone = self
            .exec(&Sql::new("DELETE FROM agents WHERE id = $1").arg(id))
            .await?;
        for table in ["agent_integrations", "agent_sessions"] {
            self.exec(&Sql::new(format!("DELETE FROM {table} WHERE agent_id = $1")).arg(id))
                .await?;
        }
        self.exec(
            &Sql::new(
                "UPDATE handoffs SET state = 'queued', agent_id = NULL WHERE agent_id = $1 AND state = 'agent'",
            )
            .arg(id),
        )
        .await?;
        Ok(gone > 0)
    }

    /// One agent, with the integrations they work on.
    pub async fn agent(&self, id: &str) -> Result<Option<Agent>, sqlx::Error> {
        let sql = Sql::new(format!("SELECT {AGENT_COLUMNS} FROM agents WHERE id = $1")).arg(id);
        let Some(row) = self.fetch_optional(&sql).await? else {
            return Ok(None);
        };
        let mut agent = agent_row(&row);
        agent.integration_ids = self.agent_integrations(id).await?;
        Ok(Some(agent))
    }

    /// An agent and their password hash, by email (case-insensitive), for logging in.
    pub async fn agent_login(&self, email: &str) -> Result<Option<(Agent, String)>, sqlx::Error> {
        let sql = Sql::new(format!(
            "SELECT {AGENT_COLUMNS} FROM agents WHERE LOWER(email) = LOWER($1)"
        ))
        .arg(email);
        Ok(self
            .fetch_optional(&sql)
            .await?
            .map(|r| (agent_row(&r), text(&r, "password_hash"))))
    }

    /// Every agent, by creation.
    pub async fn agents(&self) -> Result<Vec<Agent>, sqlx::Error> {
        let sql = Sql::new(format!(
            "SELECT {AGENT_COLUMNS} FROM agents ORDER BY created_at, id LIMIT 1000"
        ));
        let mut agents: Vec<Agent> = self.fetch_all(&sql).await?.iter().map(agent_row).collect();
        for agent in &mut agents {
            agent.integration_ids = self.agent_integrations(&agent.id).await?;
        }
        Ok(agents)
    }

    pub async fn agent_integrations(&self, agent_id: &str) -> Result<Vec<String>, sqlx::Error> {
        let sql = Sql::new(
            "SELECT integration_id FROM agent_integrations WHERE agent_id = $1 ORDER BY integration_id",
        )
        .arg(agent_id);
        Ok(self
            .fetch_all(&sql)
            .await?
            .iter()
            .map(|r| text(r, "integration_id"))
            .collect())
    }

    /// Agents online for an integration with room for one more conversation.
    pub async fn agents_available(&self, integration_id: &str) -> Result<i64, sqlx::Error> {
        let sql = Sql::new(
            "SELECT COUNT(*) AS n FROM agents a JOIN agent_integrations ai ON ai.agent_id = a.id \
             WHERE ai.integration_id = $1 AND a.status = 'online' \
             AND (SELECT COUNT(*) FROM handoffs h WHERE h.agent_id = a.id AND h.state = 'agent') < a.max_conversations",
        )
        .arg(integration_id);
        Ok(self.fetch_optional(&sql).await?.map_or(0, |r| int(&r, "n")))
    }

    /// How many conversations an agent has.
    pub async fn agent_load(&self, agent_id: &str) -> Result<i64, sqlx::Error> {
        let sql =
            Sql::new("SELECT COUNT(*) AS n FROM handoffs WHERE agent_id = $1 AND state = 'agent'")
                .arg(agent_id);
        Ok(self.fetch_optional(&sql).await?.map_or(0, |r| int(&r, "n")))
    }

    /// Stores a console session under the hash of its token.
    pub async fn create_agent_session(
        &self,
        agent_id: &str,
        token_hash: &str,
        csrf: &str,
        expires_at: i64,
    ) -> Result<(), sqlx::Error> {
        let mut sql = Sql::new(
            "INSERT INTO agent_sessions (token_hash, agent_id, csrf, expires_at, created_at) VALUES ",
        );
        sql.values([vec![
            Param::from(token_hash),
            agent_id.into(),
            csrf.into(),
            expires_at.into(),
            now_ms().into(),
        ]]);
        self.exec(&sql).await.map(|_| ())
    }

    /// The live console session of a token hash.
    pub async fn agent_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<AgentSession>, sqlx::Error> {
        let sql = Sql::new(
            "SELECT agent_id, csrf FROM agent_sessions WHERE token_hash = $1 AND expires_at > $2",
        )
        .arg(token_hash)
        .arg(now_ms());
        let Some(row) = self.fetch_optional(&sql).await? else {
            return Ok(None);
        };
        Ok(self
            .agent(&text(&row, "agent_id"))
            .await?
            .map(|agent| AgentSession {
                agent,
                csrf: text(&row, "csrf"),
            }))
    }

    pub async fn delete_agent_session(&self, token_hash: &str) -> Result<(), sqlx::Error> {
        self.exec(&Sql::new("DELETE FROM agent_sessions WHERE token_hash = $1").arg(token_hash))
            .await
            .map(|_| ())
    }
}
