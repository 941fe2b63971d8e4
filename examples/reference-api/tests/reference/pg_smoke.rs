//! The throwaway cluster itself: starts, answers, and is gone after `stop`.

use std::time::Duration;

use tenantgate_reference_api::pg::{TempPostgres, wait_for_port};

#[test]
fn starts_and_stops_a_cluster() {
    let mut pg = TempPostgres::start().expect("start");
    let port = pg.port();
    assert!(wait_for_port(port, Duration::from_secs(5)));
    let out = std::process::Command::new("psql")
        .arg(pg.superuser_url("postgres"))
        .args(["-Atc", "select 1"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1",
        "{:?}",
        out
    );
    pg.stop();
    assert!(!wait_for_port(port, Duration::from_millis(300)));
}
