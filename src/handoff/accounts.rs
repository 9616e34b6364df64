//! Agent accounts as the API and the CLI write them: checked fields, the password hashed.
use super::{password, DeskError, DeskResult};
use crate::store::agents::AgentFields;
use crate::store::Db;
use serde_json::{Map, Value};

/// Most conversations one agent may be given at once.
const MAX_CONVERSATIONS: i64 = 100;

fn string(body: &Map<String, Value>, key: &str, max: usize) -> DeskResult<Option<String>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= max => {
            Ok(Some(s.trim().to_owned()))
        }
        Some(_) => Err(DeskError::Invalid(format!(
            "\"{key}\" must be a non-empty string of at most {max} characters"
        ))),
    }
}

/// The fields of an agent from a request body; `creating` requires email, name and password.
/// Integration ids must name existing Twilio integrations.
pub async fn fields(db: &Db, body: &Map<String, Value>, creating: bool) -> DeskResult<AgentFields> {
    const KNOWN: [&str; 6] = [
        "email",
        "name",
        "password",
        "status",
        "maxConversations",
        "integrationIds",
    ];
    if let Some(unknown) = body.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(DeskError::Invalid(format!("\"{unknown}\" is not allowed")));
    }
    let email = string(body, "email", 254)?;
    if let Some(email) = &email {
        if !email.contains('@') || email.contains(char::is_whitespace) {
            return Err(DeskError::Invalid(
                "\"email\" must be an email address".into(),
            ));
        }
    }
    let name = string(body, "name", 200)?;
    let password = match body.get("password") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => {
            password::check(p).map_err(DeskError::Invalid)?;
            Some(password::hash(p).await?)
        }
        Some(_) => return Err(DeskError::Invalid("\"password\" must be a string".into())),
    };
    let status = match body.get("status") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "online" || s == "away" => Some(s.clone()),
        Some(_) => {
            return Err(DeskError::Invalid(
                "\"status\" must be \"online\" or \"away\"".into(),
            ))
        }
    };
    let max_conversations = match body.get("maxConversations") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(n) if (1..=MAX_CONVERSATIONS).contains(&n) => Some(n),
            _ => {
                return Err(DeskError::Invalid(format!(
                    "\"maxConversations\" must be a whole number from 1 to {MAX_CONVERSATIONS}"
                )))
            }
        },
    };
    let integration_ids = match body.get("integrationIds") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let mut ids = Vec::new();
            for item in items {
                let Some(id) = item.as_str() else {
                    return Err(DeskError::Invalid(
                        "\"integrationIds\" must be an array of strings".into(),
                    ));
                };
                let mut found = false;
                for res in [&crate::store::schema::TWILIO, &crate::store::schema::WIDGET] {
                    found = found || db.fetch_resource(res, None, id).await?.is_some();
                }
                if !found {
                    return Err(DeskError::Invalid(format!(
                        "\"integrationIds\": no integration \"{id}\""
                    )));
                }
                ids.push(id.to_owned());
            }
            Some(ids)
        }
        Some(_) => {
            return Err(DeskError::Invalid(
                "\"integrationIds\" must be an array of strings".into(),
            ))
        }
    };
    if creating {
        for (key, missing) in [
            ("email", email.is_none()),
            ("name", name.is_none()),
            ("password", password.is_none()),
        ] {
            if missing {
                return Err(DeskError::Invalid(format!("\"{key}\" is required")));
            }
        }
    }
    Ok(AgentFields {
        email,
        name,
        password_hash: password,
        status,
        max_conversations,
        integration_ids,
    })
}

/// Creates an agent; a taken email is a conflict.
pub async fn create(db: &Db, body: &Map<String, Value>) -> DeskResult<String> {
    let fields = fields(db, body, true).await?;
    match db.create_agent(&fields).await {
        Ok(id) => Ok(id),
        Err(e) if crate::store::is_unique_violation(&e) => Err(DeskError::Conflict(
            "an agent with this email already exists".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Updates an agent; `NotFound` when there is none.
pub async fn update(db: &Db, id: &str, body: &Map<String, Value>) -> DeskResult<()> {
    let fields = fields(db, body, false).await?;
    match db.update_agent(id, &fields).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(DeskError::NotFound),
        Err(e) if crate::store::is_unique_violation(&e) => Err(DeskError::Conflict(
            "an agent with this email already exists".into(),
        )),
        Err(e) => Err(e.into()),
    }
}
