//! Property tests: hostile input fed to the parsers and converters, proving
//! that none of them panics and that every invalid input is an error naming
//! what is wrong.
//!
//! 1. connection HCL → `AwsConnection::parse`
//! 2. wire quals → `QualMap::from_proto`, `Qual::matches`, `like`
//! 3. key columns and quals → `plan`
//! 4. cell values → `encode`
//! 5. `aws_sdk_ec2` instances → every column of `aws_ec2_instance`, encoded
//!    with the column's declared type
//!
//! Case counts are small so the file runs in well under a minute in a debug
//! build on two cores; `PROPTEST_CASES=N` sets every property's count.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aws_sdk_ec2::types as ec2;
use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;
use proptest::collection::{btree_set, hash_map, vec as pvec};
use proptest::option::of as maybe;
use proptest::prelude::*;
use proptest::sample::{select, subsequence, Index};
use serde_json::Value as Json;

use steampipe_plugin_aws::aws::common::{self, CallerIdentity};
use steampipe_plugin_aws::aws::{ec2_instance, ec2_json as j, AwsConnection};
use steampipe_plugin_aws::pb::steampipe as pb;
use steampipe_plugin_aws::plugin::plan::{plan, Plan};
use steampipe_plugin_aws::plugin::quals::{like, normalise_operator};
use steampipe_plugin_aws::plugin::value::encode;
use steampipe_plugin_aws::plugin::{
    ColumnType, ConnectionConfig, KeyColumn, Qual, QualMap, QualValue, Require, TableDef,
    Timestamp, Value,
};

use pb::column::Value as Cell;
use pb::qual_value::Value as V;

/// The config of one property: `n` cases unless `PROPTEST_CASES` says otherwise;
/// no regression files are written into the source tree.
fn cases(n: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(n);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z in Unix seconds.
const MIN_SECONDS: i64 = -62_135_596_800;
const MAX_SECONDS: i64 = 253_402_300_799;

fn in_range(seconds: i64, nanos: i64) -> bool {
    (MIN_SECONDS..=MAX_SECONDS).contains(&seconds) && (0..1_000_000_000).contains(&nanos)
}

/// Short identifiers, empty text and arbitrary Unicode.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-z0-9-]{0,12}",
        2 => any::<String>(),
        1 => Just(String::new()),
    ]
    .boxed()
}

/// Seconds near both ends of the representable range, and anywhere at all.
fn seconds() -> BoxedStrategy<i64> {
    prop_oneof![
        any::<i64>(),
        (MIN_SECONDS - 3)..(MIN_SECONDS + 3),
        (MAX_SECONDS - 3)..(MAX_SECONDS + 3),
        0i64..4_000_000_000,
        Just(i64::MIN),
        Just(i64::MAX),
    ]
    .boxed()
}

/// Doubles, with the special values made likely.
fn double() -> BoxedStrategy<f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE),
        (-5i32..5).prop_map(f64::from),
    ]
    .boxed()
}

/// An arbitrary JSON document (numbers are finite: JSON has no others).
fn json_value() -> BoxedStrategy<Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        double().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Json::Number)),
        any::<String>().prop_map(Json::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            pvec(inner.clone(), 0..4).prop_map(Json::Array),
            pvec((any::<String>(), inner), 0..4)
                .prop_map(|kv| Json::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Valid IPv4/IPv6 addresses, with or without a valid prefix length.
fn valid_ip_text() -> BoxedStrategy<String> {
    prop_oneof![
        any::<Ipv4Addr>().prop_map(|a| a.to_string()),
        any::<Ipv6Addr>().prop_map(|a| a.to_string()),
        (any::<Ipv4Addr>(), 0u8..=32).prop_map(|(a, p)| format!("{a}/{p}")),
        (any::<Ipv6Addr>(), 0u8..=128).prop_map(|(a, p)| format!("{a}/{p}")),
        any::<Ipv4Addr>().prop_map(|a| format!("::ffff:{a}")),
    ]
    .boxed()
}

/// Text that is an IP address, almost one, or nothing like one.
fn ip_ish_text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => valid_ip_text(),
        2 => (valid_ip_text(), "[/+ 0-9a-z.:%-]{0,5}").prop_map(|(a, s)| format!("{a}{s}")),
        1 => (valid_ip_text(), "[ 0+]{1,2}").prop_map(|(a, s)| format!("{s}{a}")),
        1 => (any::<Ipv4Addr>(), "(0|00|\\+)[0-9]{1,3}").prop_map(|(a, p)| format!("{a}/{p}")),
        1 => (any::<Ipv6Addr>(), "(0|\\+)?[0-9]{1,3}").prop_map(|(a, p)| format!("{a}/{p}")),
        1 => select(vec![
            "", "/", "//", "1.2.3.4/8/8", "1.2.3", "1.2.3.4.5", "256.0.0.1", "fe80::1%eth0",
            "::1/+0", "10.0.0.1/", "10.0.0.1/-1", ":::", "1.2.3.4/٣", "１.2.3.4",
        ])
        .prop_map(str::to_string),
        1 => text(),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------
// 1. Connection HCL
// ---------------------------------------------------------------------------

const CONN: &str = "conn";
const PREFIX: &str = "connection 'conn': ";

/// The arguments of the aws plugin's connection config.
const KNOWN: [&str; 12] = [
    "access_key",
    "default_region",
    "endpoint_url",
    "ignore_error_codes",
    "ignore_error_messages",
    "max_error_retry_attempts",
    "min_error_retry_delay",
    "profile",
    "regions",
    "s3_force_path_style",
    "secret_key",
    "session_token",
];

/// What a generated argument value should parse to.
#[derive(Debug, Clone, PartialEq)]
enum Model {
    Null,
    Str(String),
    List(Vec<String>),
    Int(i64),
    Bool(bool),
}

/// One `name = value` line: the name, the HCL text of the value, its meaning.
type Line = (String, String, Model);

/// An HCL quoted string whose value is `s`.
fn hcl_quote(s: &str, escape_all: bool) -> String {
    let mut out = String::from("\"");
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() || (escape_all && !c.is_ascii()) => {
                if (c as u32) <= 0xFFFF {
                    out.push_str(&format!("\\u{:04X}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08X}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn quoted(s: String) -> BoxedStrategy<(String, String)> {
    any::<bool>()
        .prop_map(move |all| (hcl_quote(&s, all), s.clone()))
        .boxed()
}

/// A string value: quoted (raw or fully escaped) or a heredoc.
fn str_value() -> BoxedStrategy<(String, Model)> {
    prop_oneof![
        4 => any::<String>().prop_flat_map(quoted).prop_map(|(t, s)| (t, Model::Str(s))),
        1 => pvec("[a-zA-Z0-9 .,:;!?'-]{0,20}".prop_filter("marker", |l| l.trim() != "EOT"), 1..4)
            .prop_map(|lines| {
                let body = lines.join("\n");
                (format!("<<EOT\n{body}\nEOT"), Model::Str(format!("{body}\n")))
            }),
    ]
    .boxed()
}

/// A list of strings, maybe empty, maybe with a trailing comma or spread over lines.
fn list_value(item: BoxedStrategy<(String, String)>, min: usize) -> BoxedStrategy<(String, Model)> {
    (pvec(item, min..4), any::<bool>(), any::<bool>())
        .prop_map(|(items, trailing, multiline)| {
            let texts: Vec<String> = items.iter().map(|(t, _)| t.clone()).collect();
            let sep = if multiline { ",\n  " } else { ", " };
            let mut body = texts.join(sep);
            if trailing && !texts.is_empty() {
                body.push(',');
            }
            let text = if multiline {
                format!("[\n  {body}\n]")
            } else {
                format!("[{body}]")
            };
            (
                text,
                Model::List(items.into_iter().map(|(_, v)| v).collect()),
            )
        })
        .boxed()
}

fn region_text() -> BoxedStrategy<String> {
    "[a-z]{2}(-[a-z]{2,9}){1,2}-[0-9]{1,2}".boxed()
}

fn int_value(range: std::ops::RangeInclusive<i64>) -> BoxedStrategy<(String, Model)> {
    prop_oneof![
        range.clone().prop_map(|n| (n.to_string(), Model::Int(n))),
        Just(*range.start()).prop_map(|n| (n.to_string(), Model::Int(n))),
        Just(*range.end()).prop_map(|n| (format!("({n})"), Model::Int(n))),
    ]
    .boxed()
}

/// A well-typed value for each known argument.
fn valid_value(name: &'static str) -> BoxedStrategy<(String, Model)> {
    let v = match name {
        "regions" => list_value(
            "[ ]{0,2}[a-zA-Z0-9*?-]{1,12}[ ]{0,2}"
                .prop_flat_map(quoted)
                .boxed(),
            1,
        ),
        "default_region" => region_text()
            .prop_map(|r| (hcl_quote(&r, false), Model::Str(r)))
            .boxed(),
        "endpoint_url" => {
            "(http|https)://[a-z0-9][a-z0-9.-]{0,20}(:[0-9]{1,5})?(/[a-zA-Z0-9._~-]{0,10})?"
                .prop_map(|u| (hcl_quote(&u, false), Model::Str(u)))
                .boxed()
        }
        "ignore_error_codes" => list_value(any::<String>().prop_flat_map(quoted).boxed(), 0),
        "ignore_error_messages" => list_value(
            prop_oneof![
                any::<String>().prop_map(|s| regex::escape(&s)),
                select(vec![
                    "^not authorized",
                    "(?i)denied|throttl",
                    "a.*b",
                    "[0-9]+",
                    ""
                ])
                .prop_map(str::to_string),
            ]
            .prop_flat_map(quoted)
            .boxed(),
            0,
        ),
        "max_error_retry_attempts" => int_value(1..=i64::from(u32::MAX)),
        "min_error_retry_delay" => int_value(1..=i64::MAX),
        "s3_force_path_style" => any::<bool>()
            .prop_map(|b| (b.to_string(), Model::Bool(b)))
            .boxed(),
        _ => str_value(),
    };
    if matches!(name, "access_key" | "secret_key" | "session_token") {
        v
    } else {
        prop_oneof![10 => v, 1 => Just(("null".to_string(), Model::Null))].boxed()
    }
}

fn line(name: &'static str) -> BoxedStrategy<Line> {
    valid_value(name)
        .prop_map(move |(t, m)| (name.to_string(), t, m))
        .boxed()
}

/// A valid config: any subset of the known arguments, well typed, keys paired,
/// in any order. An argument is always set when its environment variable is,
/// so that the environment cannot decide the outcome.
fn valid_config() -> BoxedStrategy<Vec<Line>> {
    let force_attempts = std::env::var_os("AWS_MAX_ATTEMPTS").is_some();
    let force_endpoint = std::env::var_os("AWS_ENDPOINT_URL").is_some();
    let opt = |name: &'static str, force: bool| -> BoxedStrategy<Option<Line>> {
        if force {
            line(name).prop_map(Some).boxed()
        } else {
            maybe(line(name)).boxed()
        }
    };
    let plain = [
        "regions",
        "default_region",
        "profile",
        "min_error_retry_delay",
        "ignore_error_codes",
        "ignore_error_messages",
        "s3_force_path_style",
    ]
    .map(|n| opt(n, false))
    .to_vec();
    let keys = maybe((
        line("access_key"),
        line("secret_key"),
        maybe(line("session_token")),
    ));
    (
        plain,
        keys,
        opt("max_error_retry_attempts", force_attempts),
        opt("endpoint_url", force_endpoint),
    )
        .prop_map(|(plain, keys, attempts, endpoint)| {
            let mut lines: Vec<Line> = plain.into_iter().flatten().collect();
            if let Some((a, s, t)) = keys {
                lines.push(a);
                lines.push(s);
                lines.extend(t);
            }
            lines.extend(attempts);
            lines.extend(endpoint);
            lines
        })
        .prop_shuffle()
        .boxed()
}

/// Comments and blank lines to put before a line.
fn noise() -> BoxedStrategy<String> {
    prop_oneof![
        4 => Just(String::new()),
        1 => "# [ -~]{0,20}\n",
        1 => "// [^\n\r]{0,10}\n",
        1 => "/\\* [a-z ]{0,10} \\*/\n",
        1 => "[ \t]{0,3}\n",
    ]
    .boxed()
}

fn render(lines: &[Line], noise: &[String]) -> String {
    let mut out = String::new();
    for (i, (name, text, _)) in lines.iter().enumerate() {
        if let Some(n) = noise.get(i) {
            out.push_str(n);
        }
        let spaces = " ".repeat(i % 3);
        out.push_str(&format!("{name}{spaces} ={spaces}{text}\n"));
    }
    out
}

fn model<'a>(lines: &'a [Line], name: &str) -> Option<&'a Model> {
    lines
        .iter()
        .find(|(n, _, m)| n == name && *m != Model::Null)
        .map(|(_, _, m)| m)
}

fn model_str(lines: &[Line], name: &str) -> Option<String> {
    match model(lines, name) {
        Some(Model::Str(s)) => Some(s.clone()),
        None => None,
        other => panic!("{name} modelled as {other:?}"),
    }
}

fn model_list(lines: &[Line], name: &str) -> Option<Vec<String>> {
    match model(lines, name) {
        Some(Model::List(l)) => Some(l.clone()),
        None => None,
        other => panic!("{name} modelled as {other:?}"),
    }
}

fn model_int(lines: &[Line], name: &str) -> Option<i64> {
    match model(lines, name) {
        Some(Model::Int(n)) => Some(*n),
        None => None,
        other => panic!("{name} modelled as {other:?}"),
    }
}

/// Checks a parsed connection against the generated lines.
fn check_parsed(c: &AwsConnection, lines: &[Line]) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        c.regions.clone(),
        model_list(lines, "regions")
            .map(|l| l.iter().map(|r| r.trim().to_ascii_lowercase()).collect())
    );
    prop_assert_eq!(c.default_region.clone(), model_str(lines, "default_region"));
    prop_assert_eq!(c.profile.clone(), model_str(lines, "profile"));
    let secret = |s: &Option<steampipe_plugin_aws::aws::config::Secret>| {
        s.as_ref().map(|s| s.expose().to_string())
    };
    prop_assert_eq!(secret(&c.access_key), model_str(lines, "access_key"));
    prop_assert_eq!(secret(&c.secret_key), model_str(lines, "secret_key"));
    prop_assert_eq!(secret(&c.session_token), model_str(lines, "session_token"));
    if let Some(n) = model_int(lines, "max_error_retry_attempts") {
        prop_assert_eq!(i64::from(c.max_error_retry_attempts), n);
    }
    prop_assert_eq!(
        c.min_error_retry_delay_ms as i64,
        model_int(lines, "min_error_retry_delay").unwrap_or(25)
    );
    prop_assert_eq!(
        c.ignore_error_codes.clone(),
        model_list(lines, "ignore_error_codes").unwrap_or_default()
    );
    let messages: Vec<String> = c
        .ignore_error_messages
        .iter()
        .map(|r| r.as_str().to_string())
        .collect();
    prop_assert_eq!(
        messages,
        model_list(lines, "ignore_error_messages").unwrap_or_default()
    );
    if let Some(u) = model_str(lines, "endpoint_url") {
        prop_assert_eq!(c.endpoint_url.clone(), Some(u));
    }
    let s3 = match model(lines, "s3_force_path_style") {
        Some(Model::Bool(b)) => *b,
        _ => false,
    };
    prop_assert_eq!(c.s3_force_path_style, s3);
    Ok(())
}

/// Any HCL expression that evaluates to a value: scalars, huge and tiny
/// numbers, strings with every kind of character, nested lists and objects.
fn any_hcl_value() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        double().prop_filter_map("finite", |f| f.is_finite().then(|| format!("{f:?}"))),
        "[1-9][0-9]{0,18}(\\.[0-9]{1,5})?(e-?[0-9]{1,3})?",
        any::<String>().prop_flat_map(quoted).prop_map(|(t, _)| t),
        Just("1 + 2".to_string()),
        Just("true ? \"a\" : \"b\"".to_string()),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            pvec(inner.clone(), 0..4).prop_map(|xs| format!("[{}]", xs.join(", "))),
            btree_set("[a-z][a-z0-9_]{0,6}", 0..4)
                .prop_flat_map(move |keys| {
                    let n = keys.len();
                    (Just(keys), pvec(inner.clone(), n))
                })
                .prop_map(|(keys, vals)| {
                    let items: Vec<String> = keys
                        .iter()
                        .zip(vals)
                        .map(|(k, v)| format!("{k} = {v}"))
                        .collect();
                    format!("{{ {} }}", items.join(", "))
                }),
        ]
    })
    .boxed()
}

/// Names that are not arguments of the aws plugin (keywords included).
fn unknown_name() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_-]{0,15}",
        select(vec![
            "true", "false", "null", "for", "in", "if", "Regions", "region", "plugin", "regions_",
            "_", "a-b",
        ])
        .prop_map(str::to_string),
    ]
    .prop_filter("known", |n| !KNOWN.contains(&n.as_str()))
    .boxed()
}

/// Values of a known argument that are of the wrong type or out of range.
fn bad_value(name: &'static str) -> BoxedStrategy<String> {
    let wrong_scalar = || {
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
            Just("{ a = 1 }".to_string()),
            Just("{}".to_string()),
            Just("{ a = { b = [1, \"x\"] } }".to_string()),
        ]
        .boxed()
    };
    let s: BoxedStrategy<String> = match name {
        "regions" | "ignore_error_codes" | "ignore_error_messages" => prop_oneof![
            wrong_scalar(),
            any::<String>().prop_map(|s| hcl_quote(&s, false)),
            select(vec![
                "[1]",
                "[\"a\", 2]",
                "[[\"a\"]]",
                "[null]",
                "[true]",
                "[{ a = 1 }]",
                "[\"a\", [\"b\"]]",
            ])
            .prop_map(str::to_string),
        ]
        .boxed(),
        "max_error_retry_attempts" | "min_error_retry_delay" => prop_oneof![
            any::<String>().prop_map(|s| hcl_quote(&s, false)),
            any::<bool>().prop_map(|b| b.to_string()),
            select(vec![
                "[]",
                "[1]",
                "{ a = 1 }",
                "1.5",
                "-0.5",
                "0.000001",
                "1e-400",
                "\"1\"",
                "0",
                "-1",
            ])
            .prop_map(str::to_string),
            (i64::MIN..=0).prop_map(|n| n.to_string()),
        ]
        .boxed(),
        "s3_force_path_style" => prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            select(vec![
                "\"true\"",
                "\"false\"",
                "[]",
                "[true]",
                "{ a = true }",
                "1",
                "0"
            ])
            .prop_map(str::to_string),
        ]
        .boxed(),
        _ => prop_oneof![
            wrong_scalar(),
            select(vec!["[]", "[\"a\"]", "[[]]"]).prop_map(str::to_string),
        ]
        .boxed(),
    };
    let special: BoxedStrategy<String> = match name {
        "regions" => prop_oneof![
            Just("[]".to_string()),
            "[^a-zA-Z0-9*?\\- \t\n\r\u{b}\u{c}\u{85}\u{a0}]{1,3}"
                .prop_map(|bad| hcl_quote(&format!("us{bad}east"), false))
                .prop_map(|q| format!("[{q}]")),
            select(vec![
                "[\"\"]",
                "[\" \"]",
                "[\"us east\"]",
                "[\"us-east-1\", \"eu/west\"]",
                "[\"ü\"]"
            ])
            .prop_map(str::to_string),
        ]
        .boxed(),
        "default_region" => select(vec![
            "\"eu-*\"",
            "\"\"",
            "\"US-EAST-1\"",
            "\"us east 1\"",
            "\"?\"",
            "\" us-east-1\"",
        ])
        .prop_map(str::to_string)
        .boxed(),
        "endpoint_url" => prop_oneof![
            select(vec![
                "\"localhost:4566\"",
                "\"http://\"",
                "\"https:///x\"",
                "\"ftp://h\"",
                "\"\"",
                "\"HTTP://h\"",
                "\" http://h\"",
            ])
            .prop_map(str::to_string),
            "[a-z]{1,8}(:[0-9]{1,4})?".prop_map(|u| hcl_quote(&u, false)),
        ]
        .boxed(),
        "ignore_error_messages" => select(vec![
            "[\"(\"]",
            "[\"[a-\"]",
            "[\"ok\", \"*\"]",
            "[\"(?P<x\"]",
            "[\"a{99999999}\"]",
            "[\"\\\\\"]",
        ])
        .prop_map(str::to_string)
        .boxed(),
        "max_error_retry_attempts" => prop_oneof![
            (i64::from(u32::MAX) + 1..=i64::MAX).prop_map(|n| n.to_string()),
            "[1-9][0-9]{19,30}",
            Just("1e400".to_string()),
        ]
        .boxed(),
        "min_error_retry_delay" => prop_oneof![
            "[1-9][0-9]{19,30}",
            Just("-1e400".to_string()),
            Just("-9223372036854775808".to_string()),
        ]
        .boxed(),
        // The pairing rules: one key without the other, a token without keys.
        "access_key" | "secret_key" | "session_token" => {
            any::<String>().prop_map(|s| hcl_quote(&s, false)).boxed()
        }
        _ => s.clone(),
    };
    prop_oneof![s, special].boxed()
}

/// Expressions that are not literal values.
fn non_literal() -> BoxedStrategy<String> {
    select(vec![
        "\"${x}\"",
        "x",
        "upper(\"a\")",
        "var.x",
        "1 + \"a\"",
        "!1",
        "-true",
        "[1][5]",
        "{ a = 1 }.b",
        "\"%{ if x }a%{ endif }\"",
        "[for s in x : s]",
        "x.y[0]",
    ])
    .prop_map(str::to_string)
    .boxed()
}

#[derive(Debug, Clone)]
enum BadLine {
    /// an argument the plugin does not have
    Unknown(String, String),
    /// a known argument with a bad value (the bool: strip the access keys first)
    Known(String, String, bool),
    /// a non-literal expression
    NotLiteral(String, String),
    /// a second line for an argument that is already set
    Duplicate(Index, String),
}

fn bad_line() -> BoxedStrategy<BadLine> {
    prop_oneof![
        (unknown_name(), any_hcl_value()).prop_map(|(n, v)| BadLine::Unknown(n, v)),
        select(KNOWN.to_vec())
            .prop_flat_map(|n| bad_value(n).prop_map(move |v| (n, v)))
            .prop_map(|(n, v)| BadLine::Known(
                n.to_string(),
                v,
                matches!(n, "access_key" | "secret_key" | "session_token")
            )),
        (
            prop_oneof![
                select(KNOWN.to_vec()).prop_map(str::to_string),
                unknown_name()
            ],
            non_literal()
        )
            .prop_map(|(n, v)| BadLine::NotLiteral(n, v)),
        (any::<Index>(), any_hcl_value()).prop_map(|(i, v)| BadLine::Duplicate(i, v)),
    ]
    .boxed()
}

/// Lines no HCL parser accepts. (hcl-rs lets a quoted string run across
/// lines, so an unterminated one is only sure to be broken at the very end:
/// the property puts every line of this kind last.)
fn broken_line() -> BoxedStrategy<(String, bool)> {
    let name = prop_oneof![
        select(KNOWN.to_vec()).prop_map(str::to_string),
        unknown_name()
    ];
    (name, 0usize..14, any::<String>())
        .prop_map(|(n, k, s)| {
            let q = hcl_quote(&s, false);
            let open = &q[..q.len() - 1];
            let line = match k {
                0 => format!("{n} = {open}"),
                1 => format!("{n} = <<NEVER_CLOSED\n{}\n", s.replace('\n', " ")),
                2 => format!("{n} = [1, 2"),
                3 => format!("{n} = {{ a = 1"),
                4 => format!("{n} = \"\\q\""),
                5 => format!("{n} = \"\\uD800\""),
                6 => format!("{n} = \"\\U00110000\""),
                7 => format!("{n} = \"\\u12\""),
                8 => format!("{n} ="),
                9 => "= 1".to_string(),
                10 => format!("{n} == 1"),
                11 => format!("\"{n}\" = 1"),
                12 => format!("{n} = 1 2"),
                _ => format!("{n} = \"${{\""),
            };
            (line, k == 0)
        })
        .boxed()
}

/// HCL syntax and evaluation errors are put on one line (values that an
/// argument's check quotes are shown as they are).
fn single_line(e: &str) -> Result<(), TestCaseError> {
    if e.contains("invalid HCL") || e.contains("must be a literal value") {
        prop_assert!(
            !e.contains('\n') && !e.contains('\r'),
            "multi-line error: {e:?}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(1024))]

    /// Arbitrary text never panics; errors name the connection and fit one line.
    #[test]
    fn hcl_arbitrary_text_never_panics(s in prop_oneof![
        any::<String>(),
        "[a-z_ =\"\\\\\\[\\]{}<>$%#/*\n\t.,:?!0-9-]{0,60}",
        pvec("[a-z_]{1,8} = [^\n]{0,12}\n", 0..5).prop_map(|l| l.concat()),
    ]) {
        if let Err(e) = AwsConnection::parse(CONN, &s) {
            let e = e.to_string();
            prop_assert!(e.starts_with(PREFIX), "{e}");
            single_line(&e)?;
        }
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// Well-typed values of the known arguments parse, to exactly those values.
    #[test]
    fn hcl_valid_configs_parse(lines in valid_config(), noise in pvec(noise(), 12)) {
        let hcl = render(&lines, &noise);
        match AwsConnection::parse(CONN, &hcl) {
            Ok(c) => check_parsed(&c, &lines)?,
            Err(e) => prop_assert!(false, "valid config rejected: {e}\n{hcl}"),
        }
    }

    /// A valid config plus exactly one bad attribute is an error naming it
    /// (when the config is set, or for values turbot checks at query time,
    /// when the connection is scanned).
    #[test]
    fn hcl_one_bad_attribute_is_named(
        base in valid_config(),
        bad in bad_line(),
        at in any::<Index>(),
        noise in pvec(noise(), 13),
    ) {
        let mut lines = base;
        let (name, text) = match &bad {
            BadLine::Unknown(n, v) | BadLine::NotLiteral(n, v) => (n.clone(), v.clone()),
            BadLine::Known(n, v, strip_keys) => {
                let pairing = ["access_key", "secret_key", "session_token"];
                lines.retain(|(l, ..)| l != n && !(*strip_keys && pairing.contains(&l.as_str())));
                (n.clone(), v.clone())
            }
            BadLine::Duplicate(i, v) => {
                if lines.is_empty() {
                    lines.push(("profile".into(), "\"p\"".into(), Model::Str("p".into())));
                }
                (lines[i.index(lines.len())].0.clone(), v.clone())
            }
        };
        if let BadLine::NotLiteral(n, _) = &bad {
            lines.retain(|(l, ..)| l != n);
        }
        let pos = at.index(lines.len() + 1);
        let pos = match &bad {
            // the duplicate comes after the first one
            BadLine::Duplicate(..) => lines.iter().position(|(l, ..)| *l == name).unwrap() + 1,
            _ => pos,
        };
        lines.insert(pos, (name.clone(), text, Model::Null));
        let hcl = render(&lines, &noise);
        match AwsConnection::parse(CONN, &hcl) {
            // Values turbot's plugin checks only at query time (`regions =
            // []`, retry values below 1) are accepted, and every scan of the
            // connection then fails with turbot's message naming the argument.
            Ok(c) => {
                let deferred = c.usable().err().map(|e| e.to_string()).unwrap_or_default();
                prop_assert!(
                    deferred.contains(&format!("\"{name}\"")),
                    "accepted {bad:?} with no error for its scans ({deferred:?})\n{hcl}"
                );
            }
            Err(e) => {
                let e = e.to_string();
                prop_assert!(e.starts_with(PREFIX), "{e}");
                single_line(&e)?;
                let named = e.contains(&format!("attribute '{name}'"))
                    // a literal hcl-rs cannot read (a number past u64, 1e400):
                    // the parse error names the attribute on the failing line
                    || (e.contains("invalid HCL") && e.contains(&format!("(in attribute '{name}')")));
                prop_assert!(named, "error does not name '{}': {}\n{}", name, e, hcl);
                if let BadLine::Duplicate(..) = bad {
                    // hcl-rs refuses a redefined attribute itself
                    prop_assert!(
                        e.contains("redefined attribute") || e.contains("is set more than once"),
                        "{}", e
                    );
                }
            }
        }
    }

    /// Broken syntax (unterminated strings, lists, objects and heredocs, bad
    /// escapes, missing values) is an "invalid HCL" error on the connection.
    #[test]
    fn hcl_broken_syntax_is_an_error(
        base in valid_config(),
        broken in broken_line(),
        at in any::<Index>(),
    ) {
        let mut text: Vec<String> = base.iter().map(|(n, v, _)| format!("{n} = {v}")).collect();
        let (broken, last) = broken;
        let at = if last { text.len() } else { at.index(text.len() + 1) };
        text.insert(at, broken.clone());
        let hcl = text.join("\n") + "\n";
        match AwsConnection::parse(CONN, &hcl) {
            Ok(_) => prop_assert!(false, "accepted broken line {broken:?}\n{hcl}"),
            Err(e) => {
                let e = e.to_string();
                prop_assert!(e.starts_with(&format!("{PREFIX}invalid HCL")), "{e}");
                single_line(&e)?;
            }
        }
    }

    /// Blocks are refused, naming the block.
    #[test]
    fn hcl_blocks_are_named(
        base in valid_config(),
        name in "[a-z][a-z0-9_]{0,10}",
        labels in pvec("[a-z0-9 ]{0,6}", 0..3),
        body in pvec(("[a-z]{1,6}", any_hcl_value()), 0..3),
    ) {
        let mut hcl: String = base.iter().map(|(n, v, _)| format!("{n} = {v}\n")).collect();
        let labels: String = labels.iter().map(|l| format!(" \"{l}\"")).collect();
        let body: String = body.iter().map(|(k, v)| format!("  {k} = {v}\n")).collect();
        hcl.push_str(&format!("{name}{labels} {{\n{body}}}\n"));
        let e = AwsConnection::parse(CONN, &hcl).err().map(|e| e.to_string()).unwrap_or_default();
        // a body with a duplicate key fails to parse first, which is also fine
        prop_assert!(
            e.starts_with(&format!("{PREFIX}blocks are not supported in a connection config (found block '{name}')"))
                || e.starts_with(&format!("{PREFIX}invalid HCL")),
            "{e}\n{hcl}"
        );
    }
}

// ---------------------------------------------------------------------------
// 2. Qual decoding and evaluation
// ---------------------------------------------------------------------------

/// JSONB text: valid documents, truncated ones, deep nesting and arbitrary text.
fn jsonb_text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => json_value().prop_map(|j| j.to_string()),
        1 => (json_value(), any::<Index>()).prop_map(|(j, cut)| {
            let s = j.to_string();
            let n = s.chars().count();
            s.chars().take(cut.index(n.max(1))).collect()
        }),
        1 => (0usize..300).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
        1 => any::<String>(),
        1 => select(vec!["", "NaN", "Infinity", "1e999", "-", "{\"a\":}", "\"\\ud800\"", "\u{feff}1"])
            .prop_map(str::to_string),
    ]
    .boxed()
}

fn wire_timestamp() -> BoxedStrategy<prost_types::Timestamp> {
    let nanos = prop_oneof![
        0i32..1_000_000_000,
        any::<i32>(),
        Just(-1),
        Just(999_999_999),
        Just(1_000_000_000),
        Just(i32::MIN),
    ];
    (seconds(), nanos)
        .prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos })
        .boxed()
}

/// A wire qual value with every oneof case, the unset one included.
fn pb_leaf() -> BoxedStrategy<pb::QualValue> {
    prop_oneof![
        Just(None),
        text().prop_map(|s| Some(V::StringValue(s))),
        any::<i64>().prop_map(|i| Some(V::Int64Value(i))),
        double().prop_map(|d| Some(V::DoubleValue(d))),
        any::<bool>().prop_map(|b| Some(V::BoolValue(b))),
        (any::<i32>(), ip_ish_text(), text(), text()).prop_map(|(mask, addr, cidr, v)| {
            Some(V::InetValue(pb::Inet {
                mask,
                addr,
                cidr,
                protocol_version: v,
            }))
        }),
        jsonb_text().prop_map(|s| Some(V::JsonbValue(s))),
        wire_timestamp().prop_map(|t| Some(V::TimestampValue(t))),
        text().prop_map(|s| Some(V::LtreeValue(s))),
    ]
    .prop_map(|value| pb::QualValue { value })
    .boxed()
}

fn pb_list(values: Vec<pb::QualValue>) -> pb::QualValue {
    pb::QualValue {
        value: Some(V::ListValue(pb::QualValueList { values })),
    }
}

/// Nested lists of wire values, and chains as deep as prost decodes (100).
fn pb_value() -> BoxedStrategy<pb::QualValue> {
    prop_oneof![
        6 => pb_leaf().prop_recursive(4, 32, 6, |inner| pvec(inner, 0..6).prop_map(pb_list)),
        1 => (0usize..=100, pb_leaf()).prop_map(|(depth, leaf)| {
            (0..depth).fold(leaf, |v, _| pb_list(vec![v]))
        }),
    ]
    .boxed()
}

fn pb_operator() -> BoxedStrategy<Option<pb::qual::Operator>> {
    use pb::qual::Operator as O;
    let name = prop_oneof![
        4 => select(vec![
            "=", "<>", "!=", "<", "<=", ">", ">=", "~~", "!~~", "~~*", "!~~*", "is null",
            "is not null", "@>", "?|",
        ])
        .prop_map(str::to_string),
        1 => any::<String>(),
    ];
    prop_oneof![
        1 => Just(None),
        6 => name.clone().prop_map(|n| Some(O::StringValue(n))),
        1 => (name, any::<i32>()).prop_map(|(name, operation)| Some(O::TupleValue(pb::Operator { name, operation }))),
    ]
    .boxed()
}

fn pb_qual() -> BoxedStrategy<pb::Qual> {
    (
        prop_oneof![3 => Just(String::new()), 1 => "[a-z_]{1,8}", 1 => any::<String>()],
        pb_operator(),
        maybe(pb_value()),
    )
        .prop_map(|(field_name, operator, value)| pb::Qual {
            field_name,
            operator,
            value,
        })
        .boxed()
}

/// What `QualValue::from_proto` must accept: parseable JSON, representable times.
fn pb_value_ok(v: &pb::QualValue) -> bool {
    match &v.value {
        Some(V::JsonbValue(s)) => serde_json::from_str::<Json>(s).is_ok(),
        Some(V::TimestampValue(t)) => in_range(t.seconds, i64::from(t.nanos)),
        Some(V::ListValue(l)) => l.values.iter().all(pb_value_ok),
        _ => true,
    }
}

fn pb_qual_ok(q: &pb::Qual) -> bool {
    q.operator.is_some() && q.value.as_ref().is_none_or(pb_value_ok)
}

/// A decoded value mirrors its wire value (NULL list elements dropped).
fn decoded_like(w: &pb::QualValue, d: &QualValue) -> bool {
    match (&w.value, d) {
        (Some(V::StringValue(a)), QualValue::String(b)) => a == b,
        (Some(V::Int64Value(a)), QualValue::Int(b)) => a == b,
        (Some(V::DoubleValue(a)), QualValue::Double(b)) => a.to_bits() == b.to_bits(),
        (Some(V::BoolValue(a)), QualValue::Bool(b)) => a == b,
        (Some(V::InetValue(a)), QualValue::Inet { addr, mask }) => {
            a.addr == *addr && a.mask == *mask
        }
        (Some(V::JsonbValue(a)), QualValue::Json(b)) => {
            serde_json::from_str::<Json>(a).ok().as_ref() == Some(b)
        }
        (Some(V::TimestampValue(a)), QualValue::Timestamp(b)) => {
            a.seconds == b.seconds && i64::from(a.nanos) == i64::from(b.nanos)
        }
        (Some(V::LtreeValue(a)), QualValue::Ltree(b)) => a == b,
        (Some(V::ListValue(l)), QualValue::List(items)) => {
            let present: Vec<&pb::QualValue> =
                l.values.iter().filter(|v| v.value.is_some()).collect();
            present.len() == items.len()
                && present.iter().zip(items).all(|(w, d)| decoded_like(w, d))
        }
        _ => false,
    }
}

/// A decoded qual value of any kind, NaN and infinities included.
fn qual_value() -> BoxedStrategy<QualValue> {
    let leaf = prop_oneof![
        text().prop_map(QualValue::String),
        any::<i64>().prop_map(QualValue::Int),
        (-3i64..3).prop_map(QualValue::Int),
        double().prop_map(QualValue::Double),
        any::<bool>().prop_map(QualValue::Bool),
        (ip_ish_text(), prop_oneof![any::<i32>(), -1i32..=129])
            .prop_map(|(addr, mask)| QualValue::Inet { addr, mask }),
        json_value().prop_map(QualValue::Json),
        (MIN_SECONDS..=MAX_SECONDS, 0u32..1_000_000_000)
            .prop_map(|(s, n)| QualValue::Timestamp(Timestamp::new(s, n).unwrap())),
        text().prop_map(QualValue::Ltree),
    ];
    leaf.prop_recursive(3, 16, 5, |inner| {
        pvec(inner, 0..5).prop_map(QualValue::List)
    })
    .boxed()
}

/// A row value of any kind, timestamps outside the representable range included.
fn value() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        (-3i64..3).prop_map(Value::Int),
        double().prop_map(Value::Double),
        text().prop_map(Value::String),
        ip_ish_text().prop_map(Value::String),
        json_value().prop_map(Value::Json),
        (seconds(), prop_oneof![0u32..1_000_000_000, any::<u32>()])
            .prop_map(|(seconds, nanos)| Value::Timestamp(Timestamp { seconds, nanos })),
    ]
    .boxed()
}

fn operator() -> BoxedStrategy<String> {
    prop_oneof![
        6 => select(vec![
            "=", "<>", "<", "<=", ">", ">=", "is null", "is not null", "~~", "!~~", "~~*",
            "!~~*",
        ])
        .prop_map(str::to_string),
        1 => select(vec!["!=", "@>", "~", "?", ""]).prop_map(str::to_string),
        1 => any::<String>(),
    ]
    .boxed()
}

/// SQL LIKE as a regular expression: the reference `like` is checked against.
fn like_regex(pattern: &str) -> regex::Regex {
    let mut re = String::from("(?s)^");
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => re.push_str(".*"),
            '_' => re.push('.'),
            '\\' => match chars.next() {
                Some(n) => re.push_str(&regex::escape(&n.to_string())),
                None => re.push_str("\\\\"),
            },
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::RegexBuilder::new(&re)
        .size_limit(1 << 24)
        .build()
        .expect("LIKE regex")
}

fn escape_like(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if matches!(c, '%' | '_' | '\\') {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}

fn qual(op: &str, value: Option<QualValue>) -> Qual {
    Qual {
        column: "c".into(),
        operator: op.into(),
        value,
    }
}

proptest! {
    #![proptest_config(cases(768))]

    /// Decoding never panics; a malformed qual is an error naming its column
    /// and what is wrong, and a well-formed one decodes to what was sent.
    #[test]
    fn quals_decode_or_name_the_column(
        wire in hash_map(prop_oneof![3 => "[a-z_]{1,10}", 1 => any::<String>()], pvec(pb_qual(), 0..4), 0..4)
    ) {
        let wire: HashMap<String, pb::Quals> = wire
            .into_iter()
            .map(|(c, quals)| (c, pb::Quals { quals }))
            .collect();
        let bad: Vec<&String> = wire
            .iter()
            .filter(|(_, qs)| !qs.quals.iter().all(pb_qual_ok))
            .map(|(c, _)| c)
            .collect();
        match QualMap::from_proto(&wire) {
            Ok(map) => {
                prop_assert!(bad.is_empty(), "accepted bad quals on {bad:?}");
                let sent: usize = wire.values().map(|q| q.quals.len()).sum();
                prop_assert_eq!(map.iter().count(), sent);
                for (column, qs) in &wire {
                    for q in &qs.quals {
                        let col = if q.field_name.is_empty() { column } else { &q.field_name };
                        let op = match q.operator.as_ref().unwrap() {
                            pb::qual::Operator::StringValue(s) => normalise_operator(s),
                            pb::qual::Operator::TupleValue(t) => normalise_operator(&t.name),
                        };
                        let found = map.on(col).iter().any(|d| {
                            d.operator == op
                                && match (&q.value, &d.value) {
                                    (None, None) => true,
                                    (Some(w), None) => w.value.is_none(),
                                    (Some(w), Some(d)) => decoded_like(w, d),
                                    (None, Some(_)) => false,
                                }
                        });
                        prop_assert!(found, "{q:?} not decoded on '{col}'");
                    }
                }
            }
            Err(e) => {
                prop_assert!(!bad.is_empty(), "rejected good quals: {e}");
                prop_assert!(
                    bad.iter().any(|c| e.contains(&format!("'{c}'"))),
                    "error names none of {bad:?}: {e}"
                );
                prop_assert!(
                    ["has no operator", "invalid jsonb", "timestamp"].iter().any(|w| e.contains(w)),
                    "error says nothing of what is wrong: {e}"
                );
            }
        }
    }

    /// Evaluation never panics and keeps Postgres' NULL, negation, IN-list,
    /// integer-order and LIKE semantics.
    #[test]
    fn qual_matches_never_panics(op in operator(), rhs in maybe(qual_value()), v in value()) {
        let q = qual(&op, rhs.clone());
        let got = q.matches(&v);
        match op.as_str() {
            "is null" => prop_assert_eq!(got, Some(v.is_null())),
            "is not null" => prop_assert_eq!(got, Some(!v.is_null())),
            _ if rhs.is_none() || v.is_null() => prop_assert_eq!(got, Some(false)),
            _ => {}
        }
        if op == "=" || op == "<>" {
            let other = qual(if op == "=" { "<>" } else { "=" }, rhs.clone()).matches(&v);
            if let (Some(a), Some(b)) = (got, other) {
                if !v.is_null() && rhs.is_some() {
                    prop_assert_ne!(a, b, "= and <> agree on {:?} vs {:?}", v, rhs);
                }
            }
        }
        match (&v, &rhs) {
            (Value::Int(a), Some(QualValue::Int(b))) => {
                let want = match op.as_str() {
                    "=" => Some(a == b),
                    "<>" => Some(a != b),
                    "<" => Some(a < b),
                    "<=" => Some(a <= b),
                    ">" => Some(a > b),
                    ">=" => Some(a >= b),
                    _ => got,
                };
                prop_assert_eq!(got, want);
            }
            (Value::String(t), Some(QualValue::String(p) | QualValue::Ltree(p))) => {
                let want = match op.as_str() {
                    "~~" => Some(like(t, p)),
                    "!~~" => Some(!like(t, p)),
                    "~~*" => Some(like(&t.to_lowercase(), &p.to_lowercase())),
                    "!~~*" => Some(!like(&t.to_lowercase(), &p.to_lowercase())),
                    "=" => Some(t == p),
                    "<>" => Some(t != p),
                    _ => got,
                };
                prop_assert_eq!(got, want);
            }
            _ => {}
        }
    }

    /// An IN list holding the row's own value matches it, and NOT IN does not.
    #[test]
    fn in_lists_contain_their_members(
        items in pvec(qual_value(), 0..5),
        member in prop_oneof![
            any::<i64>().prop_map(|i| (Value::Int(i), QualValue::Int(i))),
            text().prop_map(|s| (Value::String(s.clone()), QualValue::String(s))),
            any::<bool>().prop_map(|b| (Value::Bool(b), QualValue::Bool(b))),
        ],
        at in any::<Index>(),
    ) {
        let (row, item) = member;
        let mut items = items;
        items.insert(at.index(items.len() + 1), item);
        let list = Some(QualValue::List(items));
        let eq = qual("=", list.clone()).matches(&row);
        prop_assert!(eq == Some(true) || eq.is_none(), "IN gave {eq:?}");
        let ne = qual("<>", list).matches(&row);
        prop_assert!(ne == Some(false) || ne.is_none(), "NOT IN gave {ne:?}");
    }
}

proptest! {
    #![proptest_config(cases(2048))]

    /// `like` never panics; `%` matches everything; a pattern without wildcards
    /// or escapes matches exactly its own text; escaping makes any text literal.
    #[test]
    fn like_wildcards_and_literals(t in any::<String>(), u in any::<String>(), p in any::<String>()) {
        let _ = like(&t, &p);
        let _ = like(&p, &t);
        prop_assert!(like(&t, "%"));
        prop_assert!(like(&t, "%%"));
        let literal: String = t.chars().filter(|c| !matches!(c, '%' | '_' | '\\')).collect();
        prop_assert!(like(&literal, &literal));
        prop_assert_eq!(like(&u, &literal), u == literal);
        prop_assert!(like(&t, &escape_like(&t)));
        prop_assert_eq!(like(&u, &escape_like(&t)), u == t);
        let infix: String = literal.chars().take(2).collect();
        prop_assert_eq!(like(&u, &format!("%{}%", escape_like(&infix))), u.contains(&infix));
    }

    /// `like` agrees with a regular-expression reading of the same pattern.
    #[test]
    fn like_agrees_with_a_regex(
        t in prop_oneof!["[ab%_\\\\\n]{0,10}", any::<String>()],
        p in prop_oneof!["[ab%_\\\\\n]{0,8}", any::<String>()],
    ) {
        prop_assert_eq!(like(&t, &p), like_regex(&p).is_match(&t), "{:?} LIKE {:?}", t, p);
    }
}

// ---------------------------------------------------------------------------
// 3. Planning
// ---------------------------------------------------------------------------

const POOL: [&str; 5] = ["a", "b", "c", "d", "e"];

/// Valid key columns: distinct names, operators the SDK knows, any requirement.
fn key_columns(min: usize) -> BoxedStrategy<Vec<KeyColumn>> {
    let ops = vec![
        "=",
        "<>",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "~~",
        "!~~",
        "is null",
        "is not null",
    ];
    subsequence(POOL.to_vec(), min..=POOL.len())
        .prop_shuffle()
        .prop_flat_map(move |names| {
            let n = names.len();
            let spec = (0u8..3, maybe(subsequence(ops.clone(), 1..=3)));
            (Just(names), pvec(spec, n))
        })
        .prop_map(|(names, specs)| {
            names
                .into_iter()
                .zip(specs)
                .map(|(name, (req, ops))| {
                    let kc = match req {
                        0 => KeyColumn::required(name),
                        1 => KeyColumn::optional(name),
                        _ => KeyColumn::any_of(name),
                    };
                    match ops {
                        Some(ops) => kc.operators(&ops),
                        None => kc,
                    }
                })
                .collect()
        })
        .boxed()
}

fn scalar() -> BoxedStrategy<QualValue> {
    prop_oneof![
        (0i64..5).prop_map(QualValue::Int),
        "[a-c]".prop_map(QualValue::String),
        any::<bool>().prop_map(QualValue::Bool),
        double().prop_map(QualValue::Double),
    ]
    .boxed()
}

/// Quals as the FDW sends them (operators normalised), on key columns and others.
fn plan_quals(columns: Vec<&'static str>) -> BoxedStrategy<Vec<Qual>> {
    let q = (
        select(columns),
        select(vec![
            "=", "=", "=", "<>", "!=", "<", ">=", "~~", "is null", "is not null", "@>",
        ]),
        prop_oneof![
            1 => Just(None),
            4 => scalar().prop_map(Some),
            2 => pvec(scalar(), 0..4).prop_map(|l| Some(QualValue::List(l))),
            1 => pvec(pvec(scalar(), 0..2).prop_map(QualValue::List), 0..3).prop_map(|l| Some(QualValue::List(l))),
        ],
    )
        .prop_map(|(column, op, value)| Qual {
            column: column.to_string(),
            operator: normalise_operator(op),
            value,
        });
    pvec(q, 0..8).boxed()
}

fn unmatched_required(keys: &[KeyColumn], quals: &QualMap) -> Vec<String> {
    keys.iter()
        .filter(|k| k.require == Require::Required && k.matching_quals(quals).is_empty())
        .map(|k| k.name.clone())
        .collect()
}

fn any_of_unmet(keys: &[KeyColumn], quals: &QualMap) -> bool {
    let any_of: Vec<&KeyColumn> = keys
        .iter()
        .filter(|k| k.require == Require::AnyOf)
        .collect();
    !any_of.is_empty() && any_of.iter().all(|k| k.matching_quals(quals).is_empty())
}

fn distinct_values() -> BoxedStrategy<Vec<QualValue>> {
    prop_oneof![
        btree_set(any::<i64>(), 0..8).prop_map(|s| s.into_iter().map(QualValue::Int).collect()),
        btree_set(text(), 0..8).prop_map(|s| s.into_iter().map(QualValue::String).collect()),
    ]
    .prop_shuffle()
    .boxed()
}

proptest! {
    #![proptest_config(cases(1024))]

    /// Planning never panics; a plan only uses the chosen call's key columns
    /// with every requirement met; an error is justified and names every
    /// required column left without a qual.
    #[test]
    fn plan_is_total_and_errors_name_columns(
        get in maybe(key_columns(1)),
        list in maybe(key_columns(0)),
        quals in plan_quals(vec!["a", "b", "c", "d", "e", "x", "region"]),
    ) {
        let qm = QualMap::from_quals(quals);
        let result = plan("t", get.as_deref(), list.as_deref(), &qm);
        match result {
            Ok(Plan::Get(calls)) => {
                let g = get.as_ref().expect("a Get plan without a Get call");
                prop_assert!(unmatched_required(g, &qm).is_empty());
                prop_assert!(!any_of_unmet(g, &qm));
                for call in &calls {
                    for c in call.columns() {
                        prop_assert!(g.iter().any(|k| k.name == c), "Get call given '{c}'");
                    }
                }
            }
            Ok(Plan::List(calls)) => {
                prop_assert!(list.is_some() || get.is_none(), "a List plan without a List call");
                let l = list.clone().unwrap_or_default();
                prop_assert!(unmatched_required(&l, &qm).is_empty());
                prop_assert!(!any_of_unmet(&l, &qm));
                for call in &calls {
                    for c in call.columns() {
                        prop_assert!(l.iter().any(|k| k.name == c), "List call given '{c}'");
                    }
                }
            }
            Err(e) => {
                let text = e.to_string();
                let (call, keys) = match &list {
                    Some(l) => ("List", l.clone()),
                    None => ("Get", get.clone().unwrap_or_default()),
                };
                prop_assert!(text.starts_with(&format!("'{call}' call for table 't' is missing ")), "{text}");
                let missing = unmatched_required(&keys, &qm);
                if list.is_some() {
                    prop_assert!(!missing.is_empty() || any_of_unmet(&keys, &qm), "unjustified: {text}");
                }
                for name in &missing {
                    prop_assert!(text.contains(&format!("column:'{name}'")), "'{name}' not named: {text}");
                }
                if any_of_unmet(&keys, &qm) {
                    prop_assert!(text.contains("one of columns:'"), "{text}");
                }
                prop_assert!(!text.trim_end().ends_with(':'), "the error names no column: {text:?}");
            }
        }
    }

    /// A required key column without a qual is an error naming it.
    #[test]
    fn a_required_column_without_a_qual_is_named(
        list in key_columns(0),
        get_only in any::<bool>(),
        quals in plan_quals(vec!["a", "b", "c", "d", "e", "x"]),
    ) {
        let qm = QualMap::from_quals(quals);
        let mut keys = list;
        keys.push(KeyColumn::required("r"));
        let get = [KeyColumn::required("g")];
        let (result, call) = if get_only {
            (plan("t", Some(&keys), None, &qm), "Get")
        } else {
            (plan("t", Some(&get), Some(&keys), &qm), "List")
        };
        let text = result.expect_err("planned without a required qual").to_string();
        prop_assert!(text.starts_with(&format!("'{call}' call for table 't' is missing ")), "{text}");
        prop_assert!(text.contains("column:'r' operator: ="), "{text}");
    }

    /// An IN list of n distinct values on the Get key makes n Get calls, one per
    /// value, in order; on one List key column, n List calls.
    #[test]
    fn in_lists_make_one_call_per_value(
        values in distinct_values(),
        extra_get in key_columns(0),
        list in maybe(key_columns(0)),
        quals in plan_quals(vec!["a", "b", "c", "d", "e", "x"]),
    ) {
        let in_list = Qual {
            column: "id".into(),
            operator: "=".into(),
            value: Some(QualValue::List(values.clone())),
        };
        let mut all = quals.clone();
        all.push(in_list.clone());
        let qm = QualMap::from_quals(all);
        let mut get = vec![KeyColumn::required("id")];
        get.extend(extra_get.into_iter().map(|k| KeyColumn::optional(&k.name).operators(
            &k.operators.iter().map(String::as_str).collect::<Vec<_>>(),
        )));
        match plan("t", Some(&get), list.as_deref(), &qm) {
            Ok(Plan::Get(calls)) => {
                prop_assert_eq!(calls.len(), values.len());
                for (call, v) in calls.iter().zip(&values) {
                    prop_assert_eq!(call.equals("id"), Some(v));
                }
            }
            other => prop_assert!(false, "expected {} Gets, got {:?}", values.len(), other),
        }

        // the same list on the one List key column that has an `=` qual
        let mut all: Vec<Qual> = quals.into_iter().filter(|q| q.operator != "=").collect();
        all.push(Qual { column: "a".into(), ..in_list });
        let qm = QualMap::from_quals(all);
        let list = [KeyColumn::optional("a"), KeyColumn::optional("b")];
        match plan("t", None, Some(&list), &qm) {
            Ok(Plan::List(calls)) => {
                prop_assert_eq!(calls.len(), values.len());
                for (call, v) in calls.iter().zip(&values) {
                    prop_assert_eq!(call.equals("a"), Some(v));
                }
            }
            other => prop_assert!(false, "expected {} Lists, got {:?}", values.len(), other),
        }
    }
}

// ---------------------------------------------------------------------------
// 4. Value encoding
// ---------------------------------------------------------------------------

const TYPES: [ColumnType; 10] = [
    ColumnType::Bool,
    ColumnType::Int,
    ColumnType::Double,
    ColumnType::String,
    ColumnType::Json,
    ColumnType::Timestamp,
    ColumnType::IpAddr,
    ColumnType::Cidr,
    ColumnType::Inet,
    ColumnType::Ltree,
];

/// Whether Postgres' `inet` (or `cidr`) input takes `s`, in the canonical
/// spelling this plugin sends: an address Rust parses, then optionally `/`
/// and a decimal prefix length without sign or leading zeros, no larger than
/// the family's; for `cidr`, no bits set to the right of the prefix.
fn pg_accepts(s: &str, cidr: bool) -> bool {
    let (addr, mask) = match s.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (s, None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return false;
    };
    let max: u32 = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match mask {
        None => max,
        Some(m) => {
            let canonical = !m.is_empty()
                && m.bytes().all(|b| b.is_ascii_digit())
                && (m == "0" || !m.starts_with('0'));
            match m.parse::<u32>() {
                Ok(b) if canonical && b <= max => b,
                _ => return false,
            }
        }
    };
    if cidr {
        let host_bits = match ip {
            IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
            IpAddr::V6(a) => u128::from(a),
        };
        let mask = if bits == 0 {
            0
        } else {
            u128::MAX << (128 - bits)
        };
        if host_bits & !mask != 0 {
            return false;
        }
    }
    true
}

/// An address with a prefix, its host bits cleared (a valid `cidr`).
fn network_text() -> BoxedStrategy<String> {
    prop_oneof![
        (any::<u32>(), 0u32..=32).prop_map(|(a, p)| {
            let m = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            format!("{}/{p}", Ipv4Addr::from(a & m))
        }),
        (any::<u128>(), 0u32..=128).prop_map(|(a, p)| {
            let m = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            format!("{}/{p}", Ipv6Addr::from(a & m))
        }),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(cases(1024))]

    /// Every column type takes every value without panicking: NULL is NULL,
    /// JSON cells are valid JSON, timestamps are within years 1..9999, IP cells
    /// are addresses Postgres reads, matching types are accepted as given,
    /// and every refusal says why.
    #[test]
    fn encode_is_total(v in value()) {
        for ty in TYPES {
            let r = encode(ty, &v);
            if v.is_null() {
                prop_assert_eq!(r.clone().map(|c| c.value), Ok(Some(Cell::NullValue(pb::NullValue::NullValue as i32))));
            }
            match &r {
                Ok(c) => match c.value.as_ref().expect("a cell without a value") {
                    Cell::JsonValue(bytes) => {
                        prop_assert!(serde_json::from_slice::<Json>(bytes).is_ok(), "invalid JSON {:?}", String::from_utf8_lossy(bytes));
                    }
                    Cell::TimestampValue(t) => prop_assert!(in_range(t.seconds, i64::from(t.nanos)), "{t:?}"),
                    Cell::IpAddrValue(s) | Cell::CidrRangeValue(s) => {
                        prop_assert!(pg_accepts(s, ty == ColumnType::Cidr), "{ty:?} sent {s:?}");
                    }
                    _ => {}
                },
                Err(e) => prop_assert!(!e.is_empty()),
            }
            match (ty, &v) {
                (ColumnType::Timestamp, Value::Timestamp(t)) => {
                    if in_range(t.seconds, i64::from(t.nanos)) {
                        let want = Cell::TimestampValue(prost_types::Timestamp { seconds: t.seconds, nanos: t.nanos as i32 });
                        prop_assert_eq!(r.map(|c| c.value), Ok(Some(want)));
                    } else {
                        let e = r.expect_err("a timestamp outside years 1..9999 was encoded");
                        prop_assert!(e.contains("outside years"), "{e}");
                    }
                }
                (_, Value::Timestamp(t)) if !in_range(t.seconds, i64::from(t.nanos)) => {
                    prop_assert!(r.is_err(), "{ty:?} took {v:?}");
                }
                (ColumnType::Bool, Value::Bool(b)) => prop_assert_eq!(r.map(|c| c.value), Ok(Some(Cell::BoolValue(*b)))),
                (ColumnType::Int, Value::Int(i)) => prop_assert_eq!(r.map(|c| c.value), Ok(Some(Cell::IntValue(*i)))),
                (ColumnType::Double, Value::Double(_) | Value::Int(_)) => prop_assert!(r.is_ok()),
                (ColumnType::String, Value::String(s)) => prop_assert_eq!(r.map(|c| c.value), Ok(Some(Cell::StringValue(s.clone())))),
                (ColumnType::Ltree, Value::String(s)) => prop_assert_eq!(r.map(|c| c.value), Ok(Some(Cell::LtreeValue(s.clone())))),
                (ColumnType::Json, Value::Json(_) | Value::String(_) | Value::Bool(_) | Value::Int(_)) => prop_assert!(r.is_ok()),
                (ColumnType::Json, Value::Double(d)) => prop_assert_eq!(r.is_ok(), d.is_finite()),
                (ColumnType::IpAddr | ColumnType::Inet | ColumnType::Cidr, Value::String(s)) => {
                    let ok = s.is_empty() || pg_accepts(s, ty == ColumnType::Cidr);
                    match r {
                        Ok(_) => prop_assert!(ok, "{ty:?} took {s:?}"),
                        Err(e) => {
                            prop_assert!(!ok, "{ty:?} refused {s:?}: {e}");
                            prop_assert!(e.contains(&format!("'{s}'")), "{e}");
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Valid addresses and prefixes are accepted by every IP column type
    /// (networks by `cidr`); garbage is refused, quoting the text.
    #[test]
    fn ip_columns_take_addresses_and_refuse_garbage(
        addr in valid_ip_text(),
        net in network_text(),
        junk in ip_ish_text(),
    ) {
        for ty in [ColumnType::IpAddr, ColumnType::Inet] {
            let c = encode(ty, &Value::String(addr.clone())).map_err(TestCaseError::fail)?;
            let want = if ty == ColumnType::IpAddr { Cell::IpAddrValue(addr.clone()) } else { Cell::CidrRangeValue(addr.clone()) };
            prop_assert_eq!(c.value, Some(want));
        }
        for ty in [ColumnType::IpAddr, ColumnType::Inet, ColumnType::Cidr] {
            prop_assert!(encode(ty, &Value::String(net.clone())).is_ok(), "{ty:?} refused {net}");
            let cidr = ty == ColumnType::Cidr;
            match encode(ty, &Value::String(junk.clone())) {
                Ok(_) => prop_assert!(junk.is_empty() || pg_accepts(&junk, cidr), "{ty:?} took {junk:?}"),
                Err(e) => {
                    prop_assert!(!pg_accepts(&junk, cidr), "{ty:?} refused {junk:?}: {e}");
                    prop_assert!(e.contains(&format!("'{junk}'")), "{e}");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 5. API items → rows
// ---------------------------------------------------------------------------

/// Any smithy DateTime, far outside what Postgres or RFC 3339 can show included.
fn datetime() -> BoxedStrategy<DateTime> {
    let nanos = || prop_oneof![Just(0u32), 0u32..1_000_000_000, Just(999_999_999)];
    prop_oneof![
        (any::<i64>(), nanos()),
        ((MIN_SECONDS - 3)..(MIN_SECONDS + 3), nanos()),
        ((MAX_SECONDS - 3)..(MAX_SECONDS + 3), nanos()),
        (0i64..4_000_000_000, nanos()),
        (
            prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(-1i64)],
            nanos()
        ),
    ]
    .prop_map(|(s, n)| DateTime::from_secs_and_nanos(s, n))
    .boxed()
}

fn ostr() -> BoxedStrategy<Option<String>> {
    maybe(text()).boxed()
}

fn int32() -> BoxedStrategy<Option<i32>> {
    maybe(prop_oneof![
        any::<i32>(),
        0i32..10,
        Just(i32::MIN),
        Just(i32::MAX),
        Just(-1)
    ])
    .boxed()
}

fn obool() -> BoxedStrategy<Option<bool>> {
    maybe(any::<bool>()).boxed()
}

/// An enum member: a known value, an unknown one, empty, or any text.
fn en(known: &'static [&'static str]) -> BoxedStrategy<Option<String>> {
    maybe(prop_oneof![
        4 => select(known).prop_map(str::to_string),
        1 => Just("weird".to_string()),
        1 => Just(String::new()),
        1 => any::<String>(),
    ])
    .boxed()
}

fn enum_of<E: for<'a> From<&'a str>>(s: &Option<String>) -> Option<E> {
    s.as_deref().map(E::from)
}

fn oip() -> BoxedStrategy<Option<String>> {
    maybe(prop_oneof![3 => valid_ip_text(), 1 => Just(String::new()), 1 => ip_ish_text()]).boxed()
}

fn tag_list() -> BoxedStrategy<Option<Vec<ec2::Tag>>> {
    let key = prop_oneof![
        Just("Name".to_string()),
        Just("name".to_string()),
        Just(String::new()),
        Just("env".to_string()),
        text(),
    ];
    maybe(pvec((maybe(key), ostr()), 0..6).prop_map(|ts| {
        ts.into_iter()
            .map(|(k, v)| ec2::Tag::builder().set_key(k).set_value(v).build())
            .collect()
    }))
    .boxed()
}

fn operator_response() -> BoxedStrategy<Option<ec2::OperatorResponse>> {
    maybe((obool(), ostr(), obool()).prop_map(|(m, p, h)| {
        ec2::OperatorResponse::builder()
            .set_managed(m)
            .set_principal(p)
            .set_hidden_by_default(h)
            .build()
    }))
    .boxed()
}

fn association() -> BoxedStrategy<ec2::InstanceNetworkInterfaceAssociation> {
    (oip(), oip(), ostr(), ostr(), oip())
        .prop_map(|(carrier, owned, owner, dns, public)| {
            ec2::InstanceNetworkInterfaceAssociation::builder()
                .set_carrier_ip(carrier)
                .set_customer_owned_ip(owned)
                .set_ip_owner_id(owner)
                .set_public_dns_name(dns)
                .set_public_ip(public)
                .build()
        })
        .boxed()
}

fn attachment() -> BoxedStrategy<ec2::InstanceNetworkInterfaceAttachment> {
    let ena = maybe((obool(), maybe(obool())).prop_map(|(on, udp)| {
        ec2::InstanceAttachmentEnaSrdSpecification::builder()
            .set_ena_srd_enabled(on)
            .set_ena_srd_udp_specification(udp.map(|u| {
                ec2::InstanceAttachmentEnaSrdUdpSpecification::builder()
                    .set_ena_srd_udp_enabled(u)
                    .build()
            }))
            .build()
    }));
    (
        maybe(datetime()),
        ostr(),
        obool(),
        int32(),
        en(&["attaching", "attached", "detaching", "detached"]),
        int32(),
        ena,
        int32(),
    )
        .prop_map(|(time, id, del, idx, status, card, ena, queues)| {
            ec2::InstanceNetworkInterfaceAttachment::builder()
                .set_attach_time(time)
                .set_attachment_id(id)
                .set_delete_on_termination(del)
                .set_device_index(idx)
                .set_status(enum_of(&status))
                .set_network_card_index(card)
                .set_ena_srd_specification(ena)
                .set_ena_queue_count(queues)
                .build()
        })
        .boxed()
}

fn network_interface() -> BoxedStrategy<ec2::InstanceNetworkInterface> {
    let group = (ostr(), ostr()).prop_map(|(id, name)| {
        ec2::GroupIdentifier::builder()
            .set_group_id(id)
            .set_group_name(name)
            .build()
    });
    let ipv6 = (oip(), obool()).prop_map(|(a, p)| {
        ec2::InstanceIpv6Address::builder()
            .set_ipv6_address(a)
            .set_is_primary_ipv6(p)
            .build()
    });
    let private =
        (maybe(association()), obool(), ostr(), oip()).prop_map(|(assoc, primary, dns, ip)| {
            ec2::InstancePrivateIpAddress::builder()
                .set_association(assoc)
                .set_primary(primary)
                .set_private_dns_name(dns)
                .set_private_ip_address(ip)
                .build()
        });
    let prefixes = (
        maybe(pvec(
            oip().prop_map(|p| {
                ec2::InstanceIpv4Prefix::builder()
                    .set_ipv4_prefix(p)
                    .build()
            }),
            0..3,
        )),
        maybe(pvec(
            oip().prop_map(|p| {
                ec2::InstanceIpv6Prefix::builder()
                    .set_ipv6_prefix(p)
                    .build()
            }),
            0..3,
        )),
        maybe((int32(), int32(), int32()).prop_map(|(a, b, c)| {
            ec2::ConnectionTrackingSpecificationResponse::builder()
                .set_tcp_established_timeout(a)
                .set_udp_stream_timeout(b)
                .set_udp_timeout(c)
                .build()
        })),
        operator_response(),
    );
    (
        maybe(association()),
        maybe(attachment()),
        maybe(pvec(group, 0..3)),
        maybe(pvec(ipv6, 0..3)),
        pvec(ostr(), 7),
        oip(),
        maybe(pvec(private, 0..3)),
        obool(),
        en(&[
            "available",
            "associated",
            "attaching",
            "in-use",
            "detaching",
        ]),
        prefixes,
    )
        .prop_map(
            |(assoc, att, groups, ipv6, s, ip, privates, sdc, status, (p4, p6, ct, op))| {
                ec2::InstanceNetworkInterface::builder()
                    .set_association(assoc)
                    .set_attachment(att)
                    .set_description(s[0].clone())
                    .set_groups(groups)
                    .set_ipv6_addresses(ipv6)
                    .set_mac_address(s[1].clone())
                    .set_network_interface_id(s[2].clone())
                    .set_owner_id(s[3].clone())
                    .set_private_dns_name(s[4].clone())
                    .set_private_ip_address(ip)
                    .set_private_ip_addresses(privates)
                    .set_source_dest_check(sdc)
                    .set_status(enum_of(&status))
                    .set_subnet_id(s[5].clone())
                    .set_vpc_id(s[6].clone())
                    .set_interface_type(s[0].clone())
                    .set_ipv4_prefixes(p4)
                    .set_ipv6_prefixes(p6)
                    .set_connection_tracking_configuration(ct)
                    .set_operator(op)
                    .build()
            },
        )
        .boxed()
}

/// A state transition reason: free text, or a time in parentheses as AWS
/// (GMT) and moto (UTC) write it, valid or not, with text around it.
#[derive(Debug, Clone)]
enum Reason {
    Free(String),
    Dated {
        pre: String,
        date: [u32; 6],
        tz: &'static str,
        sp: String,
        post: String,
    },
}

impl Reason {
    fn text(&self) -> String {
        match self {
            Reason::Free(s) => s.clone(),
            Reason::Dated {
                pre,
                date: [y, mo, d, h, mi, s],
                tz,
                sp,
                post,
            } => {
                format!("{pre}({y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} {tz}{sp}){post}")
            }
        }
    }

    /// The time the reason states, when it is a well-formed GMT/UTC one.
    fn time(&self) -> Option<Timestamp> {
        let Reason::Dated {
            date: [y, mo, d, h, mi, s],
            tz: "GMT" | "UTC",
            ..
        } = self
        else {
            return None;
        };
        if !(1..=9999).contains(y)
            || !(1..=12).contains(mo)
            || !(1..=28).contains(d)
            || *h > 23
            || *mi > 59
            || *s > 59
        {
            return None;
        }
        let iso = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z");
        let t = DateTime::from_str(&iso, Format::DateTime).expect("valid date");
        Timestamp::new(t.secs(), 0)
    }
}

fn reason() -> BoxedStrategy<Option<Reason>> {
    let date = prop_oneof![
        3 => (1u32..=9999, 1u32..=12, 1u32..=28, 0u32..24, 0u32..60, 0u32..60)
            .prop_map(|(y, mo, d, h, mi, s)| [y, mo, d, h, mi, s]),
        1 => (0u32..=99_999, 0u32..=99, 0u32..=99, 0u32..=99, 0u32..=99, 0u32..=99)
            .prop_map(|(y, mo, d, h, mi, s)| [y, mo, d, h, mi, s]),
    ];
    maybe(prop_oneof![
        1 => any::<String>().prop_map(Reason::Free),
        1 => "[()a-z0-9 :-]{0,30}".prop_map(Reason::Free),
        3 => (
            "[A-Za-z ]{0,20}",
            date,
            select(vec!["GMT", "UTC", "", "PST", "Z"]),
            "[ ]{0,3}",
            "[A-Za-z ()]{0,6}",
        )
            .prop_map(|(pre, date, tz, sp, post)| Reason::Dated { pre, date, tz, sp, post }),
    ])
    .boxed()
}

const STOPPED_STATES: [&str; 4] = ["shutting-down", "stopped", "stopping", "terminated"];

/// An arbitrary instance and the state transition reason it was given.
fn instance() -> BoxedStrategy<(ec2::Instance, Option<Reason>)> {
    let enums = vec![
        en(&["t2.micro", "m5.large", "c7g.16xlarge"]),
        en(&[
            "pending",
            "running",
            "shutting-down",
            "terminated",
            "stopping",
            "stopped",
        ]),
        en(&["disabled", "disabling", "enabled", "pending"]),
        en(&["i386", "x86_64", "arm64", "x86_64_mac"]),
        en(&["legacy-bios", "uefi", "uefi-preferred"]),
        en(&["legacy-bios", "uefi"]),
        en(&["ovm", "xen"]),
        en(&["spot", "scheduled", "capacity-block"]),
        en(&["default", "dedicated", "host"]),
        en(&["Windows"]),
        en(&["ebs", "instance-store"]),
        en(&["hvm", "paravirtual"]),
    ];
    let metadata = maybe(
        (
            en(&["pending", "applied"]),
            en(&["optional", "required"]),
            int32(),
            en(&["disabled", "enabled"]),
            en(&["disabled", "enabled"]),
            en(&["disabled", "enabled"]),
        )
            .prop_map(|(state, tokens, hops, endpoint, v6, tags)| {
                ec2::InstanceMetadataOptionsResponse::builder()
                    .set_state(enum_of(&state))
                    .set_http_tokens(enum_of(&tokens))
                    .set_http_put_response_hop_limit(hops)
                    .set_http_endpoint(enum_of(&endpoint))
                    .set_http_protocol_ipv6(enum_of(&v6))
                    .set_instance_metadata_tags(enum_of(&tags))
                    .build()
            }),
    );
    let block_devices = maybe(pvec(
        (
            ostr(),
            maybe((
                maybe(datetime()),
                obool(),
                en(&["attached", "detached"]),
                ostr(),
                operator_response(),
            )),
        )
            .prop_map(|(dev, ebs)| {
                ec2::InstanceBlockDeviceMapping::builder()
                    .set_device_name(dev)
                    .set_ebs(ebs.map(|(t, del, st, vol, op)| {
                        ec2::EbsInstanceBlockDevice::builder()
                            .set_attach_time(t)
                            .set_delete_on_termination(del)
                            .set_status(enum_of(&st))
                            .set_volume_id(vol)
                            .set_operator(op)
                            .build()
                    }))
                    .build()
            }),
        0..3,
    ));
    let misc = (
        maybe(pvec(
            ostr().prop_map(|a| {
                ec2::LicenseConfiguration::builder()
                    .set_license_configuration_arn(a)
                    .build()
            }),
            0..3,
        )),
        maybe(pvec(
            (ostr(), en(&["devpay", "marketplace"])).prop_map(|(id, ty)| {
                ec2::ProductCode::builder()
                    .set_product_code_id(id)
                    .set_product_code_type(enum_of(&ty))
                    .build()
            }),
            0..3,
        )),
        maybe(pvec(
            (ostr(), ostr()).prop_map(|(id, name)| {
                ec2::GroupIdentifier::builder()
                    .set_group_id(id)
                    .set_group_name(name)
                    .build()
            }),
            0..3,
        )),
        maybe(pvec(
            pvec(ostr(), 4).prop_map(|s| {
                ec2::ElasticGpuAssociation::builder()
                    .set_elastic_gpu_id(s[0].clone())
                    .set_elastic_gpu_association_id(s[1].clone())
                    .set_elastic_gpu_association_state(s[2].clone())
                    .set_elastic_gpu_association_time(s[3].clone())
                    .build()
            }),
            0..2,
        )),
        maybe(pvec(
            (ostr(), ostr(), ostr(), maybe(datetime())).prop_map(|(a, b, c, t)| {
                ec2::ElasticInferenceAcceleratorAssociation::builder()
                    .set_elastic_inference_accelerator_arn(a)
                    .set_elastic_inference_accelerator_association_id(b)
                    .set_elastic_inference_accelerator_association_state(c)
                    .set_elastic_inference_accelerator_association_time(t)
                    .build()
            }),
            0..2,
        )),
        maybe(
            (
                en(&["open", "none", "capacity-reservations-only"]),
                maybe((ostr(), ostr())),
            )
                .prop_map(|(p, t)| {
                    ec2::CapacityReservationSpecificationResponse::builder()
                        .set_capacity_reservation_preference(enum_of(&p))
                        .set_capacity_reservation_target(t.map(|(id, arn)| {
                            ec2::CapacityReservationTargetResponse::builder()
                                .set_capacity_reservation_id(id)
                                .set_capacity_reservation_resource_group_arn(arn)
                                .build()
                        }))
                        .build()
                }),
        ),
        maybe(
            (en(&["ip-name", "resource-name"]), obool(), obool()).prop_map(|(h, a, aaaa)| {
                ec2::PrivateDnsNameOptionsResponse::builder()
                    .set_hostname_type(enum_of(&h))
                    .set_enable_resource_name_dns_a_record(a)
                    .set_enable_resource_name_dns_aaaa_record(aaaa)
                    .build()
            }),
        ),
        maybe(
            (en(&["disabled", "default"]), en(&["disabled", "default"])).prop_map(|(r, m)| {
                ec2::InstanceMaintenanceOptions::builder()
                    .set_auto_recovery(enum_of(&r))
                    .set_reboot_migration(enum_of(&m))
                    .build()
            }),
        ),
        maybe((ostr(), ostr())).prop_map(|r| {
            r.map(|(c, m)| {
                ec2::StateReason::builder()
                    .set_code(c)
                    .set_message(m)
                    .build()
            })
        }),
        maybe((ostr(), ostr())).prop_map(|p| {
            p.map(|(arn, id)| {
                ec2::IamInstanceProfile::builder()
                    .set_arn(arn)
                    .set_id(id)
                    .build()
            })
        }),
    );
    let placement = maybe(
        (
            pvec(ostr(), 7),
            int32(),
            en(&["default", "dedicated", "host"]),
        )
            .prop_map(|(s, part, ten)| {
                ec2::Placement::builder()
                    .set_affinity(s[0].clone())
                    .set_availability_zone(s[1].clone())
                    .set_group_id(s[2].clone())
                    .set_group_name(s[3].clone())
                    .set_host_id(s[4].clone())
                    .set_host_resource_group_arn(s[5].clone())
                    .set_availability_zone_id(s[6].clone())
                    .set_partition_number(part)
                    .set_tenancy(enum_of(&ten))
                    .build()
            }),
    );
    (
        (
            pvec(ostr(), 16),
            enums,
            pvec(int32(), 5),
            pvec(obool(), 6),
            pvec(maybe(datetime()), 2),
        ),
        (
            oip(),
            oip(),
            reason(),
            tag_list(),
            any::<bool>(),
            any::<bool>(),
        ),
        (
            metadata,
            block_devices,
            maybe(pvec(network_interface(), 0..3)),
            placement,
            misc,
        ),
    )
        .prop_map(
            |(
                (s, en, i, b, t),
                (private_ip, public_ip, reason, tags, state, cpu),
                (meta, bdm, nis, placement, misc),
            )| {
                let (licenses, codes, groups, gpus, eias, crs, dns, maint, state_reason, profile) =
                    misc;
                let instance = ec2::Instance::builder()
                    .set_instance_id(s[0].clone())
                    .set_image_id(s[1].clone())
                    .set_key_name(s[2].clone())
                    .set_client_token(s[3].clone())
                    .set_private_dns_name(s[4].clone())
                    .set_public_dns_name(s[5].clone())
                    .set_subnet_id(s[6].clone())
                    .set_vpc_id(s[7].clone())
                    .set_outpost_arn(s[8].clone())
                    .set_root_device_name(s[9].clone())
                    .set_spot_instance_request_id(s[10].clone())
                    .set_platform_details(s[11].clone())
                    .set_usage_operation(s[12].clone())
                    .set_tpm_support(s[13].clone())
                    .set_capacity_reservation_id(s[14].clone())
                    .set_ipv6_address(s[15].clone())
                    .set_instance_type(enum_of(&en[0]))
                    .set_state(state.then(|| {
                        ec2::InstanceState::builder()
                            .set_code(i[4])
                            .set_name(enum_of(&en[1]))
                            .build()
                    }))
                    .set_monitoring(en[2].as_ref().map(|m| {
                        ec2::Monitoring::builder()
                            .state(ec2::MonitoringState::from(m.as_str()))
                            .build()
                    }))
                    .set_architecture(enum_of(&en[3]))
                    .set_boot_mode(enum_of(&en[4]))
                    .set_current_instance_boot_mode(enum_of(&en[5]))
                    .set_hypervisor(enum_of(&en[6]))
                    .set_instance_lifecycle(enum_of(&en[7]))
                    .set_platform(enum_of(&en[9]))
                    .set_root_device_type(enum_of(&en[10]))
                    .set_virtualization_type(enum_of(&en[11]))
                    .set_ami_launch_index(i[0])
                    .set_cpu_options(cpu.then(|| {
                        ec2::CpuOptions::builder()
                            .set_core_count(i[1])
                            .set_threads_per_core(i[2])
                            .build()
                    }))
                    .set_ebs_optimized(b[0])
                    .set_ena_support(b[1])
                    .set_source_dest_check(b[2])
                    .set_enclave_options(
                        b[3].map(|e| ec2::EnclaveOptions::builder().enabled(e).build()),
                    )
                    .set_hibernation_options(
                        b[4].map(|h| ec2::HibernationOptions::builder().configured(h).build()),
                    )
                    .set_launch_time(t[0])
                    .set_usage_operation_update_time(t[1])
                    .set_private_ip_address(private_ip)
                    .set_public_ip_address(public_ip)
                    .set_state_transition_reason(reason.as_ref().map(Reason::text))
                    .set_tags(tags)
                    .set_metadata_options(meta)
                    .set_block_device_mappings(bdm)
                    .set_network_interfaces(nis)
                    .set_placement(placement.map(|p| {
                        // the tenancy drawn for the instance as a whole wins over the placement's
                        let mut p = p;
                        if en[8].is_some() {
                            p.tenancy = enum_of(&en[8]);
                        }
                        p
                    }))
                    .set_licenses(licenses)
                    .set_product_codes(codes)
                    .set_security_groups(groups)
                    .set_elastic_gpu_associations(gpus)
                    .set_elastic_inference_accelerator_associations(eias)
                    .set_capacity_reservation_specification(crs)
                    .set_private_dns_name_options(dns)
                    .set_maintenance_options(maint)
                    .set_state_reason(state_reason)
                    .set_iam_instance_profile(profile)
                    .build();
                (instance, reason)
            },
        )
        .boxed()
}

fn s_(v: &Option<String>) -> Value {
    Value::from(v.clone())
}

fn e_<E: AsRef<str>>(v: Option<&E>) -> Value {
    Value::String(v.map(|x| x.as_ref().to_string()).unwrap_or_default())
}

fn int_(v: Option<i32>) -> Value {
    v.map(|i| Value::Int(i64::from(i))).unwrap_or(Value::Null)
}

fn obj_<X>(v: &Option<X>, f: fn(&X) -> Json) -> Value {
    v.as_ref().map(|x| Value::Json(f(x))).unwrap_or(Value::Null)
}

fn list_<X>(v: &Option<Vec<X>>, f: fn(&X) -> Json) -> Value {
    v.as_ref()
        .map(|xs| Value::Json(Json::Array(xs.iter().map(f).collect())))
        .unwrap_or(Value::Null)
}

/// The value of column `name` for an instance whose hydrate calls all had
/// their errors ignored: the table's extractor for it, through the public
/// helpers (the extractors themselves are private to the table).
fn column_value(
    x: &ec2::Instance,
    region: &str,
    who: &CallerIdentity,
    name: &str,
) -> Option<Value> {
    let arn = x.instance_id.as_ref().map(|id| {
        format!(
            "arn:{}:ec2:{region}:{}:instance/{id}",
            who.partition, who.account_id
        )
    });
    let p = x.placement.as_ref();
    Some(match name {
        "instance_id" => s_(&x.instance_id),
        "arn" => Value::from(arn),
        "instance_type" => e_(x.instance_type.as_ref()),
        "instance_state" => x
            .state
            .as_ref()
            .map(|st| e_(st.name.as_ref()))
            .unwrap_or(Value::Null),
        "monitoring_state" => x
            .monitoring
            .as_ref()
            .map(|m| e_(m.state.as_ref()))
            .unwrap_or(Value::Null),
        "disable_api_termination" => Value::Bool(false),
        "ami_launch_index" => int_(x.ami_launch_index),
        "architecture" => e_(x.architecture.as_ref()),
        "boot_mode" => e_(x.boot_mode.as_ref()),
        "current_instance_boot_mode" => e_(x.current_instance_boot_mode.as_ref()),
        "ipv6_address" => s_(&x.ipv6_address),
        "capacity_reservation_id" => s_(&x.capacity_reservation_id),
        "capacity_reservation_specification" => obj_(
            &x.capacity_reservation_specification,
            j::capacity_reservation_specification_response,
        ),
        "client_token" => s_(&x.client_token),
        "cpu_options_core_count" => int_(x.cpu_options.as_ref().and_then(|c| c.core_count)),
        "cpu_options_threads_per_core" => {
            int_(x.cpu_options.as_ref().and_then(|c| c.threads_per_core))
        }
        "ebs_optimized" => Value::from(x.ebs_optimized),
        "ena_support" => Value::from(x.ena_support),
        "hypervisor" => e_(x.hypervisor.as_ref()),
        "iam_instance_profile_arn" => {
            Value::from(x.iam_instance_profile.as_ref().and_then(|p| p.arn.clone()))
        }
        "iam_instance_profile_id" => {
            Value::from(x.iam_instance_profile.as_ref().and_then(|p| p.id.clone()))
        }
        "image_id" => s_(&x.image_id),
        "instance_initiated_shutdown_behavior"
        | "kernel_id"
        | "ram_disk_id"
        | "sriov_net_support"
        | "user_data"
        | "launch_template_data"
        | "instance_status" => Value::Null,
        "instance_lifecycle" => e_(x.instance_lifecycle.as_ref()),
        "key_name" => s_(&x.key_name),
        "launch_time" => Value::from(x.launch_time.as_ref().and_then(common::timestamp)),
        "outpost_arn" => s_(&x.outpost_arn),
        "placement_affinity" => Value::from(p.and_then(|p| p.affinity.clone())),
        "placement_availability_zone" => Value::from(p.and_then(|p| p.availability_zone.clone())),
        "placement_group_id" => Value::from(p.and_then(|p| p.group_id.clone())),
        "placement_group_name" => Value::from(p.and_then(|p| p.group_name.clone())),
        "placement_host_id" => Value::from(p.and_then(|p| p.host_id.clone())),
        "placement_host_resource_group_arn" => {
            Value::from(p.and_then(|p| p.host_resource_group_arn.clone()))
        }
        "placement_partition_number" => int_(p.and_then(|p| p.partition_number)),
        "placement_tenancy" => p.map(|p| e_(p.tenancy.as_ref())).unwrap_or(Value::Null),
        "platform" => e_(x.platform.as_ref()),
        "platform_details" => s_(&x.platform_details),
        "private_ip_address" => s_(&x.private_ip_address),
        "private_dns_name" => s_(&x.private_dns_name),
        "public_dns_name" => s_(&x.public_dns_name),
        "public_ip_address" => s_(&x.public_ip_address),
        "root_device_name" => s_(&x.root_device_name),
        "root_device_type" => e_(x.root_device_type.as_ref()),
        "source_dest_check" => Value::from(x.source_dest_check),
        "spot_instance_request_id" => s_(&x.spot_instance_request_id),
        "state_code" => int_(x.state.as_ref().and_then(|st| st.code)),
        "state_transition_reason" => s_(&x.state_transition_reason),
        "state_transition_time" => Value::from(ec2_instance::state_transition_time(x)),
        "subnet_id" => s_(&x.subnet_id),
        "tpm_support" => s_(&x.tpm_support),
        "usage_operation" => s_(&x.usage_operation),
        "usage_operation_update_time" => Value::from(
            x.usage_operation_update_time
                .as_ref()
                .and_then(common::rfc3339),
        ),
        "virtualization_type" => e_(x.virtualization_type.as_ref()),
        "vpc_id" => s_(&x.vpc_id),
        "block_device_mappings" => {
            list_(&x.block_device_mappings, j::instance_block_device_mapping)
        }
        "elastic_gpu_associations" => {
            list_(&x.elastic_gpu_associations, j::elastic_gpu_association)
        }
        "elastic_inference_accelerator_associations" => list_(
            &x.elastic_inference_accelerator_associations,
            j::elastic_inference_accelerator_association,
        ),
        "enclave_options" => obj_(&x.enclave_options, j::enclave_options),
        "hibernation_options" => obj_(&x.hibernation_options, j::hibernation_options),
        "state_reason" => obj_(&x.state_reason, j::state_reason),
        "licenses" => list_(&x.licenses, j::license_configuration),
        "maintenance_options" => obj_(&x.maintenance_options, j::instance_maintenance_options),
        "metadata_options" => obj_(&x.metadata_options, j::instance_metadata_options_response),
        "network_interfaces" => list_(&x.network_interfaces, j::instance_network_interface),
        "private_dns_name_options" => obj_(
            &x.private_dns_name_options,
            j::private_dns_name_options_response,
        ),
        "product_codes" => list_(&x.product_codes, j::product_code),
        "security_groups" => list_(&x.security_groups, j::group_identifier),
        "tags_src" => list_(&x.tags, j::tag),
        "title" => Value::from(common::title(x.tags.as_deref(), x.instance_id.as_deref())),
        "tags" => Value::Json(common::tags_map(x.tags.as_deref())),
        "akas" => arn
            .map(|a| Value::Json(Json::Array(vec![Json::String(a)])))
            .unwrap_or(Value::Null),
        "partition" => Value::from(who.partition.clone()),
        "region" => Value::from(region.to_string()),
        "account_id" => Value::from(who.account_id.clone()),
        _ => return None,
    })
}

/// The table's columns (reserved ones aside) with their declared types.
fn table_columns() -> &'static [(String, ColumnType)] {
    static COLUMNS: std::sync::OnceLock<Vec<(String, ColumnType)>> = std::sync::OnceLock::new();
    COLUMNS.get_or_init(|| {
        let reserved: Vec<&str> = steampipe_plugin_aws::plugin::table::RESERVED_COLUMNS
            .iter()
            .map(|(n, ..)| *n)
            .collect();
        TableDef::schema(&ec2_instance::table())
            .columns
            .into_iter()
            .filter(|c| !reserved.contains(&c.name.as_str()))
            .map(|c| {
                let ty = TYPES
                    .into_iter()
                    .find(|t| t.to_proto() as i32 == c.r#type)
                    .expect("a known column type");
                (c.name, ty)
            })
            .collect()
    })
}

fn as_json(c: &pb::Column) -> Option<Json> {
    match c.value.as_ref()? {
        Cell::JsonValue(b) => Some(serde_json::from_slice(b).expect("valid JSON")),
        _ => None,
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// Every column of arbitrary instances converts without panicking and
    /// encodes with its declared type: JSON cells parse, timestamps are in
    /// range, and only an address that is not one is refused (by IP columns).
    #[test]
    fn instances_convert_to_rows(
        (inst, reason) in instance(),
        region in text(),
        account in text(),
        partition in text(),
    ) {
        let who = CallerIdentity { account_id: account, partition };
        let mut row: BTreeMap<&str, pb::Column> = BTreeMap::new();
        for (name, ty) in table_columns() {
            let v = column_value(&inst, &region, &who, name)
                .unwrap_or_else(|| panic!("column '{name}' is not mirrored here"));
            match encode(*ty, &v) {
                Ok(c) => {
                    if let Some(Cell::JsonValue(b)) = &c.value {
                        prop_assert!(serde_json::from_slice::<Json>(b).is_ok(), "{name}: invalid JSON");
                    }
                    if let Some(Cell::TimestampValue(t)) = &c.value {
                        prop_assert!(in_range(t.seconds, i64::from(t.nanos)), "{name}: {t:?}");
                    }
                    if let (ColumnType::IpAddr, Value::String(s)) = (ty, &v) {
                        prop_assert!(s.is_empty() || pg_accepts(s, false), "{name} sent {s:?}");
                    }
                    row.insert(name, c);
                }
                Err(e) => {
                    let Value::String(s) = &v else {
                        return Err(TestCaseError::fail(format!("{name}: {e}")));
                    };
                    prop_assert!(*ty == ColumnType::IpAddr && !pg_accepts(s, false), "{name}: {e}");
                    prop_assert!(e.contains(&format!("'{s}'")), "{e}");
                }
            }
        }

        // title: the last tag named exactly Name, else the id
        let want_title = inst.tags.as_ref()
            .and_then(|ts| ts.iter().rev().find(|t| t.key.as_deref() == Some("Name")))
            .map(|t| t.value.clone().unwrap_or_default())
            .or(inst.instance_id.clone());
        let title = match row["title"].value.as_ref() {
            Some(Cell::StringValue(s)) => Some(s.clone()),
            _ => None,
        };
        prop_assert_eq!(title, want_title);

        // tags: one entry per distinct key, the last tag with it winning
        match &inst.tags {
            None => prop_assert!(as_json(&row["tags"]).is_none()),
            Some(ts) => {
                let mut want = serde_json::Map::new();
                for t in ts {
                    if let Some(k) = &t.key {
                        want.insert(k.clone(), t.value.clone().map(Json::String).unwrap_or(Json::Null));
                    }
                }
                prop_assert_eq!(as_json(&row["tags"]), Some(Json::Object(want)));
                prop_assert_eq!(as_json(&row["tags_src"]).and_then(|j| j.as_array().map(Vec::len)), Some(ts.len()));
            }
        }

        // the state name, unknown values included, exactly as AWS sent it
        if let Some(st) = &inst.state {
            let want = st.name.as_ref().map(|n| n.as_str().to_string()).unwrap_or_default();
            prop_assert_eq!(row["instance_state"].value.clone(), Some(Cell::StringValue(want)));
        }

        // network interfaces nest as many entries as were sent
        if let Some(nis) = &inst.network_interfaces {
            let json = as_json(&row["network_interfaces"]).expect("network_interfaces JSON");
            let arr = json.as_array().expect("an array");
            prop_assert_eq!(arr.len(), nis.len());
            for (ni, j) in nis.iter().zip(arr) {
                let ips = j["PrivateIpAddresses"].as_array().map(Vec::len);
                prop_assert_eq!(ips, ni.private_ip_addresses.as_ref().map(Vec::len));
                prop_assert_eq!(j["Attachment"].is_null(), ni.attachment.is_none());
            }
        }

        // metadata options: every member present; absent enums are ""
        if let Some(m) = &inst.metadata_options {
            let json = as_json(&row["metadata_options"]).expect("metadata_options JSON");
            for k in ["State", "HttpTokens", "HttpEndpoint", "HttpProtocolIpv6", "InstanceMetadataTags"] {
                prop_assert!(json[k].is_string(), "{k} is {:?}", json[k]);
            }
            prop_assert_eq!(json["HttpPutResponseHopLimit"].as_i64(), m.http_put_response_hop_limit.map(i64::from));
        }

        // state_transition_time: the reason's time for a stopped instance, else the launch time
        let launch = inst.launch_time.as_ref().and_then(common::timestamp);
        let state = inst.state.as_ref().and_then(|s| s.name.as_ref()).map(|n| n.as_str().to_string());
        let stopped = state.as_deref().is_some_and(|s| STOPPED_STATES.contains(&s));
        let got = ec2_instance::state_transition_time(&inst);
        let reason_text = reason.as_ref().map(Reason::text).unwrap_or_default();
        if !stopped || reason_text.is_empty() {
            prop_assert_eq!(got, launch);
        } else if let Some(t) = reason.as_ref().and_then(Reason::time) {
            prop_assert_eq!(got, Some(t), "from {:?}", reason_text);
        } else {
            prop_assert!(got.is_none_or(|t| in_range(t.seconds, i64::from(t.nanos))));
        }
    }

    /// The hydrate outputs (instance status, launch template data) always
    /// render as valid JSON, whatever their dates and floats.
    #[test]
    fn hydrate_outputs_are_valid_json(
        events in maybe(pvec((ostr(), en(&["instance-reboot", "system-maintenance"]), ostr(), maybe(datetime()), maybe(datetime())), 0..3)),
        details in maybe(pvec((maybe(datetime()), en(&["reachability"]), en(&["passed", "failed", "initializing"])), 0..3)),
        state in maybe((int32(), en(&["running", "stopped"]))),
        floats in (maybe(double()), maybe(double())),
        lt in (ostr(), obool(), maybe(pvec((ostr(), maybe((obool(), int32(), ostr()))), 0..3))),
    ) {
        let events = events.map(|es| es.into_iter().map(|(id, code, desc, after, before)| {
            ec2::InstanceStatusEvent::builder()
                .set_instance_event_id(id)
                .set_code(enum_of(&code))
                .set_description(desc)
                .set_not_after(after)
                .set_not_before(before)
                .build()
        }).collect());
        let summary = ec2::InstanceStatusSummary::builder()
            .set_details(details.map(|ds| ds.into_iter().map(|(since, name, status)| {
                ec2::InstanceStatusDetails::builder()
                    .set_impaired_since(since)
                    .set_name(enum_of(&name))
                    .set_status(enum_of(&status))
                    .build()
            }).collect()))
            .build();
        let status = ec2::InstanceStatus::builder()
            .set_events(events)
            .set_instance_status(Some(summary.clone()))
            .set_system_status(Some(summary))
            .set_instance_state(state.map(|(code, name)| ec2::InstanceState::builder().set_code(code).set_name(enum_of(&name)).build()))
            .build();
        let json = j::instance_status(&status);
        prop_assert!(encode(ColumnType::Json, &Value::Json(json)).is_ok());

        let (kernel, ebs_opt, bdms) = lt;
        let data = ec2::ResponseLaunchTemplateData::builder()
            .set_kernel_id(kernel)
            .set_ebs_optimized(ebs_opt)
            .set_block_device_mappings(bdms.map(|b| b.into_iter().map(|(dev, ebs)| {
                ec2::LaunchTemplateBlockDeviceMapping::builder()
                    .set_device_name(dev)
                    .set_ebs(ebs.map(|(enc, iops, kms)| {
                        ec2::LaunchTemplateEbsBlockDevice::builder().set_encrypted(enc).set_iops(iops).set_kms_key_id(kms).build()
                    }))
                    .build()
            }).collect()))
            .set_instance_requirements(Some(
                ec2::InstanceRequirements::builder()
                    .set_memory_gib_per_v_cpu(Some(ec2::MemoryGiBPerVCpu::builder().set_min(floats.0).set_max(floats.1).build()))
                    .set_network_bandwidth_gbps(Some(ec2::NetworkBandwidthGbps::builder().set_min(floats.1).set_max(floats.0).build()))
                    .build(),
            ))
            .build();
        let json = j::response_launch_template_data(&data);
        let c = encode(ColumnType::Json, &Value::Json(json)).map_err(TestCaseError::fail)?;
        prop_assert!(as_json(&c).is_some());
    }
}

proptest! {
    #![proptest_config(cases(1024))]

    /// User data: never a panic; text that is not base64 is NULL; bytes that
    /// are not UTF-8 come back as the base64 text; UTF-8 text keeps its
    /// printable ASCII in order and loses every control and non-space blank.
    #[test]
    fn user_data_decodes_or_is_null(s in any::<String>(), bytes in pvec(any::<u8>(), 0..64), junk in "[A-Za-z0-9+/=]{0,12}[!*. -][A-Za-z0-9+/=]{0,12}") {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let _ = ec2_instance::decode_user_data(&s);
        prop_assert_eq!(ec2_instance::decode_user_data(&junk), None);

        let encoded = b64.encode(&bytes);
        match std::str::from_utf8(&bytes) {
            Err(_) => prop_assert_eq!(ec2_instance::decode_user_data(&encoded), Some(encoded.clone())),
            Ok(_) => prop_assert!(ec2_instance::decode_user_data(&encoded).is_some()),
        }

        let out = ec2_instance::decode_user_data(&b64.encode(s.as_bytes())).expect("base64 of text decodes");
        let mut rest = s.chars();
        for c in out.chars() {
            prop_assert!(rest.any(|x| x == c), "{out:?} is not a subsequence of {s:?}");
            prop_assert!(c == ' ' || !(c.is_control() || c.is_whitespace()), "kept {c:?}");
        }
        let printable = |t: &str| -> String { t.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').collect() };
        prop_assert_eq!(printable(&out), printable(&s));
    }

    /// Filters: one per List key column with an `=` value that has text; never
    /// a filter for anything else. MaxResults stays within 5..1000.
    #[test]
    fn filters_and_max_results(
        quals in pvec((
            prop_oneof![
                select(ec2_instance::LIST_FILTERS.iter().map(|(c, _)| *c).collect::<Vec<_>>()),
                select(vec!["instance_id", "region", "tags", "x"]),
            ],
            operator(),
            maybe(qual_value()),
        ), 0..8),
        limit in maybe(prop_oneof![any::<u64>(), 0u64..2000]),
    ) {
        let quals: Vec<Qual> = quals.into_iter()
            .map(|(c, op, value)| Qual { column: c.to_string(), operator: op, value })
            .collect();
        let qm = QualMap::from_quals(quals);
        let filters = ec2_instance::filters(&qm);
        let want: Vec<(&str, String)> = ec2_instance::LIST_FILTERS.iter()
            .filter_map(|(c, f)| Some((*f, qm.equals(c)?.as_str()?.to_string())))
            .collect();
        let got: Vec<(&str, String)> = filters.iter()
            .map(|f| {
                let vals = f.values();
                assert_eq!(vals.len(), 1, "one value per filter");
                let name = ec2_instance::LIST_FILTERS.iter().find(|(_, n)| Some(*n) == f.name()).expect("a known filter").1;
                (name, vals[0].clone())
            })
            .collect();
        prop_assert_eq!(got, want);

        let m = ec2_instance::max_results(limit);
        prop_assert!((5..=1000).contains(&m));
        match limit {
            None => prop_assert_eq!(m, 1000),
            Some(l) if (5..=1000).contains(&l) => prop_assert_eq!(i64::from(m), l as i64),
            Some(_) => {}
        }
    }

    /// `title` and `tags` over tag lists with empty, duplicate and missing keys.
    #[test]
    fn title_and_tags(tags in tag_list(), id in ostr()) {
        let title = common::title(tags.as_deref(), id.as_deref());
        let names: Vec<&ec2::Tag> = tags.iter().flatten().filter(|t| t.key.as_deref() == Some("Name")).collect();
        match names.last() {
            Some(t) => prop_assert_eq!(title, Some(t.value.clone().unwrap_or_default())),
            None => prop_assert_eq!(title, id),
        }
        let map = common::tags_map(tags.as_deref());
        match &tags {
            None => prop_assert_eq!(map, Json::Null),
            Some(ts) => {
                let keys: BTreeSet<&str> = ts.iter().filter_map(|t| t.key.as_deref()).collect();
                let obj = map.as_object().expect("an object");
                prop_assert_eq!(obj.keys().map(String::as_str).collect::<BTreeSet<_>>(), keys);
            }
        }
    }
}
