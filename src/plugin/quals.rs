//! Quals: the WHERE-clause restrictions the FDW sends with each scan, decoded
//! from the wire and evaluated exactly against row values.
//!
//! | SQL                                  | Qual sent                                   |
//! |--------------------------------------|---------------------------------------------|
//! | `where id = 5`                       | `Qual { column: "id", op: "=", value: Int(5) }` |
//! | `where id in (1, 2)`                 | `Qual { column: "id", op: "=", value: List([Int(1), Int(2)]) }` |
//! | `where name is null`                 | `Qual { column: "name", op: "is null", value: None }` |
//! | `where not flag`                     | `Qual { column: "flag", op: "<>", value: Bool(true) }` |
//! | `where name like 'a%'`               | `Qual { column: "name", op: "~~", value: String("a%") }` |

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::pb::steampipe as pb;
use crate::plugin::value::{Timestamp, Value};

/// A decoded qual value.
#[derive(Debug, Clone, PartialEq)]
pub enum QualValue {
    /// text
    String(String),
    /// integer types
    Int(i64),
    /// float types
    Double(f64),
    /// bool
    Bool(bool),
    /// inet / cidr: the address text and its prefix length
    Inet {
        /// the address without prefix
        addr: String,
        /// the prefix length
        mask: i32,
    },
    /// jsonb, parsed
    Json(serde_json::Value),
    /// timestamp / timestamptz / date
    Timestamp(Timestamp),
    /// IN-list / ANY(array) / OR of equalities
    List(Vec<QualValue>),
    /// ltree
    Ltree(String),
}

impl QualValue {
    /// What kind of value this is, for an error message: "text", "an
    /// integer", "a list"...; `None` (no `=` qual) is "no value".
    pub fn describe(v: Option<&QualValue>) -> &'static str {
        match v {
            None => "no value",
            Some(QualValue::String(_)) => "text",
            Some(QualValue::Int(_)) => "an integer",
            Some(QualValue::Double(_)) => "a number",
            Some(QualValue::Bool(_)) => "a boolean",
            Some(QualValue::Inet { .. }) => "an inet",
            Some(QualValue::Json(_)) => "json",
            Some(QualValue::Timestamp(_)) => "a timestamp",
            Some(QualValue::List(_)) => "a list",
            Some(QualValue::Ltree(_)) => "an ltree",
        }
    }

    /// Decodes the wire value; an unset oneof (a NULL array element) is `None`.
    pub fn from_proto(v: &pb::QualValue) -> Result<Option<QualValue>, String> {
        use pb::qual_value::Value as V;
        Ok(Some(match &v.value {
            None => return Ok(None),
            Some(V::StringValue(s)) => QualValue::String(s.clone()),
            Some(V::Int64Value(i)) => QualValue::Int(*i),
            Some(V::DoubleValue(d)) => QualValue::Double(*d),
            Some(V::BoolValue(b)) => QualValue::Bool(*b),
            Some(V::InetValue(i)) => QualValue::Inet {
                addr: i.addr.clone(),
                mask: i.mask,
            },
            Some(V::JsonbValue(s)) => QualValue::Json(
                serde_json::from_str(s).map_err(|e| format!("invalid jsonb qual value: {e}"))?,
            ),
            Some(V::TimestampValue(t)) => {
                let nanos = u32::try_from(t.nanos)
                    .map_err(|_| format!("invalid timestamp qual value: nanos {}", t.nanos))?;
                QualValue::Timestamp(
                    Timestamp::new(t.seconds, nanos)
                        .ok_or_else(|| {
                            format!(
                                "timestamp qual value out of range: {} s after 1970 (years 0001..9999 only)",
                                t.seconds
                            )
                        })?,
                )
            }
            Some(V::ListValue(l)) => {
                let mut out = Vec::with_capacity(l.values.len());
                for item in &l.values {
                    // A NULL element never equals anything: drop it.
                    if let Some(v) = QualValue::from_proto(item)? {
                        out.push(v);
                    }
                }
                QualValue::List(out)
            }
            Some(V::LtreeValue(s)) => QualValue::Ltree(s.clone()),
        }))
    }

    /// The text of a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            QualValue::String(s) | QualValue::Ltree(s) => Some(s),
            QualValue::Inet { addr, .. } => Some(addr),
            _ => None,
        }
    }
}

/// One restriction on one column.
#[derive(Debug, Clone, PartialEq)]
pub struct Qual {
    /// the column
    pub column: String,
    /// the Postgres operator name (`=`, `<>`, `~~`, `is null`…); `!=` becomes `<>`
    pub operator: String,
    /// the compared value; `None` for `is null` / `is not null` and for SQL NULL
    pub value: Option<QualValue>,
}

impl Qual {
    /// Decodes one wire qual. The deprecated tuple operator is never sent by the FDW.
    pub fn from_proto(column: &str, q: &pb::Qual) -> Result<Qual, String> {
        let operator = match &q.operator {
            Some(pb::qual::Operator::StringValue(s)) => normalise_operator(s),
            Some(pb::qual::Operator::TupleValue(t)) => normalise_operator(&t.name),
            None => return Err(format!("qual on column '{column}' has no operator")),
        };
        let value = match &q.value {
            Some(v) => QualValue::from_proto(v).map_err(|e| format!("column '{column}': {e}"))?,
            None => None,
        };
        let column = if q.field_name.is_empty() {
            column.to_string()
        } else {
            q.field_name.clone()
        };
        Ok(Qual {
            column,
            operator,
            value,
        })
    }

    /// True if `value` satisfies this qual with Postgres semantics. `None` means
    /// "cannot tell exactly" (an operator or type pairing this module does not
    /// evaluate), and the caller keeps the row.
    pub fn matches(&self, value: &Value) -> Option<bool> {
        match self.operator.as_str() {
            "is null" => return Some(value.is_null()),
            "is not null" => return Some(!value.is_null()),
            _ => {}
        }
        // Any comparison with NULL on either side is not true.
        let rhs = match &self.value {
            None => return Some(false),
            Some(v) => v,
        };
        if value.is_null() {
            return Some(false);
        }
        if let QualValue::List(items) = rhs {
            return match self.operator.as_str() {
                // IN / = ANY: true if any element matches.
                "=" => {
                    let mut any_unknown = false;
                    for item in items {
                        match compare_op("=", value, item) {
                            Some(true) => return Some(true),
                            None => any_unknown = true,
                            Some(false) => {}
                        }
                    }
                    if any_unknown {
                        None
                    } else {
                        Some(false)
                    }
                }
                // NOT IN / <> ALL: true if no element matches.
                "<>" => {
                    for item in items {
                        match compare_op("=", value, item) {
                            Some(true) => return Some(false),
                            None => return None,
                            Some(false) => {}
                        }
                    }
                    Some(true)
                }
                _ => None,
            };
        }
        compare_op(&self.operator, value, rhs)
    }
}

/// `!=` is `<>` everywhere in the SDK.
pub fn normalise_operator(op: &str) -> String {
    match op {
        "!=" => "<>".to_string(),
        other => other.to_string(),
    }
}

/// The operators this module evaluates exactly.
pub const EVALUATED_OPERATORS: &[&str] = &[
    "=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "is null",
    "is not null",
    "~~",
    "!~~",
    "~~*",
    "!~~*",
];

fn compare_op(op: &str, lhs: &Value, rhs: &QualValue) -> Option<bool> {
    match op {
        "~~" | "!~~" | "~~*" | "!~~*" => {
            let text = match lhs {
                Value::String(s) => s,
                _ => return None,
            };
            let pattern = rhs.as_str()?;
            let insensitive = op.contains('*');
            let hit = if insensitive {
                like(&text.to_lowercase(), &pattern.to_lowercase())
            } else {
                like(text, pattern)
            };
            Some(if op.starts_with('!') { !hit } else { hit })
        }
        // jsonb: only equality is evaluated here.
        "=" | "<>" if matches!(lhs, Value::Json(_)) => match (lhs, rhs) {
            (Value::Json(a), QualValue::Json(b)) => Some((a == b) == (op == "=")),
            _ => None,
        },
        _ => {
            let ord = order(lhs, rhs)?;
            Some(match op {
                "=" => ord == Ordering::Equal,
                "<>" => ord != Ordering::Equal,
                "<" => ord == Ordering::Less,
                "<=" => ord != Ordering::Greater,
                ">" => ord == Ordering::Greater,
                ">=" => ord != Ordering::Less,
                _ => return None,
            })
        }
    }
}

/// Orders a row value against a qual value, for the type pairings Postgres
/// would compare without a collation. Text ordering beyond equality depends on
/// the database collation, so only `=`/`<>` are exact for text: the byte order
/// used here matches the `C` collation.
fn order(lhs: &Value, rhs: &QualValue) -> Option<Ordering> {
    match (lhs, rhs) {
        (Value::Int(a), QualValue::Int(b)) => Some(a.cmp(b)),
        (Value::Int(a), QualValue::Double(b)) => (*a as f64).partial_cmp(b),
        (Value::Double(a), QualValue::Double(b)) => a.partial_cmp(b),
        (Value::Double(a), QualValue::Int(b)) => a.partial_cmp(&(*b as f64)),
        (Value::Bool(a), QualValue::Bool(b)) => Some(a.cmp(b)),
        (Value::String(a), QualValue::String(b) | QualValue::Ltree(b)) => Some(a.as_str().cmp(b)),
        (Value::String(a), QualValue::Inet { addr, mask }) => inet_order(a, addr, *mask),
        (Value::Timestamp(a), QualValue::Timestamp(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn inet_order(row: &str, addr: &str, mask: i32) -> Option<Ordering> {
    let (row_addr, row_mask) = match row.split_once('/') {
        Some((a, m)) => (a, m.parse::<i32>().ok()?),
        None => (row, -1),
    };
    let a: std::net::IpAddr = row_addr.parse().ok()?;
    let b: std::net::IpAddr = addr.parse().ok()?;
    let full = |ip: &std::net::IpAddr| if ip.is_ipv4() { 32 } else { 128 };
    let row_mask = if row_mask < 0 { full(&a) } else { row_mask };
    let mask = if mask <= 0 { full(&b) } else { mask };
    if a == b && row_mask == mask {
        Some(Ordering::Equal)
    } else {
        Some((a, row_mask).cmp(&(b, mask)))
    }
}

/// SQL LIKE: `%` any run, `_` one character, `\` escapes the next character.
pub fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    like_at(&t, &p)
}

fn like_at(t: &[char], p: &[char]) -> bool {
    // Iterative matcher with backtracking to the last `%`.
    let (mut ti, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '%' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                '_' => {
                    ti += 1;
                    pi += 1;
                    continue;
                }
                '\\' if pi + 1 < p.len() => {
                    if p[pi + 1] == t[ti] {
                        ti += 1;
                        pi += 2;
                        continue;
                    }
                }
                c => {
                    if c == t[ti] {
                        ti += 1;
                        pi += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

/// The quals of one scan, by column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QualMap {
    by_column: HashMap<String, Vec<Qual>>,
}

impl QualMap {
    /// Decodes the `QueryContext.quals` map; a malformed qual is an error naming its column.
    pub fn from_proto(quals: &HashMap<String, pb::Quals>) -> Result<QualMap, String> {
        let mut by_column: HashMap<String, Vec<Qual>> = HashMap::new();
        for (column, qs) in quals {
            for q in &qs.quals {
                let qual = Qual::from_proto(column, q)?;
                by_column.entry(qual.column.clone()).or_default().push(qual);
            }
        }
        Ok(QualMap { by_column })
    }

    /// Builds a map from decoded quals (used by planning and tests).
    pub fn from_quals(quals: impl IntoIterator<Item = Qual>) -> QualMap {
        let mut by_column: HashMap<String, Vec<Qual>> = HashMap::new();
        for q in quals {
            by_column.entry(q.column.clone()).or_default().push(q);
        }
        QualMap { by_column }
    }

    /// The quals on `column`.
    pub fn on(&self, column: &str) -> &[Qual] {
        self.by_column.get(column).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The single `=` value on `column`, if there is one that is not a list.
    pub fn equals(&self, column: &str) -> Option<&QualValue> {
        self.on(column)
            .iter()
            .find_map(|q| match (&*q.operator, &q.value) {
                ("=", Some(v)) if !matches!(v, QualValue::List(_)) => Some(v),
                _ => None,
            })
    }

    /// The `=` values on `column`: one for `=`, several for an IN list.
    pub fn equal_values(&self, column: &str) -> Option<Vec<&QualValue>> {
        self.on(column)
            .iter()
            .find_map(|q| match (&*q.operator, &q.value) {
                ("=", Some(QualValue::List(items))) => Some(items.iter().collect()),
                ("=", Some(v)) => Some(vec![v]),
                _ => None,
            })
    }

    /// Every column with at least one qual.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.by_column.keys().map(String::as_str)
    }

    /// All quals.
    pub fn iter(&self) -> impl Iterator<Item = &Qual> {
        self.by_column.values().flatten()
    }

    /// True if there are no quals.
    pub fn is_empty(&self) -> bool {
        self.by_column.values().all(Vec::is_empty)
    }

    /// Replaces the quals on `column`.
    pub fn set(&mut self, column: &str, quals: Vec<Qual>) {
        self.by_column.insert(column.to_string(), quals);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(op: &str, v: Option<QualValue>) -> Qual {
        Qual {
            column: "c".into(),
            operator: op.into(),
            value: v,
        }
    }

    #[test]
    fn like_follows_sql_wildcards_and_escapes() {
        assert!(like("abc", "a%"));
        assert!(like("abc", "%c"));
        assert!(like("abc", "a_c"));
        assert!(!like("abc", "a_"));
        assert!(like("a%c", "a\\%c"));
        assert!(!like("abc", "a\\%c"));
        assert!(like("", "%"));
        assert!(like("mississippi", "%iss%pi"));
    }

    #[test]
    fn in_lists_match_any_element_and_not_in_matches_none() {
        let list = QualValue::List(vec![QualValue::Int(1), QualValue::Int(3)]);
        assert_eq!(
            q("=", Some(list.clone())).matches(&Value::Int(3)),
            Some(true)
        );
        assert_eq!(
            q("=", Some(list.clone())).matches(&Value::Int(2)),
            Some(false)
        );
        assert_eq!(
            q("<>", Some(list.clone())).matches(&Value::Int(2)),
            Some(true)
        );
        assert_eq!(q("<>", Some(list)).matches(&Value::Int(1)), Some(false));
    }

    #[test]
    fn null_never_compares_true_but_is_null_sees_it() {
        assert_eq!(
            q("=", Some(QualValue::Int(1))).matches(&Value::Null),
            Some(false)
        );
        assert_eq!(
            q("<>", Some(QualValue::Int(1))).matches(&Value::Null),
            Some(false)
        );
        assert_eq!(q("is null", None).matches(&Value::Null), Some(true));
        assert_eq!(q("is not null", None).matches(&Value::Int(1)), Some(true));
        assert_eq!(q("=", None).matches(&Value::Int(1)), Some(false));
    }

    #[test]
    fn inet_equality_ignores_a_full_prefix() {
        let v = QualValue::Inet {
            addr: "10.0.0.1".into(),
            mask: 32,
        };
        assert_eq!(q("=", Some(v)).matches(&"10.0.0.1".into()), Some(true));
    }
}
