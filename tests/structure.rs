//! The module rules of the crate's top documentation (`src/lib.rs`) that matter most, checked
//! on the source text: a rule broken in a file fails here with the file and the offending line.
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Does `line` contain `word` not as part of a longer identifier (`Sql` but not `SqlState`)?
fn names(line: &str, word: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    line.match_indices(word).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

/// `file:line: text` for every line of `files` naming one of `words`.
fn offences(files: &[PathBuf], words: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (n, line) in text.lines().enumerate() {
            if let Some(word) = words.iter().find(|w| names(line, w)) {
                found.push(format!(
                    "{}:{}: {word}: {}",
                    file.display(),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    found
}

/// What engines must not touch: the HTTP edge, the application state, the database driver and
/// SQL (the statement builder, and statements written out).
const NOT_IN_BOT: &[&str] = &[
    "crate::http",
    "crate::app",
    "AppState",
    "sqlx",
    "Sql",
    "SELECT",
    "INSERT INTO",
    "DELETE FROM",
];

#[test]
fn nothing_in_src_bot_imports_http_or_app_or_runs_sql() {
    let files = rust_files(&src().join("bot"));
    assert!(
        files.iter().any(|f| f.ends_with("bot/mod.rs")),
        "src/bot was not read: {files:?}"
    );
    let found = offences(&files, NOT_IN_BOT);
    assert!(
        found.is_empty(),
        "src/bot must reach storage only through bot::EngineStore (see src/lib.rs):\n{}",
        found.join("\n")
    );
}

#[test]
fn only_the_channel_modules_name_twilios_rest_client() {
    let allowed = [src().join("channel"), src().join("emulator")];
    let files: Vec<PathBuf> = rust_files(&src())
        .into_iter()
        .filter(|f| !allowed.iter().any(|dir| f.starts_with(dir)))
        .collect();
    assert!(files.iter().any(|f| f.ends_with("src/outbox.rs")));
    let found = offences(&files, &["TwilioClient", "rest_client"]);
    assert!(
        found.is_empty(),
        "only src/channel (and the emulator) may name Twilio's REST client (see src/lib.rs):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_pipeline_and_the_outbox_know_only_the_channel_seam() {
    let mut files = rust_files(&src().join("pipeline"));
    files.push(src().join("outbox.rs"));
    files.push(src().join("dispatch.rs"));
    files.push(src().join("http").join("webhooks").join("mod.rs"));
    assert!(files.iter().any(|f| f.ends_with("pipeline/turn.rs")));
    let found = offences(&files, &["channel::twilio", "twilio::", "TwilioMessaging"]);
    assert!(
        found.is_empty(),
        "the pipeline, the outbox and the webhook edge reach channels only through \
         channel::Channel (see src/lib.rs):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checks_see_a_name_only_as_a_whole_word() {
    assert!(names("use crate::store::{Db, Sql};", "Sql"));
    assert!(names("let q = Sql::new(\"x\");", "Sql"));
    assert!(names("use sqlx::Row;", "sqlx"));
    assert!(names("use crate::http::api;", "crate::http"));
    assert!(!names("enum SqlState {}", "Sql"));
    assert!(!names("let my_sqlx_thing = 1;", "sqlx"));
    assert!(!names("let apps = AppStateful;", "AppState"));
}
