//! A throwaway PostgreSQL cluster: `initdb` + `pg_ctl` on a free loopback port in a
//! temporary directory, stopped and removed on drop.
//!
//! Used by the demo, the tests and the benchmark. As root (CI, containers) `initdb`
//! refuses to run, so the cluster is created and started as the `postgres` OS user
//! through `runuser`; otherwise as the current user. The superuser is `postgres` with
//! a random password, reached over TCP on 127.0.0.1.

use std::fmt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A running throwaway cluster.
pub struct TempPostgres {
    dir: PathBuf,
    bindir: PathBuf,
    run_as: Option<String>,
    port: u16,
    password: String,
}

/// Why a cluster could not be started.
#[derive(Debug)]
pub struct PgError(pub String);

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PgError {}

/// Finds the directory holding `initdb` and `pg_ctl`: `$PG_BINDIR`, then `pg_config
/// --bindir`, then the newest `/usr/lib/postgresql/*/bin`, then `PATH`.
pub fn find_bindir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("PG_BINDIR") {
        return Some(PathBuf::from(d));
    }
    let has_initdb = |d: &Path| d.join("initdb").is_file();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_initdb(&d) {
            return Some(d);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let d = e.path().join("bin");
            has_initdb(&d).then_some((v, d))
        })
        .collect();
    versions.sort();
    if let Some((_, d)) = versions.pop() {
        return Some(d);
    }
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).find(|d| has_initdb(d)))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> Result<u16, PgError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| PgError(format!("no free loopback port: {e}")))
}

/// A random lowercase hex string of `bytes` random bytes.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).expect("system random source");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

impl TempPostgres {
    /// Creates and starts a new cluster. Takes a few seconds.
    pub fn start() -> Result<TempPostgres, PgError> {
        TempPostgres::start_inner(None)
    }

    /// Like [`TempPostgres::start`], with TLS on (`ssl=on`) serving the PEM certificate
    /// `cert` and its private key `key`. Both are copied into the cluster's directory:
    /// the server refuses a key not owned by its OS user or readable by others.
    pub fn start_with_tls(cert: &Path, key: &Path) -> Result<TempPostgres, PgError> {
        TempPostgres::start_inner(Some((cert, key)))
    }

    fn start_inner(tls: Option<(&Path, &Path)>) -> Result<TempPostgres, PgError> {
        let bindir = find_bindir().ok_or_else(|| {
            PgError(
                "PostgreSQL server binaries (initdb, pg_ctl) not found: install PostgreSQL \
                 (Debian: apt-get install postgresql) or set PG_BINDIR"
                    .into(),
            )
        })?;
        let run_as = is_root().then(|| "postgres".to_string());
        let dir = std::env::temp_dir().join(format!("tenantgate-pg-{}", random_hex(6)));
        std::fs::create_dir_all(&dir)
            .map_err(|e| PgError(format!("cannot create {}: {e}", dir.display())))?;
        let pg = TempPostgres {
            dir,
            bindir,
            run_as,
            port: 0,
            password: random_hex(16),
        };
        if let Some(user) = &pg.run_as {
            let status = Command::new("chown")
                .args(["-R", user])
                .arg(&pg.dir)
                .status()
                .map_err(|e| PgError(format!("chown: {e}")))?;
            if !status.success() {
                return Err(PgError(format!("chown {user} {} failed", pg.dir.display())));
            }
        }
        let mut tls_opts = String::new();
        if let Some((cert, key)) = tls {
            let (cert_to, key_to) = (pg.dir.join("server.crt"), pg.dir.join("server.key"));
            for (from, to) in [(cert, &cert_to), (key, &key_to)] {
                std::fs::copy(from, to).map_err(|e| {
                    PgError(format!(
                        "cannot copy {} to {}: {e}",
                        from.display(),
                        to.display()
                    ))
                })?;
            }
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&key_to, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| PgError(format!("chmod {}: {e}", key_to.display())))?;
            }
            if let Some(user) = &pg.run_as {
                let _ = Command::new("chown")
                    .arg(user)
                    .arg(&cert_to)
                    .arg(&key_to)
                    .status();
            }
            tls_opts = format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                cert_to.display(),
                key_to.display()
            );
        }
        let pwfile = pg.dir.join("pwfile");
        std::fs::write(&pwfile, &pg.password)
            .map_err(|e| PgError(format!("cannot write {}: {e}", pwfile.display())))?;
        if let Some(user) = &pg.run_as {
            let _ = Command::new("chown").arg(user).arg(&pwfile).status();
        }
        let data = pg.dir.join("data");
        pg.run(
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "-A",
                "scram-sha-256",
                "--pwfile",
                &pwfile.to_string_lossy(),
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        )?;
        let _ = std::fs::remove_file(&pwfile);
        // A port can be taken between probing and binding; try a few.
        let mut last = PgError("not started".into());
        let mut pg = pg;
        for _ in 0..5 {
            pg.port = free_port()?;
            let opts = format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c synchronous_commit=off \
                 -c full_page_writes=off -c max_connections=200{tls_opts}",
                pg.port,
                pg.dir.display()
            );
            match pg.run(
                "pg_ctl",
                &[
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    &data.to_string_lossy(),
                    "-l",
                    &pg.dir.join("log").to_string_lossy(),
                    "-o",
                    &opts,
                ],
            ) {
                Ok(()) => return Ok(pg),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<(), PgError> {
        let exe = self.bindir.join(tool);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.args(args).current_dir(&self.dir).stdin(Stdio::null());
        let out = cmd
            .output()
            .map_err(|e| PgError(format!("cannot run {}: {e}", exe.display())))?;
        if out.status.success() {
            Ok(())
        } else {
            let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
            Err(PgError(format!(
                "{tool} failed ({}): {}{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                log.lines().rev().take(10).collect::<Vec<_>>().join("\n")
            )))
        }
    }

    /// The TCP port the cluster listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// A connection URL for the superuser `postgres` to `database`.
    pub fn superuser_url(&self, database: &str) -> String {
        self.url("postgres", &self.password, database)
    }

    /// A connection URL for any role on this cluster.
    pub fn url(&self, user: &str, password: &str, database: &str) -> String {
        format!(
            "postgres://{user}:{password}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// Stops the cluster now (also done on drop).
    pub fn stop(&mut self) {
        if self.port != 0 {
            let data = self.dir.join("data");
            let _ = self.run(
                "pg_ctl",
                &[
                    "stop",
                    "-m",
                    "immediate",
                    "-w",
                    "-D",
                    &data.to_string_lossy(),
                ],
            );
            self.port = 0;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Replaces the database of a `postgres://.../db?params` URL.
pub fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let mut out = format!("{scheme}://{authority}/{database}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Waits until a TCP port accepts connections, up to `timeout`.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
