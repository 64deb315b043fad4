//! A partner's OCTO server is untrusted: a gzip bomb, an endless body, a declared 1 GiB body,
//! 100,000 levels of nesting, a 10 MB string and invalid UTF-8 each fail that sync with a
//! clear `error_message` (502 to the trigger), a product holding a 3 MB string (under the
//! guard, over the per-product cap) is rejected unread while the sync goes on; each costs at most one product (the per-product cap) in memory plus
//! a bounded constant, never the body, and leaves the service answering. The peak RSS of this test process is
//! printed after each case (`cargo test --test hostile_suppliers -- --nocapture`).

use std::io::Write;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use seyaha::settings::Settings;
use seyaha_tests::{TestApp, test_settings};

/// The response cap and the catalog guard in this test (`SEYAHA_OCTO_MAX_RESPONSE_BYTES`,
/// `SEYAHA_OCTO_MAX_CATALOG_BYTES`), as in the security review.
const CAP: usize = 5 * 1024 * 1024;

fn gzip_bomb() -> Vec<u8> {
    // An array opening, then 256 MiB of spaces (a streaming parser reads on through them):
    // about 256 KB compressed, far over the cap once inflated.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(b"[").unwrap();
    let spaces = vec![b' '; 1024 * 1024];
    for _ in 0..256 {
        encoder.write_all(&spaces).unwrap();
    }
    encoder.finish().unwrap()
}

fn json_response(body: Body) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Chunks of 64 KiB, `count` of them (`usize::MAX`: endless).
fn chunks(byte: u8, count: usize) -> Body {
    let chunk = axum::body::Bytes::from(vec![byte; 64 * 1024]);
    Body::from_stream(stream::iter(std::iter::repeat_n(chunk, count).map(Ok::<_, std::io::Error>)))
}

async fn hostile(Path(case): Path<String>) -> Response {
    match case.as_str() {
        "gzip-bomb" => ([(header::CONTENT_TYPE, "application/json"), (header::CONTENT_ENCODING, "gzip")], gzip_bomb()).into_response(),
        // An array that never ends: `["xx...x","xx...x",...` (each a rejected non-product).
        "endless" => {
            let opening = std::iter::once(axum::body::Bytes::from_static(b"["));
            let element = format!("\"{}\",", "x".repeat(1024));
            let elements = std::iter::repeat(axum::body::Bytes::from(element.repeat(64)));
            json_response(Body::from_stream(stream::iter(opening.chain(elements).map(Ok::<_, std::io::Error>))))
        }
        // 1 GiB, announced by Content-Length.
        "one-gib" => {
            let mut response = json_response(chunks(b' ', 16 * 1024));
            response.headers_mut().insert(header::CONTENT_LENGTH, (1u64 << 30).into());
            response
        }
        // Refused as soon as it is deeper than the JSON parser's limit (128 levels).
        "deep-nesting" => json_response(Body::from("[".repeat(100_000))),
        "ten-mb-string" => json_response(Body::from(format!(r#"[{{"id": "{}", "internalName": "x"}}]"#, "x".repeat(10 * 1024 * 1024)))),
        // Under the body's guard, over the per-product cap (1 MiB by default).
        "three-mb-string" => json_response(Body::from(format!(r#"[{{"id": "{}", "internalName": "x"}}]"#, "x".repeat(3 * 1024 * 1024)))),
        "invalid-utf8" => json_response(Body::from(b"[{\"id\": \"\xff\xfe\xfd\", \"internalName\": \"\xc3\x28\"}]".to_vec())),
        _ => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_answers_fail_the_sync_clearly_within_the_cap() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let supplier = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().route("/{case}/products", axum::routing::get(hostile))).await });
    let settings = Settings { octo_max_response_bytes: CAP, octo_max_catalog_bytes: CAP as u64, octo_timeout_secs: 10, ..test_settings() };
    let app = TestApp::spawn_with(settings).await;
    let before = seyaha_tests::peak_rss_mib();
    println!("peak RSS before: {before:.1} MiB (cap {} MiB)", CAP / (1024 * 1024));

    let too_large = format!("GET /products returned more than {CAP} bytes");
    let cases = [
        ("gzip-bomb", too_large.as_str()),
        ("endless", too_large.as_str()),
        ("one-gib", too_large.as_str()),
        ("deep-nesting", "GET /products did not return JSON"),
        ("ten-mb-string", too_large.as_str()),
        ("invalid-utf8", "GET /products did not return JSON"),
    ];
    for (case, expected) in cases {
        let integration = app.approved(&format!("http://{supplier}/{case}"), "key").await;
        let reply = tokio::time::timeout(Duration::from_secs(30), app.trigger(&integration)).await.expect("the sync ends");
        let errors = reply.expect_error(502);
        assert!(errors.contains(expected), "{case}: {errors}");
        let log = app.sync_log(&integration.id).await;
        assert_eq!(log["sync"]["status"], "error", "{case}");
        assert_eq!(log["sync"]["error_message"], expected, "{case}");
        // The service keeps answering.
        app.call("GET", "/me", Some(&app.partner_token(&integration.partner)), None).await.expect_success(200);
        println!("{case:>14}: 502 \"{expected}\"; peak RSS {:.1} MiB", seyaha_tests::peak_rss_mib());
    }
    // One product over the per-product cap (1 MiB by default) is rejected unread; the sync ends well.
    let integration = app.approved(&format!("http://{supplier}/three-mb-string"), "key").await;
    let reply = tokio::time::timeout(Duration::from_secs(30), app.trigger(&integration)).await.expect("the sync ends");
    let data = reply.expect_success(200);
    assert_eq!((data["synced"].clone(), data["rejected"].clone()), (serde_json::json!(0), serde_json::json!(1)), "{data}");
    assert_eq!(data["rejections"][0]["reason"], "product: larger than 1048576 bytes as sent; not read");
    println!("{:>15}: 200, rejected unread; peak RSS {:.1} MiB", "three-mb-string", seyaha_tests::peak_rss_mib());
    // At most the cap (plus what parsing a capped body costs) above where it started; a
    // generous bound, since the process also runs the server, the supplier and the client.
    let growth = seyaha_tests::peak_rss_mib() - before;
    assert!(growth < 8.0 * (CAP as f64) / (1024.0 * 1024.0) + 64.0, "peak RSS grew by {growth:.1} MiB");
}
