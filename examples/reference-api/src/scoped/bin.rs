//! `reference-api-scoped`: prepares a database and serves the path-scoped reference
//! target (slugs in paths, session cookies, API keys, membership-keyed RLS) until Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use tenantgate_reference_api::scoped::{ScopedConfig, prepare_scoped_database, serve_scoped};
use tenantgate_reference_api::{ScopedBug, ScopedBugs};

/// The path-scoped reference target of tenantgate, with switchable planted bugs.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Superuser URL of the target database (roles, tables and policies are created or
    /// updated in it).
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        required_unless_present = "list_bugs"
    )]
    database_url: Option<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Planted bugs to enable, comma-separated (see --list-bugs).
    #[arg(long, env = "REFAPI_SCOPED_BUGS", default_value = "none")]
    bugs: ScopedBugs,
    /// Prefix of the cluster-wide role names ({p}_owner, {p}_app).
    #[arg(long, default_value = "tgs")]
    role_prefix: String,
    /// Print the planted bugs and exit.
    #[arg(long)]
    list_bugs: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.list_bugs {
        for bug in ScopedBug::ALL {
            println!("{:<24} {}", bug.name(), bug.description());
        }
        return ExitCode::SUCCESS;
    }
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reference-api-scoped: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let database_url = args.database_url.ok_or("--database-url is required")?;
    let role = prepare_scoped_database(&database_url, &args.role_prefix, &args.bugs).await?;
    let api = serve_scoped(ScopedConfig {
        admin_url: database_url,
        app_url: role.app_url.clone(),
        bugs: args.bugs.clone(),
        listen: args.listen,
    })
    .await?;
    println!("listening on http://{}", api.addr);
    println!("app role:  {}", role.redacted_url());
    println!("bugs:      {}", args.bugs);
    tokio::signal::ctrl_c().await?;
    api.shutdown().await;
    Ok(())
}
