//! `reference-api-graphql`: prepares a database and serves the GraphQL reference target
//! (`POST /graphql` over the reference RLS schema) until Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use tenantgate_reference_api::graphql::{GraphqlConfig, prepare_graphql_database, serve_graphql};
use tenantgate_reference_api::{GqlBug, GqlBugs, pg};

/// The GraphQL reference target of tenantgate, with switchable planted bugs.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Superuser URL of the target database (roles, tables, policies and the GraphQL
    /// objects are created or updated in it).
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        required_unless_present = "list_bugs"
    )]
    database_url: Option<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8082")]
    listen: SocketAddr,
    /// Planted bugs to enable, comma-separated (see --list-bugs).
    #[arg(long, env = "REFAPI_GRAPHQL_BUGS", default_value = "none")]
    bugs: GqlBugs,
    /// Prefix of the cluster-wide role names ({p}_owner, {p}_app, {p}_anon).
    #[arg(long, default_value = "tgq")]
    role_prefix: String,
    /// HS256 signing secret; random when not given.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Print the planted bugs and exit.
    #[arg(long)]
    list_bugs: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.list_bugs {
        for bug in GqlBug::ALL {
            println!("{:<28} {}", bug.name(), bug.description());
        }
        return ExitCode::SUCCESS;
    }
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reference-api-graphql: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let database_url = args.database_url.ok_or("--database-url is required")?;
    let role = prepare_graphql_database(&database_url, &args.role_prefix, &args.bugs).await?;
    let api = serve_graphql(GraphqlConfig {
        admin_url: database_url,
        app_url: role.app_url,
        jwt_secret: args.jwt_secret.unwrap_or_else(|| pg::random_hex(32)),
        role_prefix: args.role_prefix,
        bugs: args.bugs.clone(),
        listen: args.listen,
    })
    .await?;
    println!(
        "reference-api-graphql listening on http://{}/graphql (bugs: {})",
        api.addr, args.bugs
    );
    tokio::signal::ctrl_c().await?;
    api.shutdown().await;
    Ok(())
}
