//! `--count N`: the cost of a message, not the rate. A fixed number of messages goes through
//! the SQLite pipeline (webhook, turn, REST send, two status callbacks) and the bench reports
//! what `chatwire serve` spent on them: CPU time and context switches per message, and, when
//! the server runs under callgrind (`--serve-wrapper "valgrind --tool=callgrind ..."`), the
//! instructions per message. Instruction counts do not depend on what else the machine runs,
//! so changes can be compared on a busy machine where throughput figures cannot.
use crate::load::{ClosedLoop, Load, Senders, Target};
use crate::procs::{chatwire_binary, cpu_ticks, free_port, Child, CpuProbe, TICKS_PER_SEC};
use crate::setup;
use crate::Opts;
use chatwire::emulator::{DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const NUMBER: &str = "+15005550006";

/// Context switches of every thread of `pid` so far (voluntary + involuntary).
fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .map(|t| {
            let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// CPU ticks of every thread of `pid` so far, summed by thread name (tokio's workers, sqlx's
/// SQLite connection threads, ...): the SQLite writer's busy time is its thread's share.
fn ticks_by_thread(pid: u32) -> std::collections::BTreeMap<String, u64> {
    let mut by_name = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for task in tasks.flatten() {
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<u64> = rest
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
        // sqlx numbers its SQLite threads in the order it opened them: the writer first.
        let tid = task.file_name().to_string_lossy().into_owned();
        let key = match name.trim() {
            n if n.starts_with("sqlx-sqlite") => format!("{n} (thread {tid})"),
            n => n.to_owned(),
        };
        *by_name.entry(key).or_insert(0) += ticks;
    }
    by_name
}

fn callgrind_control(arg: &str, pid: u32) -> anyhow::Result<()> {
    let status = std::process::Command::new("callgrind_control")
        .args([arg, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "callgrind_control {arg} {pid}: {status}");
    Ok(())
}

/// The instructions (`Ir`) of the newest callgrind dump in `dir`, with its path.
fn newest_dump(dir: &Path) -> Option<(PathBuf, u64)> {
    let newest = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("callgrind.out"))
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())?
        .path();
    let text = std::fs::read_to_string(&newest).ok()?;
    let ir = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((newest, ir))
}

/// Runs the fixed-count measurement on SQLite and prints its figures.
pub async fn run(opts: Opts, count: u64) -> anyhow::Result<()> {
    let chatwire = chatwire_binary(opts.chatwire.clone())?;
    let dir = std::env::temp_dir().join(format!("chatwire-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
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
        &chatwire,
        &emu_args,
        &[],
        &dir,
        emu_url.clone(),
        "/_emulator/sent",
    )
    .await?;
    let addr = format!("127.0.0.1:{}", free_port()?);
    let url = format!("http://{addr}");
    let database_url = format!("sqlite://{}", dir.join("chatwire.db").display());
    let env = setup::serve_env(&opts, &addr, &database_url, &emu_url);
    // The wrapper (e.g. valgrind) execs the server in its own process: its pid is the server's.
    let wrapper: Vec<String> = opts
        .serve_wrapper
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let callgrind = wrapper.iter().any(|w| w.contains("callgrind"));
    let (program, args) = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut args = rest.to_vec();
            if callgrind && !args.iter().any(|a| a.starts_with("--callgrind-out-file")) {
                args.push(format!(
                    "--callgrind-out-file={}",
                    dir.join("callgrind.out").display()
                ));
            }
            args.extend([chatwire.display().to_string(), "serve".to_owned()]);
            (PathBuf::from(program), args)
        }
        None => (chatwire.clone(), vec!["serve".to_owned()]),
    };
    let server = Child::start("serve", &program, &args, &env, &dir, url.clone(), "/readyz").await?;
    let integration = setup::create(
        &url,
        setup::API_TOKEN,
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
    let load = Arc::new(Load::new(target, Some(emulator.url.clone()))?);
    let cpu = CpuProbe {
        processes: vec![("serve", server.pid), ("emulator", emulator.pid)],
        postgres: false,
    };
    let phase = |name: &str, max_messages: u64| ClosedLoop {
        name: name.to_owned(),
        concurrency: opts.concurrency,
        duration: Duration::from_secs(3600),
        max_messages,
        window: Some(opts.window),
        senders: Senders {
            prefix: "+1555",
            count: opts.senders,
            stride: 1,
            repeat: 1,
        },
        drain: Duration::from_secs(opts.drain_secs.max(600)),
    };
    // Status callbacks land `2 x status_delay` after their reply; wait for them too.
    let callbacks = Duration::from_millis(3 * opts.status_delay_ms + 2000);
    eprintln!("cost: warm-up, 200 messages");
    load.closed(phase("warm-up", 200), &cpu).await;
    tokio::time::sleep(callbacks).await;
    if callgrind {
        callgrind_control("-z", server.pid)?;
    }
    let (ticks0, switches0) = (cpu_ticks(server.pid), context_switches(server.pid));
    let (threads0, started) = (ticks_by_thread(server.pid), std::time::Instant::now());
    eprintln!("cost: {count} messages");
    let result = load.closed(phase("counted", count), &cpu).await;
    let (threads_mid, wall) = (ticks_by_thread(server.pid), started.elapsed().as_secs_f64());
    tokio::time::sleep(callbacks).await;
    let (ticks1, switches1) = (cpu_ticks(server.pid), context_switches(server.pid));
    let threads1 = ticks_by_thread(server.pid);
    if callgrind {
        callgrind_control("-d", server.pid)?;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let replied = result.replied.unwrap_or(0);
    let n = replied.max(1) as f64;
    println!("# chatwire-bench --count {count} (SQLite, serve only)\n");
    println!("- messages replied: {replied} of {count}");
    println!(
        "- serve CPU per message: {:.3} ms (user + system, /proc)",
        ticks1.saturating_sub(ticks0) as f64 / TICKS_PER_SEC * 1000.0 / n
    );
    println!(
        "- serve context switches per message: {:.1} (all threads, voluntary + involuntary)",
        switches1.saturating_sub(switches0) as f64 / n
    );
    println!(
        "- messages per second while the load ran (closed loop, to the last reply): {:.0}",
        n / wall
    );
    for (name, t1) in &threads1 {
        let before = threads0.get(name).copied().unwrap_or(0);
        let spent = t1.saturating_sub(before) as f64;
        let busy = threads_mid
            .get(name)
            .copied()
            .unwrap_or(0)
            .saturating_sub(before) as f64;
        if spent > 0.0 {
            println!(
                "  - threads named {name}: {:.3} ms per message, busy {:.0}% of a core while the load ran",
                spent / TICKS_PER_SEC * 1000.0 / n,
                busy / TICKS_PER_SEC / wall * 100.0
            );
        }
    }
    if callgrind {
        match newest_dump(&dir) {
            Some((path, ir)) => println!(
                "- instructions per message: {:.0} (callgrind, {ir} in total; {})",
                ir as f64 / n,
                path.display()
            ),
            None => println!("- no callgrind dump found in {}", dir.display()),
        }
    }
    println!("- logs and dumps kept in {}", dir.display());
    drop(load);
    server.stop().await;
    emulator.stop().await;
    Ok(())
}
