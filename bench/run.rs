//! The run: the ceiling, then each backend with its own emulator and server, then the summary
//! (Markdown on stdout, optionally JSON).
use crate::load::{ClosedLoop, Load, OpenLoop, Senders, Target};
use crate::procs::{chatwire_binary, free_port, Child, CpuProbe, Memory};
use crate::server_side;
use crate::setup;
use crate::stats::PhaseResult;
use crate::Opts;
use chatwire::emulator::{DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NUMBER: &str = "+15005550006";
use setup::API_TOKEN;

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

/// A server Chatwire is compared with in the same run: the bare axum ceiling, and the Node and
/// Python quickstarts (`bench/peers/`), which verify, keep a session in memory and answer with
/// inline TwiML.
#[derive(Debug, Serialize)]
struct Reference {
    name: &'static str,
    phases: Vec<PhaseResult>,
    memory: Memory,
}

fn senders(opts: &Opts) -> Senders {
    Senders {
        prefix: "+1555",
        count: opts.senders,
        stride: 1,
        repeat: 1,
    }
}

/// Runs everything the options ask for and prints the summary.
pub async fn all(opts: Opts) -> anyhow::Result<()> {
    let chatwire = chatwire_binary(opts.chatwire.clone())?;
    let dir = std::env::temp_dir().join(format!("chatwire-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    println!("# chatwire-bench\n\n{}\n", machine());
    println!("working directory {} (logs, SQLite file)\n", dir.display());

    let me = std::env::current_exe()?;
    let addr = format!("127.0.0.1:{}", free_port()?);
    let args = ["ceiling".to_owned(), "--listen".to_owned(), addr.clone()];
    let ceiling = reference("ceiling", &me, &args, &[], addr, &opts, &dir).await?;
    let mut references = vec![ceiling];
    references.extend(peers(&opts, &dir).await);
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
    summary(&references, &backends, opts.rate, opts.low_rate);
    if let Some(path) = &opts.json {
        let all = serde_json::json!({"machine": machine(), "references": references, "backends": backends});
        std::fs::write(path, serde_json::to_string_pretty(&all)?)?;
    }
    if !opts.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Runs the burst and open-loop phases against a reference server started as `program args`
/// (listening on `addr`, answering `GET /healthz`).
async fn reference(
    name: &'static str,
    program: &Path,
    args: &[String],
    env: &[(&str, String)],
    addr: String,
    opts: &Opts,
    dir: &Path,
) -> anyhow::Result<Reference> {
    let url = format!("http://{addr}");
    let server = Child::start(name, program, args, env, dir, url.clone(), "/healthz").await?;
    let target = Target {
        webhook_urls: vec![format!("{url}/v1/integration/twilio/{name}/webhook")],
        auth_token: DEFAULT_AUTH_TOKEN.to_owned(),
        account_sid: DEFAULT_ACCOUNT_SID.to_owned(),
        to: NUMBER.to_owned(),
    };
    let load = Arc::new(Load::new(target, None)?);
    let cpu = CpuProbe {
        processes: vec![(name, server.pid)],
        postgres: false,
    };
    eprintln!("{name}: burst");
    let mut phases = vec![
        load.closed(burst(opts, &format!("{name} burst")), &cpu)
            .await,
    ];
    eprintln!("{name}: open loop");
    let rated = open(opts, &format!("{name} {} msg/s", opts.rate));
    phases.push(load.open(rated, &cpu).await);
    let memory = server.memory();
    server.stop().await;
    Ok(Reference {
        name,
        phases,
        memory,
    })
}

/// The quickstart peers installed by `bench/peers/setup.sh`; a peer that is not installed (or
/// fails to start) is left out with a note.
async fn peers(opts: &Opts, dir: &Path) -> Vec<Reference> {
    let Some(root) = opts.peers.clone().or_else(|| {
        let exe = std::env::current_exe().ok()?;
        Some(exe.parent()?.parent()?.join("bench-peers"))
    }) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let token = ("TWILIO_AUTH_TOKEN", DEFAULT_AUTH_TOKEN.to_owned());
    let express = root.join("express");
    let flask = root.join("flask");
    let candidates: [(&'static str, PathBuf, Vec<String>, bool); 2] = [
        (
            "express",
            PathBuf::from("node"),
            vec![express.join("server.js").display().to_string()],
            express.join("node_modules").is_dir(),
        ),
        (
            "flask",
            flask.join("venv/bin/python"),
            vec![flask.join("app.py").display().to_string()],
            flask.join("venv/bin/python").is_file(),
        ),
    ];
    for (name, program, args, installed) in candidates {
        if opts.no_peers || !installed {
            eprintln!("{name}: not run (install with bench/peers/setup.sh)");
            continue;
        }
        let Ok(port) = free_port() else { continue };
        let env = [("PORT", port.to_string()), token.clone()];
        let addr = format!("127.0.0.1:{port}");
        match reference(name, &program, &args, &env, addr, opts, dir).await {
            Ok(r) => out.push(r),
            Err(err) => eprintln!("{name}: not run: {err:#}"),
        }
    }
    out
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

/// The sustained end-to-end phase: closed loop with at most `--window` messages outstanding.
fn end_to_end(opts: &Opts, name: &str) -> ClosedLoop {
    ClosedLoop {
        name: name.to_owned(),
        concurrency: opts.concurrency,
        duration: Duration::from_secs(opts.e2e_secs),
        max_messages: u64::MAX / 4,
        window: Some(opts.window),
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
    let env = setup::serve_env(opts, &addr, database_url, &emu_url);
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
        webhook_urls: vec![integration.webhook_url.clone()],
        auth_token: DEFAULT_AUTH_TOKEN.to_owned(),
        account_sid: DEFAULT_ACCOUNT_SID.to_owned(),
        to: NUMBER.to_owned(),
    };
    let load = Arc::new(Load::new(target.clone(), Some(emulator.url.clone()))?);
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
    phases.push(measured(&url, load.closed(warmup, &cpu)).await);
    settle(opts, database_url).await;

    eprintln!("{name}: burst");
    let burst = burst(opts, &format!("{name} burst"));
    phases.push(measured(&url, load.closed(burst, &cpu)).await);
    settle(opts, database_url).await;

    eprintln!("{name}: end-to-end");
    let e2e = end_to_end(opts, &format!("{name} end-to-end"));
    phases.push(measured(&url, load.closed(e2e, &cpu)).await);
    settle(opts, database_url).await;

    eprintln!("{name}: open loop");
    let rated = open(opts, &format!("{name} {} msg/s", opts.rate));
    phases.push(measured(&url, load.open(rated, &cpu)).await);
    settle(opts, database_url).await;

    eprintln!("{name}: open loop, low rate");
    let low = OpenLoop {
        name: format!("{name} {} msg/s", opts.low_rate),
        rate: opts.low_rate,
        ..open(opts, "")
    };
    phases.push(measured(&url, load.open(low, &cpu)).await);
    settle(opts, database_url).await;

    // Burst debounce: each sender texts three messages 10 ms apart (the low open-loop rate,
    // senders repeating), without a burst window and with one.
    for window in [0, opts.burst_window_ms] {
        setup::set_burst_window(&url, API_TOKEN, &integration.id, window).await?;
        eprintln!("{name}: bursts of 3, window {window} ms");
        let bursts = OpenLoop {
            name: format!("{name} bursts of 3, window {window} ms"),
            rate: opts.low_rate,
            senders: Senders {
                repeat: 3,
                ..senders(opts)
            },
            ..open(opts, "")
        };
        phases.push(measured(&url, load.open(bursts, &cpu)).await);
        settle(opts, database_url).await;
    }
    setup::set_burst_window(&url, API_TOKEN, &integration.id, 0).await?;

    // Scale-out: more replicas on the one PostgreSQL database, the webhooks spread across them.
    if name == "postgres" && opts.replicas > 1 {
        const NAMES: [&str; 4] = ["replica-2", "replica-3", "replica-4", "replica-5"];
        let mut replicas = Vec::new();
        let mut urls = vec![integration.webhook_url.clone()];
        let mut processes = vec![("serve", server.pid), ("emulator", emulator.pid)];
        for replica in NAMES.iter().take(opts.replicas - 1) {
            let addr = format!("127.0.0.1:{}", free_port()?);
            let base = format!("http://{addr}");
            let mut env = env.clone();
            for (key, value) in env.iter_mut() {
                match *key {
                    "CHATWIRE_LISTEN" => *value = addr.clone(),
                    "CHATWIRE_PUBLIC_URL" => *value = base.clone(),
                    _ => {}
                }
            }
            let child = Child::start(
                replica,
                chatwire,
                &serve,
                &env,
                dir,
                base.clone(),
                "/readyz",
            )
            .await?;
            urls.push(format!(
                "{base}/v1/integration/twilio/{}/webhook",
                integration.id
            ));
            processes.push((replica, child.pid));
            replicas.push(child);
        }
        let spread = Target {
            webhook_urls: urls,
            ..target.clone()
        };
        let spread = Arc::new(
            Load::new(spread, Some(emulator.url.clone()))?.starting_at(load.next_number()),
        );
        let cpu = CpuProbe {
            processes,
            postgres: true,
        };
        eprintln!("{name}: end-to-end, {} replicas", opts.replicas);
        let e2e = end_to_end(
            opts,
            &format!("{name} end-to-end, {} replicas", opts.replicas),
        );
        phases.push(spread.closed(e2e, &cpu).await);
        settle(opts, database_url).await;
        load.skip_to(spread.next_number());
        for child in replicas {
            child.stop().await;
        }
    }

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
            repeat: 1,
        },
        drain: Duration::from_secs(opts.drain_secs),
    };
    phases.push(measured(&url, load.closed(sessions, &cpu)).await);
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

/// Runs a phase against the one server at `url` and adds its own webhook handling time.
async fn measured(url: &str, phase: impl std::future::Future<Output = PhaseResult>) -> PhaseResult {
    let client = reqwest::Client::new();
    let before = server_side::scrape(&client, url).await;
    let mut result = phase.await;
    let after = server_side::scrape(&client, url).await;
    result.server_webhook_ms = after
        .quantile_since(&before, 0.5)
        .zip(after.quantile_since(&before, 0.99));
    result
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

fn summary(references: &[Reference], backends: &[Backend], rate: f64, low_rate: f64) {
    println!("## Phases\n\n{}", PhaseResult::header());
    for phase in references
        .iter()
        .flat_map(|r| &r.phases)
        .chain(backends.iter().flat_map(|b| &b.phases))
    {
        println!("{}", phase.row());
    }
    let open_name = format!(" {rate} msg/s");
    let reference_of = |name: &str| references.iter().find(|r| r.name == name);
    let ceiling_rate = reference_of("ceiling")
        .and_then(|r| r.phases.first())
        .map_or(0.0, |p| p.webhook_per_sec);
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
    for r in references {
        println!("\n{} peak RSS {:.1} MiB", r.name, mib(r.memory.peak_kib));
    }

    // Chatwire's figure over each reference's, per phase, from this run.
    println!(
        "\n## Chatwire against the ceiling and the quickstarts (same run, same load generator)\n"
    );
    print!("| Chatwire figure |");
    for r in references {
        print!(" / {} webhooks/s |", r.name);
    }
    println!();
    println!("|---|{}", "---|".repeat(references.len()));
    for b in backends {
        let phase = |suffix: &str| b.phases.iter().find(|p| p.name.ends_with(suffix));
        let rows = [
            (
                "webhooks/s at full speed (burst)",
                phase("burst").map(|p| p.webhook_per_sec),
            ),
            (
                "end-to-end msg/s",
                phase("end-to-end").and_then(|p| p.e2e_per_sec),
            ),
        ];
        for (label, value) in rows {
            let Some(value) = value else { continue };
            print!("| {} {label}: {value:.0} |", b.backend);
            for r in references {
                let theirs = r.phases.first().map_or(0.0, |p| p.webhook_per_sec);
                print!(" {:.3} |", value / theirs.max(1e-9));
            }
            println!();
        }
        if let Some(p99) = phase(&open_name).and_then(|p| p.webhook.map(|w| w.p99_ms)) {
            print!(
                "| {} webhook p99 at {rate} msg/s: {p99:.2} ms (theirs) |",
                b.backend
            );
            for r in references {
                let theirs = r
                    .phases
                    .iter()
                    .find(|p| p.name.ends_with(&open_name))
                    .and_then(|p| p.webhook.map(|w| w.p99_ms));
                print!(
                    " {} |",
                    theirs.map_or("-".to_owned(), |t| format!("{t:.2} ms"))
                );
            }
            println!();
        }
    }

    println!("\n## Against the targets\n");
    for b in backends {
        let phase = |suffix: &str| b.phases.iter().find(|p| p.name.ends_with(suffix));
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        if let Some(p) = phase("end-to-end") {
            let rate = p.e2e_per_sec.unwrap_or(0.0);
            println!(
                "- {}: end to end {rate:.0} msg/s (target >= 3,000 on SQLite: {}); {:.1}% of the ceiling's {ceiling_rate:.0} webhooks/s (target >= 10%)",
                b.backend,
                verdict(rate >= 3000.0),
                100.0 * rate / ceiling_rate.max(1e-9)
            );
        }
        if let Some(p) = phase("burst") {
            let ratio = |name: &str| {
                reference_of(name)
                    .and_then(|r| r.phases.first())
                    .map(|r| p.webhook_per_sec / r.webhook_per_sec.max(1e-9))
            };
            println!(
                "- {}: webhooks accepted at full speed {:.0}/s, {:.1}% of the ceiling; {} x Express (target >= 2), {} x Flask (target > 4)",
                b.backend,
                p.webhook_per_sec,
                100.0 * p.webhook_per_sec / ceiling_rate.max(1e-9),
                ratio("express").map_or("-".to_owned(), |r| format!("{r:.2}")),
                ratio("flask").map_or("-".to_owned(), |r| format!("{r:.2}")),
            );
        }
        if let Some(p) = phase(&open_name) {
            let p99 = p.webhook.map_or(f64::INFINITY, |w| w.p99_ms);
            println!(
                "- {}: webhook p99 at {rate} msg/s {p99:.2} ms (target < 10 ms at 1000: {})",
                b.backend,
                verdict(p99 < 10.0)
            );
        }
        // Turn latency: webhook sent to the REST send accepted by Twilio (the emulator).
        for suffix in [open_name.clone(), format!(" {low_rate} msg/s")] {
            if let Some(e2e) = phase(&suffix).and_then(|p| p.e2e) {
                println!(
                    "- {}: turn latency (webhook to REST send accepted) at{suffix}: p50 {:.1} ms, p99 {:.1} ms",
                    b.backend, e2e.p50_ms, e2e.p99_ms
                );
            }
        }
        let bursts: Vec<&PhaseResult> = b
            .phases
            .iter()
            .filter(|p| p.name.contains("bursts of 3"))
            .collect();
        if let [off, on] = bursts.as_slice() {
            let (Some(t_off), Some(t_on)) = (off.turns, on.turns) else {
                continue;
            };
            let p50 = |p: &PhaseResult| p.e2e.map_or(0.0, |e| e.p50_ms);
            println!(
                "- {}: burst debounce ({}): {} turns for {} messages (without: {}), {:.0}% of turns saved; reply p50 {:.0} ms after each message against {:.0} ms without",
                b.backend,
                on.name,
                t_on,
                on.replied.unwrap_or(0),
                t_off,
                100.0 * (1.0 - t_on as f64 / t_off.max(1) as f64),
                p50(on),
                p50(off),
            );
        }
        let one = phase("end-to-end").and_then(|p| p.e2e_per_sec);
        if let Some(many) = b.phases.iter().find(|p| p.name.contains("replicas")) {
            if let (Some(one), Some(rate)) = (one, many.e2e_per_sec) {
                println!(
                    "- {}: {}: {rate:.0} msg/s, {:.2} x one replica's {one:.0} (target >= 1.5 x when the database is not the bottleneck; CPU: {})",
                    b.backend,
                    many.name,
                    rate / one.max(1e-9),
                    many.cpu_percent
                        .iter()
                        .map(|(k, v)| format!("{k} {v:.0}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
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
