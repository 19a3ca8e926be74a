//! Columns every regional AWS table shares (`partition`, `region`,
//! `account_id`, `arn`, `akas`, `title`, `tags`, `tags_src`) and the value
//! helpers behind them.

use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;
use serde_json::{Map, Value};

use crate::plugin::{Timestamp, Value as Col};

/// Who the connection's credentials belong to (STS `GetCallerIdentity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    /// the account id
    pub account_id: String,
    /// `aws`, `aws-cn`, `aws-us-gov`…: the second field of the caller ARN
    pub partition: String,
}

impl CallerIdentity {
    /// From the `Account` and `Arn` members of the STS answer.
    pub fn from_sts(account: Option<&str>, arn: Option<&str>) -> Result<CallerIdentity, String> {
        let account_id = account
            .filter(|a| !a.is_empty())
            .ok_or("GetCallerIdentity returned no Account")?
            .to_string();
        let arn = arn.ok_or("GetCallerIdentity returned no Arn")?;
        let partition = arn
            .split(':')
            .nth(1)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                format!("GetCallerIdentity returned an Arn without a partition: '{arn}'")
            })?
            .to_string();
        Ok(CallerIdentity {
            account_id,
            partition,
        })
    }
}

/// RFC 3339 in UTC as Go's `time.Time` marshals it (fraction only when non-zero).
pub fn rfc3339(d: &DateTime) -> Option<String> {
    d.fmt(Format::DateTime).ok()
}

/// A smithy DateTime as a plugin timestamp.
pub fn timestamp(d: &DateTime) -> Option<Timestamp> {
    Timestamp::new(d.secs(), d.subsec_nanos())
}

/// `title`: the value of the tag named exactly `Name` (the last one wins), else the id.
pub fn title(tags: Option<&[aws_sdk_ec2::types::Tag]>, id: Option<&str>) -> Option<String> {
    let name = tags.and_then(|ts| {
        ts.iter()
            .rev()
            .find(|t| t.key.as_deref() == Some("Name"))
            .map(|t| t.value.clone().unwrap_or_default())
    });
    name.or_else(|| id.map(str::to_string))
}

/// `tags`: `{key: value}`, or NULL when the item has no tag list.
pub fn tags_map(tags: Option<&[aws_sdk_ec2::types::Tag]>) -> Value {
    match tags {
        None => Value::Null,
        Some(ts) => {
            let mut m = Map::new();
            for t in ts {
                if let Some(k) = &t.key {
                    m.insert(
                        k.clone(),
                        t.value.clone().map(Value::String).unwrap_or(Value::Null),
                    );
                }
            }
            Value::Object(m)
        }
    }
}

/// A string member: NULL when AWS leaves it out.
pub fn s(v: &Option<String>) -> Col {
    Col::from(v.as_deref())
}

/// A Go value-type enum: `""` when AWS leaves it out.
pub fn e<E: AsRef<str>>(v: Option<&E>) -> Col {
    Col::String(v.map(|x| x.as_ref().to_string()).unwrap_or_default())
}

/// An integer member: NULL when AWS leaves it out.
pub fn int(v: Option<i32>) -> Col {
    v.map(|i| Col::Int(i as i64)).unwrap_or(Col::Null)
}

/// A timestamp member: NULL when AWS leaves it out.
pub fn ts(v: &Option<DateTime>) -> Col {
    v.as_ref()
        .and_then(timestamp)
        .map(Col::Timestamp)
        .unwrap_or(Col::Null)
}

/// A timestamp the API sends as text (`CreationDate`, `DeprecationTime`…),
/// parsed as the Go SDK's `types.ToTime` does (ISO 8601, UTC when no zone is
/// given): NULL when AWS leaves it out; text it cannot parse stays text, so
/// that the row fails to encode naming the column, as the Go SDK fails.
pub fn iso_ts(v: &Option<String>) -> Col {
    match v.as_deref() {
        None => Col::Null,
        Some(text) => iso8601(text)
            .map(Col::Timestamp)
            .unwrap_or_else(|| Col::String(text.to_string())),
    }
}

/// `2024-05-01T12:00:00.000Z`, `2024-05-01T12:00:00+02:00`, `2024-05-01T12:00:00`
/// (UTC) or `2024-05-01` (midnight UTC).
pub fn iso8601(text: &str) -> Option<Timestamp> {
    let parse = |t: &str| DateTime::from_str(t, Format::DateTime).ok();
    // A numeric zone (`+02:00`, `-0500`): parsed as UTC, then shifted.
    let (local, offset) = match text
        .get(19..)
        .and_then(|t| t.rfind(['+', '-']).map(|i| i + 19))
    {
        Some(i) => {
            let zone = text[i + 1..].replace(':', "");
            let (h, m) = (
                zone.get(..2)?.parse::<i64>().ok()?,
                zone.get(2..)?.parse::<i64>().ok()?,
            );
            let sign = if text[i..].starts_with('-') { -1 } else { 1 };
            (format!("{}Z", &text[..i]), sign * (h * 3600 + m * 60))
        }
        None => (text.to_string(), 0),
    };
    let dt = parse(&local)
        .or_else(|| parse(&format!("{local}Z")))
        .or_else(|| parse(&format!("{local}T00:00:00Z")))?;
    let t = timestamp(&dt)?;
    Timestamp::new(t.seconds - offset, t.nanos)
}

/// A structure member as JSON (written by the generated `ec2_json`
/// writers): SQL NULL when AWS leaves it out.
pub fn json_or_null<X>(v: &Option<X>, write: impl Fn(&X, &mut Vec<u8>)) -> Col {
    match v {
        None => Col::Null,
        Some(x) => {
            let mut out = Vec::with_capacity(128);
            write(x, &mut out);
            Col::RawJson(out)
        }
    }
}

/// A list member as JSON: absent is JSON `null` (not SQL NULL), as the Go
/// SDK marshals a nil slice.
pub fn list<X>(v: &Option<Vec<X>>, write: impl Fn(&X, &mut Vec<u8>)) -> Col {
    match v {
        None => Col::RawJson(b"null".to_vec()),
        Some(xs) => {
            let mut out = Vec::with_capacity(2 + 256 * xs.len());
            out.push(b'[');
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(x, &mut out);
            }
            out.push(b']');
            Col::RawJson(out)
        }
    }
}

/// A list of strings as JSON (`[]string` in Go): absent is JSON `null`.
pub fn strings(v: &Option<Vec<String>>) -> Col {
    list(v, |x, out| {
        serde_json::to_writer(out, x).expect("writing to a Vec cannot fail")
    })
}

/// `akas` of one ARN.
pub fn akas(arn: Option<String>) -> Col {
    arn.map(|a| Col::Json(Value::Array(vec![Value::String(a)])))
        .unwrap_or(Col::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::Tag;

    fn tag(k: &str, v: &str) -> Tag {
        Tag::builder().key(k).value(v).build()
    }

    #[test]
    fn title_is_the_last_name_tag_else_the_id() {
        let tags = [tag("Name", "a"), tag("env", "x"), tag("Name", "b")];
        assert_eq!(title(Some(&tags), Some("i-1")), Some("b".into()));
        assert_eq!(
            title(Some(&[tag("name", "x")]), Some("i-1")),
            Some("i-1".into())
        );
        assert_eq!(title(None, Some("i-1")), Some("i-1".into()));
        assert_eq!(
            title(Some(&[tag("Name", "")]), Some("i-1")),
            Some("".into())
        );
    }

    #[test]
    fn partition_comes_from_the_caller_arn() {
        let id = CallerIdentity::from_sts(Some("123"), Some("arn:aws-cn:iam::123:user/x")).unwrap();
        assert_eq!(id.partition, "aws-cn");
        assert!(CallerIdentity::from_sts(Some("123"), Some("bogus")).is_err());
    }

    #[test]
    fn iso8601_text_parses_as_go_kit_does() {
        let t = |s: &str| iso8601(s).map(|t| t.seconds);
        assert_eq!(t("2023-11-14T22:13:20.000Z"), Some(1_700_000_000));
        assert_eq!(t("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(t("2023-11-14T22:13:20"), Some(1_700_000_000));
        assert_eq!(t("2023-11-14T23:13:20+01:00"), Some(1_700_000_000));
        assert_eq!(t("2023-11-14"), Some(1_699_920_000));
        assert_eq!(t("soon"), None);
        assert_eq!(iso_ts(&None), Col::Null);
        assert_eq!(iso_ts(&Some("soon".into())), Col::String("soon".into()));
    }

    #[test]
    fn timestamps_format_as_go_does() {
        assert_eq!(
            rfc3339(&DateTime::from_secs(1_700_000_000)).unwrap(),
            "2023-11-14T22:13:20Z"
        );
    }
}
