//! `reference-api`: prepares a database and serves the reference API until Ctrl-C.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use tenantgate_reference_api::{Bug, Bugs, Config, TlsFiles, pg, prepare_database, serve};

/// A multi-tenant JSON API on PostgreSQL RLS with switchable planted isolation bugs:
/// tenantgate's reference target.
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
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Planted bugs to enable, comma-separated (see --list-bugs).
    #[arg(long, env = "REFAPI_BUGS", default_value = "none")]
    bugs: Bugs,
    /// Prefix of the cluster-wide role names ({p}_owner, {p}_app, {p}_maintenance).
    #[arg(long, default_value = "tg")]
    role_prefix: String,
    /// HS256 signing secret; random when not given.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Serve HTTPS (TLS 1.3 only, with HSTS) with this PEM certificate chain; needs
    /// --tls-key.
    #[arg(long, requires = "tls_key", value_name = "PEM")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert", value_name = "PEM")]
    tls_key: Option<std::path::PathBuf>,
    /// Print the planted bugs and exit.
    #[arg(long)]
    list_bugs: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.list_bugs {
        // writeln! rather than println!: `--list-bugs | head` must not panic on a closed
        // pipe.
        let mut out = std::io::stdout().lock();
        for bug in Bug::ALL {
            if writeln!(out, "{:<24} {}", bug.name(), bug.description()).is_err() {
                break;
            }
        }
        return ExitCode::SUCCESS;
    }
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reference-api: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let database_url = args.database_url.ok_or("--database-url is required")?;
    let role = prepare_database(&database_url, &args.role_prefix, &args.bugs).await?;
    let jwt_secret = args.jwt_secret.unwrap_or_else(|| pg::random_hex(32));
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        _ => None,
    };
    let api = serve(Config {
        admin_url: database_url,
        app_url: role.app_url.clone(),
        jwt_secret,
        bugs: args.bugs.clone(),
        listen: args.listen,
        tls: tls.clone(),
    })
    .await?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("listening on {scheme}://{}", api.addr);
    println!("app role:  {}", role.redacted_url());
    println!("bugs:      {}", args.bugs);
    tokio::signal::ctrl_c().await?;
    api.shutdown().await;
    Ok(())
}
