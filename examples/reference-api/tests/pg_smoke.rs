#[test]
fn starts_and_stops_a_cluster() {
    let mut pg = tenantgate_reference_api::pg::TempPostgres::start().expect("start");
    let port = pg.port();
    assert!(tenantgate_reference_api::pg::wait_for_port(
        port,
        std::time::Duration::from_secs(5)
    ));
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
    assert!(!tenantgate_reference_api::pg::wait_for_port(
        port,
        std::time::Duration::from_millis(300)
    ));
}
