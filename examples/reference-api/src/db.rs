//! Database access for the API: a small connection pool and the tenant transaction.
//!
//! The pool is deliberately tiny (a semaphore bounding a stack of idle clients) because
//! the interesting part is not pooling but what happens on a pooled connection: every
//! request opens a transaction and sets `app.current_org_id` *transaction-locally*
//! ([`begin_tenant`]), so the setting vanishes at commit or rollback and the next user of
//! the same connection starts with no tenant at all.
//!
//! Idle connections are handed out last-in, first-out: the connection a request just
//! returned is the next one given out. That is what makes the planted
//! `pool-session-leak` bug reproducible on demand — with the setting made
//! session-level, the very next request that sets no tenant runs as the previous caller.

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
    /// Planted `pool-session-leak`: [`begin_tenant`] sets the tenant for the whole
    /// session instead of the transaction.
    session_level_tenant: bool,
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
            session_level_tenant: false,
        }
    }

    /// The same pool with the planted `pool-session-leak` behaviour switched on or off.
    pub(crate) fn with_session_level_tenant(mut self, on: bool) -> Pool {
        self.session_level_tenant = on;
        self
    }

    /// Checks out a connection, opening one if none is idle; the most recently returned
    /// idle connection first.
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
pub(crate) async fn begin_tenant<'c>(
    client: &'c mut PooledClient<'_>,
    org: Uuid,
) -> Result<Transaction<'c>, tokio_postgres::Error> {
    // Planted `pool-session-leak`: `false` makes the setting outlive the transaction, so
    // it stays on the connection when it goes back to the pool.
    let local = !client.pool.session_level_tenant;
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT set_config('app.current_org_id', $1, $2)",
        &[&org.to_string(), &local],
    )
    .await?;
    Ok(tx)
}

/// Opens a transaction that sets no tenant, for endpoints that serve no tenant. Under
/// RLS such a transaction sees no tenant rows at all — unless a setting leaked onto the
/// connection.
pub(crate) async fn begin_anonymous<'c>(
    client: &'c mut PooledClient<'_>,
) -> Result<Transaction<'c>, tokio_postgres::Error> {
    client.transaction().await
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
