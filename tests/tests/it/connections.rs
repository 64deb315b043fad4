//! seyaha-local against hostile clients over raw sockets (docs/security.md): a client
//! trickling its request head is disconnected after the header read timeout, so is an idle
//! keep-alive connection, idle connections past the cap do not keep a new client from being
//! served, and neither do 10,000 idle connections from one client.

use std::time::{Duration, Instant};

use seyaha::settings::Settings;
use seyaha_tests::{TestApp, test_settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn limited(max_connections: usize) -> Settings {
    Settings {
        header_read_timeout_secs: 1,
        max_connections,
        ..test_settings()
    }
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
    stream
        .write_all(b"GET /api/v1/partner-integrations/me HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // One header line every 200 ms, never the blank line that ends the head.
    let trickle = async {
        for n in 0.. {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if stream
                .write_all(format!("X-Slow-{n}: b\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    };
    // The write fails once the server has closed the connection.
    tokio::time::timeout(Duration::from_secs(10), trickle)
        .await
        .expect("the server closes the connection within 10 s");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "not before the 1 s header read timeout"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = TestApp::spawn_with(limited(64)).await;
    let mut stream = TcpStream::connect(app.addr()).await.unwrap();
    stream
        .write_all(b"GET /api/v1/partner-integrations/me HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
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
        assert!(
            open <= 8,
            "{open} connections served at once, over the cap of 8"
        );
        if open == 8 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server took only {open} connections"
        );
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

/// Raises this process's open-file limit to what a test needs (the hard limit allowing).
fn allow_open_files(needed: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by reference.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < needed {
            assert!(
                limit.rlim_max >= needed,
                "this test needs {needed} open files; the hard limit is {}",
                limit.rlim_max
            );
            limit.rlim_cur = needed;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_connections_from_one_client_do_not_starve_another() {
    const IDLE: usize = 10_000;
    allow_open_files(IDLE as u64 + 1_000);
    // The header read timeout is far beyond the test: no idle connection is cut by time, so
    // the other client is served because of the caps alone (without the per-client cap, the
    // attacker's first 64 fill the connection cap and the other client waits in the backlog).
    let settings = Settings {
        header_read_timeout_secs: 3_600,
        max_connections: 64,
        max_connections_per_client: 16,
        ..test_settings()
    };
    let app = TestApp::spawn_with(settings).await;
    let attacker: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind((attacker, 0).into()).unwrap();
        idle.push(socket.connect(app.addr()).await.unwrap());
    }
    // The server holds the attacker's share and no more: the rest were closed on accept.
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.open_connections_from(attacker) < 16 {
        assert!(
            Instant::now() < deadline,
            "the server took only {} of the attacker's connections",
            app.open_connections_from(attacker)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.open_connections_from(attacker), 16);
    assert!(app.open_connections() <= 64);

    // Another client (127.0.0.1) is answered while all 10,000 are still open on its side.
    for _ in 0..3 {
        let reply =
            tokio::time::timeout(Duration::from_secs(10), app.call("GET", "/me", None, None))
                .await
                .expect("another client is served while one client holds 10,000 idle connections");
        reply.expect_error(401);
    }
    assert_eq!(
        app.open_connections_from(attacker),
        16,
        "the attacker's share stays at its cap"
    );
    drop(idle);
}
