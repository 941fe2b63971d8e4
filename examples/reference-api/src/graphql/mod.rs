//! The GraphQL reference target: `POST /graphql` in the style of a server generated
//! from the schema (PostGraphile), over the reference API's own RLS schema, where
//! tenant isolation *is* Row-Level Security. Sign-up and org deletion are the REST
//! routes of [`crate::api`], served beside it.
//!
//! Fields (PostGraphile names): `brandById(id:)`, `allBrands { nodes edges totalCount }`,
//! `updateBrandById(input: {id, patch: {name}}) { brand }`,
//! `createBrand(input: {brand: {name, orgId?}}) { brand }`. A brand is
//! `{id, orgId, name, createdAt}`. A missing or foreign row is `null`; a refused
//! mutation is `200 {"errors":[{"message","path"}],"data":{"field":null}}`; a bad token
//! (signature, expiry, `alg`) is `403 {"errors":[{"message":…}]}` as PostGraphile
//! answers; no token means the anonymous role `{p}_anon`.
//!
//! How it isolates: a token's org is set as `app.current_org_id` transaction-locally and
//! every query relies on the policies alone (no `WHERE org_id = …` of its own: a
//! generated server has none). Anonymous requests `SET LOCAL ROLE {p}_anon`, whose one
//! SELECT policy on `brands` is keyed on the same setting (none is set: no rows).
//! `createBrand` takes `orgId` from its input, as a generated mutation does for every
//! column; the policy's WITH CHECK refuses another org.

mod parse;

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value, json};
use tokio_postgres::NoTls;
use uuid::Uuid;

use crate::api::AppState;
use crate::bugs::{Bug, Bugs};
use crate::db::{begin_anonymous, begin_tenant, rfc3339};
use crate::{Error, Launched, RunningApi};

/// One planted defect of the GraphQL target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GqlBug {
    /// `brandById` is resolved through a SECURITY DEFINER function owned by the superuser.
    DefinerField,
    /// `allBrands` reads a view without `security_invoker`, owned by the superuser.
    ViewConnection,
    /// A permissive INSERT policy `WITH CHECK (true)` on brands: `createBrand` with
    /// another org's `orgId` lands there.
    InsertWithoutTenantCheck,
    /// The anonymous role's policy treats an unset tenant as every tenant.
    AnonFailOpen,
    /// Tokens with `"alg":"none"` are accepted.
    AlgNone,
}

impl GqlBug {
    /// Every bug, in a stable order.
    pub const ALL: [GqlBug; 5] = [
        GqlBug::DefinerField,
        GqlBug::ViewConnection,
        GqlBug::InsertWithoutTenantCheck,
        GqlBug::AnonFailOpen,
        GqlBug::AlgNone,
    ];

    /// The name on the command line (`--bugs`, `REFAPI_GRAPHQL_BUGS`).
    pub fn name(self) -> &'static str {
        match self {
            GqlBug::DefinerField => "definer-field",
            GqlBug::ViewConnection => "view-connection",
            GqlBug::InsertWithoutTenantCheck => "insert-without-tenant-check",
            GqlBug::AnonFailOpen => "anon-fail-open",
            GqlBug::AlgNone => "alg-none",
        }
    }

    /// What the bug does.
    pub fn description(self) -> &'static str {
        match self {
            GqlBug::DefinerField => {
                "brandById resolves through a SECURITY DEFINER function owned by the superuser (RLS skipped)"
            }
            GqlBug::ViewConnection => {
                "allBrands reads a view without security_invoker, owned by the superuser (RLS skipped)"
            }
            GqlBug::InsertWithoutTenantCheck => {
                "a permissive INSERT policy WITH CHECK (true) on brands: createBrand honours another org's orgId"
            }
            GqlBug::AnonFailOpen => {
                "the anonymous role's brands policy reads an unset tenant as every tenant"
            }
            GqlBug::AlgNone => "tokens with \"alg\":\"none\" are accepted unverified",
        }
    }

    /// The tenantgate check of `suites/graphql-api.yaml` that should catch it.
    pub fn caught_by(self) -> &'static str {
        match self {
            GqlBug::DefinerField => "brand-is-invisible-to-b",
            GqlBug::ViewConnection => "brand-list-holds-none-of-a-s",
            GqlBug::InsertWithoutTenantCheck => "brands-b-creates-stay-in-b",
            GqlBug::AnonFailOpen => "anonymous-brand-list-holds-none-of-a-s",
            GqlBug::AlgNone => "brand-is-invisible-to-b/token_forgery:alg_none",
        }
    }
}

/// A set of planted GraphQL bugs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GqlBugs(BTreeSet<GqlBug>);

/// A bug name that is not one of [`GqlBug::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("unknown GraphQL bug {0:?} (known: {known})", known = GqlBug::ALL.map(GqlBug::name).join(", "))]
pub struct UnknownGqlBug(String);

impl GqlBugs {
    /// `a,b`, `all`, `none` or empty.
    pub fn parse(list: &str) -> Result<GqlBugs, UnknownGqlBug> {
        let mut set = BTreeSet::new();
        for n in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match n {
                "none" => {}
                "all" => set.extend(GqlBug::ALL),
                _ => {
                    let b = GqlBug::ALL
                        .into_iter()
                        .find(|b| b.name() == n)
                        .ok_or_else(|| UnknownGqlBug(n.to_string()))?;
                    set.insert(b);
                }
            }
        }
        Ok(GqlBugs(set))
    }

    pub fn contains(&self, b: GqlBug) -> bool {
        self.0.contains(&b)
    }
}

impl FromStr for GqlBugs {
    type Err = UnknownGqlBug;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GqlBugs::parse(s)
    }
}

impl fmt::Display for GqlBugs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|b| b.name()).collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

/// The GraphQL objects over the reference schema, with the planted bugs: the anonymous
/// role and its policy, and (only when planted) the definer function, the view and the
/// open INSERT policy. Run as the superuser after [`crate::prepare_database`].
fn graphql_sql(p: &str, bugs: &GqlBugs) -> String {
    let (app, anon) = (format!("{p}_app"), format!("{p}_anon"));
    let tenant = "org_id = NULLIF(current_setting('app.current_org_id', true), '')::uuid";
    let anon_using = if bugs.contains(GqlBug::AnonFailOpen) {
        format!(
            "current_setting('app.current_org_id', true) IS NULL \
             OR current_setting('app.current_org_id', true) = '' OR {tenant}"
        )
    } else {
        tenant.to_string()
    };
    let mut sql = format!(
        "DO $$ BEGIN CREATE ROLE {anon} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
ALTER ROLE {anon} NOLOGIN NOSUPERUSER NOBYPASSRLS;
GRANT {anon} TO {app};
GRANT USAGE ON SCHEMA public TO {anon};
GRANT SELECT ON brands TO {anon};
DROP POLICY IF EXISTS anon_read ON brands;
CREATE POLICY anon_read ON brands FOR SELECT TO {anon} USING ({anon_using});
DROP FUNCTION IF EXISTS gql_brand_by_id(uuid);
DROP VIEW IF EXISTS gql_all_brands;
DROP POLICY IF EXISTS gql_create ON brands;
"
    );
    if bugs.contains(GqlBug::DefinerField) {
        sql.push_str(&format!(
            "CREATE FUNCTION gql_brand_by_id(uuid) RETURNS SETOF brands LANGUAGE sql STABLE \
             SECURITY DEFINER AS $f$ SELECT * FROM brands WHERE id = $1 $f$;
GRANT EXECUTE ON FUNCTION gql_brand_by_id(uuid) TO {app};
"
        ));
    }
    if bugs.contains(GqlBug::ViewConnection) {
        sql.push_str(&format!(
            "CREATE VIEW gql_all_brands AS SELECT id, org_id, name, created_at FROM brands;
GRANT SELECT ON gql_all_brands TO {app}, {anon};
"
        ));
    }
    if bugs.contains(GqlBug::InsertWithoutTenantCheck) {
        sql.push_str(&format!(
            "CREATE POLICY gql_create ON brands FOR INSERT TO {app} WITH CHECK (true);\n"
        ));
    }
    sql
}

/// Prepares the reference schema (no REST bugs) and the GraphQL objects with `bugs`.
pub async fn prepare_graphql_database(
    superuser_url: &str,
    role_prefix: &str,
    bugs: &GqlBugs,
) -> Result<crate::AppRole, Error> {
    let role = crate::prepare_database(superuser_url, role_prefix, &Bugs::none()).await?;
    let (client, connection) = tokio_postgres::connect(superuser_url, NoTls)
        .await
        .map_err(|e| Error::db("connecting as the superuser", e))?;
    let conn = tokio::spawn(connection);
    let r = client
        .batch_execute(&graphql_sql(role_prefix, bugs))
        .await
        .map_err(|e| Error::db("creating the GraphQL objects", e));
    drop(client);
    let _ = conn.await;
    r?;
    Ok(role)
}

/// What [`serve_graphql`] needs.
#[derive(Clone)]
pub struct GraphqlConfig {
    pub admin_url: String,
    pub app_url: String,
    pub jwt_secret: String,
    pub role_prefix: String,
    pub bugs: GqlBugs,
    pub listen: SocketAddr,
}

struct Gql {
    app: Arc<AppState>,
    anon_role: String,
    token_bugs: Bugs,
    bugs: GqlBugs,
}

/// Serves `POST /graphql` and the REST routes (sign-up, org deletion) on `listen`.
pub async fn serve_graphql(config: GraphqlConfig) -> Result<RunningApi, Error> {
    crate::check_app_role(&config.app_url).await?;
    let listen_error = |source| Error::Listen {
        addr: config.listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(listen_error)?;
    let addr = listener.local_addr().map_err(listen_error)?;
    let token_bugs: Bugs = if config.bugs.contains(GqlBug::AlgNone) {
        Bug::AlgNone.into()
    } else {
        Bugs::none()
    };
    let app = Arc::new(AppState::new(
        config.app_url,
        config.admin_url,
        config.jwt_secret,
        Bugs::none(),
    ));
    let state = Arc::new(Gql {
        app: app.clone(),
        anon_role: format!("{}_anon", config.role_prefix),
        token_bugs,
        bugs: config.bugs,
    });
    let router = axum::Router::new()
        .route("/graphql", post(graphql))
        .with_state(state)
        .merge(crate::api::router(app));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = async {
        let _ = stopped.await;
    };
    let task = tokio::spawn(crate::run_server(listener, router, stopped));
    Ok(RunningApi {
        addr,
        stop: Some(stop),
        task: Some(task),
    })
}

/// [`crate::launch_at`] for the GraphQL target: a fresh database `dbname`, roles with
/// `role_prefix`, and the server on 127.0.0.1 with a free port.
pub async fn launch_graphql_at(
    superuser_url: &str,
    dbname: &str,
    role_prefix: &str,
    bugs: GqlBugs,
) -> Result<Launched, Error> {
    crate::schema::validate_role_prefix(dbname).map_err(|_| {
        Error::Config(format!(
            "database name {dbname:?} must be like a role prefix"
        ))
    })?;
    crate::recreate_database(&crate::pg::with_database(superuser_url, "postgres"), dbname).await?;
    let admin_url = crate::pg::with_database(superuser_url, dbname);
    let role = prepare_graphql_database(&admin_url, role_prefix, &bugs).await?;
    let jwt_secret = crate::pg::random_hex(32);
    let api = serve_graphql(GraphqlConfig {
        admin_url: admin_url.clone(),
        app_url: role.app_url.clone(),
        jwt_secret: jwt_secret.clone(),
        role_prefix: role_prefix.to_string(),
        bugs,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
    })
    .await?;
    Ok(Launched {
        base_url: format!("http://{}", api.addr),
        api,
        admin_url,
        app_url: role.app_url,
        app_role: role.name,
        jwt_secret,
    })
}

fn answer(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn refusal(status: StatusCode, message: &str) -> Response {
    answer(status, json!({ "errors": [{ "message": message }] }))
}

/// `POST /graphql`.
async fn graphql(State(st): State<Arc<Gql>>, headers: HeaderMap, body: Bytes) -> Response {
    let org = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => {
            let token = v
                .to_str()
                .ok()
                .and_then(|v| v.split_once(' '))
                .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim());
            match token.and_then(|t| crate::token::verify(t, &st.app.jwt_secret, &st.token_bugs)) {
                Some(c) => Some(c.org_id),
                None => return refusal(StatusCode::FORBIDDEN, "invalid token"),
            }
        }
    };
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return refusal(StatusCode::BAD_REQUEST, "the body is not JSON");
    };
    let Some(query) = req.get("query").and_then(Value::as_str) else {
        return refusal(StatusCode::BAD_REQUEST, "Must provide query string.");
    };
    let vars = match req.get("variables") {
        Some(Value::Object(o)) => o.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(_) => return refusal(StatusCode::BAD_REQUEST, "Variables must be an object."),
    };
    let ops = match parse::parse(query) {
        Ok(ops) => ops,
        Err(e) => return refusal(StatusCode::BAD_REQUEST, &e),
    };
    let wanted = req.get("operationName").and_then(Value::as_str);
    let op = match (wanted, ops.len()) {
        (Some(n), _) => ops.iter().find(|o| o.name.as_deref() == Some(n)),
        (None, 1) => ops.first(),
        (None, _) => None,
    };
    let Some(op) = op else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "Must provide a known operation name.",
        );
    };
    match execute(&st, org, op, &vars).await {
        Ok(v) => answer(StatusCode::OK, v),
        Err(e) => {
            eprintln!("reference-api-graphql: {e}");
            refusal(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// Runs the operation's fields in one transaction (tenant-scoped, or as the anonymous
/// role) and shapes the answer; an `Err` is a fault of the server (a 500).
async fn execute(
    st: &Gql,
    org: Option<Uuid>,
    op: &parse::Operation,
    vars: &Map<String, Value>,
) -> Result<Value, String> {
    let mut client = st.app.app.get().await.map_err(|e| e.to_string())?;
    let tx = match org {
        Some(o) => begin_tenant(&mut client, o).await,
        None => begin_anonymous(&mut client).await,
    }
    .map_err(|e| e.to_string())?;
    if org.is_none() {
        tx.batch_execute(&format!("SET LOCAL ROLE {}", st.anon_role))
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut data = Map::new();
    let mut errors = Vec::new();
    for f in &op.fields {
        let args: Map<String, Value> = f
            .args
            .iter()
            .map(|(k, v)| (k.clone(), v.resolve(vars)))
            .collect();
        let r = match (op.kind.as_str(), f.name.as_str()) {
            ("query", "brandById") => brand_by_id(st, &tx, &args).await,
            ("query", "allBrands") => all_brands(st, &tx).await,
            ("mutation", "updateBrandById") => update_brand(&tx, org, &args).await,
            ("mutation", "createBrand") => create_brand(&tx, org, &args).await,
            (k, n) => Err(Refused(format!(
                "Cannot query field \"{n}\" on type \"{k}\"."
            ))),
        };
        match r {
            Ok(v) => {
                data.insert(f.key().to_string(), project(&v, &f.selection));
            }
            Err(Refused(m)) => {
                data.insert(f.key().to_string(), Value::Null);
                errors.push(json!({ "message": m, "path": [f.key()] }));
            }
        }
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    let mut out = Map::new();
    if !errors.is_empty() {
        out.insert("errors".into(), Value::Array(errors));
    }
    out.insert("data".into(), Value::Object(data));
    Ok(Value::Object(out))
}

/// A field's error, shown to the caller in `errors` (its message only).
struct Refused(String);

impl From<tokio_postgres::Error> for Refused {
    fn from(e: tokio_postgres::Error) -> Self {
        Refused(
            e.as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_else(|| "database error".into()),
        )
    }
}

/// Keeps the selected fields (with aliases) of an object, of each object in a list.
fn project(v: &Value, selection: &[parse::Field]) -> Value {
    if selection.is_empty() {
        return v.clone();
    }
    match v {
        Value::Array(a) => Value::Array(a.iter().map(|x| project(x, selection)).collect()),
        Value::Object(o) => Value::Object(
            selection
                .iter()
                .map(|f| {
                    let x = o.get(&f.name).cloned().unwrap_or(Value::Null);
                    (f.key().to_string(), project(&x, &f.selection))
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

const BRAND: &str = concat!("id, org_id, name, ", rfc3339!("created_at"));

fn brand(row: &tokio_postgres::Row) -> Value {
    json!({
        "__typename": "Brand",
        "id": row.get::<_, Uuid>(0).to_string(),
        "orgId": row.get::<_, Uuid>(1).to_string(),
        "name": row.get::<_, String>(2),
        "createdAt": row.get::<_, String>(3),
    })
}

fn uuid_arg(v: Option<&Value>, what: &str) -> Result<Uuid, Refused> {
    v.and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| Refused(format!("Expected a UUID for {what}")))
}

async fn brand_by_id(
    st: &Gql,
    tx: &tokio_postgres::Transaction<'_>,
    args: &Map<String, Value>,
) -> Result<Value, Refused> {
    let id = uuid_arg(args.get("id"), "id")?;
    let from = if st.bugs.contains(GqlBug::DefinerField) {
        // Planted: the definer function runs as its owner, the superuser: no RLS.
        "gql_brand_by_id($1)"
    } else {
        "brands WHERE id = $1"
    };
    let row = tx
        .query_opt(&format!("SELECT {BRAND} FROM {from}"), &[&id])
        .await?;
    Ok(row.as_ref().map(brand).unwrap_or(Value::Null))
}

async fn all_brands(st: &Gql, tx: &tokio_postgres::Transaction<'_>) -> Result<Value, Refused> {
    let from = if st.bugs.contains(GqlBug::ViewConnection) {
        // Planted: a view without security_invoker reads as its owner, the superuser.
        "gql_all_brands"
    } else {
        "brands"
    };
    let rows = tx
        .query(
            &format!("SELECT {BRAND} FROM {from} ORDER BY created_at, id"),
            &[],
        )
        .await?;
    let nodes: Vec<Value> = rows.iter().map(brand).collect();
    Ok(json!({
        "__typename": "BrandsConnection",
        "totalCount": nodes.len(),
        "edges": nodes.iter().map(|n| json!({ "node": n })).collect::<Vec<_>>(),
        "nodes": nodes,
    }))
}

async fn update_brand(
    tx: &tokio_postgres::Transaction<'_>,
    org: Option<Uuid>,
    args: &Map<String, Value>,
) -> Result<Value, Refused> {
    if org.is_none() {
        return Err(Refused("permission denied for table brands".into()));
    }
    let input = args.get("input").cloned().unwrap_or(Value::Null);
    let id = uuid_arg(input.get("id"), "input.id")?;
    let name = input
        .get("patch")
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let row = tx
        .query_opt(
            &format!("UPDATE brands SET name = COALESCE($2, name) WHERE id = $1 RETURNING {BRAND}"),
            &[&id, &name],
        )
        .await?;
    match row {
        Some(r) => Ok(json!({ "brand": brand(&r) })),
        None => Err(Refused(
            "No values were updated in collection 'brands' because no values you asked to update were found.".into(),
        )),
    }
}

async fn create_brand(
    tx: &tokio_postgres::Transaction<'_>,
    org: Option<Uuid>,
    args: &Map<String, Value>,
) -> Result<Value, Refused> {
    let Some(own) = org else {
        return Err(Refused("permission denied for table brands".into()));
    };
    let b = args
        .get("input")
        .and_then(|i| i.get("brand"))
        .cloned()
        .unwrap_or(Value::Null);
    let Some(name) = b.get("name").and_then(Value::as_str) else {
        return Err(Refused("input.brand.name is required".into()));
    };
    // Every column is an input field, as in a generated mutation; the policy decides.
    let org_id = match b.get("orgId") {
        None | Some(Value::Null) => own,
        v => uuid_arg(v, "input.brand.orgId")?,
    };
    let id = Uuid::new_v4();
    tx.execute("SAVEPOINT create_brand", &[]).await?;
    if let Err(e) = tx
        .execute(
            "INSERT INTO brands (id, org_id, name) VALUES ($1, $2, $3)",
            &[&id, &org_id, &name],
        )
        .await
    {
        tx.execute("ROLLBACK TO SAVEPOINT create_brand", &[])
            .await?;
        return Err(e.into());
    }
    let row = tx
        .query_opt(&format!("SELECT {BRAND} FROM brands WHERE id = $1"), &[&id])
        .await?;
    Ok(json!({ "brand": row.as_ref().map(brand).unwrap_or(Value::Null) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bug_names_round_trip_and_plant_only_what_they_say() {
        for b in GqlBug::ALL {
            assert_eq!(GqlBugs::parse(b.name()).unwrap(), GqlBugs([b].into()));
        }
        assert!(GqlBugs::parse("nope").is_err());
        assert_eq!(GqlBugs::parse("all").unwrap().0.len(), GqlBug::ALL.len());
        let clean = graphql_sql("tq", &GqlBugs::default());
        assert!(!clean.contains("SECURITY DEFINER") && !clean.contains("CREATE VIEW"));
        assert!(!clean.contains("WITH CHECK (true)") && !clean.contains("IS NULL"));
        let all = graphql_sql("tq", &GqlBugs::parse("all").unwrap());
        for s in [
            "SECURITY DEFINER",
            "CREATE VIEW",
            "WITH CHECK (true)",
            "IS NULL",
        ] {
            assert!(all.contains(s), "{s}");
        }
    }
}
