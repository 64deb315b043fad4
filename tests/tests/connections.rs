//! seyaha-local against hostile clients over raw sockets (security review, finding 1): a client
//! trickling its request head is disconnected after the header read timeout, so is an idle
//! keep-alive connection, and idle connections past the cap do not keep a new client from
//! being served.

use std::time::{Duration, Instant};

use seyaha::settings::Settings;
use seyaha_tests::{TestApp, test_settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn limited(max_connections: usize) -> Settings {
    Settings { header_read_timeout_secs: 1, max_connections, ..test_settings() }
}

/// Reads until the server closes the connection (EOF or reset); returns what it sent.
/// Polls with a deadline: a server that never closes fails the test.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let deadline = Instant::now() + within;
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_) => panic!("the server kept the connection open for {within:?}"),
            Ok(Ok(0) | Err(_)) => return received,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_disconnected() {
    let app = TestApp::spawn_with(limited(64)).await;
    let mut stream = TcpStream::connect(app.addr()).await.unwrap();
    stream.write_all(b"GET /api/v1/partner-integrations/me HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = Instant::now();
    // One header line every 200 ms, never the blank line that ends the head.
    let trickle = async {
        for n in 0.. {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if stream.write_all(format!("X-Slow-{n}: b\r\n").as_bytes()).await.is_err() {
                return;
            }
        }
    };
    // The write fails once the server has closed the connection.
    tokio::time::timeout(Duration::from_secs(10), trickle).await.expect("the server closes the connection within 10 s");
    assert!(started.elapsed() >= Duration::from_millis(900), "not before the 1 s header read timeout");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = TestApp::spawn_with(limited(64)).await;
    let mut stream = TcpStream::connect(app.addr()).await.unwrap();
    stream.write_all(b"GET /api/v1/partner-integrations/me HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    // The answer (401: no token), then nothing more is asked: the server closes the connection.
    let received = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
}

#[tokio::test]
async fn idle_connections_past_the_cap_do_not_starve_a_new_client() {
    let app = TestApp::spawn_with(limited(8)).await;
    // Four times the cap of connections that never send a byte.
    let mut idle = Vec::new();
    for _ in 0..32 {
        idle.push(TcpStream::connect(app.addr()).await.unwrap());
    }
    // The server takes the cap's worth and no more (the rest wait in the listen backlog).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let open = app.open_connections();
        assert!(open <= 8, "{open} connections served at once, over the cap of 8");
        if open == 8 {
            break;
        }
        assert!(Instant::now() < deadline, "the server took only {open} connections");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A well-behaved client is still answered: the idle ones are cut after the header read
    // timeout, a cap's worth at a time.
    let reply = tokio::time::timeout(Duration::from_secs(20), app.call("GET", "/me", None, None))
        .await
        .expect("a new client is served while idle connections hold the cap");
    reply.expect_error(401);
    // The server still answers at once afterwards.
    drop(idle);
    app.call("GET", "/me", None, None).await.expect_error(401);
}
