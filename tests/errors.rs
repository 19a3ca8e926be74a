//! Errors a person can act on: each way an AWS call fails (connection
//! refused, a host name that does not resolve, a TLS handshake with a server
//! that does not speak TLS, no answer within the attempt timeout, throttled
//! on every try, access denied, expired credentials, a truncated answer, an
//! HTML page instead of XML), through the plugin as Steampipe sees it
//! (sphost, steampipe-plugin-sdk's own client) and through `check`.
//!
//! Each message is asserted whole: one line that names the connection, the
//! operation, the region and the endpoint, says what happened (and, where it
//! helps, what to do), with no `Debug` dump of a library error and no secret
//! of the connection's credentials.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::moto::{FaultProxy, Moto};
use common::*;
use serde_json::{json, Value};

const CONN: &str = "aws_errs";
/// Shaped like a real access key id, so that masking is tested too.
const ACCESS_KEY: &str = "AKIAERRORTEST0000001";
const SECRET_KEY: &str = "errors-test-secret-wJalrXUtnFEMIK7MDENG";
const SESSION_TOKEN: &str = "errors-test-session-FwoGZXIvYXdzEJr";

fn moto() -> &'static Moto {
    static M: OnceLock<Moto> = OnceLock::new();
    M.get_or_init(Moto::start)
}

fn binary() -> std::path::PathBuf {
    target_dir().join("steampipe-plugin-aws")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The connection's HCL: static credentials (with a session token), one
/// region, three quick tries.
fn config(endpoint: &str) -> String {
    format!(
        "access_key = \"{ACCESS_KEY}\"\ndefault_region = \"us-east-1\"\nendpoint_url = \"{endpoint}\"\nmax_error_retry_attempts = 3\nmin_error_retry_delay = 10\nregions = [\"us-east-1\"]\nsecret_key = \"{SECRET_KEY}\"\nsession_token = \"{SESSION_TOKEN}\"\n"
    )
}

const ENV: [(&str, &str); 6] = [
    // Whatever the test runner has: blank is unset for the SDK.
    ("AWS_ACCESS_KEY_ID", ""),
    ("AWS_SECRET_ACCESS_KEY", ""),
    ("AWS_SESSION_TOKEN", ""),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_CONFIG_FILE", "/nonexistent/aws-config"),
    (
        "AWS_SHARED_CREDENTIALS_FILE",
        "/nonexistent/aws-credentials",
    ),
];

/// The message the plugin ends a scan of `aws_ec2_instance` with (a Get
/// call when `get_id` is set), through sphost.
fn plugin_error(endpoint: &str, get_id: Option<&str>, extra: &[(&str, &str)]) -> String {
    plugin_error_logged(&config(endpoint), get_id, None, extra)
}

/// [`plugin_error`] for the connection config `hcl`, with the plugin's log
/// at TRACE written to `log`.
fn plugin_error_logged(
    hcl: &str,
    get_id: Option<&str>,
    log: Option<&Path>,
    extra: &[(&str, &str)],
) -> String {
    let quals = match get_id {
        Some(id) => qual("instance_id", "=", Some(json!({ "stringValue": id }))),
        None => json!({}),
    };
    let mut req = execute(
        "aws_ec2_instance",
        CONN,
        &["instance_id", "region"],
        quals,
        None,
    );
    req["executeConnectionData"][CONN]["cacheEnabled"] = json!(false);
    let mut env = json!({"STEAMPIPE_LOG_LEVEL": "WARN"});
    for (k, v) in ENV.iter().chain(extra) {
        env[*k] = json!(v);
    }
    let mut scenario = json!({
        "plugin": binary(),
        "env": env,
        "cache_options": {"enabled": false, "ttl": 300},
        "connections": [aws_connection(CONN, hcl)],
        "steps": [{"op": "execute", "request": req}],
    });
    if let Some(log) = log {
        scenario["env"]["STEAMPIPE_LOG_LEVEL"] = json!("TRACE");
        scenario["stderr_file"] = json!(log);
    }
    let ev = run(&scenario);
    let end = one(&ev, "execute_end", Some(0));
    assert_eq!(end["end"], "error", "{end}");
    assert_eq!(end["code"], "Unknown", "{end}");
    end["message"].as_str().unwrap().to_string()
}

fn run_check(dir: &Path, endpoint: &str, output: &str, extra: &[(&str, &str)]) -> Output {
    let spc = dir.join("aws.spc");
    let body: String = config(endpoint)
        .lines()
        .map(|l| format!("  {l}\n"))
        .collect();
    std::fs::write(
        &spc,
        format!("connection \"{CONN}\" {{\n  plugin = \"aws\"\n{body}}}\n"),
    )
    .unwrap();
    let mut cmd = Command::new(binary());
    cmd.current_dir(dir)
        .args(["check", "foundational_security_ec2_8", "--config"])
        .arg(&spc)
        .args(["--output", output])
        .env("POWERPIPE_DISPLAY_WIDTH", "1000")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL");
    for (k, v) in ENV.iter().chain(extra) {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn run_errors(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(e)) = m.get("run_error") {
                if !e.is_empty() {
                    out.push(e.clone());
                }
            }
            m.values().for_each(|x| run_errors(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| run_errors(x, out)),
        _ => {}
    }
}

/// The control's error in `check --output json`, after checking that the
/// text output shows the same line and that stderr is clean.
fn check_error(endpoint: &str, extra: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = run_check(dir.path(), endpoint, "json", extra);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "check exit code; stderr: {stderr}"
    );
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("check json: {e}: {}", String::from_utf8_lossy(&out.stdout)));
    let mut errors = Vec::new();
    run_errors(&json, &mut errors);
    assert_eq!(errors.len(), 1, "one control error: {errors:?}");
    assert_clean("check stderr", &stderr);
    let text = run_check(dir.path(), endpoint, "text", extra);
    let shown = String::from_utf8_lossy(&text.stdout).into_owned();
    // Cut to the display width (at most 200 columns, as Powerpipe does).
    assert!(
        shown.lines().any(|l| {
            l.split_once("ERROR: ").is_some_and(|(_, e)| {
                let e = e.trim_end();
                e == errors[0] || errors[0].starts_with(e.trim_end_matches('…'))
            })
        }),
        "the text output shows the error {:?} on one line:\n{shown}",
        errors[0]
    );
    assert_clean("check text output", &shown);
    errors.remove(0)
}

/// No Debug dump, no secret.
fn assert_clean(what: &str, text: &str) {
    for dump in [
        "{ ",
        "DispatchFailure",
        "ConnectorError",
        "ResponseError",
        "ServiceError",
        "TimeoutError",
        "hyper",
        "Some(",
        "kind:",
        "source:",
        "Error(",
    ] {
        assert!(!text.contains(dump), "{what} shows {dump:?}: {text}");
    }
    for secret in [ACCESS_KEY, SECRET_KEY, SESSION_TOKEN] {
        assert!(!text.contains(secret), "{what} shows a secret: {text}");
    }
}

/// One message: one line, the connection first, no dump, no secret.
fn assert_readable(kind: &str, msg: &str) {
    assert!(
        !msg.contains('\n') && !msg.contains('\r'),
        "{kind}: {msg:?}"
    );
    assert_clean(kind, msg);
}

struct Case {
    kind: &'static str,
    endpoint: String,
    get: Option<&'static str>,
    /// the whole message after `aws_errs: `
    want: String,
    /// more environment for the plugin and `check`
    env: Vec<(&'static str, &'static str)>,
    _proxy: Option<FaultProxy>,
}

fn proxied(kind: &'static str, rules: Value, want: impl Fn(&str) -> String) -> Case {
    let proxy = FaultProxy::start(&moto().endpoint, rules);
    let endpoint = proxy.endpoint.clone();
    Case {
        kind,
        want: want(&endpoint),
        endpoint,
        get: None,
        env: Vec::new(),
        _proxy: Some(proxy),
    }
}

fn cases() -> Vec<Case> {
    let refused = format!("http://127.0.0.1:{}", free_port());
    let dns = "http://ec2.us-east-1.nowhere.invalid".to_string();
    let tls = moto().endpoint.replace("http://", "https://");
    let di = |rule: Value| {
        let mut r = rule;
        r["action"] = json!("DescribeInstances");
        r["times"] = json!(-1);
        json!([r])
    };
    // The attempt timeout is short, but not so short that GetCallerIdentity
    // (through the proxy and the emulator, on a loaded machine) hits it.
    let mut timeout = proxied(
        "timeout",
        di(json!({"fault": "delay", "delay_ms": 5000})),
        |ep| format!("DescribeInstances in us-east-1: no answer from {ep} within 1 s, 3 attempts"),
    );
    timeout.env = vec![("STEAMPIPE_AWS_ATTEMPT_TIMEOUT_MS", "1000")];
    let mut out = vec![
        Case {
            kind: "connection refused",
            want: format!("GetCallerIdentity in us-east-1: could not connect to {refused} (connection refused), 3 attempts"),
            endpoint: refused,
            get: None,
            env: Vec::new(),
            _proxy: None,
        },
        Case {
            kind: "DNS failure",
            want: format!("GetCallerIdentity in us-east-1: could not connect to {dns} (its host name does not resolve), 3 attempts"),
            endpoint: dns,
            get: None,
            env: Vec::new(),
            _proxy: None,
        },
        Case {
            kind: "TLS failure",
            want: format!("GetCallerIdentity in us-east-1: could not connect to {tls} (TLS handshake failed: the server did not answer in TLS; is it an http:// endpoint?), 3 attempts"),
            endpoint: tls,
            get: None,
            env: Vec::new(),
            _proxy: None,
        },
        timeout,
        proxied(
            "throttled",
            di(json!({"code": "RequestLimitExceeded", "status": 503, "message": "Request limit exceeded."})),
            |ep| format!("DescribeInstances in us-east-1: RequestLimitExceeded: Request limit exceeded. (HTTP 503 from {ep}, 3 attempts); AWS throttled every try: raise max_error_retry_attempts or min_error_retry_delay in the connection config"),
        ),
        proxied(
            "access denied",
            di(json!({"code": "UnauthorizedOperation", "status": 403, "message": "You are not authorized to perform this operation."})),
            |ep| format!("DescribeInstances in us-east-1: UnauthorizedOperation: You are not authorized to perform this operation. (HTTP 403 from {ep}); the credentials may not call ec2:DescribeInstances: grant it, or list the code in ignore_error_codes"),
        ),
        proxied(
            "expired credentials",
            json!([{"action": "GetCallerIdentity", "code": "ExpiredToken", "status": 403, "style": "query",
                    "message": "The security token included in the request is expired", "times": -1}]),
            |ep| format!("GetCallerIdentity in us-east-1: ExpiredToken: The security token included in the request is expired (HTTP 403 from {ep}); the session credentials have expired: renew them (e.g. `aws sso login`, or a new session_token)"),
        ),
        proxied(
            "invalid credentials, echoed by the server",
            di(json!({"code": "AuthFailure", "status": 401, "message": "AWS was not able to validate the provided access credentials ({access_key})."})),
            |ep| format!("DescribeInstances in us-east-1: AuthFailure: AWS was not able to validate the provided access credentials (AKIA****). (HTTP 401 from {ep}); AWS does not accept these credentials: check access_key and secret_key, or the profile"),
        ),
        proxied(
            "truncated answer",
            di(json!({"fault": "truncate"})),
            |ep| format!("DescribeInstances in us-east-1: incomplete XML answer from {ep} (107 bytes without the closing </DescribeInstancesResponse>), 3 attempts"),
        ),
        proxied(
            "HTML page (502)",
            di(json!({"fault": "html", "status": 502})),
            |ep| format!("DescribeInstances in us-east-1: HTTP 502 without an AWS error code from {ep} (a text/html page \"502 Bad Gateway\": not an AWS answer; a proxy or the endpoint failed), 3 attempts"),
        ),
        proxied(
            "HTML page (200)",
            di(json!({"fault": "html", "status": 200})),
            |ep| format!("DescribeInstances in us-east-1: unreadable answer from {ep} (HTTP 200, a text/html page \"502 Bad Gateway\": not an AWS answer)"),
        ),
    ];
    let mut get = proxied(
        "access denied (Get call)",
        di(
            json!({"code": "UnauthorizedOperation", "status": 403, "message": "You are not authorized to perform this operation."}),
        ),
        |ep| {
            format!("DescribeInstances in us-east-1: UnauthorizedOperation: You are not authorized to perform this operation. (HTTP 403 from {ep}); the credentials may not call ec2:DescribeInstances: grant it, or list the code in ignore_error_codes")
        },
    );
    get.get = Some("i-0123456789abcdef0");
    out.push(get);
    out
}

#[test]
fn every_failure_kind_is_one_readable_line_through_the_plugin_and_check() {
    let mut wrong = Vec::new();
    // The size of a truncated answer depends on the emulator's text.
    let bytes = regex::Regex::new(r"\(\d+ bytes").unwrap();
    let sized = |m: &str| bytes.replace(m, "(N bytes").into_owned();
    for case in cases() {
        let msg = plugin_error(&case.endpoint, case.get, &case.env);
        eprintln!("figure: {}: {msg}", case.kind);
        assert_readable(case.kind, &msg);
        let want = format!("{CONN}: {}", case.want);
        if sized(&msg) != sized(&want) {
            wrong.push(format!("{}:\n  got  {msg}\n  want {want}", case.kind));
        }
        if case.get.is_some() {
            continue;
        }
        let from_check = check_error(&case.endpoint, &case.env);
        eprintln!("figure: check, {}: {from_check}", case.kind);
        assert_readable(case.kind, &from_check);
        if sized(&from_check) != sized(&want) {
            wrong.push(format!(
                "check, {}:\n  got  {from_check}\n  want {want}",
                case.kind
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A broken `--config` file: one line naming the file, the line and the
/// attribute, never the line itself (it may hold the secret key). hcl-rs's
/// own text is a multi-line excerpt of the source.
#[test]
fn a_broken_config_file_is_one_line_without_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let spc = dir.path().join("aws.spc");
    std::fs::write(
        &spc,
        format!(
            "connection \"{CONN}\" {{\n  plugin = \"aws\"\n  secret_key = \"{SECRET_KEY}\" ]\n}}\n"
        ),
    )
    .unwrap();
    let out = Command::new(binary())
        .current_dir(dir.path())
        .args(["check", "--config"])
        .arg(&spc)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(254), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "Error: {}: invalid HCL at line 3, column 58 (in attribute 'secret_key'): expected newline or eof\n",
            spc.display()
        )
    );
    assert_clean("check stderr", &stderr);
}

/// The SDK's own error, `Debug` detail included, stays in the plugin's log at
/// TRACE (and the log, too, holds no secret).
#[test]
fn the_sdks_detail_stays_in_the_trace_log() {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("plugin.log");
    let msg = plugin_error_logged(&config(&endpoint), None, Some(&log), &[]);
    assert_readable("refused, at TRACE", &msg);
    let text = std::fs::read_to_string(&log).unwrap();
    let failed = text
        .lines()
        .find(|l| l.contains("[TRACE] AWS call failed: "))
        .unwrap_or_else(|| panic!("no TRACE line for the failed call in:\n{text}"));
    assert!(failed.contains("DispatchFailure"), "{failed}");
    // The transport's error, before the plugin put its readable one in its place.
    let transport = text
        .lines()
        .find(|l| l.contains("[TRACE] AWS call got no answer: "))
        .unwrap_or_else(|| panic!("no TRACE line for the transport error in:\n{text}"));
    assert!(
        transport.contains("ConnectorError") && transport.contains("ConnectionRefused"),
        "{transport}"
    );
    for secret in [SECRET_KEY, SESSION_TOKEN] {
        assert!(!text.contains(secret), "the log shows a secret");
    }
}

/// No credentials anywhere (no keys in the connection, none in the
/// environment or the profile files, no instance metadata).
#[test]
fn no_credentials_at_all_says_where_they_were_looked_for() {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let hcl = format!("default_region = \"us-east-1\"\nendpoint_url = \"{endpoint}\"\nmax_error_retry_attempts = 2\n");
    let msg = plugin_error_logged(&hcl, None, None, &[]);
    assert_readable("no credentials", &msg);
    assert_eq!(
        msg,
        format!("{CONN}: GetCallerIdentity in us-east-1: no AWS credentials found (none in the environment, the profile files, web identity, the container or instance metadata); set access_key and secret_key or profile in the connection config, or the AWS_* environment variables")
    );
    eprintln!("figure: no credentials: {msg}");
}
