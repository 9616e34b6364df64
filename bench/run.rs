//! The run: the ceiling, then each backend with its own emulator and server, then the summary
//! (Markdown on stdout, optionally JSON).
use crate::load::{ClosedLoop, Load, OpenLoop, Senders, Target};
use crate::procs::{chatwire_binary, free_port, Child, CpuProbe, Memory};
use crate::setup;
use crate::stats::PhaseResult;
use crate::Opts;
use chatwire::emulator::{DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NUMBER: &str = "+15005550006";
const API_TOKEN: &str = "bench-api-token";
/// Lifts the per-number send rate (production default 1 msg/s for a long code, which would cap
/// the whole benchmark at one reply per second).
const SEND_RATE: &str = "1000000";

#[derive(Debug, Serialize)]
struct Backend {
    backend: &'static str,
    phases: Vec<PhaseResult>,
    /// After start-up and setup.
    memory_idle: Memory,
    /// Before the restart: its peak is the peak under every overload phase.
    memory_overload: Memory,
    /// The restarted process before seeding.
    memory_restarted: Memory,
    /// The restarted process after the load from seeded senders.
    memory_after_sessions: Memory,
    seed_secs: f64,
    sessions_in_db: i64,
}

#[derive(Debug, Serialize)]
struct Ceiling {
    phases: Vec<PhaseResult>,
    memory: Memory,
}

fn senders(opts: &Opts) -> Senders {
    Senders {
        prefix: "+1555",
        count: opts.senders,
        stride: 1,
    }
}

/// Runs everything the options ask for and prints the summary.
pub async fn all(opts: Opts) -> anyhow::Result<()> {
    let chatwire = chatwire_binary(opts.chatwire.clone())?;
    let dir = std::env::temp_dir().join(format!("chatwire-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    println!("# chatwire-bench\n\n{}\n", machine());
    println!("working directory {} (logs, SQLite file)\n", dir.display());

    let ceiling = ceiling(&opts, &dir).await?;
    let mut backends = Vec::new();
    if !opts.no_sqlite {
        let url = format!("sqlite://{}", dir.join("chatwire.db").display());
        backends.push(backend("sqlite", &url, &opts, &chatwire, &dir).await?);
    }
    if let Some(admin) = &opts.postgres {
        let name = format!("chatwire_bench_{}", std::process::id());
        let url = setup::fresh_postgres(admin, &name).await?;
        let result = backend("postgres", &url, &opts, &chatwire, &dir).await;
        if opts.keep {
            println!("kept PostgreSQL database {url}\n");
        } else if let Err(err) = setup::drop_postgres(admin, &name).await {
            eprintln!("could not drop database {name}: {err:#}");
        }
        backends.push(result?);
    }
    summary(&ceiling, &backends, opts.rate);
    if let Some(path) = &opts.json {
        let all =
            serde_json::json!({"machine": machine(), "ceiling": ceiling, "backends": backends});
        std::fs::write(path, serde_json::to_string_pretty(&all)?)?;
    }
    if !opts.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

async fn ceiling(opts: &Opts, dir: &Path) -> anyhow::Result<Ceiling> {
    let addr = format!("127.0.0.1:{}", free_port()?);
    let url = format!("http://{addr}");
    let me = std::env::current_exe()?;
    let args = ["ceiling".to_owned(), "--listen".to_owned(), addr];
    let server = Child::start("ceiling", &me, &args, &[], dir, url.clone(), "/healthz").await?;
    let target = Target {
        webhook_url: format!("{url}/v1/integration/twilio/ceiling/webhook"),
        auth_token: DEFAULT_AUTH_TOKEN.to_owned(),
        account_sid: DEFAULT_ACCOUNT_SID.to_owned(),
        to: NUMBER.to_owned(),
    };
    let load = Arc::new(Load::new(target, None)?);
    let cpu = CpuProbe {
        processes: vec![("ceiling", server.pid)],
        postgres: false,
    };
    eprintln!("ceiling: burst");
    let mut phases = vec![load.closed(burst(opts, "ceiling burst"), &cpu).await];
    eprintln!("ceiling: open loop");
    phases.push(
        load.open(open(opts, &format!("ceiling {} msg/s", opts.rate)), &cpu)
            .await,
    );
    let memory = server.memory();
    server.stop().await;
    Ok(Ceiling { phases, memory })
}

fn burst(opts: &Opts, name: &str) -> ClosedLoop {
    ClosedLoop {
        name: name.to_owned(),
        concurrency: opts.concurrency,
        duration: Duration::from_secs(opts.burst_secs),
        max_messages: u64::MAX / 4,
        window: None,
        senders: senders(opts),
        drain: Duration::from_secs(opts.drain_secs),
    }
}

fn open(opts: &Opts, name: &str) -> OpenLoop {
    OpenLoop {
        name: name.to_owned(),
        rate: opts.rate,
        duration: Duration::from_secs(opts.rate_secs),
        senders: senders(opts),
        drain: Duration::from_secs(opts.drain_secs),
    }
}

async fn backend(
    name: &'static str,
    database_url: &str,
    opts: &Opts,
    chatwire: &Path,
    dir: &Path,
) -> anyhow::Result<Backend> {
    eprintln!("{name}: starting emulator and server");
    let emu_addr = format!("127.0.0.1:{}", free_port()?);
    let emu_url = format!("http://{emu_addr}");
    let emu_args = [
        "twilio-emulator".to_owned(),
        "--listen".to_owned(),
        emu_addr,
        "--status-delay-ms".to_owned(),
        opts.status_delay_ms.to_string(),
    ];
    let emulator = Child::start(
        "emulator",
        chatwire,
        &emu_args,
        &[],
        dir,
        emu_url.clone(),
        "/_emulator/sent",
    )
    .await?;
    let addr = format!("127.0.0.1:{}", free_port()?);
    let url = format!("http://{addr}");
    let mut env = vec![
        ("CHATWIRE_LISTEN", addr),
        ("CHATWIRE_DATABASE_URL", database_url.to_owned()),
        ("CHATWIRE_PUBLIC_URL", url.clone()),
        ("CHATWIRE_API_TOKEN", API_TOKEN.to_owned()),
        ("CHATWIRE_SECRET_KEY", "ab".repeat(32)),
        ("CHATWIRE_TWILIO_API_URL", emu_url.clone()),
        ("CHATWIRE_SEND_RATE", SEND_RATE.to_owned()),
    ];
    if let Some(workers) = opts.workers {
        env.push(("CHATWIRE_WORKERS", workers.to_string()));
    }
    let log_name = if name == "sqlite" {
        "serve-sqlite"
    } else {
        "serve-postgres"
    };
    let serve = ["serve".to_owned()];
    let start_server = || {
        Child::start(
            log_name,
            chatwire,
            &serve,
            &env,
            dir,
            url.clone(),
            "/readyz",
        )
    };
    let server = start_server().await?;
    let integration = setup::create(
        &url,
        API_TOKEN,
        DEFAULT_ACCOUNT_SID,
        DEFAULT_AUTH_TOKEN,
        NUMBER,
    )
    .await?;
    let target = Target {
        webhook_url: integration.webhook_url.clone(),
        auth_token: DEFAULT_AUTH_TOKEN.to_owned(),
        account_sid: DEFAULT_ACCOUNT_SID.to_owned(),
        to: NUMBER.to_owned(),
    };
    let load = Arc::new(Load::new(target, Some(emulator.url.clone()))?);
    let cpu = CpuProbe {
        processes: vec![("serve", server.pid), ("emulator", emulator.pid)],
        postgres: name == "postgres",
    };
    let memory_idle = server.memory();
    let mut phases = Vec::new();

    eprintln!("{name}: warm-up");
    let warmup = ClosedLoop {
        name: format!("{name} warm-up"),
        concurrency: 16,
        duration: Duration::from_secs(2),
        max_messages: u64::MAX / 4,
        window: Some(200),
        senders: senders(opts),
        drain: Duration::from_secs(opts.drain_secs),
    };
    phases.push(load.closed(warmup, &cpu).await);
    settle(opts, database_url).await;

    eprintln!("{name}: burst");
    phases.push(
        load.closed(burst(opts, &format!("{name} burst")), &cpu)
            .await,
    );
    settle(opts, database_url).await;

    eprintln!("{name}: end-to-end");
    let e2e = ClosedLoop {
        name: format!("{name} end-to-end"),
        concurrency: opts.concurrency,
        duration: Duration::from_secs(opts.e2e_secs),
        max_messages: u64::MAX / 4,
        window: Some(opts.window),
        senders: senders(opts),
        drain: Duration::from_secs(opts.drain_secs),
    };
    phases.push(load.closed(e2e, &cpu).await);
    settle(opts, database_url).await;

    eprintln!("{name}: open loop");
    phases.push(
        load.open(open(opts, &format!("{name} {} msg/s", opts.rate)), &cpu)
            .await,
    );
    settle(opts, database_url).await;

    eprintln!("{name}: open loop, low rate");
    let low = OpenLoop {
        name: format!("{name} {} msg/s", opts.low_rate),
        rate: opts.low_rate,
        ..open(opts, "")
    };
    phases.push(load.open(low, &cpu).await);
    settle(opts, database_url).await;

    // The memory target is about live sessions, not about the overload phases above (whose
    // buffers the allocator keeps): a fresh process on the same database takes the last phase.
    let memory_overload = server.memory();
    server.stop().await;
    let server = start_server().await?;
    let cpu = CpuProbe {
        processes: vec![("serve", server.pid), ("emulator", emulator.pid)],
        postgres: name == "postgres",
    };
    let memory_restarted = server.memory();
    eprintln!("{name}: seeding {} sessions", opts.sessions);
    let seeded: Vec<String> = (0..opts.sessions).map(|i| format!("+1666{i:07}")).collect();
    let started = Instant::now();
    setup::seed_sessions(database_url, &integration, &seeded).await?;
    let seed_secs = started.elapsed().as_secs_f64();
    eprintln!("{name}: load from seeded senders");
    let sessions = ClosedLoop {
        name: format!("{name} 100k sessions"),
        concurrency: opts.concurrency,
        duration: Duration::from_secs(opts.sessions_secs),
        max_messages: opts.sessions,
        window: Some(opts.window),
        // 7919 is prime, so the first `sessions` messages come from distinct seeded senders.
        senders: Senders {
            prefix: "+1666",
            count: opts.sessions,
            stride: 7919,
        },
        drain: Duration::from_secs(opts.drain_secs),
    };
    phases.push(load.closed(sessions, &cpu).await);
    settle(opts, database_url).await;
    let memory_after_sessions = server.memory();
    let sessions_in_db = setup::count_sessions(database_url).await.unwrap_or(-1);

    drop(load);
    server.stop().await;
    emulator.stop().await;
    Ok(Backend {
        backend: name,
        phases,
        memory_idle,
        memory_overload,
        memory_restarted,
        memory_after_sessions,
        seed_secs,
        sessions_in_db,
    })
}

/// Lets status callbacks of the last replies land before the next phase starts.
/// With `--vacuum` on PostgreSQL, also vacuums the database, as autovacuum would between
/// phases on a server where it is on (the PostgreSQL default).
async fn settle(opts: &Opts, database_url: &str) {
    tokio::time::sleep(Duration::from_secs(1)).await;
    if opts.vacuum && database_url.starts_with("postgres") {
        if let Err(err) = setup::vacuum(database_url).await {
            eprintln!("VACUUM failed: {err:#}");
        }
    }
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "machine: {cores} cores ({model}), {:.1} GiB RAM, Linux {}",
        mem_kib as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn summary(ceiling: &Ceiling, backends: &[Backend], rate: f64) {
    println!("## Phases\n\n{}", PhaseResult::header());
    for phase in ceiling
        .phases
        .iter()
        .chain(backends.iter().flat_map(|b| &b.phases))
    {
        println!("{}", phase.row());
    }
    let ceiling_rate = ceiling.phases.first().map_or(0.0, |p| p.webhook_per_sec);
    println!("\n## Memory of `chatwire serve` (MiB)\n");
    println!("| backend | idle after setup | peak, load phases | restarted, idle | RSS after load from seeded senders | peak of restarted process | sessions in DB | seed s |\n|---|---|---|---|---|---|---|---|");
    for b in backends {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.1} |",
            b.backend,
            mib(b.memory_idle.rss_kib),
            mib(b.memory_overload.peak_kib),
            mib(b.memory_restarted.rss_kib),
            mib(b.memory_after_sessions.rss_kib),
            mib(b.memory_after_sessions.peak_kib),
            b.sessions_in_db,
            b.seed_secs,
        );
    }
    println!(
        "\nceiling (bare axum) peak RSS {:.1} MiB\n",
        mib(ceiling.memory.peak_kib)
    );
    println!("## Against the targets\n");
    for b in backends {
        let phase = |suffix: &str| b.phases.iter().find(|p| p.name.ends_with(suffix));
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        if let Some(p) = phase("end-to-end") {
            let rate = p.e2e_per_sec.unwrap_or(0.0);
            println!(
                "- {}: end to end {rate:.0} msg/s (target >= 3,000 on SQLite: {}); {:.1}% of the ceiling's {ceiling_rate:.0} webhooks/s",
                b.backend,
                verdict(rate >= 3000.0),
                100.0 * rate / ceiling_rate.max(1e-9)
            );
        }
        if let Some(p) = phase("burst") {
            println!(
                "- {}: webhooks accepted at full speed {:.0}/s, {:.1}% of the ceiling",
                b.backend,
                p.webhook_per_sec,
                100.0 * p.webhook_per_sec / ceiling_rate.max(1e-9)
            );
        }
        if let Some(p) = phase(&format!(" {rate} msg/s")) {
            let p99 = p.webhook.map_or(f64::INFINITY, |w| w.p99_ms);
            println!(
                "- {}: webhook p99 at {rate} msg/s {p99:.2} ms (target < 10 ms at 1000: {})",
                b.backend,
                verdict(p99 < 10.0)
            );
        }
        let rss = mib(b
            .memory_after_sessions
            .rss_kib
            .max(b.memory_after_sessions.peak_kib));
        println!(
            "- {}: peak RSS with {} live sessions {rss:.1} MiB (target < 150 MB: {})",
            b.backend,
            b.sessions_in_db,
            verdict(rss * 1.048_576 < 150.0)
        );
    }
}
