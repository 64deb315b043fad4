//! The OpenAPI document: served without authentication, and in step with the routers both
//! ways. Every documented operation reaches a handler (not the 404/405 fallbacks); every
//! method a documented path does not list is a 405; and no route is registered outside the
//! documented router (`api/mod.rs` has no plain `.route(` call).

use serde_json::Value;
use seyaha::api::PREFIX;
use seyaha_tests::TestApp;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

async fn document(app: &TestApp) -> Value {
    let response = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_document_is_served_and_matches_the_routers() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;
    assert_eq!(document["openapi"], "3.1.0");
    let schemes = document["components"]["securitySchemes"]
        .as_object()
        .unwrap();
    for scheme in ["partner_jwt", "admin_jwt", "webhook_secret"] {
        assert!(schemes.contains_key(scheme), "security scheme {scheme}");
    }
    assert_eq!(schemes["webhook_secret"]["name"], "x-webhook-secret");

    let paths = document["paths"].as_object().unwrap();
    assert_eq!(
        paths
            .values()
            .map(|ops| ops.as_object().unwrap().len())
            .sum::<usize>(),
        23,
        "{:?}",
        paths.keys()
    );
    let id = "64a1b2c3d4e5f6a7b8c9d0e1";
    for (path, operations) in paths {
        assert!(path.starts_with(PREFIX), "{path}");
        let concrete = path.replace("{id}", id);
        let suffix = &concrete[PREFIX.len()..];
        let operations = operations.as_object().unwrap();
        for method in METHODS {
            let reply = app.call(method, suffix, None, None).await;
            let fallback =
                reply.text.contains("No route for") || reply.text.contains("is not allowed on");
            match operations.get(&method.to_lowercase()) {
                Some(operation) => {
                    assert!(
                        !fallback && reply.status != 405,
                        "{method} {path} is documented but not routed: {}",
                        reply.text
                    );
                    // Its answers are documented, errors as the envelope.
                    let responses = operation["responses"].as_object().unwrap();
                    if path.ends_with("/openapi.json") {
                        assert!(
                            operation.get("security").is_none(),
                            "the document needs no authentication"
                        );
                        continue;
                    }
                    assert!(
                        !operation["security"].as_array().unwrap().is_empty(),
                        "{method} {path} names its security"
                    );
                    for status in ["400", "401", "403", "404", "500"] {
                        assert_eq!(
                            responses[status]["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/ErrorEnvelope",
                            "{method} {path} {status}"
                        );
                    }
                    assert!(
                        responses.keys().any(|s| s.starts_with('2')),
                        "{method} {path} documents its success"
                    );
                }
                None => assert_eq!(
                    reply.status, 405,
                    "{method} {path} is routed but not documented: {}",
                    reply.text
                ),
            }
        }
    }

    // Every schema a reference names exists.
    let text = document.to_string();
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = &reference[..reference.find('"').unwrap()];
        assert!(schemas.contains_key(name), "missing schema {name}");
    }
}

#[test]
fn no_route_is_registered_outside_the_documented_router() {
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/src/api/mod.rs"
    ))
    .unwrap();
    // Routes come from the handler lists, read by `documented!` (with their operations) and by
    // `plain!` (method and path from the same `#[utoipa::path]`); the only other route is a
    // page (the console), listed for the template test. An API route registered any other way
    // would be missing from the OpenAPI document.
    let plain: Vec<&str> = source
        .lines()
        .filter(|line| line.contains(".route("))
        .collect();
    assert_eq!(plain.len(), 2, "{plain:?}");
    assert!(
        plain
            .iter()
            .any(|line| line.contains("router.route(&path, method_router)"))
            && plain.iter().any(|line| line.contains("console::PATH")),
        "{plain:?}"
    );
    assert_eq!(
        source.matches(".routes(routes!(").count(),
        1,
        "only documented! registers"
    );
}

#[tokio::test]
async fn operation_ids_are_unique_and_links_name_real_operations_and_parameters() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;
    let mut operations = std::collections::BTreeMap::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(
                operations
                    .insert(id.to_owned(), (path.clone(), operation.clone()))
                    .is_none(),
                "operationId {id} is used twice"
            );
        }
    }
    let mut links = 0;
    for (source, (_, operation)) in &operations {
        for (status, response) in operation["responses"].as_object().unwrap() {
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                links += 1;
                let target = link["operationId"].as_str().unwrap();
                let (path, _) = operations.get(target).unwrap_or_else(|| {
                    panic!("{source} {status} link {name}: no operation {target}")
                });
                for (parameter, expression) in link["parameters"].as_object().unwrap() {
                    match parameter.split_once('.') {
                        Some(("path", name)) => {
                            assert!(
                                path.contains(&format!("{{{name}}}")),
                                "{source} → {target}: {path} has no {{{name}}}"
                            )
                        }
                        Some(("header", name)) => {
                            assert_eq!(name, "x-webhook-secret", "{source} → {target}")
                        }
                        other => panic!("{source} → {target}: unexpected parameter {other:?}"),
                    }
                    let expression = expression.as_str().unwrap();
                    assert!(
                        expression.starts_with("$response.body#/data/")
                            || expression == "$request.path.id",
                        "{expression}"
                    );
                }
            }
        }
    }
    assert_eq!(
        links, 26,
        "the links: each create's 11, the admin PATCH's 2 and the trigger's 2"
    );

    // What the creates' links read is where a real create answer has it.
    let created = &operations["createIntegration"].1["responses"]["201"]["links"];
    assert_eq!(created["approve"]["requestBody"]["isApproved"], true);
    let body = serde_json::json!({"base_url": "https://octo.example.com", "auth_type": "bearer", "auth_key": "k", "handles_ticket_delivery": false});
    let reply = app
        .call(
            "POST",
            "",
            Some(&app.partner_token("64a1b2c3d4e5f6a7b8c9d0e9")),
            Some(body),
        )
        .await;
    reply.expect_success(201);
    let answer = serde_json::json!({ "body": reply.body });
    for link in ["triggerSync", "approve"] {
        for expression in created[link]["parameters"].as_object().unwrap().values() {
            let pointer = expression
                .as_str()
                .unwrap()
                .replace("$response.body#", "/body");
            assert!(
                answer
                    .pointer(&pointer)
                    .and_then(Value::as_str)
                    .is_some_and(|value| !value.is_empty()),
                "{link}: {expression} in {answer}"
            );
        }
    }
}

/// The API reference (`docs/api.md`) lists every operation of the document, and no other: its
/// route table is checked against the document the code serves.
#[tokio::test]
async fn the_api_reference_lists_every_operation_of_the_document_and_no_other() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;
    let documented: std::collections::BTreeSet<String> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, operations)| {
            operations
                .as_object()
                .unwrap()
                .keys()
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect();
    let manual =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md")).unwrap();
    let listed: std::collections::BTreeSet<String> = manual
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let method = *cells.get(1)?;
            if !METHODS.contains(&method) {
                return None;
            }
            let path = match cells.get(2)?.trim_matches('`') {
                "*(the prefix)*" => PREFIX.to_owned(),
                below => format!("{PREFIX}{below}"),
            };
            Some(format!("{method} {path}"))
        })
        .collect();
    assert_eq!(
        listed.difference(&documented).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "docs/api.md lists routes the document does not have"
    );
    assert_eq!(
        documented.difference(&listed).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "operations of the document missing from docs/api.md's route table"
    );
}
