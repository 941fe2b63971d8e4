//! Database access for the API: a small connection pool and the tenant transaction.
//!
//! The pool is deliberately tiny (a semaphore bounding a stack of idle clients) because
//! the interesting part is not pooling but what happens on a pooled connection: every
//! request opens a transaction and sets `app.current_org_id` *transaction-locally*
//! ([`begin_tenant`]), so the setting vanishes at commit or rollback and the next user of
//! the same connection starts with no tenant at all.

use std::sync::Mutex;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::{Client, NoTls, Transaction};
use uuid::Uuid;

/// A bounded pool of connections to one URL, opened lazily.
pub(crate) struct Pool {
    url: String,
    /// What the connections are for, in log lines ("app", "privileged").
    label: &'static str,
    idle: Mutex<Vec<Client>>,
    permits: Semaphore,
}

/// A connection checked out of a [`Pool`]; goes back on drop unless it broke.
pub(crate) struct PooledClient<'p> {
    client: Option<Client>,
    pool: &'p Pool,
    _permit: SemaphorePermit<'p>,
}

impl Pool {
    /// A pool of at most `size` connections to `url`.
    pub(crate) fn new(url: String, label: &'static str, size: usize) -> Pool {
        Pool {
            url,
            label,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(size),
        }
    }

    /// Checks out a connection, opening one if none is idle.
    pub(crate) async fn get(&self) -> Result<PooledClient<'_>, tokio_postgres::Error> {
        let permit = self
            .permits
            .acquire()
            .await
            .expect("the pool's semaphore is never closed");
        let idle = self.lock_idle().pop();
        let client = match idle {
            Some(client) => client,
            None => self.connect().await?,
        };
        Ok(PooledClient {
            client: Some(client),
            pool: self,
            _permit: permit,
        })
    }

    async fn connect(&self) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls).await?;
        let label = self.label;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("reference-api: {label} connection ended: {}", describe(&e));
            }
        });
        Ok(client)
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Client>> {
        // A panic while holding this lock cannot leave the Vec inconsistent.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::ops::Deref for PooledClient<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("present until drop")
    }
}

impl std::ops::DerefMut for PooledClient<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("present until drop")
    }
}

impl Drop for PooledClient<'_> {
    fn drop(&mut self) {
        // An unfinished transaction was already rolled back by `Transaction`'s drop (the
        // ROLLBACK is queued ahead of any later query), so the client is clean to reuse.
        if let Some(client) = self.client.take()
            && !client.is_closed()
        {
            self.pool.lock_idle().push(client);
        }
    }
}

/// Opens a transaction scoped to `org`: `app.current_org_id` is set with
/// `set_config(..., true)`, i.e. only until this transaction ends.
pub(crate) async fn begin_tenant(
    client: &mut Client,
    org: Uuid,
) -> Result<Transaction<'_>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT set_config('app.current_org_id', $1, true)",
        &[&org.to_string()],
    )
    .await?;
    Ok(tx)
}

/// A database error with its server-side detail (tokio-postgres' own `Display` says only
/// "db error"). Never contains connection secrets.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({}): {}", db.severity(), db.code().code(), db.message()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// SQL rendering a `timestamptz` column as RFC 3339 in UTC, independent of the session's
/// TimeZone, so the API needs no date-time crate.
macro_rules! rfc3339 {
    ($col:literal) => {
        concat!(
            "to_char(",
            $col,
            " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        )
    };
}
pub(crate) use rfc3339;
