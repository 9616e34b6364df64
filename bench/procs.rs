//! Child processes (the emulator, `chatwire serve`, the bare axum ceiling) and what the bench
//! reads about them from `/proc`: peak and current resident memory, CPU time.
//!
//! Every child is started with `kill_on_drop`, its output goes to a log file in the run's
//! temporary directory, and it is killed when its [`Child`] is dropped, so the bench never
//! leaves a process behind, even when it fails half way.
use anyhow::Context as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A running child process and where it listens.
pub struct Child {
    pub url: String,
    pub pid: u32,
    process: tokio::process::Child,
}

impl Child {
    /// Starts `program args` with `env`, logging to `<dir>/<name>.log`, then waits until
    /// `GET {url}{ready_path}` answers 200 (120 s at most: a server under valgrind starts slowly).
    pub async fn start(
        name: &'static str,
        program: &Path,
        args: &[String],
        env: &[(&str, String)],
        dir: &Path,
        url: String,
        ready_path: &str,
    ) -> anyhow::Result<Self> {
        // Appended to: a restarted server keeps writing to the same log.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{name}.log")))?;
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let mut process = command
            .spawn()
            .with_context(|| format!("starting {name} ({})", program.display()))?;
        let pid = process.id().context("child has no pid")?;
        let client = reqwest::Client::builder().no_proxy().build()?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = process.try_wait()? {
                anyhow::bail!(
                    "{name} exited with {status} before it was ready; see {}",
                    dir.join(format!("{name}.log")).display()
                );
            }
            let ready = client
                .get(format!("{url}{ready_path}"))
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "{name} not ready after 120 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self { url, pid, process })
    }

    /// Kills the process and reaps it.
    pub async fn stop(mut self) {
        let _ = self.process.kill().await;
    }

    pub fn memory(&self) -> Memory {
        Memory::of(self.pid)
    }
}

/// A free port on 127.0.0.1 (bound and released; the child binds it right after).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The release `chatwire` binary: `--chatwire PATH`, else next to this executable.
pub fn chatwire_binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("chatwire"),
    };
    anyhow::ensure!(
        path.is_file(),
        "no chatwire binary at {} (build it with `cargo build --release` or pass --chatwire)",
        path.display()
    );
    Ok(path)
}

/// Resident memory from `/proc/PID/status`, in KiB.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Memory {
    /// Current resident set (VmRSS).
    pub rss_kib: u64,
    /// Peak resident set since start (VmHWM).
    pub peak_kib: u64,
}

impl Memory {
    pub fn of(pid: u32) -> Self {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Memory {
            rss_kib: field("VmRSS:"),
            peak_kib: field("VmHWM:"),
        }
    }
}

/// User plus system CPU time of a process, in clock ticks (1/100 s on Linux).
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may contain spaces; the fields after its closing parenthesis do not.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let at = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat; `rest` starts at field 3.
    at(11) + at(12)
}

/// CPU ticks of every process named `postgres` (the server and its backends), for runs on a
/// local PostgreSQL that shares the machine.
pub fn postgres_ticks() -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(cpu_ticks)
        .sum()
}

/// Busy CPU ticks of the whole machine, all cores (`/proc/stat`): shows whether anything
/// besides the benchmark's own processes was using the CPU.
pub fn machine_busy_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().next() else {
        return 0;
    };
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: everything but idle and iowait.
    [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| fields.get(i))
        .sum()
}

/// Ticks per second of `/proc` CPU times (USER_HZ, 100 on every mainstream Linux build).
pub const TICKS_PER_SEC: f64 = 100.0;

/// The processes whose CPU time a phase reports, sampled at its start and end.
#[derive(Debug, Clone, Default)]
pub struct CpuProbe {
    pub processes: Vec<(&'static str, u32)>,
    /// Also sum every local `postgres` process.
    pub postgres: bool,
}

impl CpuProbe {
    fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.processes.iter().map(|(n, _)| *n).collect();
        names.push("bench");
        if self.postgres {
            names.push("postgres");
        }
        names.push("machine");
        names
    }

    /// Ticks so far, in the order of [`CpuProbe::names`].
    pub fn snapshot(&self) -> Vec<u64> {
        let mut ticks: Vec<u64> = self.processes.iter().map(|(_, p)| cpu_ticks(*p)).collect();
        ticks.push(cpu_ticks(std::process::id()));
        if self.postgres {
            ticks.push(postgres_ticks());
        }
        ticks.push(machine_busy_ticks());
        ticks
    }

    /// CPU used since `start` over `wall`, percent of one core, by process.
    pub fn percent_since(
        &self,
        start: &[u64],
        wall: Duration,
    ) -> std::collections::BTreeMap<String, f64> {
        let now = self.snapshot();
        self.names()
            .into_iter()
            .zip(now.iter().zip(start))
            .map(|(name, (b, a))| {
                let secs = b.saturating_sub(*a) as f64 / TICKS_PER_SEC;
                (name.to_owned(), 100.0 * secs / wall.as_secs_f64().max(1e-9))
            })
            .collect()
    }
}
