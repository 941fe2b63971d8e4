//! The `reference-api` binary: prepares a database, prints where it listens with the app
//! password redacted, and serves.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::common::*;

/// Kills the server when the test ends, pass or fail.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_prepares_serves_and_redacts() {
    let pg = cluster();
    let admin = connect(&pg.superuser_url("postgres")).await;
    admin
        .batch_execute("DROP DATABASE IF EXISTS bin_run WITH (FORCE)")
        .await
        .unwrap();
    admin
        .batch_execute("CREATE DATABASE bin_run")
        .await
        .unwrap();

    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_reference-api"))
            .args(["--database-url", &pg.superuser_url("bin_run")])
            .args(["--listen", "127.0.0.1:0", "--role-prefix", "bin_run"])
            .args(["--bugs", "alg-none"])
            .env_remove("REFAPI_BUGS")
            .env_remove("JWT_SECRET")
            .env_remove("DATABASE_URL")
            .stdout(Stdio::piped())
            .spawn()
            .expect("run reference-api"),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    for _ in 0..3 {
        printed.push(lines.next().expect("a line").expect("utf-8"));
    }
    let base = printed[0]
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{printed:?}"))
        .to_string();
    assert!(printed[1].contains("bin_run_app:***@"), "{printed:?}");
    assert!(printed[2].ends_with("alg-none"), "{printed:?}");

    let resp = reqwest::Client::new()
        .post(format!("{base}/auth/signup"))
        .json(&serde_json::json!({"org_name": "o", "email": "e@x.test", "password": "p"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
}

#[test]
fn list_bugs_names_every_bug() {
    let out = Command::new(env!("CARGO_BIN_EXE_reference-api"))
        .arg("--list-bugs")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for bug in tenantgate_reference_api::Bug::ALL {
        assert!(text.contains(bug.name()), "{text}");
    }
}

#[tokio::test]
async fn the_binary_serves_https_when_given_a_certificate() {
    let pg = cluster();
    let admin = connect(&pg.superuser_url("postgres")).await;
    admin
        .batch_execute("DROP DATABASE IF EXISTS bin_tls WITH (FORCE)")
        .await
        .unwrap();
    admin
        .batch_execute("CREATE DATABASE bin_tls")
        .await
        .unwrap();
    let files = tls_files();
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_reference-api"))
            .args(["--database-url", &pg.superuser_url("bin_tls")])
            .args(["--listen", "127.0.0.1:0", "--role-prefix", "bin_tls"])
            .arg("--tls-cert")
            .arg(&files.cert)
            .arg("--tls-key")
            .arg(&files.key)
            .env_remove("REFAPI_BUGS")
            .env_remove("DATABASE_URL")
            .stdout(Stdio::piped())
            .spawn()
            .expect("run reference-api"),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    let base = first
        .strip_prefix("listening on https://")
        .unwrap_or_else(|| panic!("{first}"));
    let ca = std::fs::read(tls_dir().join("ca.pem")).unwrap();
    let resp = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap()
        .get(format!("https://{base}/public/featured-brands"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000"
    );

    // A certificate without its key is a usage error, before anything starts.
    let out = Command::new(env!("CARGO_BIN_EXE_reference-api"))
        .args(["--database-url", "postgres://x@127.0.0.1:9/x", "--tls-cert"])
        .arg(&files.cert)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
}
