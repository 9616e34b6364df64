//! Issue 13 points 2 and 3 against the real binary: the first start says that no token
//! exists and how to make one; `CHATWIRE_LOG_FORMAT=json` writes one JSON object per line,
//! without colour codes when not on a terminal; each message received and sent is one info
//! line with its ids and the correlation id, never its body; tokens are listed and revoked
//! from the command line.
use chatwire::emulator::{self, EmulatorConfig};
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_chatwire");

/// A `chatwire serve` child on a free port with a fresh SQLite database (`env` may name
/// another); its output lines are forwarded to the returned channel. Also used by `otel`.
pub(crate) struct Server {
    pub(crate) child: Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    pub(crate) base: Option<String>,
    pub(crate) dir: tempfile::TempDir,
}

impl Server {
    pub(crate) fn start(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CHATWIRE_LISTEN", "127.0.0.1:0")
            .env(
                "CHATWIRE_DATABASE_URL",
                format!("sqlite://{}", dir.path().join("c.db").display()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("chatwire starts");
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        for out in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(out).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    let _ = tx.send(line);
                }
            });
        }
        Self {
            child,
            lines,
            base: None,
            dir,
        }
    }

    /// Output lines until one satisfies `want` (which sees every line), within 20 s.
    pub(crate) async fn until(&mut self, mut want: impl FnMut(&str) -> bool) -> Vec<String> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    let done = want(&line);
                    if self.base.is_none() {
                        self.base = address(&line);
                    }
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                _ => panic!("expected output never came; saw:\n{}", seen.join("\n")),
            }
        }
    }
}

/// The listening address in the "chatwire listening" line, pretty or JSON.
fn address(line: &str) -> Option<String> {
    if !line.contains("chatwire listening") {
        return None;
    }
    let at = line.find("addr")?;
    let rest = &line[at..];
    let start = rest.find("127.0.0.1")?;
    let addr: String = rest[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    Some(format!("http://{addr}"))
}

#[tokio::test]
async fn a_first_start_without_a_token_says_so_and_how_to_make_one() {
    let mut server = Server::start(&[]);
    let seen = server.until(|l| l.contains("chatwire listening")).await;
    let notice = seen
        .iter()
        .find(|l| l.contains("no API token"))
        .unwrap_or_else(|| panic!("no notice in:\n{}", seen.join("\n")));
    assert!(
        notice.contains("CHATWIRE_API_TOKEN") && notice.contains("chatwire token create"),
        "{notice}"
    );
    for line in &seen {
        assert!(
            !line.contains('\u{1b}'),
            "no ANSI escape codes when not on a terminal: {line:?}"
        );
    }
    let _ = server.child.kill().await;
}

#[tokio::test]
async fn json_logs_carry_one_line_per_message_in_and_out_with_a_correlation_id_and_no_body() {
    let twilio = emulator::spawn(EmulatorConfig::default())
        .await
        .expect("emulator");
    let mut server = Server::start(&[
        ("CHATWIRE_LOG_FORMAT", "json"),
        ("CHATWIRE_API_TOKEN", "t0ken"),
        ("CHATWIRE_SECRET_KEY", &"1".repeat(64)),
        ("CHATWIRE_TWILIO_API_URL", twilio.url()),
        ("CHATWIRE_SEND_RATE", "100"),
    ]);
    let startup = server.until(|l| l.contains("chatwire listening")).await;
    for line in &startup {
        let parsed: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            parsed["level"].is_string() && parsed["message"].is_string(),
            "{line}"
        );
    }
    let base = server.base.clone().expect("address logged");
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(format!("{base}/v1/{path}"))
            .bearer_auth("t0ken")
            .json(&body)
            .send()
    };
    let bot: Value = post("bot/create", json!({"model": "echo"}))
        .await
        .expect("bot")
        .json()
        .await
        .expect("json");
    let account = twilio.account();
    let int: Value = post(
        "integration/twilio/create",
        json!({"botId": bot["id"], "accountSid": account.sid, "authToken": account.auth_token, "phoneNumber": "+15005550006"}),
    )
    .await
    .expect("integration")
    .json()
    .await
    .expect("json");
    let int = int["id"].as_str().expect("id").to_owned();
    let setup = post(&format!("integration/twilio/{int}/setup"), json!({}))
        .await
        .expect("setup");
    assert_eq!(setup.status(), 200);
    let secret_words = "my confidential words";
    let inbound = twilio
        .send_text("+15551230001", "+15005550006", secret_words)
        .await
        .expect("inject");
    let sid = inbound.message_sid;
    let lines = server.until(|l| l.contains("message sent")).await;
    let events: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(events.len(), lines.len(), "every line is JSON");
    let received = events
        .iter()
        .find(|e| e["message"] == "message received")
        .expect("received line");
    assert_eq!(received["level"], "INFO");
    assert_eq!(received["integration"], int.as_str());
    assert_eq!(received["message_sid"], sid.as_str());
    assert_eq!(received["correlation"], sid.as_str());
    let sent = events
        .iter()
        .find(|e| e["message"] == "message sent")
        .expect("sent line");
    assert_eq!(sent["level"], "INFO");
    assert_eq!(sent["integration"], int.as_str());
    assert_eq!(
        sent["correlation"],
        sid.as_str(),
        "the send carries the webhook's correlation id"
    );
    assert!(
        sent["conversation"].as_str().is_some_and(|c| c != "-"),
        "{sent}"
    );
    let reply = twilio
        .wait_for_messages(1, Duration::from_secs(10))
        .await
        .expect("reply");
    assert_eq!(sent["sid"], reply[0].sid.as_str());
    for line in startup.iter().chain(&lines) {
        assert!(!line.contains(secret_words), "a body was logged: {line}");
        assert!(
            !line.contains(&account.auth_token),
            "a secret was logged: {line}"
        );
        assert!(!line.contains("t0ken"), "the API token was logged: {line}");
    }
    let _ = server.child.kill().await;
    twilio.shutdown().await;
}

#[tokio::test]
async fn an_unknown_log_format_is_refused_with_the_accepted_values() {
    let out = std::process::Command::new(BIN)
        .args(["token", "list", "--database-url", "sqlite::memory:"])
        .env("CHATWIRE_LOG_FORMAT", "xml")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"pretty\" or \"json\""), "{err}");
}

#[tokio::test]
async fn tokens_are_listed_and_revoked_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("c.db").display());
    let run = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .args(args)
            .args(["--database-url", &db])
            .output()
            .expect("runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, token, _) = run(&["token", "create", "--name", "deploy"]);
    assert!(ok);
    let token = token.trim().to_owned();
    assert!(token.starts_with("cw_"));
    let (ok, listed, _) = run(&["token", "list"]);
    assert!(ok);
    let line = listed
        .lines()
        .find(|l| l.ends_with("\tdeploy"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(!listed.contains(&token), "list shows no token value");
    let id = line.split('\t').next().expect("id").to_owned();
    let (ok, revoked, _) = run(&["token", "revoke", &id]);
    assert!(ok, "{revoked}");
    assert!(revoked.contains(&id));
    let (ok, listed, _) = run(&["token", "list"]);
    assert!(ok);
    assert!(!listed.contains("deploy"), "{listed}");
    let (ok, _, err) = run(&["token", "revoke", "deploy"]);
    assert!(!ok);
    assert!(err.contains("no token has the id or name"), "{err}");
}
