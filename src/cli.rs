//! The command line (parse stage): clap definitions, validated into the objects that run,
//! and the one entry point [`main`] shared by the binary and the demo.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::exit;
use crate::outcome::RunSummary;
use crate::plan;
use crate::redact::Redactor;
use crate::report::{ReportFlags, ReportPaths, Reporters, Terminal, TerminalOptions};
use crate::run::{self, Cancel, Options};
use crate::suite;

/// Proves a multi-tenant API keeps every tenant's data away from every other tenant.
///
/// Exit status: 0 isolation proven; 1 isolation broken (a proven leak, and nothing
/// else); 2 undecided (errors, bad suite, bad command line, interrupted).
#[derive(Parser, Debug)]
#[command(name = "tenantgate", version, about, long_about = None, after_help = crate::manual::EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
// Parsed once per process: the size of the audit's many flags does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run a suite: provision org A and org B, seed A, check as B, audit the database.
    #[command(after_help = crate::manual::EXIT_CODES)]
    Run(RunArgs),
    /// Load and check a suite without sending anything.
    Validate(ValidateArgs),
    /// Audit a database's Row-Level Security without a suite.
    #[command(after_help = crate::manual::EXIT_CODES)]
    Audit(AuditArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `tenantgate man > tenantgate.1`.
    Man,
    /// Print the suite format's JSON Schema (for editors and linters):
    /// `tenantgate schema > suite.schema.json`.
    Schema,
    /// Combine the JSON reports of every slice of a `run --partition K/N` into one run's
    /// reports, with the exit status of the whole.
    #[command(after_help = crate::manual::EXIT_CODES)]
    Merge(MergeArgs),
    /// List what a suite would run: checks, variants and database rules with their ids
    /// (nothing is sent, no environment variable is needed).
    List(ListArgs),
    /// Write accept-list entries for the warnings of a JSON report (adopt the gate on an
    /// existing system and fail only on what is new).
    Baseline(BaselineArgs),
    /// Write a starter suite from an OpenAPI 3 document (`# TODO` where a person decides).
    Init(InitArgs),
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The OpenAPI 3 document (YAML or JSON).
    #[arg(long, value_name = "SPEC")]
    pub openapi: PathBuf,
    /// Write the suite here instead of standard output.
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The JSON report of every slice (`run --partition K/N --json ...`).
    #[arg(id = "slices", required = true, value_name = "REPORT.json")]
    pub slices: Vec<PathBuf>,
    #[command(flatten)]
    pub out: Outputs,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// The suite file.
    pub suite: PathBuf,
}

#[derive(Args, Debug)]
pub struct BaselineArgs {
    /// A JSON report (`run --json`).
    #[arg(value_name = "REPORT.json")]
    pub report: PathBuf,
    /// Write the entries here instead of standard output.
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// Report outputs shared by `run` and `audit`.
#[derive(Args, Debug, Clone)]
pub struct Outputs {
    /// Write JUnit XML here (one testcase per check and variant).
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Write the JSON report here (schema_version 1).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub files: ReportFlags,
    /// Warnings fail the gate (exit 1).
    #[arg(long)]
    pub deny_warnings: bool,
    /// Show every result in the table, passes included.
    #[arg(long, short, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Print only the verdict line (and tenantgate's own errors): no progress, no table.
    #[arg(long, short)]
    pub quiet: bool,
    /// Colour: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, value_name = "WHEN", default_value = "auto", value_parser = ["auto", "always", "never"])]
    pub color: String,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The suite file (YAML, format version 1).
    pub suite: PathBuf,
    #[command(flatten)]
    pub out: Outputs,
    /// Checks run at once, pinned (default: adapts to the target, 1 to 64).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,
    /// Only the results PATTERN selects (repeatable): an exact id, a check's slug (all
    /// its variants), or a glob (`*/token_forgery:*`, `public.brands.*`).
    #[arg(long, value_name = "PATTERN")]
    pub filter: Vec<String>,
    /// Leave out the results PATTERN selects (repeatable; same patterns as --filter).
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// Also allow requests to this origin (repeatable), e.g. `https://auth.example.com`.
    /// Shown in every report.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origins: Vec<String>,
    /// Accept any TLS certificate. Reported in every output.
    #[arg(long)]
    pub insecure: bool,
    /// Retries of provision, seed and teardown requests (transport errors, 429, 502, 503).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub setup_retries: u32,
    /// The first wait before a setup retry, doubling after each (e.g. 100ms, 1s). A
    /// server's Retry-After wins when longer, up to 5s.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_backoff)]
    pub setup_backoff: std::time::Duration,
    /// Retries of a check's request on transport errors (never on an answer).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub check_retries: u32,
    /// Run only slice K of N of the planned checks (round-robin over the ordered plan;
    /// each slice provisions its own orgs). Combine the slices with `tenantgate merge`.
    #[arg(long, value_name = "K/N")]
    pub partition: Option<plan::Partition>,
    /// With --partition: where the database audit runs: `first` (slice 1 only) or `all`.
    #[arg(long, value_name = "WHERE", default_value = "first", value_parser = ["first", "all"], requires = "partition")]
    pub partition_db: String,
    /// An OpenAPI 3 document: every tenant-scoped operation no check covers is an error
    /// (exit 2) unless the suite's `openapi.exempt` lists it with a reason.
    #[arg(long, value_name = "SPEC")]
    pub openapi: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// The suite file.
    pub suite: PathBuf,
    /// List the result ids the suite would produce.
    #[arg(long)]
    pub list: bool,
    /// Check the suite without reading any environment variable (a lint step without
    /// secrets) and list the variables a run will need.
    #[arg(long)]
    pub no_env: bool,
    /// Also allow requests to this origin (repeatable), e.g. `https://auth.example.com`.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origins: Vec<String>,
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// A connection URL of a role that can read the catalogs.
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: String,
    /// The tenant column (repeatable). Default: org_id, tenant_id, organization_id, account_id, workspace_id.
    #[arg(long = "tenant-column", value_name = "NAME")]
    pub tenant_columns: Vec<String>,
    /// Schemas to audit (repeatable). Default: every non-system schema.
    #[arg(long = "schema", value_name = "NAME")]
    pub schemas: Vec<String>,
    /// Extra tenant tables (repeatable; each must exist).
    #[arg(long = "table", value_name = "SCHEMA.TABLE")]
    pub tables: Vec<String>,
    /// Tables to leave out (repeatable).
    #[arg(long = "exempt", value_name = "SCHEMA.TABLE")]
    pub exempt: Vec<String>,
    /// The application's role (repeatable: several app roles, each judged); without
    /// one, role checks are skipped (never passed).
    #[arg(long = "app-role", value_name = "ROLE")]
    pub app_roles: Vec<String>,
    /// The setting the policies key on, e.g. app.current_org_id.
    #[arg(long, value_name = "NAME")]
    pub tenant_setting: Option<String>,
    /// A tenant identity model preset: `supabase` (app roles authenticated and anon,
    /// auth.uid()/auth.jwt(), request.jwt.claims).
    #[arg(long, value_name = "NAME", value_parser = ["supabase"])]
    pub preset: Option<String>,
    /// A function that returns the caller's identity or claims, e.g. auth.uid (repeatable).
    #[arg(long = "identity-function", value_name = "SCHEMA.NAME")]
    pub identity_functions: Vec<String>,
    /// A setting that carries the caller's identity or claims, e.g. request.jwt.claims (repeatable; a trailing * matches a prefix).
    #[arg(long = "identity-setting", value_name = "NAME")]
    pub identity_settings: Vec<String>,
    /// Probe RLS live through this connection, as the application's role (rolled back).
    #[arg(long, value_name = "URL", hide_env_values = true)]
    pub probe_url: Option<String>,
    /// Tenant A's id (with --tenant-b): the probe's A/B checks run without a suite.
    #[arg(long, value_name = "ID", requires = "tenant_b")]
    pub tenant_a: Option<String>,
    /// Tenant B's id (with --tenant-a).
    #[arg(long, value_name = "ID", requires = "tenant_a")]
    pub tenant_b: Option<String>,
    /// A setting the probe sets as tenant A, e.g. `app.user_id=17` or
    /// `request.jwt.claims={"sub":"..."}` (repeatable; each needs --tenant-b-setting).
    #[arg(
        long = "tenant-a-setting",
        value_name = "NAME=VALUE",
        requires = "tenant_a"
    )]
    pub tenant_a_settings: Vec<String>,
    /// The same setting's value as tenant B (repeatable, same names as --tenant-a-setting).
    #[arg(
        long = "tenant-b-setting",
        value_name = "NAME=VALUE",
        requires = "tenant_a"
    )]
    pub tenant_b_settings: Vec<String>,
    /// Schema-per-tenant mode: a tenant schema or pattern (repeatable; `tenant_*`).
    #[arg(long = "tenant-schema", value_name = "PATTERN")]
    pub tenant_schemas: Vec<String>,
    /// The role of each tenant schema, `{schema}` replaced by its name.
    #[arg(long, value_name = "TEMPLATE", default_value = "{schema}")]
    pub tenant_schema_role: String,
    /// A shared schema that is never a tenant, even when a pattern matches (repeatable).
    #[arg(long = "shared-schema", value_name = "NAME")]
    pub shared_schemas: Vec<String>,
    /// A role the probe acts as through SET ROLE (repeatable). Default: the app roles.
    #[arg(long = "probe-role", value_name = "ROLE")]
    pub probe_roles: Vec<String>,
    #[command(flatten)]
    pub out: Outputs,
}

fn parse_backoff(s: &str) -> Result<std::time::Duration, String> {
    crate::suite::model::parse_duration(s)
}

fn reporters(out: &Outputs, redactor: &Redactor) -> Reporters {
    reporters_with_suite(out, redactor, None)
}

/// [`reporters`] for a run from a suite file: SARIF places results on its lines.
fn reporters_with_suite(
    out: &Outputs,
    redactor: &Redactor,
    suite: Option<&suite::Loaded>,
) -> Reporters {
    let color = match out.color.as_str() {
        "always" => true,
        "never" => false,
        _ => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let mut r = Reporters::new();
    r.push(Box::new(Terminal::new(
        std::io::stdout(),
        Box::new(std::io::stderr()),
        TerminalOptions {
            verbose: out.verbose,
            color,
            deny_warnings: out.deny_warnings,
            quiet: out.quiet,
            // A counter redrawn in place needs a terminal that understands `\r` and
            // erase-line; a CI log gets a line every few seconds instead.
            live: std::io::stderr().is_terminal()
                && std::env::var("TERM").map_or(true, |t| t != "dumb"),
        },
    )));
    let paths = ReportPaths::resolve(&out.files, out.junit.as_deref(), out.json.as_deref());
    crate::report::push_reporters(&mut r, &paths, out.deny_warnings, redactor, suite);
    r
}

/// Ctrl-C and SIGTERM cancel the run (teardown still runs); a second one of either
/// exits at once. The handlers are registered before this returns, so a signal that
/// arrives right after is never lost.
pub fn install_interrupts(cancel: Cancel) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        // Registered once and kept: tokio never unregisters a signal handler, so a
        // second signal would otherwise be swallowed.
        let (mut int, mut term) = match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(i), Ok(t)) => (i, t),
            _ => {
                eprintln!(
                    "tenantgate: cannot listen for Ctrl-C/SIGTERM: an interrupt will stop the run without teardown"
                );
                return;
            }
        };
        tokio::spawn(async move {
            tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
            interrupted(&cancel);
            tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
            quit_now();
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        interrupted(&cancel);
        let _ = tokio::signal::ctrl_c().await;
        quit_now();
    });
}

fn interrupted(cancel: &Cancel) {
    eprintln!(
        "tenantgate: interrupted: finishing running checks, tearing down, writing partial reports (again to quit now)"
    );
    cancel.cancel();
}

fn quit_now() {
    eprintln!("tenantgate: quitting without teardown");
    std::process::exit(exit::UNDECIDED as i32);
}

/// Reads an environment variable (`${VAR}` in suites).
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The whole program: parses `args` (with the program name first) and returns the exit
/// code. Never returns 1 for anything but a proven isolation failure.
pub async fn main(args: Vec<OsString>) -> u8 {
    main_with_env(args, Arc::new(|n: &str| std::env::var(n).ok())).await
}

/// [`main`] with suites reading `${VAR}` through `env` instead of the process
/// environment (the demo passes the throwaway database's URLs this way).
pub async fn main_with_env(args: Vec<OsString>, env: EnvLookup) -> u8 {
    main_with(args, env, None).await
}

/// [`main_with_env`] with the interrupt flag owned by the caller, who has installed the
/// signal handlers ([`install_interrupts`]) itself (the demo, which must stop its own
/// services too). With `None` the run installs them.
pub async fn main_with(args: Vec<OsString>, env: EnvLookup, cancel: Option<Cancel>) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    exit::PROVEN
                }
                _ => exit::UNDECIDED,
            };
        }
    };
    match cli.command {
        Command::Validate(a) => validate(a, &env),
        Command::Run(a) => run_cmd(a, &env, cancel).await,
        Command::Audit(a) => audit_cmd(a).await,
        Command::Completions { shell } => {
            crate::manual::print(|o| crate::manual::completions(shell, o))
        }
        Command::Man => crate::manual::print(crate::manual::man),
        Command::Schema => {
            crate::manual::print(|o| o.write_all(crate::suite::schema::suite_schema().as_bytes()))
        }
        Command::Merge(a) => merge_cmd(a),
        Command::List(a) => list_cmd(a),
        Command::Init(a) => match crate::openapi::init(&a.openapi, a.output.as_deref()) {
            Ok(()) => exit::PROVEN,
            Err(e) => {
                eprintln!("tenantgate: init: {e}");
                exit::UNDECIDED
            }
        },
        Command::Baseline(a) => crate::baseline::command(&a.report, a.output.as_deref()),
    }
}

fn load(
    path: &std::path::Path,
    env: &EnvLookup,
    allow_origins: &[String],
) -> Result<suite::Loaded, u8> {
    let lookup = |n: &str| env(n);
    let mut opts = suite::load::LoadOptions::new(&lookup);
    opts.allow_origins = allow_origins;
    suite::load::load_file_with(path, &opts).map_err(|e| {
        eprint!("{}", e.render(&Redactor::new()));
        exit::UNDECIDED
    })
}

fn validate(a: ValidateArgs, env: &EnvLookup) -> u8 {
    let lookup = |n: &str| env(n);
    let opts = suite::load::LoadOptions {
        env: &lookup,
        no_env: a.no_env,
        allow_origins: &a.allow_origins,
    };
    let loaded = match suite::load::load_file_with(&a.suite, &opts) {
        Ok(l) => l,
        Err(e) => {
            eprint!("{}", e.render(&Redactor::new()));
            return exit::UNDECIDED;
        }
    };
    for n in &loaded.notices {
        eprintln!("notice: {n}");
    }
    let s = &loaded.suite;
    let plans = plan::plan(s, plan::has_signing_key(s), &plan::Selection::all());
    let variants: usize = plans.iter().map(|p| p.variants.len()).sum();
    // A closed pipe (`| head`) ends the listing quietly: it is not an error of the suite.
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "ok: suite `{}` is valid: {} checks, {} results planned{} (sha256 {})",
        s.name.value,
        s.checks.len(),
        variants,
        if s.database.is_some() {
            ", plus the database audit"
        } else {
            ""
        },
        loaded.sha256
    );
    if a.no_env {
        let names = |required: bool| {
            let v: Vec<&str> = loaded
                .env_refs
                .iter()
                .filter(|r| r.required == required)
                .map(|r| r.name.as_str())
                .collect();
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        let _ = writeln!(out, "environment a run needs: {}", names(true));
        let _ = writeln!(
            out,
            "environment read when set (has a default): {}",
            names(false)
        );
    }
    if a.list {
        for p in &plans {
            for v in &p.variants {
                if writeln!(out, "{}", p.variant_id(v)).is_err() {
                    return exit::PROVEN;
                }
            }
        }
        // Known only once connected: listed with what they need.
        for id in s.database.iter().flat_map(run::database::planned_ids) {
            if writeln!(out, "{id}").is_err() {
                return exit::PROVEN;
            }
        }
    }
    exit::PROVEN
}

async fn run_cmd(a: RunArgs, env: &EnvLookup, cancel: Option<Cancel>) -> u8 {
    let loaded = match load(&a.suite, env, &a.allow_origins) {
        Ok(l) => Arc::new(l),
        Err(c) => return c,
    };
    if let Some(code) = unmatched_filters(&loaded.suite, &a.filter) {
        return code;
    }
    let coverage = match openapi_coverage(&a, &loaded) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tenantgate: {e}");
            return exit::UNDECIDED;
        }
    };
    let redactor = Redactor::new();
    let reps = reporters_with_suite(&a.out, &redactor, Some(&loaded));
    let opts = Options {
        jobs: a.jobs.map(usize::from),
        filters: a.filter.clone(),
        excludes: a.exclude.clone(),
        deny_warnings: a.out.deny_warnings,
        insecure: a.insecure,
        setup_retries: a.setup_retries,
        setup_backoff: a.setup_backoff,
        check_retries: a.check_retries,
        partition: a.partition,
        partition_db_all: a.partition_db == "all",
        coverage,
    };
    if a.insecure {
        // Said before anything is sent, and again in every report's notices.
        eprintln!(
            "tenantgate: WARNING: --insecure: TLS certificates will NOT be verified; anyone on the path can answer for the target"
        );
    }
    let cancel = cancel.unwrap_or_else(|| {
        let c = Cancel::new();
        install_interrupts(c.clone());
        c
    });
    // The reporters have read the lines they point at; nothing in the run reads the
    // file's text again (a 10,000-check suite is 0.75 MB of it).
    let mut loaded = loaded;
    if let Some(l) = std::sync::Arc::get_mut(&mut loaded) {
        l.source = String::new();
    }
    // Shared with the run's tasks, which may run on any worker thread.
    let reps = std::sync::Mutex::new(reps);
    let summary = run::run_suite(loaded, &opts, &redactor, cancel, &mut |e| {
        lock(&reps).event(&e)
    })
    .await;
    finish(&lock(&reps), &summary)
}

/// The reporters behind their lock (a poisoned lock still hands them out: the reports
/// must be finished whatever happened to one event).
fn lock(reps: &std::sync::Mutex<Reporters>) -> std::sync::MutexGuard<'_, Reporters> {
    reps.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The OpenAPI coverage gate's results: from `--openapi`, else the suite's
/// `openapi.spec` (relative to the suite file); none without either.
fn openapi_coverage(
    a: &RunArgs,
    loaded: &suite::Loaded,
) -> Result<Vec<crate::outcome::CheckResult>, crate::openapi::OpenApiError> {
    let key = loaded.suite.openapi.as_ref();
    let spec = a.openapi.clone().or_else(|| {
        key.and_then(|k| k.spec.as_ref()).map(|s| {
            std::path::Path::new(&loaded.path)
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join(s)
        })
    });
    let Some(spec) = spec else {
        return Ok(Vec::new());
    };
    let ops = crate::openapi::load(&spec)?;
    let exempt: Vec<crate::openapi::Exempt> = key
        .map(|k| {
            k.exempt
                .iter()
                .map(|e| crate::openapi::Exempt {
                    operation: e.operation.clone(),
                    reason: e.reason.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(crate::openapi::coverage(&ops, &loaded.suite, &exempt))
}

/// A `--filter` that matches no planned check or variant, in a suite without a database
/// section (whose results are only known once the audit ran): an error before anything
/// is sent.
fn unmatched_filters(s: &suite::Suite, filters: &[String]) -> Option<u8> {
    if filters.is_empty() || s.database.is_some() {
        return None;
    }
    let plans = plan::plan(s, plan::has_signing_key(s), &plan::Selection::all());
    let ids: Vec<String> = plans.iter().flat_map(|p| p.ids()).collect();
    let sel = plan::Selection::new(filters.to_vec(), vec![]);
    let unmatched = sel.unmatched(&ids);
    if unmatched.is_empty() {
        return None;
    }
    for f in unmatched {
        eprintln!(
            "tenantgate: --filter `{f}` matches no check or variant of this suite{} (list them with `tenantgate validate --list`)",
            crate::run::verdict::did_you_mean(f, &ids)
        );
    }
    Some(exit::UNDECIDED)
}

/// `tenantgate merge`: the slices' reports replayed through the reporters as one run.
fn merge_cmd(a: MergeArgs) -> u8 {
    let merged = match crate::merge::merge(&a.slices, a.out.deny_warnings) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("tenantgate: merge: {e}");
            return exit::UNDECIDED;
        }
    };
    // The suite file, when it is still there and is the one the slices ran, places SARIF
    // results on its lines; it is read without the environment (nothing is sent).
    let suite = merged.info.suite_path.as_ref().and_then(|p| {
        let opts = suite::load::LoadOptions {
            env: &|_| None,
            no_env: true,
            allow_origins: &[],
        };
        suite::load::load_file_with(std::path::Path::new(p), &opts)
            .ok()
            .filter(|l| Some(&l.sha256) == merged.info.suite_sha256.as_ref())
    });
    let redactor = Redactor::new();
    let mut reps = reporters_with_suite(&a.out, &redactor, suite.as_ref());
    for e in merged.events() {
        reps.event(&e);
    }
    finish(&reps, &merged.summary)
}

/// `tenantgate list`: the plan `run` would execute, with ids; nothing is sent.
fn list_cmd(a: ListArgs) -> u8 {
    let opts = suite::load::LoadOptions {
        env: &|_| None,
        no_env: true,
        allow_origins: &[],
    };
    let loaded = match suite::load::load_file_with(&a.suite, &opts) {
        Ok(l) => l,
        Err(e) => {
            eprint!("{}", e.render(&Redactor::new()));
            return exit::UNDECIDED;
        }
    };
    let s = &loaded.suite;
    let plans = plan::plan(s, plan::has_signing_key(s), &plan::Selection::all());
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let mut text = String::new();
    for p in &plans {
        text.push_str(&format!("check {}  ({})\n", p.slug, p.name));
        for v in &p.variants {
            text.push_str(&format!("  {}  [{}]\n", p.variant_id(v), p.variant_name(v)));
        }
    }
    if let Some(db) = &s.database {
        // The same ids `validate --list` names; known only once connected.
        text.push_str("database (needs the database; tables found in the catalog at run time):\n");
        for line in run::database::planned_ids(db) {
            let (id, tag) = line.split_once("  ").unwrap_or((line.as_str(), ""));
            let tag = tag.trim_start_matches('(').trim_end_matches(')');
            text.push_str(&format!("  {id}  [{tag}]\n"));
        }
    }
    // A closed pipe (`| head`) ends the listing quietly.
    let _ = out.write_all(text.as_bytes());
    exit::PROVEN
}

fn finish(reps: &Reporters, summary: &RunSummary) -> u8 {
    for e in reps.errors() {
        eprintln!("tenantgate: {e}");
    }
    if !reps.errors().is_empty() && summary.exit_code == exit::PROVEN {
        // A report CI relies on was not written: the gate cannot claim a pass.
        return exit::UNDECIDED;
    }
    summary.exit_code
}

/// `--tenant-a-setting` / `--tenant-b-setting` paired by name.
fn probe_settings(a: &[String], b: &[String]) -> Result<Vec<crate::db::ProbeSetting>, String> {
    let split = |s: &String, flag: &str| {
        s.split_once('=')
            .map(|(n, v)| (n.trim().to_string(), v.to_string()))
            .filter(|(n, _)| !n.is_empty())
            .ok_or_else(|| format!("{flag} `{s}`: write NAME=VALUE"))
    };
    let a: Vec<(String, String)> = a
        .iter()
        .map(|s| split(s, "--tenant-a-setting"))
        .collect::<Result<_, _>>()?;
    let mut b: Vec<(String, String)> = b
        .iter()
        .map(|s| split(s, "--tenant-b-setting"))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for (name, va) in a {
        let Some(i) = b.iter().position(|(n, _)| *n == name) else {
            return Err(format!(
                "--tenant-a-setting {name}=... has no --tenant-b-setting {name}=..."
            ));
        };
        let (_, vb) = b.remove(i);
        out.push(crate::db::ProbeSetting { name, a: va, b: vb });
    }
    if let Some((name, _)) = b.first() {
        return Err(format!(
            "--tenant-b-setting {name}=... has no --tenant-a-setting {name}=..."
        ));
    }
    Ok(out)
}

async fn audit_cmd(a: AuditArgs) -> u8 {
    let redactor = Redactor::new();
    let settings = match probe_settings(&a.tenant_a_settings, &a.tenant_b_settings) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tenantgate: {e}");
            return exit::UNDECIDED;
        }
    };
    let cfg = crate::db::AuditConfig {
        url: a.database_url.clone(),
        tenant_columns: a.tenant_columns.clone(),
        schemas: a.schemas.clone(),
        tables: a.tables.clone(),
        exempt: a.exempt.clone(),
        app_role: a.app_roles.first().cloned(),
        tenant_setting: a.tenant_setting.clone(),
        probe: a.probe_url.clone().map(|url| crate::db::ProbeConfig {
            url,
            orgs: a
                .tenant_a
                .clone()
                .zip(a.tenant_b.clone())
                .map(|(a, b)| crate::db::ProbeOrgs { a, b }),
            settings,
            roles: a.probe_roles.clone(),
            seeds: Vec::new(),
        }),
        model: crate::db::TenantModel::of(
            a.preset.as_deref(),
            &a.identity_functions,
            &a.identity_settings,
            a.app_roles.get(1..).unwrap_or(&[]),
        ),
        tenant_schemas: (!a.tenant_schemas.is_empty()).then(|| crate::db::SchemaTenants {
            schemas: a.tenant_schemas.clone(),
            role: a.tenant_schema_role.clone(),
            shared: a.shared_schemas.clone(),
        }),
    };
    // Before any reporter exists: nothing may print a password first.
    run::database::register_passwords(&cfg, &redactor);
    let reps = std::sync::Mutex::new(reporters(&a.out, &redactor));
    let summary = run::audit_database(&cfg, a.out.deny_warnings, &redactor, &mut |e| {
        lock(&reps).event(&e)
    })
    .await;
    finish(&lock(&reps), &summary)
}
