//! TLS: a relay serving https and wss on one port with a certificate from a private CA made
//! here, and another relay linking to it over wss:// with that CA as an extra root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{NodeClient, Relay};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(30);

/// Writes `ca.pem`, `cert.pem` (for 127.0.0.1 and localhost) and `key.pem` into `dir`.
fn make_pki(dir: &Path) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "tabcoin test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

/// GET over https, trusting only `ca`: status line and headers, body.
async fn https_get(addr: std::net::SocketAddr, ca: &Path, path: &str) -> (String, String) {
    let config = tabcoin_relay::tls::client_config(&[ca.to_owned()]).unwrap();
    let connector = tokio_rustls::TlsConnector::from(config);
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    // A peer closing without close_notify is an error in rustls; the data is all there.
    let _ = tls.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_crosses_a_wss_link_between_two_relays() {
    let pki = tempfile::tempdir().unwrap();
    make_pki(pki.path());
    // Relay A serves only TLS.
    let mut ca = Relay::test_config();
    ca.tls = Some(tabcoin_relay::tls::TlsFiles {
        cert: pki.path().join("cert.pem"),
        key: pki.path().join("key.pem"),
    });
    let a = Relay::start(ca, false).await;
    let a_wss = format!("wss://127.0.0.1:{}/ws", a.addr.port());
    // Relay B is plain and links to A over wss, trusting the private CA.
    let mut cb = Relay::test_config();
    cb.peers = vec![a_wss.clone()];
    cb.tls_ca = vec![pki.path().join("ca.pem")];
    let b = Relay::start(cb, false).await;
    assert!(
        b.wait_json("/api/status", WAIT, |s| s["peers_relay"] == 1)
            .await,
        "relay b never linked to {a_wss}: {}",
        b.get("/api/status").await
    );

    // A block mined by a client of B crosses the wss link to A.
    let mut opts = common::ClientOptions::browser(1);
    opts.mining_key = Some(common::wallet(1).public_key());
    let miner = NodeClient::connect(&b.ws_url, opts).await.unwrap();
    assert!(miner.wait_connected(WAIT).await);
    let block = miner.mine_and_submit().await.unwrap();
    let hash = block.hash().to_string();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (head, body) = https_get(a.addr, &pki.path().join("ca.pem"), "/api/status").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        if status["tip"] == hash.as_str() {
            assert_eq!(status["peers_relay"], 1);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "relay a never got block {hash}: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The page comes over https with its security headers.
    let (head, body) = https_get(a.addr, &pki.path().join("ca.pem"), "/").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-security-policy:")
    );
    assert!(body.contains("<html") || body.contains("<!doctype"));

    // Plain http to the TLS port gets no answer.
    let mut s = TcpStream::connect(a.addr).await.unwrap();
    s.write_all(b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).contains("\"tip\""));

    drop(miner);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tls_files_are_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.pem"), "").unwrap();
    let mut config = Relay::test_config();
    config.tls = Some(tabcoin_relay::tls::TlsFiles {
        cert: dir.path().join("empty.pem"),
        key: dir.path().join("missing.pem"),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = tabcoin_relay::run(listener, config, async {})
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no PEM certificate"), "{err}");
}
