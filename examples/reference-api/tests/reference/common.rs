//! Test fixtures: the shared cluster, a launched API per test, an HTTP helper, orgs with
//! seeded data, forged tokens, and SQL sessions as the app role.

use std::sync::{Arc, Mutex, Weak};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};
use tenantgate_reference_api::pg::TempPostgres;
use tenantgate_reference_api::{Bugs, Launched, TlsFiles, launch, launch_with};
use tokio_postgres::{Client, NoTls};

/// The cluster shared by the tests that are running. It stops when the last test using
/// it finishes: a `static` holding it would never be dropped and would leak a server.
pub fn cluster() -> Arc<TempPostgres> {
    static SHARED: Mutex<Weak<TempPostgres>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(pg) = slot.upgrade() {
        return pg;
    }
    let pg = Arc::new(TempPostgres::start().expect("start PostgreSQL"));
    *slot = Arc::downgrade(&pg);
    pg
}

/// One launched API with its own database and role prefix.
pub struct Env {
    pub launched: Launched,
    http: reqwest::Client,
    // Dropped last: the API and its connections go before the cluster.
    _pg: Arc<TempPostgres>,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub content_type: String,
    /// The `Strict-Transport-Security` header, when sent.
    pub hsts: Option<String>,
    pub raw: String,
    pub body: Value,
}

/// A signed-up org: its id, owner and token.
#[derive(Debug, Clone)]
pub struct Org {
    pub id: String,
    pub user_id: String,
    pub email: String,
    pub token: String,
}

/// What [`Env::seed`] created in an org.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub brand: String,
    pub mention: String,
    pub subscriber: String,
}

/// Launches the API in database `name` with role prefix `name` and the given bugs.
pub async fn env(name: &str, bugs: &str) -> Env {
    let pg = cluster();
    let bugs = Bugs::parse(bugs).expect("bug names");
    let launched = launch(&pg, name, name, bugs).await.expect("launch");
    Env {
        launched,
        http: reqwest::Client::new(),
        _pg: pg,
    }
}

/// The test-only TLS material shared with tenantgate's own tests: a server certificate
/// for `127.0.0.1` and `localhost`, and the CA that signed it.
pub fn tls_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tls")
}

/// The server certificate and key of [`tls_dir`].
pub fn tls_files() -> TlsFiles {
    TlsFiles {
        cert: tls_dir().join("server.pem"),
        key: tls_dir().join("server.key"),
    }
}

/// Like [`env`], serving HTTPS with [`tls_files`]; the client trusts the test CA.
pub async fn env_tls(name: &str, bugs: &str) -> Env {
    let pg = cluster();
    let bugs = Bugs::parse(bugs).expect("bug names");
    let launched = launch_with(
        &pg.superuser_url("postgres"),
        name,
        name,
        bugs,
        Some(tls_files()),
    )
    .await
    .expect("launch with TLS");
    let ca = std::fs::read(tls_dir().join("ca.pem")).expect("test CA");
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA PEM"))
        .build()
        .expect("HTTPS client");
    Env {
        launched,
        http,
        _pg: pg,
    }
}

impl Env {
    /// Sends a request; `token` becomes a bearer header, `body` JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.launched.base_url));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.expect("HTTP request");
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let hsts = resp
            .headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let raw = resp.text().await.expect("HTTP body");
        let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
        Resp {
            status,
            content_type,
            hsts,
            raw,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None, &[]).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), Some(body), &[])
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(token), Some(body), &[])
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.call(Method::DELETE, path, Some(token), None, &[])
            .await
    }

    /// A request with no credential at all.
    pub async fn anon(&self, method: Method, path: &str) -> Resp {
        self.call(method, path, None, None, &[]).await
    }

    /// A request identified by an API key in `X-Api-Key`.
    pub async fn with_key(&self, method: Method, path: &str, key: &str) -> Resp {
        self.call(method, path, None, None, &[("X-Api-Key", key)])
            .await
    }

    /// Creates an API key named `name` for `org`; returns `(key id, plaintext key)`.
    pub async fn api_key(&self, org: &Org, name: &str) -> (String, String) {
        let r = self
            .post("/api-keys", &org.token, json!({"name": name}))
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        (str_at(&r.body, "/id"), str_at(&r.body, "/key"))
    }

    /// Signs up an org named `name` with owner `owner@{name}.test`.
    pub async fn signup(&self, name: &str) -> Org {
        let email = format!("owner@{}.test", name.to_lowercase());
        let r = self
            .call(
                Method::POST,
                "/auth/signup",
                None,
                Some(json!({"org_name": name, "email": email, "password": "pw-123456"})),
                &[],
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        Org {
            id: str_at(&r.body, "/org/id"),
            user_id: str_at(&r.body, "/user/id"),
            email,
            token: str_at(&r.body, "/access_token"),
        }
    }

    /// A brand, a mention of it and a subscriber to it, all named after `marker`.
    pub async fn seed(&self, org: &Org, marker: &str) -> Seeded {
        let r = self
            .post(
                "/brands",
                &org.token,
                json!({"name": format!("brand {marker}")}),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        let brand = str_at(&r.body, "/id");
        let r = self
            .post(
                "/monitoring/mentions",
                &org.token,
                json!({"brand_id": brand, "text": format!("mention {marker}"),
                       "source_url": "https://example.test/post"}),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        let mention = str_at(&r.body, "/id");
        let r = self
            .post(
                "/subscribers",
                &org.token,
                json!({"brand_id": brand, "email": format!("{marker}@subscriber.test")}),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        let subscriber = str_at(&r.body, "/id");
        Seeded {
            brand,
            mention,
            subscriber,
        }
    }

    /// Two orgs, A with data marked `marker-a`, B with data marked `marker-b`.
    pub async fn two_orgs(&self) -> (Org, Seeded, Org, Seeded) {
        let a = self.signup("OrgA").await;
        let b = self.signup("OrgB").await;
        let sa = self.seed(&a, "marker-a").await;
        let sb = self.seed(&b, "marker-b").await;
        (a, sa, b, sb)
    }

    /// A SQL session as the app role, with no tenant setting.
    pub async fn app_sql(&self) -> Client {
        connect(&self.launched.app_url).await
    }

    /// A SQL session as the superuser.
    pub async fn admin_sql(&self) -> Client {
        connect(&self.launched.admin_url).await
    }

    /// A token signed with this launch's secret, with the given claims.
    pub fn sign(&self, claims: &Value) -> String {
        sign(&self.launched.jwt_secret, claims)
    }
}

pub async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("SQL connect");
    tokio::spawn(conn);
    client
}

/// The string at a JSON pointer; panics with the document when missing.
pub fn str_at(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {v}"))
        .to_string()
}

/// The `items` of a list answer, as raw text: a leak shows as a marker in it.
pub fn items_text(r: &Resp) -> String {
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body["items"].is_array(), "{r:?}");
    r.body["items"].to_string()
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims like a real token's, for `org`.
pub fn claims_for(org: &Org, exp: u64) -> Value {
    json!({"sub": org.user_id, "org_id": org.id, "role": "owner", "iat": now(), "exp": exp})
}

pub fn sign(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// An unsigned token: header `{"alg":"none"}`, empty signature.
pub fn alg_none(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string());
    format!("{header}.{}.", URL_SAFE_NO_PAD.encode(claims.to_string()))
}

/// `token` with its payload replaced and its signature kept.
pub fn tampered(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    )
}
