//! The performance benchmark of issue 14 (the whole pipeline, parse → plan → run →
//! report, as a user runs it): the real `tenantgate` release binary against a minimal
//! in-memory multi-tenant target in this process, at 100, 1,000 and 10,000 checks; at
//! the same concurrency a plain load generator on the same HTTP stack and endpoints;
//! and Hurl on equivalent files when `hurl` is on PATH. It prints wall time, checks/s,
//! requests/s (counted at the target), peak RSS and CPU time, and the ratios.
//!
//! ```text
//! bash bench/run.sh                       # builds the release binary, then runs this
//! bash bench/run.sh --short               # CI: small sizes, one run, no thresholds
//! bash bench/run.sh --sizes 2000,10000 --jobs 8 --runs 5
//! ```

mod loadgen;
mod target;
mod workload;

// The allocator tenantgate's binary uses (src/main.rs), so that the load generator (a
// child process of this binary) and the target run on the same one: the ratios compare
// the work, not the allocators.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use loadgen::Schedule;
use tenantgate_reference_api::pg::TempPostgres;

#[derive(Parser, Debug)]
#[command(about = "tenantgate benchmark: tool vs. a plain load generator vs. Hurl")]
struct Args {
    /// Suite sizes (checks), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    sizes: Vec<usize>,
    /// Concurrency for every tool (tenantgate `--jobs`, the load generator's workers,
    /// Hurl `--jobs`).
    #[arg(long, default_value_t = 8)]
    jobs: usize,
    /// Repetitions of each measurement (min and median are printed).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// CI mode: sizes 30 and 300, one run; checks that every run passes, no thresholds.
    #[arg(long)]
    short: bool,
    /// The tenantgate binary (default: `tenantgate` next to this example's directory).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Milliseconds the target adds to every answer (0: as fast as it goes). With a
    /// few ms, how checks are scheduled shows; with none, the tool's CPU cost does.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// The target handles at most this many requests at once and queues the rest (a
    /// small app with a fixed pool of workers: a target with a knee, for `--adaptive`).
    #[arg(long)]
    workers: Option<usize>,
    /// Also run tenantgate against the reference API (a throwaway PostgreSQL and
    /// `examples/reference-api`: a real target with a database behind it).
    #[arg(long)]
    reference: bool,
    /// Also run tenantgate without `--jobs` (its adaptive concurrency), next to the
    /// pinned `--jobs` row.
    #[arg(long)]
    adaptive: bool,
    /// Skip Hurl even when it is installed.
    #[arg(long)]
    no_hurl: bool,
    /// Only serve the target and write the suites (and Hurl files) of `--sizes` into
    /// this directory, for profiling tenantgate by hand; stops on Ctrl-C.
    #[arg(long, value_name = "DIR")]
    serve: Option<PathBuf>,
    /// Internal: run as the load generator against this base URL (`--sizes` has one
    /// size), print `requests wrong wall_ns`, exit. The benchmark starts itself this
    /// way so that the load generator is a process of its own, measured like the others.
    #[arg(long, hide = true, value_name = "BASE")]
    loadgen_child: Option<String>,
    /// Internal: with `--loadgen-child`, run writes one at a time.
    #[arg(long, hide = true)]
    writes_serial: bool,
}

/// What one child process used.
struct Usage {
    wall: Duration,
    code: i32,
    peak_rss_kib: Option<i64>,
    cpu: Option<Duration>,
    /// The in-process target's CPU time while the child ran ([`target_cpu`]).
    target_cpu: Option<Duration>,
}

/// `VmHWM` (the kernel's peak-RSS high-water mark) from `/proc/PID/status`, in KiB.
fn vm_hwm(status: &str) -> Option<i64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The state letter and `utime + stime` from `/proc/PID/stat` (clock ticks are 1/100 s
/// in `/proc` on Linux whatever the kernel's internal rate).
fn parse_stat(stat: &str) -> (Option<char>, Option<Duration>) {
    // The command name is in parentheses and may hold spaces: fields follow the last ')'.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return (None, None);
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let state = f.first().and_then(|s| s.chars().next());
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    let cpu = match (ticks(11), ticks(12)) {
        (Some(u), Some(s)) => Some(Duration::from_millis((u + s) * 10)),
        _ => None,
    };
    (state, cpu)
}

/// Runs `cmd` to completion, sampling its `/proc/PID` every 2 ms: the peak RSS is the
/// last `VmHWM` seen (it only grows), the CPU time is read once the process has
/// exited but is not yet reaped (a zombie keeps its times). Linux only; elsewhere
/// both are unknown and the wall time is still measured.
fn measure(cmd: &mut Command) -> std::io::Result<Usage> {
    let target_before = target_cpu();
    let started = Instant::now();
    let mut child = cmd.spawn()?;
    let dir = PathBuf::from(format!("/proc/{}", child.id()));
    let (mut peak, mut cpu) = (None, None);
    let wall = loop {
        if let Some(k) = std::fs::read_to_string(dir.join("status"))
            .ok()
            .as_deref()
            .and_then(vm_hwm)
        {
            peak = Some(peak.map_or(k, |p: i64| p.max(k)));
        }
        let (state, times) = match std::fs::read_to_string(dir.join("stat")) {
            Ok(s) => parse_stat(&s),
            Err(_) => (None, None),
        };
        cpu = times.or(cpu);
        if state.is_none_or(|c| c == 'Z' || c == 'X') {
            break started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let status = child.wait()?;
    Ok(Usage {
        wall,
        code: status.code().unwrap_or(-1),
        peak_rss_kib: peak,
        cpu,
        target_cpu: target_cpu()
            .zip(target_before)
            .map(|(a, b)| a.saturating_sub(b)),
    })
}

/// The CPU time of this process's threads named `target` (the in-process target's
/// runtime), from `/proc/self/task/*/stat`; `None` off Linux. On two cores the tool and
/// the target share the machine: the wall time follows the sum of their CPU times.
fn target_cpu() -> Option<Duration> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut sum = Duration::ZERO;
    for dir in tasks.filter_map(Result::ok).map(|t| t.path()) {
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != "target" {
            continue;
        }
        if let Some(cpu) = std::fs::read_to_string(dir.join("stat"))
            .ok()
            .and_then(|s| parse_stat(&s).1)
        {
            sum += cpu;
        }
    }
    Some(sum)
}

/// One measured run of a tool.
struct Sample {
    wall: Duration,
    requests: u64,
    peak_rss_kib: Option<i64>,
    cpu: Option<Duration>,
    /// The in-process target's CPU time meanwhile (`None` for another target).
    target_cpu: Option<Duration>,
}

fn default_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/examples/bench → target/<profile>/tenantgate
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("tenantgate"))
        .unwrap_or_else(|| PathBuf::from("tenantgate"))
}

fn requests(store: &target::Store) -> u64 {
    store.requests.load(std::sync::atomic::Ordering::Relaxed)
}

fn run_tenantgate(
    bin: &Path,
    dir: &Path,
    base: &str,
    store: &target::Store,
    checks: usize,
    jobs: Option<usize>,
) -> Result<Sample, String> {
    let suite = dir.join(format!("bench-{checks}.yaml"));
    // No `--jobs`: tenantgate adapts its concurrency to the target.
    let pin = jobs.map(|j| vec!["--jobs".to_string(), j.to_string()]);
    std::fs::write(&suite, workload::suite(base, checks)).map_err(|e| e.to_string())?;
    let json = dir.join("report.json");
    let before = requests(store);
    let u = measure(
        Command::new(bin)
            .arg("run")
            .arg(&suite)
            .args(pin.unwrap_or_default())
            .args(["--color", "never", "--json"])
            .arg(&json)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if u.code != 0 {
        return Err(format!(
            "tenantgate exited {} on {checks} checks (expected 0: the target is correct); rerun by hand: {} run {}",
            u.code,
            bin.display(),
            suite.display()
        ));
    }
    Ok(Sample {
        wall: u.wall,
        requests: requests(store) - before,
        peak_rss_kib: u.peak_rss_kib,
        cpu: u.cpu,
        target_cpu: u.target_cpu,
    })
}

fn run_loadgen(
    base: &str,
    store: &target::Store,
    checks: usize,
    jobs: usize,
    schedule: Schedule,
) -> Result<Sample, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    cmd.args(["--loadgen-child", base, "--sizes", &checks.to_string()])
        .args(["--jobs", &jobs.to_string()])
        .stdout(out.reopen().map_err(|e| e.to_string())?)
        .stderr(Stdio::inherit());
    if schedule == Schedule::WritesSerial {
        cmd.arg("--writes-serial");
    }
    let before = requests(store);
    let u = measure(&mut cmd).map_err(|e| format!("cannot run the load generator: {e}"))?;
    let counted = requests(store) - before;
    let text = std::fs::read_to_string(out.path()).map_err(|e| e.to_string())?;
    let nums: Vec<u64> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let [sent, wrong, wall_ns] = nums[..] else {
        return Err(format!(
            "the load generator exited {} and printed {text:?}",
            u.code
        ));
    };
    if wrong > 0 || u.code != 0 {
        return Err(format!(
            "the load generator got {wrong} unexpected answers (exit {})",
            u.code
        ));
    }
    // Its sign-ups and seed (10 requests) are outside the timed part.
    debug_assert!(counted >= sent);
    Ok(Sample {
        wall: Duration::from_nanos(wall_ns),
        requests: sent,
        peak_rss_kib: u.peak_rss_kib,
        cpu: u.cpu,
        target_cpu: u.target_cpu,
    })
}

/// The load generator's own process (`--loadgen-child`).
fn loadgen_child(base: &str, args: &Args) -> Result<(), String> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cpus)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let schedule = if args.writes_serial {
        Schedule::WritesSerial
    } else {
        Schedule::AllConcurrent
    };
    let checks = args.sizes.first().copied().unwrap_or(100);
    let r = loadgen::run(&rt, base, checks, args.jobs, schedule).map_err(|e| e.to_string())?;
    println!("{} {} {}", r.requests, r.wrong, r.wall.as_nanos());
    Ok(())
}

/// tenantgate against the reference API on a throwaway PostgreSQL, at every size.
/// Requests are those of the plan (the reference API does not count them).
fn reference_runs(
    rt: &tokio::runtime::Runtime,
    bin: &Path,
    dir: &Path,
    args: &Args,
) -> Result<(), String> {
    let pg = TempPostgres::start().map_err(|e| format!("cannot start PostgreSQL: {e}"))?;
    let launched = rt
        .block_on(tenantgate_reference_api::launch(
            &pg,
            "tg_bench_ref",
            "tgbench",
            Default::default(),
        ))
        .map_err(|e| format!("cannot launch the reference API: {e}"))?;
    println!(
        "reference API: {} (PostgreSQL, throwaway)",
        launched.base_url
    );
    for &checks in &args.sizes {
        let run = || -> Result<Sample, String> {
            let suite = dir.join(format!("reference-{checks}.yaml"));
            std::fs::write(
                &suite,
                workload::reference_suite(&launched.base_url, checks),
            )
            .map_err(|e| e.to_string())?;
            let u = measure(
                Command::new(bin)
                    .arg("run")
                    .arg(&suite)
                    .args(["--jobs", &args.jobs.to_string(), "--color", "never"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            )
            .map_err(|e| e.to_string())?;
            if u.code != 0 {
                return Err(format!(
                    "tenantgate exited {} against the reference API",
                    u.code
                ));
            }
            Ok(Sample {
                wall: u.wall,
                requests: workload::planned_requests(checks, 5),
                peak_rss_kib: u.peak_rss_kib,
                cpu: u.cpu,
                target_cpu: None,
            })
        };
        let r = repeat(args.runs, &(Box::new(run) as Runner))?;
        print_row("tenantgate → reference API", checks, args.runs, &r);
    }
    drop(launched);
    drop(pg);
    Ok(())
}

fn hurl_on_path() -> bool {
    Command::new("hurl")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run_hurl(
    dir: &Path,
    base: &str,
    store: &target::Store,
    checks: usize,
    jobs: usize,
) -> Result<Sample, String> {
    let mut paths = Vec::new();
    for (f, text) in workload::hurl_files(checks, jobs).into_iter().enumerate() {
        let p = dir.join(format!("bench-{checks}-{f}.hurl"));
        std::fs::write(&p, text).map_err(|e| e.to_string())?;
        paths.push(p);
    }
    let before = requests(store);
    let u = measure(
        Command::new("hurl")
            .args(["--test", "--parallel", "--jobs", &jobs.to_string()])
            .args(["--variable", &format!("base={base}")])
            .args(&paths)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .map_err(|e| format!("cannot run hurl: {e}"))?;
    if u.code != 0 {
        return Err(format!("hurl exited {} on {checks} checks", u.code));
    }
    Ok(Sample {
        wall: u.wall,
        requests: requests(store) - before,
        peak_rss_kib: u.peak_rss_kib,
        cpu: u.cpu,
        target_cpu: u.target_cpu,
    })
}

/// The sample with the median wall time, and the minimum wall time.
fn summarise(mut s: Vec<Sample>) -> (Sample, Duration) {
    s.sort_by_key(|x| x.wall);
    let min = s[0].wall;
    let median = s.swap_remove(s.len() / 2);
    (median, min)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn print_row(tool: &str, checks: usize, runs: usize, (s, min): &(Sample, Duration)) {
    let rss = s
        .peak_rss_kib
        .map(|k| format!("{:.1} MB", k as f64 / 1024.0))
        .unwrap_or_else(|| "-".into());
    let cpu = s
        .cpu
        .map(|c| format!("{:.2} s", secs(c)))
        .unwrap_or_else(|| "-".into());
    let target = s
        .target_cpu
        .map(|c| format!("  target CPU {:.2} s", secs(c)))
        .unwrap_or_default();
    println!(
        "{tool:<26} {checks:>6} checks  median {:>7.3} s (min {:>7.3} s, {runs} runs)  {:>8.0} checks/s  {:>7} requests  {:>8.0} req/s  {:>8.1} µs/check  peak RSS {rss:>8}  CPU {cpu}{target}",
        secs(s.wall),
        secs(*min),
        checks as f64 / secs(s.wall),
        s.requests,
        s.requests as f64 / secs(s.wall),
        secs(s.wall) * 1e6 / checks as f64,
    );
}

type Runner<'a> = Box<dyn Fn() -> Result<Sample, String> + 'a>;

fn repeat(runs: usize, f: &Runner<'_>) -> Result<(Sample, Duration), String> {
    let mut v = Vec::new();
    for _ in 0..runs.max(1) {
        v.push(f()?);
    }
    Ok(summarise(v))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn serve_only(
    rt: &tokio::runtime::Runtime,
    out: &Path,
    base: &str,
    args: &Args,
) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    for &checks in &args.sizes {
        let p = out.join(format!("bench-{checks}.yaml"));
        std::fs::write(&p, workload::suite(base, checks)).map_err(|e| e.to_string())?;
        for (f, text) in workload::hurl_files(checks, args.jobs)
            .into_iter()
            .enumerate()
        {
            let h = out.join(format!("bench-{checks}-{f}.hurl"));
            std::fs::write(&h, text).map_err(|e| e.to_string())?;
        }
        println!("{}", p.display());
    }
    println!("serving {base} (hurl: --variable base={base}); Ctrl-C stops");
    rt.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    Ok(())
}

fn main() -> Result<(), String> {
    let mut args = Args::parse();
    if let Some(base) = &args.loadgen_child {
        return loadgen_child(base, &args);
    }
    if args.short {
        args.sizes = vec![30, 300];
        args.runs = 1;
    }
    let bin = args.bin.clone().unwrap_or_else(default_bin);
    if !bin.exists() {
        return Err(format!(
            "{} does not exist: build it first (cargo build --release --bin tenantgate), or give --bin",
            bin.display()
        ));
    }
    let threads = |n: usize, name: &str| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .thread_name(name)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The target gets the machine's cores, as a real server would; the load generator
    // (its own process) as many runtime threads as tenantgate's runtime has.
    let target_rt = threads(cpus, "target")?;
    let (base, store) = target::serve(
        &target_rt,
        Duration::from_millis(args.latency_ms),
        args.workers,
    )
    .map_err(|e| e.to_string())?;
    if let Some(out) = &args.serve {
        return serve_only(&target_rt, out, &base, &args);
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let hurl = !args.no_hurl && hurl_on_path();
    println!(
        "tenantgate benchmark: {} | {cpus} CPUs, load average {} | jobs {} | target {base} (in-memory, in this process, +{} ms per answer, {})",
        bin.display(),
        load_average(),
        args.jobs,
        args.latency_ms,
        args.workers
            .map_or("no worker limit".to_string(), |w| format!("{w} workers"))
    );
    if !hurl {
        println!("hurl: not on PATH (or --no-hurl): skipped");
    }
    for &checks in &args.sizes {
        let jobs = args.jobs;
        let tg: Runner =
            Box::new(|| run_tenantgate(&bin, dir.path(), &base, &store, checks, Some(jobs)));
        let raw: Runner =
            Box::new(|| run_loadgen(&base, &store, checks, jobs, Schedule::AllConcurrent));
        let same: Runner =
            Box::new(|| run_loadgen(&base, &store, checks, jobs, Schedule::WritesSerial));
        let t = repeat(args.runs, &tg)?;
        print_row("tenantgate", checks, args.runs, &t);
        if args.adaptive {
            let ad: Runner =
                Box::new(|| run_tenantgate(&bin, dir.path(), &base, &store, checks, None));
            let a = repeat(args.runs, &ad)?;
            print_row("tenantgate, adaptive jobs", checks, args.runs, &a);
        }
        let l = repeat(args.runs, &raw)?;
        print_row("load generator", checks, args.runs, &l);
        let s = repeat(args.runs, &same)?;
        print_row("load gen., writes serial", checks, args.runs, &s);
        let rate = |x: &Sample| x.requests as f64 / secs(x.wall);
        let cpu_per_req = |x: &Sample| {
            x.cpu
                .map_or(f64::NAN, |c| secs(c) * 1e6 / x.requests.max(1) as f64)
        };
        println!(
            "  ratios at {checks}: tenantgate req/s = {:.0} % of the load generator's ({:.0} % of it with writes one at a time); CPU per request {:.0} µs vs {:.0} µs ({:.1}×)",
            100.0 * rate(&t.0) / rate(&l.0),
            100.0 * rate(&t.0) / rate(&s.0),
            cpu_per_req(&t.0),
            cpu_per_req(&l.0),
            cpu_per_req(&t.0) / cpu_per_req(&l.0),
        );
        if hurl {
            let h: Runner = Box::new(|| run_hurl(dir.path(), &base, &store, checks, jobs));
            let h = repeat(args.runs, &h)?;
            print_row("hurl --parallel", checks, args.runs, &h);
            let both = |x: &Sample| {
                x.cpu
                    .zip(x.target_cpu)
                    .map_or(f64::NAN, |(c, t)| secs(c) + secs(t))
            };
            println!(
                "  ratios at {checks}: tenantgate wall time per check = {:.2}× Hurl's; CPU of tool and target together {:.2} s vs {:.2} s ({:.2}×)",
                secs(t.0.wall) / secs(h.0.wall),
                both(&t.0),
                both(&h.0),
                both(&t.0) / both(&h.0),
            );
        }
    }
    if args.reference {
        reference_runs(&target_rt, &bin, dir.path(), &args)?;
    }
    println!("load average at the end: {}", load_average());
    Ok(())
}
