//! Serving over TLS, checked by real handshakes: TLS 1.3 only and HSTS for a year in the
//! correct app; the planted `tls12-accepted` and `no-hsts` each break one of the two.

use std::sync::Arc;

use reqwest::Method;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

use crate::common::*;

/// Handshakes with the server offering only `version`; the negotiated version, or
/// `None` when the server refused.
async fn handshake(
    env: &Env,
    version: &'static rustls::SupportedProtocolVersion,
) -> Option<String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(tls_dir().join("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(env.launched.api.addr)
        .await
        .unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector.connect(name, tcp).await.ok()?;
    Some(format!("{:?}", tls.get_ref().1.protocol_version()?))
}

#[tokio::test]
async fn the_correct_app_speaks_tls13_only_and_sends_hsts() {
    let env = env_tls("tls_clean", "").await;
    assert!(env.launched.base_url.starts_with("https://127.0.0.1:"));
    assert_eq!(
        handshake(&env, &rustls::version::TLS13).await.as_deref(),
        Some("TLSv1_3")
    );
    assert_eq!(handshake(&env, &rustls::version::TLS12).await, None);

    let a = env.signup("OrgA").await;
    for (what, r) in [
        ("authenticated", env.get("/brands", &a.token).await),
        ("401", env.anon(Method::GET, "/brands").await),
        ("404", env.get("/no/such/route", &a.token).await),
    ] {
        assert_eq!(r.hsts.as_deref(), Some("max-age=31536000"), "{what}: {r:?}");
    }
    // Plain HTTP on the TLS port gets no answer at all, never a pass.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/brands", env.launched.api.addr))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
}

#[tokio::test]
async fn plain_http_sends_no_hsts() {
    let env = env("tls_plain", "").await;
    let a = env.signup("OrgA").await;
    let r = env.get("/brands", &a.token).await;
    assert_eq!((r.status, r.hsts), (200, None));
}

#[tokio::test]
async fn tls12_accepted() {
    let env = env_tls("tls_bug12", "tls12-accepted").await;
    assert_eq!(
        handshake(&env, &rustls::version::TLS12).await.as_deref(),
        Some("TLSv1_2")
    );
    let a = env.signup("OrgA").await;
    let r = env.get("/brands", &a.token).await;
    assert_eq!(
        r.hsts.as_deref(),
        Some("max-age=31536000"),
        "HSTS unchanged"
    );
}

#[tokio::test]
async fn no_hsts() {
    let env = env_tls("tls_nohsts", "no-hsts").await;
    let a = env.signup("OrgA").await;
    let r = env.get("/brands", &a.token).await;
    assert_eq!((r.status, r.hsts), (200, None));
    assert_eq!(
        handshake(&env, &rustls::version::TLS12).await,
        None,
        "still TLS 1.3 only"
    );
}
