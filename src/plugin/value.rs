//! Column types and cell values, and their encoding into the wire `Column`.
//!
//! The FDW converts every value to text and runs the Postgres input function of
//! the column's type, so a value that would not parse there (invalid JSON, an
//! unparsable inet, a timestamp outside years 1..9999) must never be sent.

use crate::pb::steampipe as pb;
use pb::column::Value as Cell;

/// A column's type, as `GetSchema` declares it and the FDW maps it to Postgres.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// `bool`
    Bool,
    /// `bigint`
    Int,
    /// `double precision`
    Double,
    /// `text`
    String,
    /// `jsonb`
    Json,
    /// `timestamptz`
    Timestamp,
    /// `inet` (sent as `ip_addr_value`)
    IpAddr,
    /// `cidr`
    Cidr,
    /// `inet` (sent as `cidr_range_value`, as the Go SDK does)
    Inet,
    /// `ltree`
    Ltree,
}

impl ColumnType {
    /// The wire enum value.
    pub fn to_proto(self) -> pb::ColumnType {
        match self {
            ColumnType::Bool => pb::ColumnType::Bool,
            ColumnType::Int => pb::ColumnType::Int,
            ColumnType::Double => pb::ColumnType::Double,
            ColumnType::String => pb::ColumnType::String,
            ColumnType::Json => pb::ColumnType::Json,
            ColumnType::Timestamp => pb::ColumnType::Timestamp,
            ColumnType::IpAddr => pb::ColumnType::Ipaddr,
            ColumnType::Cidr => pb::ColumnType::Cidr,
            ColumnType::Inet => pb::ColumnType::Inet,
            ColumnType::Ltree => pb::ColumnType::Ltree,
        }
    }

    /// The Postgres type the FDW creates for this column.
    pub fn postgres_type(self) -> &'static str {
        match self {
            ColumnType::Bool => "bool",
            ColumnType::Int => "bigint",
            ColumnType::Double => "double precision",
            ColumnType::String => "text",
            ColumnType::Json => "jsonb",
            ColumnType::Timestamp => "timestamptz",
            ColumnType::IpAddr | ColumnType::Inet => "inet",
            ColumnType::Cidr => "cidr",
            ColumnType::Ltree => "ltree",
        }
    }
}

/// A point in time, UTC, with nanosecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Nanoseconds within the second, 0..1e9.
    pub nanos: u32,
}

/// -62135596800 is 0001-01-01T00:00:00Z; 253402300799 is 9999-12-31T23:59:59Z.
const MIN_SECONDS: i64 = -62_135_596_800;
const MAX_SECONDS: i64 = 253_402_300_799;

impl Timestamp {
    /// A timestamp, or `None` if Postgres could not represent it through the FDW.
    pub fn new(seconds: i64, nanos: u32) -> Option<Timestamp> {
        if !(MIN_SECONDS..=MAX_SECONDS).contains(&seconds) || nanos >= 1_000_000_000 {
            return None;
        }
        Some(Timestamp { seconds, nanos })
    }
}

/// One cell. Which wire field carries it depends on the column's declared type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A double.
    Double(f64),
    /// Text (also accepted for inet, cidr, ltree and JSON-string columns).
    String(String),
    /// A JSON document; JSON `null` is SQL NULL.
    Json(serde_json::Value),
    /// JSON text already serialised (valid JSON, by contract of whoever built
    /// it), sent as is: `null` is JSON null (jsonb `'null'`), not SQL NULL.
    /// Saves building a tree on the hot path.
    RawJson(Vec<u8>),
    /// A point in time.
    Timestamp(Timestamp),
}

impl Value {
    /// What kind of value this is, for an error message (never the value
    /// itself: it may be long, or a secret).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an integer",
            Value::Double(_) => "a double",
            Value::String(_) => "a string",
            Value::Json(_) | Value::RawJson(_) => "a JSON value",
            Value::Timestamp(_) => "a timestamp",
        }
    }
}

impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        v.map(Value::String).unwrap_or(Value::Null)
    }
}
impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        v.map(|s| Value::String(s.to_string()))
            .unwrap_or(Value::Null)
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_string())
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(v as i64)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Double(v)
    }
}
impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        Value::Json(v)
    }
}
impl From<Timestamp> for Value {
    fn from(v: Timestamp) -> Self {
        Value::Timestamp(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value
where
    T: NotString,
{
    fn from(v: Option<T>) -> Self {
        v.map(Into::into).unwrap_or(Value::Null)
    }
}

/// Marks the types whose `Option` converts generically (strings have their own impls).
pub trait NotString {}
impl NotString for bool {}
impl NotString for i64 {}
impl NotString for i32 {}
impl NotString for f64 {}
impl NotString for serde_json::Value {}
impl NotString for Timestamp {}

impl Value {
    /// The value a wire cell carries (for filtering rows already encoded).
    pub fn from_column(c: Option<&pb::Column>) -> Value {
        match c.and_then(|c| c.value.as_ref()) {
            None | Some(Cell::NullValue(_)) => Value::Null,
            Some(Cell::BoolValue(b)) => Value::Bool(*b),
            Some(Cell::IntValue(i)) => Value::Int(*i),
            Some(Cell::DoubleValue(d)) => Value::Double(*d),
            Some(
                Cell::StringValue(s)
                | Cell::IpAddrValue(s)
                | Cell::CidrRangeValue(s)
                | Cell::LtreeValue(s),
            ) => Value::String(s.clone()),
            Some(Cell::JsonValue(b)) => Value::RawJson(b.clone()),
            Some(Cell::TimestampValue(t)) => u32::try_from(t.nanos)
                .ok()
                .and_then(|n| Timestamp::new(t.seconds, n))
                .map(Value::Timestamp)
                .unwrap_or(Value::Null),
        }
    }

    /// True for SQL NULL (and a `Json` tree that is `null`). `RawJson`
    /// text `null` is not SQL NULL: it goes on the wire as JSON and Postgres
    /// stores jsonb `'null'`, which is what the Go SDK sends for a nil slice.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null | Value::Json(serde_json::Value::Null))
    }
}

fn null() -> pb::Column {
    pb::Column {
        value: Some(Cell::NullValue(pb::NullValue::NullValue as i32)),
    }
}

fn cell(c: Cell) -> pb::Column {
    pb::Column { value: Some(c) }
}

/// Like [`encode`], taking the value by move: strings and JSON bytes are not copied.
pub fn encode_owned(ty: ColumnType, value: Value) -> Result<pb::Column, String> {
    match (ty, value) {
        (_, v) if v.is_null() => Ok(null()),
        (ColumnType::Json, Value::RawJson(b)) => {
            if b.is_empty() {
                return Err("empty JSON text".into());
            }
            Ok(cell(Cell::JsonValue(b)))
        }
        (ColumnType::String, Value::String(s)) => Ok(cell(Cell::StringValue(s))),
        (ty, v) => encode(ty, &v),
    }
}

/// Encodes `value` for a column of type `ty`, as the Go SDK puts it on the wire.
/// A value that the FDW would reject is an error naming what is wrong.
pub fn encode(ty: ColumnType, value: &Value) -> Result<pb::Column, String> {
    if value.is_null() {
        return Ok(null());
    }
    let wrong = || format!("cannot encode {} as a {ty:?} column", value.kind());
    Ok(match (ty, value) {
        (ColumnType::Bool, Value::Bool(b)) => cell(Cell::BoolValue(*b)),
        (ColumnType::Int, Value::Int(i)) => cell(Cell::IntValue(*i)),
        (ColumnType::Double, Value::Double(d)) => cell(Cell::DoubleValue(*d)),
        (ColumnType::Double, Value::Int(i)) => cell(Cell::DoubleValue(*i as f64)),
        (ColumnType::String, Value::String(s)) => cell(Cell::StringValue(s.clone())),
        (ColumnType::String, Value::Int(i)) => cell(Cell::StringValue(i.to_string())),
        (ColumnType::String, Value::Bool(b)) => cell(Cell::StringValue(b.to_string())),
        (ColumnType::Json, Value::RawJson(b)) => {
            if b.is_empty() {
                return Err("empty JSON text".into());
            }
            cell(Cell::JsonValue(b.clone()))
        }
        (ColumnType::Json, v) => {
            let bytes = match v {
                Value::Json(j) => serde_json::to_vec(j),
                Value::String(s) => serde_json::to_vec(s),
                Value::Bool(b) => serde_json::to_vec(b),
                Value::Int(i) => serde_json::to_vec(i),
                Value::Double(d) if d.is_finite() => serde_json::to_vec(d),
                _ => return Err(wrong()),
            }
            .map_err(|e| e.to_string())?;
            cell(Cell::JsonValue(bytes))
        }
        (ColumnType::Timestamp, Value::Timestamp(t)) => {
            let t = Timestamp::new(t.seconds, t.nanos).ok_or_else(|| {
                format!(
                    "timestamp {} s after 1970 is outside years 0001..9999",
                    t.seconds
                )
            })?;
            cell(Cell::TimestampValue(prost_types::Timestamp {
                seconds: t.seconds,
                nanos: t.nanos as i32,
            }))
        }
        (ColumnType::IpAddr, Value::String(s)) => {
            if s.is_empty() {
                return Ok(null());
            }
            check_inet(s, false)?;
            cell(Cell::IpAddrValue(s.clone()))
        }
        (ColumnType::Inet, Value::String(s)) => {
            if s.is_empty() {
                return Ok(null());
            }
            check_inet(s, false)?;
            cell(Cell::CidrRangeValue(s.clone()))
        }
        (ColumnType::Cidr, Value::String(s)) => {
            if s.is_empty() {
                return Ok(null());
            }
            check_inet(s, true)?;
            cell(Cell::CidrRangeValue(s.clone()))
        }
        (ColumnType::Ltree, Value::String(s)) => cell(Cell::LtreeValue(s.clone())),
        _ => return Err(wrong()),
    })
}

/// Accepts `addr` or `addr/prefix`, IPv4 or IPv6, as Postgres `inet` input
/// does: the prefix is plain decimal (no sign; no leading zero, which the IPv6
/// parser refuses); for `cidr`, no bit may be set to the right of the prefix.
fn check_inet(s: &str, cidr: bool) -> Result<(), String> {
    let (addr, mask) = match s.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (s, None),
    };
    let ip: std::net::IpAddr = addr
        .parse()
        .map_err(|_| format!("'{s}' is not an IP address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match mask {
        None => max,
        Some(m) => match m.parse::<u8>() {
            Ok(bits)
                if bits <= max
                    && m.bytes().all(|b| b.is_ascii_digit())
                    && (m == "0" || !m.starts_with('0')) =>
            {
                bits
            }
            _ => return Err(format!("'{s}' has an invalid prefix length")),
        },
    };
    if cidr {
        let value = match ip {
            std::net::IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
            std::net::IpAddr::V6(a) => u128::from(a),
        };
        let network = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
        if value & !network != 0 {
            return Err(format!(
                "'{s}' has bits set to the right of its prefix length (a cidr is a network address)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_ip_strings_become_null_as_the_go_sdk_sends_them() {
        let c = encode(ColumnType::Inet, &Value::String(String::new())).unwrap();
        assert_eq!(c, null());
    }

    #[test]
    fn inet_columns_travel_as_cidr_range_value() {
        let c = encode(ColumnType::Inet, &"10.0.0.1".into()).unwrap();
        assert_eq!(c.value, Some(Cell::CidrRangeValue("10.0.0.1".into())));
        let c = encode(ColumnType::IpAddr, &"::1".into()).unwrap();
        assert_eq!(c.value, Some(Cell::IpAddrValue("::1".into())));
    }

    #[test]
    fn values_postgres_would_reject_are_errors() {
        assert!(encode(ColumnType::Inet, &"not-an-ip".into()).is_err());
        assert!(encode(ColumnType::Cidr, &"10.0.0.0/33".into()).is_err());
        let far = Value::Timestamp(Timestamp {
            seconds: MAX_SECONDS + 1,
            nanos: 0,
        });
        assert!(encode(ColumnType::Timestamp, &far).is_err());
        assert!(encode(ColumnType::Int, &"1".into()).is_err());
    }

    #[test]
    fn json_null_is_sql_null_and_strings_become_json_strings() {
        assert_eq!(
            encode(ColumnType::Json, &Value::Json(serde_json::Value::Null)).unwrap(),
            null()
        );
        // Raw JSON text `null` stays JSON: what the Go SDK sends for a nil slice.
        assert_eq!(
            encode(ColumnType::Json, &Value::RawJson(b"null".to_vec())).unwrap(),
            cell(Cell::JsonValue(b"null".to_vec()))
        );
        let c = encode(ColumnType::Json, &"a\"b".into()).unwrap();
        assert_eq!(c.value, Some(Cell::JsonValue(br#""a\"b""#.to_vec())));
    }
}
