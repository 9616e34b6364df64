//! `chatwire-bench`: the load generator of issue 3 and the figures in `bench/REPORT.md`.
//!
//! It starts the release `chatwire` binary twice per backend (`chatwire twilio-emulator` as
//! Twilio, `chatwire serve` on a fresh SQLite file and, with `--postgres`, on a fresh
//! PostgreSQL database), creates an echo bot and an integration through the management API,
//! and drives signed webhooks from many senders through it:
//!
//! 1. `burst`: closed loop at full speed, no end-to-end bound: how fast webhooks are accepted,
//!    then how fast the backlog turns into replies;
//! 2. `end-to-end`: closed loop with at most `--window` messages outstanding end to end: the
//!    sustained messages/s from webhook to reply accepted by Twilio;
//! 3. `1,000 msg/s`: open loop at `--rate`: webhook response and inbound-to-Twilio latency,
//!    then the same at `--low-rate`, where the server keeps up;
//! 4. `100k sessions`: after seeding `--sessions` live sessions directly into the database,
//!    closed loop from those senders; resident memory is read afterwards.
//!
//! A bare axum server answering 200 (`chatwire-bench ceiling`) takes phases 1 and 3 in the
//! same run, as the ceiling of what this machine and load generator can do. Everything listens
//! on 127.0.0.1, every phase is bounded in time, and children are killed on exit.
mod ceiling;
mod cost;
mod load;
mod procs;
mod run;
mod server_side;
mod setup;
mod stats;

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "chatwire-bench",
    about = "Load generator and report for Chatwire's Twilio channel"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    opts: Opts,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Internal: the bare axum "200 OK" server the bench measures as its ceiling.
    #[command(hide = true)]
    Ceiling {
        #[arg(long)]
        listen: SocketAddr,
    },
}

/// What to run and how hard.
#[derive(Args, Debug, Clone)]
pub struct Opts {
    /// The `chatwire` binary (default: next to this executable, i.e. target/release/chatwire).
    #[arg(long)]
    pub chatwire: Option<PathBuf>,
    /// Admin URL of a PostgreSQL server; a fresh database is created on it and dropped after.
    #[arg(long)]
    pub postgres: Option<String>,
    /// Skip the SQLite run.
    #[arg(long)]
    pub no_sqlite: bool,
    /// Distinct senders of the load phases.
    #[arg(long, default_value_t = 1_000)]
    pub senders: u64,
    /// Concurrent webhook connections in closed-loop phases.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Messages outstanding end to end (sent, reply not yet at Twilio) in the end-to-end phase.
    #[arg(long, default_value_t = 500)]
    pub window: usize,
    /// Length of the full-speed burst, seconds.
    #[arg(long, default_value_t = 2)]
    pub burst_secs: u64,
    /// Length of the windowed end-to-end phase, seconds.
    #[arg(long, default_value_t = 10)]
    pub e2e_secs: u64,
    /// Open-loop rate, messages per second.
    #[arg(long, default_value_t = 1_000.0)]
    pub rate: f64,
    /// Length of the open-loop phase, seconds (10 s gives 10,000 samples at 1,000 msg/s, so
    /// the p99 rests on 100 of them rather than 30).
    #[arg(long, default_value_t = 10)]
    pub rate_secs: u64,
    /// A second, gentler open-loop rate: latency when the server keeps up.
    #[arg(long, default_value_t = 100.0)]
    pub low_rate: f64,
    /// Live sessions seeded before the memory phase.
    #[arg(long, default_value_t = 100_000)]
    pub sessions: u64,
    /// Length of the load after seeding, seconds.
    #[arg(long, default_value_t = 10)]
    pub sessions_secs: u64,
    /// Longest wait for outstanding replies after a phase, seconds.
    #[arg(long, default_value_t = 60)]
    pub drain_secs: u64,
    /// The emulator's pause before each status callback (sent, delivered), as in its CLI.
    #[arg(long, default_value_t = 200)]
    pub status_delay_ms: u64,
    /// PostgreSQL: `VACUUM ANALYZE` between phases (for servers with autovacuum off).
    #[arg(long)]
    pub vacuum: bool,
    /// `CHATWIRE_WORKERS` for the server (default: the server's own default).
    #[arg(long)]
    pub workers: Option<usize>,
    /// `CHATWIRE_SEND_WORKERS` for the server (default: the server's own default).
    #[arg(long)]
    pub send_workers: Option<usize>,
    /// Where `bench/peers/setup.sh` installed the quickstart peers (default:
    /// target/bench-peers beside this executable's directory).
    #[arg(long)]
    pub peers: Option<PathBuf>,
    /// Do not run the quickstart peers.
    #[arg(long)]
    pub no_peers: bool,
    /// PostgreSQL: also run the end-to-end phase with this many `chatwire serve` replicas on
    /// the one database, the webhooks spread across them (1: not run).
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
    /// The burst debounce window of the bursts phase, milliseconds.
    #[arg(long, default_value_t = 500)]
    pub burst_window_ms: u64,
    /// Write every figure as JSON here too.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Keep the temporary directory (SQLite file, logs) and the PostgreSQL database.
    #[arg(long)]
    pub keep: bool,
    /// Instead of the phases: put this many messages through SQLite and report what
    /// `chatwire serve` spent per message (CPU, context switches; instructions under callgrind).
    #[arg(long)]
    pub count: Option<u64>,
    /// With `--count`: run `chatwire serve` under this command, e.g.
    /// "valgrind --tool=callgrind"; its counters are zeroed after the warm-up and dumped after
    /// the counted messages.
    #[arg(long)]
    pub serve_wrapper: Option<String>,
    /// Stop everything after this many seconds, whatever state the run is in.
    #[arg(long, default_value_t = 900)]
    pub time_limit_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Ceiling { listen }) = cli.command {
        return ceiling::serve(listen).await;
    }
    let limit = Duration::from_secs(cli.opts.time_limit_secs);
    if let Some(count) = cli.opts.count {
        return match tokio::time::timeout(limit, cost::run(cli.opts, count)).await {
            Ok(result) => result,
            Err(_) => anyhow::bail!("stopped after the {}s time limit", limit.as_secs()),
        };
    }
    match tokio::time::timeout(limit, run::all(cli.opts)).await {
        Ok(result) => result,
        Err(_) => anyhow::bail!("stopped after the {}s time limit", limit.as_secs()),
    }
}
