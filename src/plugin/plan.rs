//! Get vs List planning, as the Go SDK decides it from the key columns and quals.
//!
//! - `where id = 'i-1'` on a table whose Get key column is `id` → one Get.
//! - `where id in ('i-1','i-2')` → two Gets, run in parallel.
//! - otherwise List; an IN list on one List key column → one List call per value.
//! - a required key column without a qual → INTERNAL error, with the SDK's text.

use crate::pb::steampipe as pb;
use crate::plugin::quals::{Qual, QualMap, QualValue};

/// Whether a key column must, may, or may as one of a group be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Require {
    /// the call cannot run without it
    Required,
    /// passed to the call when present
    Optional,
    /// at least one of the `AnyOf` columns is needed
    AnyOf,
}

impl Require {
    fn as_str(self) -> &'static str {
        match self {
            Require::Required => "required",
            Require::Optional => "optional",
            Require::AnyOf => "any_of",
        }
    }
}

/// A column whose quals a Get or List call can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyColumn {
    /// the column name
    pub name: String,
    /// the operators the call accepts for it (`=` by default)
    pub operators: Vec<String>,
    /// whether it must be given
    pub require: Require,
    /// `subset` (the default) or `exact`
    pub cache_match: String,
    /// Whether rows are dropped here when they fail this column's quals
    /// (the default; see [`KeyColumn::api_matched`]).
    pub filter_rows: bool,
}

impl KeyColumn {
    fn new(name: &str, require: Require) -> KeyColumn {
        KeyColumn {
            name: name.to_string(),
            operators: vec!["=".to_string()],
            require,
            cache_match: "subset".to_string(),
            filter_rows: true,
        }
    }
    /// A required `=` key column.
    pub fn required(name: &str) -> KeyColumn {
        KeyColumn::new(name, Require::Required)
    }
    /// An optional `=` key column.
    pub fn optional(name: &str) -> KeyColumn {
        KeyColumn::new(name, Require::Optional)
    }
    /// An `any_of` `=` key column.
    pub fn any_of(name: &str) -> KeyColumn {
        KeyColumn::new(name, Require::AnyOf)
    }
    /// Replaces the accepted operators (`!=` is stored as `<>`).
    pub fn operators(mut self, ops: &[&str]) -> KeyColumn {
        self.operators = ops
            .iter()
            .map(|o| crate::plugin::quals::normalise_operator(o))
            .collect();
        self
    }

    /// A cached scan serves this one only if it had the same quals on this
    /// column (the SDK's `CacheMatchExact`), not fewer.
    pub fn cache_exact(mut self) -> KeyColumn {
        self.cache_match = "exact".to_string();
        self
    }

    /// The API matches this column's value its own way (an EC2 `Owners`
    /// alias such as `amazon` or `self` is not the rows' `owner_id`): rows
    /// go out as the API returned them, as the Go SDK sends them, and
    /// Postgres re-checks the qual.
    pub fn api_matched(mut self) -> KeyColumn {
        self.filter_rows = false;
        self
    }

    /// The wire form for `getCallKeyColumnList` / `listCallKeyColumnList`.
    pub fn to_proto(&self) -> pb::KeyColumn {
        pb::KeyColumn {
            name: self.name.clone(),
            operators: self.operators.clone(),
            require: self.require.as_str().to_string(),
            cache_match: self.cache_match.clone(),
        }
    }

    /// The quals on this column that the call accepts. A bool column declared
    /// with `=` also takes `<> true` (`where not flag`) as `= false`.
    pub fn matching_quals(&self, quals: &QualMap) -> Vec<Qual> {
        quals
            .on(&self.name)
            .iter()
            .filter_map(|q| {
                if self.operators.contains(&q.operator) {
                    return Some(q.clone());
                }
                if q.operator == "<>" && self.operators.iter().any(|o| o == "=") {
                    if let Some(QualValue::Bool(b)) = q.value {
                        return Some(Qual {
                            column: q.column.clone(),
                            operator: "=".to_string(),
                            value: Some(QualValue::Bool(!b)),
                        });
                    }
                }
                None
            })
            .collect()
    }
}

/// Which fetch a scan makes, and with which key-column quals per call.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// One Get per entry (an IN list gives several, run in parallel).
    Get(Vec<QualMap>),
    /// One List per entry (an IN list on one List key column gives several).
    List(Vec<QualMap>),
}

/// A scan that cannot be planned; the SDK reports these as INTERNAL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{call}' call for table '{table}' is missing {count} required qual{plural}: {detail}")]
pub struct MissingQuals {
    call: &'static str,
    table: String,
    count: usize,
    plural: &'static str,
    detail: String,
}

struct Matched {
    quals: QualMap,
    missing: Vec<String>,
}

fn match_keys(keys: &[KeyColumn], quals: &QualMap) -> Matched {
    let mut out = QualMap::default();
    let mut missing = Vec::new();
    let mut any_of_declared = Vec::new();
    let mut any_of_given = false;
    for kc in keys {
        let m = kc.matching_quals(quals);
        match kc.require {
            Require::Required if m.is_empty() => missing.push(format!(
                "column:'{}' operator: {}",
                kc.name,
                kc.operators.join(",")
            )),
            Require::AnyOf => {
                any_of_declared.push(kc);
                any_of_given |= !m.is_empty();
            }
            _ => {}
        }
        if !m.is_empty() {
            out.set(&kc.name, m);
        }
    }
    if !any_of_declared.is_empty() && !any_of_given {
        let names: Vec<&str> = any_of_declared.iter().map(|k| k.name.as_str()).collect();
        missing.push(format!(
            "one of columns:'{}' operator: =",
            names.join("','")
        ));
    }
    Matched {
        quals: out,
        missing,
    }
}

/// Splits the call on the first key column holding an `=` IN list: one call per value.
fn expand(keys: &[KeyColumn], matched: QualMap, only_required: bool) -> Vec<QualMap> {
    let list_columns: Vec<&KeyColumn> = keys
        .iter()
        .filter(|kc| !only_required || kc.require == Require::Required)
        .filter(|kc| {
            matched
                .on(&kc.name)
                .iter()
                .any(|q| q.operator == "=" && matches!(q.value, Some(QualValue::List(_))))
        })
        .collect();
    let Some(kc) = list_columns.first() else {
        return vec![matched];
    };
    let quals = matched.on(&kc.name).to_vec();
    let (lists, rest): (Vec<Qual>, Vec<Qual>) = quals
        .into_iter()
        .partition(|q| q.operator == "=" && matches!(q.value, Some(QualValue::List(_))));
    let Some(Some(QualValue::List(values))) = lists.into_iter().next().map(|q| q.value) else {
        return vec![matched];
    };
    values
        .into_iter()
        .map(|v| {
            let mut m = matched.clone();
            let mut qs = vec![Qual {
                column: kc.name.clone(),
                operator: "=".to_string(),
                value: Some(v),
            }];
            qs.extend(rest.iter().cloned());
            m.set(&kc.name, qs);
            m
        })
        .collect()
}

/// Chooses Get or List for `table` given its key columns (`None` = no such call).
pub fn plan(
    table: &str,
    get_keys: Option<&[KeyColumn]>,
    list_keys: Option<&[KeyColumn]>,
    quals: &QualMap,
) -> Result<Plan, MissingQuals> {
    if let Some(keys) = get_keys {
        let m = match_keys(keys, quals);
        let uses_equality = keys
            .iter()
            .any(|kc| m.quals.equal_values(&kc.name).is_some());
        if m.missing.is_empty() && uses_equality {
            return Ok(Plan::Get(expand(keys, m.quals, false)));
        }
        if list_keys.is_none() {
            let mut detail = m.missing;
            if detail.is_empty() {
                // Every required key column has a qual, but none is an `=`.
                let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
                detail.push(format!(
                    "one of columns:'{}' operator: =",
                    names.join("','")
                ));
            }
            return Err(missing("Get", table, detail));
        }
    }
    let keys = list_keys.unwrap_or(&[]);
    let m = match_keys(keys, quals);
    if !m.missing.is_empty() {
        return Err(missing("List", table, m.missing));
    }
    let list_valued = keys
        .iter()
        .filter(|kc| {
            m.quals
                .on(&kc.name)
                .iter()
                .any(|q| q.operator == "=" && matches!(q.value, Some(QualValue::List(_))))
        })
        .count();
    let calls = match list_valued {
        0 => vec![m.quals],
        1 => expand(keys, m.quals, false),
        _ => {
            let required_lists = keys
                .iter()
                .filter(|kc| kc.require == Require::Required)
                .filter(|kc| {
                    m.quals
                        .on(&kc.name)
                        .iter()
                        .any(|q| matches!(q.value, Some(QualValue::List(_))))
                })
                .count();
            if required_lists == 1 {
                expand(keys, m.quals, true)
            } else {
                vec![m.quals]
            }
        }
    };
    Ok(Plan::List(calls))
}

fn missing(call: &'static str, table: &str, detail: Vec<String>) -> MissingQuals {
    let count = detail.len().max(1);
    MissingQuals {
        call,
        table: table.to_string(),
        count,
        plural: if count == 1 { "" } else { "s" },
        detail: detail.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(col: &str, v: QualValue) -> Qual {
        Qual {
            column: col.into(),
            operator: "=".into(),
            value: Some(v),
        }
    }
    fn s(x: &str) -> QualValue {
        QualValue::String(x.into())
    }

    #[test]
    fn equality_on_the_get_key_plans_one_get() {
        let quals = QualMap::from_quals([eq("id", s("a"))]);
        let p = plan(
            "t",
            Some(&[KeyColumn::required("id")]),
            Some(&[KeyColumn::optional("name")]),
            &quals,
        )
        .unwrap();
        assert_eq!(p, Plan::Get(vec![quals]));
    }

    #[test]
    fn an_in_list_on_the_get_key_plans_one_get_per_value() {
        let quals = QualMap::from_quals([eq("id", QualValue::List(vec![s("a"), s("b")]))]);
        let Plan::Get(calls) =
            plan("t", Some(&[KeyColumn::required("id")]), Some(&[]), &quals).unwrap()
        else {
            panic!("expected get")
        };
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1].equals("id"), Some(&s("b")));
    }

    #[test]
    fn no_get_qual_falls_back_to_list_with_optional_quals() {
        let quals = QualMap::from_quals([eq("name", s("x"))]);
        let p = plan(
            "t",
            Some(&[KeyColumn::required("id")]),
            Some(&[KeyColumn::optional("name")]),
            &quals,
        )
        .unwrap();
        assert_eq!(p, Plan::List(vec![quals]));
    }

    #[test]
    fn a_missing_required_list_qual_is_the_sdks_error() {
        let err = plan(
            "t",
            None,
            Some(&[KeyColumn::required("region")]),
            &QualMap::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "'List' call for table 't' is missing 1 required qual: column:'region' operator: ="
        );
    }

    #[test]
    fn not_flag_matches_an_equality_key_as_false() {
        let quals = QualMap::from_quals([Qual {
            column: "flag".into(),
            operator: "<>".into(),
            value: Some(QualValue::Bool(true)),
        }]);
        let Plan::List(calls) =
            plan("t", None, Some(&[KeyColumn::optional("flag")]), &quals).unwrap()
        else {
            panic!()
        };
        assert_eq!(calls[0].equals("flag"), Some(&QualValue::Bool(false)));
    }
}
