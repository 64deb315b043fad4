//! template.yaml, read with cfn-lint's own decoder (the project's `.venv`), checked for what
//! cfn-lint cannot know: alarms that can reach a person, the error envelope on every route,
//! each function's routes against its router, the worker's concurrency cap, and
//! least-privilege grants. Some checks read the template as CloudFormation receives it, after
//! SAM's translator (`aws-sam-translator`, pinned in requirements-test.txt): what SAM adds by
//! itself (a schedule's name, the functions' roles) shows only there.

use std::process::Command;

use serde_json::{Value, json};

fn template() -> Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make test`, which installs cfn-lint into .venv",
        python.display()
    );
    let script = "import json, sys\nfrom cfnlint.decode import decode\ntemplate, problems = decode(sys.argv[1])\nassert not problems, problems\nprint(json.dumps(template, default=str))";
    let output = Command::new(python)
        .args(["-c", script])
        .arg(root.join("template.yaml"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The template after SAM's transform, as `sam deploy` hands it to CloudFormation. The
/// translator needs no AWS account: a region for the pseudo parameters, an S3 location standing
/// in for the code `sam build` would upload, and no managed policy looked up by name.
fn translated() -> Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make test`, which installs the translator into .venv",
        python.display()
    );
    let script = r#"
import json, sys
from cfnlint.decode import decode
from samtranslator.translator.transform import transform
template, problems = decode(sys.argv[1])
assert not problems, problems
template = json.loads(json.dumps(template, default=str))
for resource in template["Resources"].values():
    if resource["Type"] == "AWS::Serverless::Function" and isinstance(resource["Properties"].get("CodeUri"), str):
        resource["Properties"]["CodeUri"] = "s3://seyaha-artifacts/code.zip"
class NoManagedPolicies:
    def load(self):
        return {}
print(json.dumps(transform(template, {}, NoManagedPolicies()), default=str))
"#;
    let output = Command::new(python)
        .args(["-c", script])
        .arg(root.join("template.yaml"))
        .env("AWS_DEFAULT_REGION", "eu-west-1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "SAM's translator: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The resources of one type, by logical id.
fn resources_of<'a>(template: &'a Value, kind: &str) -> Vec<(&'a String, &'a Value)> {
    template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .collect()
}

fn resource<'a>(template: &'a Value, name: &str) -> &'a Value {
    template["Resources"]
        .get(name)
        .unwrap_or_else(|| panic!("no resource {name}"))
}

/// Every (actions, resources) pair of a function's inline policy, resources as text.
fn grants(template: &Value, function: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let text = |v: &Value| {
        v.as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string())
    };
    let list = |v: &Value| match v {
        Value::Array(items) => items.iter().map(text).collect(),
        other => vec![text(other)],
    };
    resource(template, function)["Properties"]["Policies"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(policy_branches)
        .flat_map(|policy| policy["Statement"].as_array().unwrap().clone())
        .map(|statement| (list(&statement["Action"]), list(&statement["Resource"])))
        .collect()
}

/// A policy, or both branches of a conditional one (`Fn::If`; `AWS::NoValue` has none): a grant
/// in either counts.
fn policy_branches(policy: &Value) -> Vec<Value> {
    match policy.get("Fn::If") {
        Some(branches) => branches.as_array().unwrap()[1..]
            .iter()
            .filter(|branch| branch.get("Statement").is_some())
            .cloned()
            .collect(),
        None => vec![policy.clone()],
    }
}

fn granted_on(template: &Value, function: &str, action: &str) -> Vec<String> {
    grants(template, function)
        .into_iter()
        .filter(|(actions, _)| actions.iter().any(|a| a == action))
        .flat_map(|(_, r)| r)
        .collect()
}

#[test]
fn alarms_can_reach_a_person() {
    let template = template();
    let topic = resource(&template, "AlarmTopic");
    let key = &topic["Properties"]["KmsMasterKeyId"];
    assert_ne!(
        key, "alias/aws/sns",
        "CloudWatch cannot publish to a topic under the AWS-managed SNS key"
    );
    if !key.is_null() {
        assert_eq!(key, &json!({"Ref": "AlarmKey"}));
        let statements = resource(&template, "AlarmKey")["Properties"]["KeyPolicy"]["Statement"]
            .as_array()
            .unwrap()
            .clone();
        assert!(
            statements
                .iter()
                .any(|s| s["Principal"]["Service"] == "cloudwatch.amazonaws.com"
                    && s["Action"].to_string().contains("kms:GenerateDataKey")
                    && s["Action"].to_string().contains("kms:Decrypt")),
            "the key lets CloudWatch publish"
        );
    }
}

/// Security review round two, R8: a service principal in a key policy acts for this account
/// only (`aws:SourceAccount`), as the DLQ policy removed earlier should have (confused deputy).
#[test]
fn key_policies_let_services_act_for_this_account_only() {
    let template = template();
    let keys: Vec<(&String, &Value)> = template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::KMS::Key")
        .collect();
    assert!(!keys.is_empty(), "the alarm topic's key");
    for (name, key) in keys {
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
            .as_array()
            .unwrap()
        {
            if statement["Principal"].get("Service").is_none() {
                continue;
            }
            assert_eq!(
                statement["Condition"]["StringEquals"]["aws:SourceAccount"],
                json!({"Ref": "AWS::AccountId"}),
                "{name}: {statement}"
            );
        }
    }
    let alarm_grant = resource(&template, "AlarmKey")["Properties"]["KeyPolicy"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Principal"]["Service"] == "cloudwatch.amazonaws.com")
        .cloned()
        .unwrap();
    assert_eq!(
        alarm_grant["Condition"]["ArnLike"]["aws:SourceArn"],
        json!({"Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"})
    );
}

#[test]
fn unknown_routes_reach_the_router_that_envelopes_them() {
    let template = template();
    let events = resource(&template, "RegisterFunction")["Properties"]["Events"]
        .as_object()
        .unwrap()
        .clone();
    assert!(
        events.values().any(|e| e["Type"] == "HttpApi"
            && e["Properties"]["Path"] == "$default"
            && e["Properties"]["Method"] == "ANY"),
        "a $default route"
    );
}

#[test]
fn the_worker_cannot_take_the_accounts_concurrency() {
    let template = template();
    let events = resource(&template, "SyncWorkerFunction")["Properties"]["Events"]
        .as_object()
        .unwrap()
        .clone();
    let real_time = &events["SyncQueueMessages"];
    assert_eq!(
        real_time["Properties"]["Queue"],
        json!({"Fn::GetAtt": ["SyncQueue", "Arn"]})
    );
    assert_eq!(
        real_time["Properties"]["ScalingConfig"]["MaximumConcurrency"],
        json!({"Ref": "WorkerMaxConcurrency"})
    );
    assert_eq!(
        template["Parameters"]["WorkerMaxConcurrency"]["Default"],
        json!(20)
    );
}

#[test]
fn bulk_work_has_its_own_queue_workers_cap_and_dead_letter_alarm() {
    let template = template();
    let events = resource(&template, "SyncWorkerFunction")["Properties"]["Events"]
        .as_object()
        .unwrap()
        .clone();
    let sqs: Vec<&Value> = events.values().filter(|e| e["Type"] == "SQS").collect();
    assert_eq!(
        sqs.len(),
        2,
        "one event source per lane, each with its own cap"
    );
    let bulk = &events["BulkSyncQueueMessages"]["Properties"];
    assert_eq!(
        bulk["Queue"],
        json!({"Fn::GetAtt": ["BulkSyncQueue", "Arn"]})
    );
    assert_eq!(
        bulk["ScalingConfig"]["MaximumConcurrency"],
        json!({"Ref": "BulkWorkerMaxConcurrency"})
    );
    assert_eq!(
        bulk["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    let cap = |name: &str| template["Parameters"][name]["Default"].as_u64().unwrap();
    assert!(
        cap("BulkWorkerMaxConcurrency") < cap("WorkerMaxConcurrency"),
        "bulk runs on fewer workers"
    );
    assert_eq!(
        template["Parameters"]["BulkWorkerMaxConcurrency"]["MinValue"],
        json!(2),
        "SQS's lowest MaximumConcurrency"
    );

    // Each queue has its own dead-letter queue, and each dead-letter queue an alarm.
    for (queue, dead_letter, alarm) in [
        ("SyncQueue", "SyncDeadLetterQueue", "SyncDeadLetterAlarm"),
        (
            "BulkSyncQueue",
            "BulkSyncDeadLetterQueue",
            "BulkSyncDeadLetterAlarm",
        ),
    ] {
        let redrive = &resource(&template, queue)["Properties"]["RedrivePolicy"];
        assert_eq!(
            redrive["deadLetterTargetArn"],
            json!({"Fn::GetAtt": [dead_letter, "Arn"]}),
            "{queue}"
        );
        assert_eq!(redrive["maxReceiveCount"], json!(5), "{queue}");
        let alarm = &resource(&template, alarm)["Properties"];
        assert_eq!(
            alarm["Dimensions"][0]["Value"],
            json!({"Fn::GetAtt": [dead_letter, "QueueName"]})
        );
        assert_eq!(alarm["AlarmActions"], json!([{"Ref": "AlarmTopic"}]));
    }

    let env = &template["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(
        env["SEYAHA_BULK_QUEUE_URL"],
        json!({"Ref": "BulkSyncQueue"})
    );
    assert_eq!(
        env["SEYAHA_FAN_OUT_WINDOW_SECS"],
        json!({"Ref": "FanOutWindowSecs"})
    );
    assert_eq!(
        env["SEYAHA_FAN_OUT_PAGE_SIZE"],
        json!({"Ref": "FanOutPageSize"})
    );
    assert_eq!(
        template["Parameters"]["FanOutWindowSecs"]["MaxValue"],
        json!(86400),
        "the setting's own bound"
    );
    assert_eq!(
        template["Parameters"]["FanOutPageSize"]["MaxValue"],
        json!(1000),
        "the setting's own bound"
    );

    // Who sends where: the fan-out's starters and the worker reach the bulk queue; the webhook
    // functions only the real-time one; nightly only the bulk one.
    let bulk_arn = json!({"Fn::GetAtt": ["BulkSyncQueue", "Arn"]}).to_string();
    let real_time_arn = json!({"Fn::GetAtt": ["SyncQueue", "Arn"]}).to_string();
    let sends = |function: &str| granted_on(&template, function, "sqs:SendMessage");
    for function in ["RegisterFunction", "SyncWorkerFunction"] {
        assert!(
            sends(function).contains(&bulk_arn) && sends(function).contains(&real_time_arn),
            "{function}: {:?}",
            sends(function)
        );
    }
    assert_eq!(sends("NightlySyncFunction"), vec![bulk_arn.clone()]);
    for function in ["SyncTriggerFunction", "AvailabilityNotifyFunction"] {
        assert_eq!(sends(function), vec![real_time_arn.clone()], "{function}");
    }
}

#[test]
fn grants_are_least_privilege() {
    let template = template();
    assert!(
        granted_on(&template, "RegisterFunction", "dynamodb:BatchWriteItem").is_empty(),
        "register writes no batches"
    );
    let resources = grants(&template, "SyncTriggerFunction")
        .into_iter()
        .flat_map(|(_, r)| r)
        .collect::<Vec<_>>();
    assert!(
        !resources.iter().any(|r| r.contains("/index/")),
        "the sync trigger queries no index: {resources:?}"
    );
    // The worker looks a product's activity up by the product index (single-product syncs), and
    // a page of live integrations up by the sparse index (fan-out pages).
    let worker_indexes: Vec<String> = grants(&template, "SyncWorkerFunction")
        .into_iter()
        .flat_map(|(_, r)| r)
        .filter(|r| r.contains("/index/"))
        .collect();
    assert!(
        worker_indexes
            .iter()
            .all(|r| r.contains("/index/gsi3") || r.contains("/index/gsi2")),
        "the worker queries only the product and live indexes: {worker_indexes:?}"
    );
    let mut nightly = grants(&template, "NightlySyncFunction")
        .into_iter()
        .flat_map(|(a, _)| a)
        .collect::<Vec<_>>();
    nightly.sort();
    assert_eq!(
        nightly,
        ["dynamodb:BatchGetItem", "dynamodb:Query", "sqs:SendMessage"],
        "nightly only counts (the shards' counters; the single-item format's live partition) and sends the first page"
    );
    // Besides the table (an integration's two items are read by Query), each queries only its index.
    let index_queries = |function: &str| -> Vec<String> {
        granted_on(&template, function, "dynamodb:Query")
            .into_iter()
            .filter(|r| r.contains("/index/"))
            .collect()
    };
    let nightly_query = granted_on(&template, "NightlySyncFunction", "dynamodb:Query");
    assert!(
        nightly_query.iter().all(|r| r.contains("/index/gsi2")),
        "nightly queries only its index: {nightly_query:?}"
    );
    let notify_query = index_queries("AvailabilityNotifyFunction");
    assert!(
        !notify_query.is_empty() && notify_query.iter().all(|r| r.contains("/index/gsi3")),
        "{notify_query:?}"
    );
    // Item actions mean nothing on an index ARN (the review found register's Get/Put/Update/
    // DeleteItem on gsi1 and gsi2): only Query, for every function the template has, so a new
    // function is checked too.
    let functions: Vec<&String> = template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(functions.len(), 5, "{functions:?}");
    for function in functions {
        for (actions, resources) in grants(&template, function) {
            if resources.iter().any(|r| r.contains("/index/")) {
                assert!(
                    actions.iter().all(|a| a == "dynamodb:Query"),
                    "{function} grants {actions:?} on an index"
                );
            }
        }
    }
    assert!(
        template["Resources"]
            .get("SchedulerDeadLetterQueuePolicy")
            .is_none(),
        "SAM grants the schedule's role already"
    );
}

#[test]
fn secrets_logs_tracing_schedule_and_cors_are_configurable_and_kept() {
    let template = template();
    let secret = resource(&template, "JwtSecret");
    assert_eq!(secret["DeletionPolicy"], "Retain");
    assert_eq!(secret["Condition"], "CreateJwtSecret");
    for parameter in [
        "ExistingJwtSecretArn",
        "LogRetentionDays",
        "Tracing",
        "CorsAllowedOrigins",
    ] {
        assert!(
            template["Parameters"].get(parameter).is_some(),
            "parameter {parameter}"
        );
    }
    assert_eq!(
        template["Parameters"]["LogRetentionDays"]["Default"],
        json!(30)
    );
    assert_eq!(template["Parameters"]["CorsAllowedOrigins"]["Default"], "");
    for function in [
        "RegisterFunction",
        "SyncTriggerFunction",
        "AvailabilityNotifyFunction",
        "NightlySyncFunction",
        "SyncWorkerFunction",
    ] {
        let group = resource(&template, &function.replace("Function", "LogGroup"));
        assert_eq!(
            group["Properties"]["RetentionInDays"],
            json!({"Ref": "LogRetentionDays"}),
            "{function}"
        );
    }
    let nightly =
        resource(&template, "NightlySyncFunction")["Properties"]["Events"]["Nightly"]["Properties"]
            .clone();
    assert!(
        nightly.get("Name").is_none(),
        "a generated schedule name fits 64 characters for any stack name: {nightly}"
    );
    assert_eq!(
        nightly["OmitName"],
        json!(true),
        "without it SAM names the schedule after its logical id: {nightly}"
    );
}

/// Issue 18 item 10: SAM names a ScheduleV2 event's schedule after its logical id unless
/// `OmitName` is set, so every stack created `NightlySyncFunctionNightly` in the default group
/// and a second stack in the same account and region failed to deploy. As deployed, the
/// schedule has no name (CloudFormation generates a unique one).
#[test]
fn the_nightly_schedule_has_no_fixed_name_as_deployed() {
    let translated = translated();
    let schedules = resources_of(&translated, "AWS::Scheduler::Schedule");
    assert_eq!(schedules.len(), 1, "the nightly schedule: {schedules:?}");
    for (name, schedule) in schedules {
        assert!(
            schedule["Properties"].get("Name").is_none(),
            "{name} has a fixed name: {}",
            schedule["Properties"]["Name"]
        );
        assert!(
            schedule["Properties"].get("GroupName").is_none(),
            "{name} in the default group"
        );
        assert_eq!(
            schedule["Properties"]["Target"]["Arn"],
            json!({"Fn::GetAtt": ["NightlySyncFunction", "Arn"]})
        );
    }
}

/// A deployed role's policy, or both branches of a conditional one (SAM keeps a function's
/// `Fn::If` policy as one; `AWS::NoValue` has none).
fn deployed_policy_branches(policy: &Value) -> Vec<Value> {
    match policy.get("Fn::If") {
        Some(branches) => branches.as_array().unwrap()[1..]
            .iter()
            .filter(|branch| branch.get("PolicyDocument").is_some())
            .cloned()
            .collect(),
        None => vec![policy.clone()],
    }
}

/// The roles SAM makes from the functions' policies, as deployed: no item action on an index
/// ARN there either, and no wildcard action.
#[test]
fn the_deployed_roles_grant_no_item_action_on_an_index() {
    let translated = translated();
    let roles = resources_of(&translated, "AWS::IAM::Role");
    let function_roles: Vec<_> = roles
        .iter()
        .filter(|(name, _)| name.ends_with("FunctionRole"))
        .collect();
    assert_eq!(
        function_roles.len(),
        5,
        "one role per function: {:?}",
        roles.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    let list = |v: &Value| match v {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    for (name, role) in function_roles {
        for policy in role["Properties"]["Policies"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(deployed_policy_branches)
        {
            for statement in policy["PolicyDocument"]["Statement"].as_array().unwrap() {
                let actions: Vec<String> = list(&statement["Action"])
                    .iter()
                    .map(|a| a.as_str().unwrap().to_owned())
                    .collect();
                assert!(
                    actions.iter().all(|a| !a.contains('*')),
                    "{name}: {actions:?}"
                );
                if list(&statement["Resource"])
                    .iter()
                    .any(|r| r.to_string().contains("/index/"))
                {
                    assert!(
                        actions.iter().all(|a| a == "dynamodb:Query"),
                        "{name} grants {actions:?} on an index"
                    );
                }
            }
        }
    }
}

/// Each function's HTTP API events are exactly the routes its Lambda router serves (which
/// `api::tests::each_function_serves_the_routes_of_its_document` holds to the document), so a
/// route added in code cannot be missing on AWS.
#[test]
fn each_function_gets_exactly_the_routes_its_router_serves() {
    let template = template();
    let routers = [
        ("RegisterFunction", seyaha::api::registration_plain_routes()),
        (
            "SyncTriggerFunction",
            seyaha::api::sync_trigger_plain_routes(),
        ),
        (
            "AvailabilityNotifyFunction",
            seyaha::api::availability_notify_plain_routes(),
        ),
    ];
    for (function, routes) in routers {
        let mut served: Vec<(String, String)> = routes
            .served
            .into_iter()
            .map(|(method, path)| (method.to_uppercase(), path))
            .collect();
        let mut routed: Vec<(String, String)> =
            resource(&template, function)["Properties"]["Events"]
                .as_object()
                .unwrap()
                .values()
                .filter(|event| {
                    event["Type"] == "HttpApi" && event["Properties"]["Path"] != "$default"
                })
                .map(|event| {
                    (
                        event["Properties"]["Method"].as_str().unwrap().to_owned(),
                        event["Properties"]["Path"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
        served.sort();
        routed.sort();
        assert_eq!(routed, served, "{function}: template routes vs its router");
    }
}

/// Only `register` rotates webhook secrets; the overlap is a parameter with the bound
/// `Settings::validate` enforces.
#[test]
fn the_secret_overlap_is_a_bounded_parameter_of_register() {
    let template = template();
    let register =
        &resource(&template, "RegisterFunction")["Properties"]["Environment"]["Variables"];
    assert_eq!(
        register["SEYAHA_SECRET_OVERLAP_HOURS"],
        json!({"Ref": "SecretOverlapHours"}),
        "only register rotates secrets"
    );
    let overlap = &template["Parameters"]["SecretOverlapHours"];
    assert_eq!(
        (overlap["Default"].clone(), overlap["MinValue"].clone()),
        (json!(24), json!(0))
    );
    assert_eq!(
        overlap["MaxValue"],
        json!(seyaha::settings::MAX_SECRET_OVERLAP_HOURS),
        "the bound Settings::validate enforces"
    );
}

/// Subscriptions deliver to the API's own URL, built from the HTTP API's id, which only the
/// sync worker (it makes them) is given; the API's functions queue them.
#[test]
fn the_public_url_is_the_http_apis_own_and_only_the_worker_has_it() {
    let template = template();
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    assert!(
        globals.get("SEYAHA_PUBLIC_URL").is_none(),
        "no API function may refer to its own API"
    );
    assert_eq!(globals["SEYAHA_PUSH_SUBSCRIPTIONS"], "true");
    let worker =
        &template["Resources"]["SyncWorkerFunction"]["Properties"]["Environment"]["Variables"];
    let public_url = worker["SEYAHA_PUBLIC_URL"].to_string();
    assert!(
        public_url.contains("${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"),
        "{public_url}"
    );
}

/// The logical ids a resource's properties and `DependsOn` refer to (`Ref`, `Fn::GetAtt`,
/// `Fn::Sub`'s `${Name}` and `${Name.Attribute}`).
fn references(node: &Value, out: &mut std::collections::BTreeSet<String>) {
    match node {
        Value::Object(object) => {
            for (key, value) in object {
                match (key.as_str(), value) {
                    ("Ref", Value::String(name)) => {
                        out.insert(name.clone());
                    }
                    ("Fn::GetAtt", Value::Array(parts)) => {
                        out.extend(parts.first().and_then(Value::as_str).map(str::to_owned));
                    }
                    ("Fn::GetAtt", Value::String(path)) => {
                        out.insert(path.split('.').next().unwrap_or_default().to_owned());
                    }
                    ("Fn::Sub", sub) => {
                        let (text, variables) = match sub {
                            Value::Array(parts) => {
                                (parts[0].as_str().unwrap_or_default(), parts.get(1))
                            }
                            other => (other.as_str().unwrap_or_default(), None),
                        };
                        for piece in text.split("${").skip(1) {
                            let name = piece.split('}').next().unwrap_or_default();
                            if !name.starts_with('!') {
                                out.insert(name.split('.').next().unwrap_or_default().to_owned());
                            }
                        }
                        if let Some(variables) = variables {
                            references(variables, out);
                        }
                    }
                    _ => references(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, out)),
        _ => {}
    }
}

/// CloudFormation refuses a template whose resources refer to each other in a circle. The
/// translated template is what it gets: SAM's HTTP API body refers to the functions behind its
/// routes, so none of them may refer to the API (as a public URL built from its id once did).
#[test]
fn the_deployed_resources_have_no_dependency_cycle() {
    let translated = translated();
    let resources = translated["Resources"].as_object().unwrap();
    let graph: std::collections::BTreeMap<&String, Vec<String>> = resources
        .iter()
        .map(|(name, resource)| {
            let mut out = std::collections::BTreeSet::new();
            references(&resource["Properties"], &mut out);
            if let Some(depends_on) = resource.get("DependsOn") {
                match depends_on {
                    Value::String(name) => {
                        out.insert(name.clone());
                    }
                    Value::Array(names) => {
                        out.extend(names.iter().filter_map(Value::as_str).map(str::to_owned))
                    }
                    _ => {}
                }
            }
            (
                name,
                out.into_iter()
                    .filter(|id| resources.contains_key(id))
                    .collect(),
            )
        })
        .collect();
    // Depth-first, with the path: a reference back into it is a cycle.
    fn visit<'a>(
        name: &'a String,
        graph: &'a std::collections::BTreeMap<&String, Vec<String>>,
        path: &mut Vec<&'a String>,
        done: &mut std::collections::BTreeSet<&'a String>,
    ) -> Option<String> {
        if let Some(at) = path.iter().position(|seen| *seen == name) {
            let cycle: Vec<&str> = path[at..]
                .iter()
                .map(|s| s.as_str())
                .chain([name.as_str()])
                .collect();
            return Some(cycle.join(" -> "));
        }
        if done.contains(name) {
            return None;
        }
        path.push(name);
        for next in &graph[name] {
            let next = graph.get_key_value(next).map(|(key, _)| *key).unwrap();
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(name);
        None
    }
    let mut done = std::collections::BTreeSet::new();
    for name in graph.keys() {
        if let Some(cycle) = visit(name, &graph, &mut Vec::new(), &mut done) {
            panic!("a dependency cycle CloudFormation refuses: {cycle}");
        }
    }
}

/// The `SEARCH('{namespace,dim,...} MetricName="name"', ...)` expressions of a dashboard body:
/// each metric name with its dimensions, sorted.
fn searched_metrics(body: &str) -> Vec<(String, Vec<String>)> {
    body.split("SEARCH('{")
        .skip(1)
        .map(|rest| {
            // The schema ends where the search terms start (`${MetricsNamespace}` has a brace too).
            let (schema, rest) = rest.split_once("} MetricName=\\\"").unwrap();
            let name = rest.split("\\\"").next().unwrap();
            let mut dimensions: Vec<String> =
                schema.split(',').skip(1).map(str::to_owned).collect();
            dimensions.sort();
            (name.to_owned(), dimensions)
        })
        .collect()
}

/// Every metric the code records (`seyaha::metrics::ALL`) is on the dashboard with exactly its
/// dimensions, in the namespace the functions are given; the dashboard body is valid JSON; and
/// the sync error rate alarm reads a metric and dimension the code records, and reaches a person.
#[test]
fn the_dashboard_shows_every_metric_and_the_sync_error_rate_alarms() {
    let template = template();
    let namespace = template["Parameters"]["MetricsNamespace"].clone();
    assert_eq!(
        namespace["Default"],
        seyaha::settings::DEFAULT_METRICS_NAMESPACE
    );
    let variables = &template["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(
        variables["SEYAHA_METRICS_NAMESPACE"],
        json!({"Ref": "MetricsNamespace"}),
        "every function prints into it"
    );

    let body = resource(&template, "Dashboard")["Properties"]["DashboardBody"]["Fn::Sub"]
        .as_str()
        .expect("a !Sub body")
        .to_owned();
    let searched = searched_metrics(&body);
    for metric in seyaha::metrics::ALL {
        let mut labels: Vec<String> = metric.labels.iter().map(|l| (*l).to_owned()).collect();
        labels.sort();
        assert!(
            searched.contains(&(metric.name.to_owned(), labels.clone())),
            "{} by {labels:?} on the dashboard: {searched:?}",
            metric.name
        );
    }
    for (name, _) in &searched {
        assert!(
            seyaha::metrics::ALL.iter().any(|m| m.name == name),
            "the dashboard shows {name}, which the code does not record"
        );
    }
    let substituted = body
        .replace(
            "${MetricsNamespace}",
            seyaha::settings::DEFAULT_METRICS_NAMESPACE,
        )
        .replace("${AWS::Region}", "eu-west-1")
        .replace(
            "${SyncErrorRateAlarm.Arn}",
            "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:x",
        );
    assert!(
        !substituted.contains("${"),
        "only known substitutions: {substituted}"
    );
    let dashboard: Value = serde_json::from_str(&substituted)
        .unwrap_or_else(|e| panic!("the dashboard body is not JSON: {e}"));
    assert!(
        dashboard["widgets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["properties"]["annotations"]["alarms"].is_array())
    );

    let alarm = &resource(&template, "SyncErrorRateAlarm")["Properties"];
    assert_eq!(alarm["AlarmActions"], json!([{"Ref": "AlarmTopic"}]));
    assert_eq!(alarm["TreatMissingData"], "notBreaching");
    let duration = seyaha::metrics::ALL
        .iter()
        .find(|m| m.name == seyaha::metrics::SYNC_DURATION)
        .unwrap();
    let mut outcomes = Vec::new();
    for query in alarm["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q.get("MetricStat").is_some())
    {
        let metric = &query["MetricStat"]["Metric"];
        assert_eq!(metric["Namespace"], json!({"Ref": "MetricsNamespace"}));
        assert_eq!(metric["MetricName"], duration.name);
        assert_eq!(
            query["MetricStat"]["Stat"], "SampleCount",
            "runs are the histogram's sample count"
        );
        let dimensions = metric["Dimensions"].as_array().unwrap();
        assert_eq!(
            dimensions.len(),
            duration.labels.len(),
            "an alarm's metric must have all of the dimensions the code records"
        );
        assert_eq!(dimensions[0]["Name"], duration.labels[0]);
        outcomes.push(dimensions[0]["Value"].as_str().unwrap().to_owned());
    }
    outcomes.sort();
    assert_eq!(
        outcomes,
        ["error", "skipped", "synced"],
        "the runs that reached a partner"
    );
    for outcome in &outcomes {
        assert!(
            <seyaha::domain::RunOutcome as std::str::FromStr>::from_str(outcome).is_ok(),
            "{outcome} is an outcome the code records"
        );
    }
}

/// The metrics are EMF log lines without a level, which Lambda's log-level filter takes for
/// INFO: a WARN or ERROR application log level would drop them, and the alarms on them with them.
#[test]
fn the_log_level_cannot_drop_the_metrics() {
    let template = template();
    let level = &template["Parameters"]["LogLevel"];
    assert_eq!(level["AllowedValues"], json!(["TRACE", "DEBUG", "INFO"]));
    assert_eq!(level["Default"], "INFO");
    assert_eq!(
        template["Globals"]["Function"]["LoggingConfig"]["ApplicationLogLevel"],
        json!({"Ref": "LogLevel"})
    );
}

/// With `JwtPublicKey` set, register verifies with it and gets neither the JWT secret's id nor
/// the right to read it, and no secret is created; empty (the default), HS256 as before.
#[test]
fn a_jwt_public_key_reaches_register_and_takes_the_secret_away() {
    let template = template();
    let parameter = &template["Parameters"]["JwtPublicKey"];
    assert_eq!(
        (parameter["Type"].as_str(), parameter["Default"].as_str()),
        (Some("String"), Some(""))
    );
    let lifetime = &template["Parameters"]["JwtMaxLifetimeSecs"];
    assert_eq!(
        (lifetime["Default"].clone(), lifetime["MinValue"].clone()),
        (json!(0), json!(0)),
        "no maximum by default"
    );
    assert_eq!(
        template["Conditions"]["UsesJwtSecret"],
        json!({"Fn::Equals": [{"Ref": "JwtPublicKey"}, ""]})
    );
    let create = template["Conditions"]["CreateJwtSecret"]["Fn::And"]
        .as_array()
        .expect("CreateJwtSecret is an And")
        .clone();
    assert!(
        create.contains(&json!({"Condition": "UsesJwtSecret"})),
        "no secret is created with a public key: {create:?}"
    );

    let register =
        &resource(&template, "RegisterFunction")["Properties"]["Environment"]["Variables"];
    assert_eq!(
        register["SEYAHA_JWT_PUBLIC_KEY"],
        json!({"Ref": "JwtPublicKey"})
    );
    assert_eq!(
        register["SEYAHA_JWT_MAX_LIFETIME_SECS"],
        json!({"Ref": "JwtMaxLifetimeSecs"})
    );
    let secret_id = register["SEYAHA_JWT_SECRET_ID"]["Fn::If"]
        .as_array()
        .expect("the secret id is conditional")
        .clone();
    assert_eq!(
        (secret_id[0].clone(), secret_id[2].clone()),
        (json!("UsesJwtSecret"), json!({"Ref": "AWS::NoValue"}))
    );

    // Every grant on the JWT secret sits in a policy that only UsesJwtSecret keeps.
    let reads_jwt_secret = |policy: &Value| {
        policy.to_string().contains("JwtSecret")
            || policy.to_string().contains("ExistingJwtSecretArn")
    };
    for policy in resource(&template, "RegisterFunction")["Properties"]["Policies"]
        .as_array()
        .unwrap()
    {
        if reads_jwt_secret(policy) {
            let branches = policy["Fn::If"]
                .as_array()
                .unwrap_or_else(|| panic!("an unconditional grant on the JWT secret: {policy}"));
            assert_eq!(
                (branches[0].clone(), branches[2].clone()),
                (json!("UsesJwtSecret"), json!({"Ref": "AWS::NoValue"})),
                "{policy}"
            );
        }
    }
    assert!(
        granted_on(
            &template,
            "RegisterFunction",
            "secretsmanager:GetSecretValue"
        )
        .iter()
        .any(|r| r.contains("JwtSecret")),
        "HS256 still reads it"
    );
    // No other function verifies tokens, so none is given the key or the secret.
    for function in [
        "SyncTriggerFunction",
        "AvailabilityNotifyFunction",
        "NightlySyncFunction",
        "SyncWorkerFunction",
    ] {
        let text = resource(&template, function).to_string();
        assert!(
            !text.contains("JwtSecret") && !text.contains("SEYAHA_JWT"),
            "{function}"
        );
    }
    assert_eq!(
        template["Outputs"]["JwtSecretArn"]["Condition"],
        "UsesJwtSecret"
    );

    // As deployed: register's role reads the JWT secret only in a policy UsesJwtSecret keeps.
    let translated = translated();
    let role = resource(&translated, "RegisterFunctionRole");
    let on_secret: Vec<&Value> = role["Properties"]["Policies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|policy| reads_jwt_secret(policy))
        .collect();
    assert!(
        !on_secret.is_empty(),
        "HS256: register's role reads the secret"
    );
    for policy in on_secret {
        let branches = policy["Fn::If"]
            .as_array()
            .unwrap_or_else(|| panic!("an unconditional grant on the JWT secret: {policy}"));
        assert_eq!(
            (branches[0].clone(), branches[2].clone()),
            (json!("UsesJwtSecret"), json!({"Ref": "AWS::NoValue"})),
            "{policy}"
        );
    }
}

/// Every setting the code reads on both runtimes or on AWS reaches the Lambda functions: a
/// template parameter or a fixed value in the functions' environment. The settings are read
/// from `Settings` itself (its `pub` fields up to the seyaha-local-only part), so a new one
/// fails this until the template sets it. `SEYAHA_ALLOW_PRIVATE_ENDPOINTS` is fixed to false
/// on AWS; the JWT secret's id is set only while HS256 is used (see the JWT test).
#[test]
fn every_setting_the_functions_read_is_set_by_the_template() {
    let settings: Vec<String> = seyaha_tests::settings_fields()
        .into_iter()
        .filter(|(section, _)| section != "seyaha-local")
        .map(|(_, name)| format!("SEYAHA_{}", name.to_uppercase()))
        .collect();
    assert!(settings.len() > 20, "read the settings: {settings:?}");
    let template = template();
    let mut set: std::collections::BTreeMap<String, Value> =
        template["Globals"]["Function"]["Environment"]["Variables"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
    for (_, function) in resources_of(&template, "AWS::Serverless::Function") {
        if let Some(variables) = function["Properties"]["Environment"]["Variables"].as_object() {
            set.extend(
                variables
                    .iter()
                    .map(|(name, value)| (name.clone(), value.clone())),
            );
        }
    }
    let missing: Vec<&String> = settings
        .iter()
        .filter(|name| !set.contains_key(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "settings the Lambda functions cannot be given: {missing:?}"
    );
    assert_eq!(
        set["SEYAHA_ALLOW_PRIVATE_ENDPOINTS"], "false",
        "never private endpoints on AWS"
    );
    for (variable, parameter) in [
        ("SEYAHA_OCTO_CONNECT_TIMEOUT_SECS", "OctoConnectTimeoutSecs"),
        ("SEYAHA_FALLBACK_DELAY_SECS", "FallbackDelaySecs"),
        ("SEYAHA_SECRET_CACHE_SECS", "SecretCacheSecs"),
        ("SEYAHA_SLOT_RETENTION_DAYS", "SlotRetentionDays"),
        ("SEYAHA_WEBHOOK_RATE_PER_MINUTE", "WebhookRatePerMinute"),
        ("SEYAHA_CATALOG_MAX_ACTIVITIES", "CatalogMaxActivities"),
        ("SEYAHA_CATALOG_MAX_BYTES", "CatalogMaxBytes"),
        (
            "SEYAHA_CATALOG_INACTIVE_RETENTION_DAYS",
            "CatalogInactiveRetentionDays",
        ),
    ] {
        assert_eq!(set[variable], json!({"Ref": parameter}), "{variable}");
        let default = &template["Parameters"][parameter]["Default"];
        let settings_default = serde_json::to_value(match variable {
            "SEYAHA_OCTO_CONNECT_TIMEOUT_SECS" => {
                seyaha::settings::Settings::default().octo_connect_timeout_secs
            }
            "SEYAHA_FALLBACK_DELAY_SECS" => {
                seyaha::settings::Settings::default().fallback_delay_secs
            }
            "SEYAHA_SECRET_CACHE_SECS" => seyaha::settings::Settings::default().secret_cache_secs,
            "SEYAHA_SLOT_RETENTION_DAYS" => {
                seyaha::settings::Settings::default().slot_retention_days
            }
            "SEYAHA_CATALOG_MAX_ACTIVITIES" => {
                seyaha::settings::Settings::default().catalog_max_activities
            }
            "SEYAHA_CATALOG_MAX_BYTES" => seyaha::settings::Settings::default().catalog_max_bytes,
            "SEYAHA_CATALOG_INACTIVE_RETENTION_DAYS" => {
                seyaha::settings::Settings::default().catalog_inactive_retention_days
            }
            _ => u64::from(seyaha::settings::Settings::default().webhook_rate_per_minute),
        })
        .unwrap();
        assert_eq!(
            default, &settings_default,
            "{parameter}'s default is the code's"
        );
    }
}

/// Anonymous floods (docs/security.md): the HTTP API's route limits count requests
/// before any secret is checked, and an HTTP API takes no WAF. `EdgeProtection` (off by
/// default) puts CloudFront with a WAF rate-based rule per client IP in front of it; pushes then
/// come through it too. The per-IP limit is sized against the smallest webhook route limit, so
/// one source takes at most a fifth of it.
#[test]
fn edge_protection_puts_a_per_ip_waf_rule_in_front_of_the_api_and_is_off_by_default() {
    let template = template();
    let parameters = &template["Parameters"];
    assert_eq!(parameters["EdgeProtection"]["Default"], "off");
    assert_eq!(
        template["Conditions"]["EdgeOn"],
        json!({"Fn::Equals": [{"Ref": "EdgeProtection"}, "cloudfront-waf"]})
    );

    let acl = resource(&template, "EdgeWebAcl");
    assert_eq!(
        (acl["Condition"].clone(), acl["Properties"]["Scope"].clone()),
        (json!("CreateEdgeWebAcl"), json!("CLOUDFRONT"))
    );
    let rule = &acl["Properties"]["Rules"][0];
    let rate = &rule["Statement"]["RateBasedStatement"];
    assert_eq!(rate["AggregateKeyType"], "IP", "a limit per client IP");
    assert_eq!(
        (rate["Limit"].clone(), rate["EvaluationWindowSec"].clone()),
        (json!({"Ref": "EdgeRequestsPerMinutePerIp"}), json!(60))
    );
    assert_eq!(
        rule["Action"]["Block"]["CustomResponse"]["ResponseCode"],
        429
    );
    // Outside us-east-1 the stack cannot make a CloudFront web ACL: a rule refuses the
    // parameters before anything is created.
    let assertion = &template["Rules"]["EdgeWebAclWhereItCanBeMade"]["Assertions"][0]["Assert"];
    assert_eq!(
        assertion,
        &json!({"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]})
    );

    let distribution = &resource(&template, "EdgeDistribution");
    assert_eq!(distribution["Condition"], "EdgeOn");
    let config = &distribution["Properties"]["DistributionConfig"];
    assert_eq!(
        config["WebACLId"],
        json!({"Fn::If": ["CreateEdgeWebAcl", {"Fn::GetAtt": ["EdgeWebAcl", "Arn"]}, {"Ref": "EdgeWebAclArn"}]})
    );
    assert!(
        config["Origins"][0]["DomainName"]
            .to_string()
            .contains("${HttpApi}.execute-api"),
        "{config}"
    );
    let behaviour = &config["DefaultCacheBehavior"];
    assert_eq!(
        behaviour["CachePolicyId"], "4135ea2d-6df8-44a3-9df3-4b5a84be39ad",
        "nothing is cached"
    );
    assert_eq!(
        behaviour["AllowedMethods"].as_array().unwrap().len(),
        7,
        "every method reaches the API"
    );
    // The sync worker subscribes partners' platforms to the distribution's URL when it is on.
    let worker = &resource(&template, "SyncWorkerFunction")["Properties"]["Environment"]["Variables"]
        ["SEYAHA_PUBLIC_URL"];
    assert_eq!(worker["Fn::If"][0], "EdgeOn", "{worker}");
    assert!(
        worker["Fn::If"][1]
            .to_string()
            .contains("EdgeDistribution.DomainName"),
        "{worker}"
    );

    // The sizing rule: one source at the per-IP limit is at most a fifth of the smallest route limit.
    let per_ip_per_second = parameters["EdgeRequestsPerMinutePerIp"]["Default"]
        .as_f64()
        .unwrap()
        / 60.0;
    let smallest_route = ["WebhookRateLimit", "NotifyRateLimit"]
        .iter()
        .map(|p| parameters[*p]["Default"].as_f64().unwrap())
        .fold(f64::MAX, f64::min);
    assert!(
        per_ip_per_second * 5.0 <= smallest_route,
        "{per_ip_per_second}/s per IP against {smallest_route}/s"
    );

    // As deployed: SAM passes the edge resources, their conditions and the rule through.
    let translated = translated();
    assert_eq!(
        resource(&translated, "EdgeDistribution")["Condition"],
        "EdgeOn"
    );
    assert_eq!(
        resource(&translated, "EdgeWebAcl")["Condition"],
        "CreateEdgeWebAcl"
    );
    assert!(translated["Rules"]["EdgeWebAclWhereItCanBeMade"].is_object());
}
