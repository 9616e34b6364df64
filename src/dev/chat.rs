//! `chatwire dev --chat`: the phone page in the terminal. Each line typed is a text from the
//! person to the current demo bot; replies are printed as Chatwire sends them. `/bot NAME`
//! switches bots, `/quit` (or end of input) stops.
use super::phone::{self, Feed};
use super::Dev;
use anyhow::Context;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

/// How long without a new message counts as "the bot has answered" at the end of input.
const QUIET: Duration = Duration::from_millis(1500);
/// Longest wait for the last answers at the end of input.
const LAST_WAIT: Duration = Duration::from_secs(15);

fn pick<'a>(dev: &'a Dev, key: &str) -> Option<&'a super::demo::DemoBot> {
    dev.bots.iter().find(|b| b.key.eq_ignore_ascii_case(key))
}

/// What the terminal has shown.
#[derive(Default)]
struct Screen {
    feed: Feed,
    printed: HashSet<String>,
    /// A text was sent and no reply printed since.
    awaiting: bool,
}

impl Screen {
    /// Prints what is new on the person's phone; returns whether anything was.
    fn update(&mut self, dev: &Dev) -> bool {
        let mut any = false;
        for m in self.feed.poll(&dev.emulator) {
            any = true;
            let name = dev
                .bots
                .iter()
                .find(|b| b.number == m.number)
                .map_or(m.number.as_str(), |b| b.name);
            if m.direction == "out" && self.printed.insert(m.sid.clone()) {
                self.awaiting = false;
                println!("{name}: {}", m.body);
            }
            if matches!(m.status.as_str(), "failed" | "undelivered") {
                let code = m
                    .error_code
                    .map_or_else(String::new, |c| format!(" (error {c})"));
                println!("  (message {} {}{code})", m.sid, m.status);
            }
        }
        any
    }
}

pub async fn run(dev: &Dev, first: &str) -> anyhow::Result<()> {
    let mut current = pick(dev, first)
        .or_else(|| dev.bots.first())
        .context("no demo bots")?;
    let names: Vec<&str> = dev.bots.iter().map(|b| b.key).collect();
    println!(
        "Chatting with {} ({}) as {}. /bot {} switches, /quit stops.",
        current.name,
        current.number,
        super::PERSON,
        names.join("|")
    );
    let mut screen = Screen::default();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut tick = tokio::time::interval(Duration::from_millis(150));
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line.context("reading the terminal")? else { break };
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                if line == "/quit" {
                    return Ok(());
                }
                if let Some(key) = line.strip_prefix("/bot") {
                    match pick(dev, key.trim()) {
                        Some(bot) => {
                            current = bot;
                            println!("Now chatting with {} ({}).", bot.name, bot.number);
                        }
                        None => println!("No bot named \"{}\": {}", key.trim(), names.join(", ")),
                    }
                    continue;
                }
                match dev.emulator.inject_inbound(&phone::request(current.number, line)).await {
                    Ok(_) => screen.awaiting = true,
                    Err(err) => println!("  (not sent: {})", err.message),
                }
            }
            _ = tick.tick() => { screen.update(dev); }
        }
    }
    // End of input: wait for the answers still on their way.
    let started = Instant::now();
    let mut last_news = Instant::now();
    while started.elapsed() < LAST_WAIT && (screen.awaiting || last_news.elapsed() < QUIET) {
        if screen.update(dev) {
            last_news = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
