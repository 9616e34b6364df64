//! Issue 13 point 1: `chatwire dev` answers a text from its phone page (the page's HTTP and
//! SSE endpoints, as the page's script drives them) and from `--chat`.
use futures::StreamExt;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_chatwire");

fn dev(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("dev")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("CHATWIRE_API_TOKEN")
        .env_remove("CHATWIRE_DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs `chatwire dev --chat` with `input` typed; its standard output.
async fn chat(extra: &[&str], input: &str) -> String {
    let mut args = vec!["--chat"];
    args.extend_from_slice(extra);
    let mut child = dev(&args).spawn().expect("chatwire dev starts");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).await.expect("write");
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("chat ends at the end of input")
        .expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
async fn chat_mode_answers_a_text_in_the_terminal() {
    let stdout = chat(
        &[],
        "hello from the terminal\n/bot faq\nwhere can I park?\n",
    )
    .await;
    assert!(stdout.contains("Echo: hello from the terminal"), "{stdout}");
    assert!(stdout.contains("Now chatting with FAQ"), "{stdout}");
    assert!(
        stdout.contains("FAQ: Free parking behind the building."),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_kept_demo_database_starts_again_and_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("demo.db");
    let db = db.to_str().expect("path");
    for round in ["first", "second"] {
        let stdout = chat(&["--database", db], &format!("{round} run\n")).await;
        assert!(
            stdout.contains(&format!("Echo: {round} run")),
            "{round}: {stdout}"
        );
    }
}

#[tokio::test]
async fn the_phone_page_texts_a_bot_and_shows_the_reply_and_its_delivery_live() {
    let mut child = dev(&[]).spawn().expect("chatwire dev starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    let (page, token) = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("welcome printed")
            .expect("read")
            .unwrap_or_else(|| panic!("dev exited: {seen:?}"));
        seen.push(line.clone());
        if let Some(rest) = line.trim().strip_prefix("API token") {
            let token = rest.split_whitespace().next().expect("token").to_owned();
            let page = seen
                .iter()
                .find_map(|l| {
                    l.trim()
                        .strip_prefix("Phone page")
                        .map(|r| r.split_whitespace().next().unwrap_or("").to_owned())
                })
                .expect("phone page line");
            break (page, token);
        }
    };
    let base = page.trim_end_matches("/dev/phone").to_owned();
    let client = reqwest::Client::new();
    let html = client
        .get(&page)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(html.contains("Chatwire dev phone") && html.contains("/dev/phone/events"));
    let bots: Value = client
        .get(format!("{base}/dev/phone/bots"))
        .send()
        .await
        .expect("bots")
        .json()
        .await
        .expect("json");
    let keys: Vec<&str> = bots["bots"]
        .as_array()
        .expect("bots")
        .iter()
        .filter_map(|b| b["key"].as_str())
        .collect();
    assert_eq!(keys, ["echo", "flow", "faq"]);
    let echo = bots["bots"][0]["number"]
        .as_str()
        .expect("number")
        .to_owned();
    // The printed token works against the API, and the demo bots are there.
    let listed: Value = client
        .get(format!("{base}/v1/bot/list"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(3));

    let events = client
        .get(format!("{base}/dev/phone/events"))
        .send()
        .await
        .expect("sse");
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let mut stream = events.bytes_stream();
    let sent: Value = client
        .post(format!("{base}/dev/phone/send"))
        .json(&json!({"to": echo, "body": "hi from the browser"}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(sent["status"], 200, "{sent}");
    let mut buffer = String::new();
    let mut statuses = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !statuses.contains(&"delivered".to_owned()) {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("no delivered status; saw {buffer}"))
            .expect("stream open")
            .expect("chunk");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        statuses = buffer
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter(|m| m["direction"] == "out" && m["body"] == "hi from the browser")
            .filter_map(|m| m["status"].as_str().map(str::to_owned))
            .collect();
    }
    assert!(
        buffer.contains("\"direction\":\"in\""),
        "the person's own text is on the phone too"
    );
    let bad = client
        .post(format!("{base}/dev/phone/send"))
        .json(&json!({"to": "+19999999999", "body": "hi"}))
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status(), 400);
    let _ = child.kill().await;
}
