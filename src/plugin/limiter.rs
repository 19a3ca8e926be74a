//! Steampipe's rate limiters, enforced as steampipe-plugin-sdk v5.14.0's
//! `rate_limiter` package and `plugin/*rate_limiter*.go` do.
//!
//! - A definition has a token bucket (`fill_rate` tokens a second, at most
//!   `bucket_size` banked; none when `fill_rate` is 0) and a concurrency cap
//!   (`max_concurrency`; none when 0), a `scope` (the scope values that name
//!   one instance of it) and a `where` filter over the scope values.
//! - The plugin's own definitions come first; a `SetRateLimiters`
//!   definition with the same name replaces one, others are added. Every
//!   `SetRateLimiters` call drops the instances made so far.
//! - Each call (a List page, a Get, a hydrate) has scope values: its tags
//!   (`service`, `action`, `function_name`), then the table's (`table`), then
//!   the scan's (`connection`, and the matrix value `region`), earlier ones
//!   winning. A definition applies when every one of its `scope` names has a
//!   value and its `where` filter holds over all the values; one instance is
//!   made per definition and value of its scope.
//! - A call waits for the longest delay any applying bucket asks (a token is
//!   taken from each, as Go's `rate.Limiter.Reserve`). Hydrate calls first
//!   take a slot of every applying concurrency cap; List and Get calls do
//!   not (the SDK applies `max_concurrency` to hydrate calls only).
//!
//! Where this differs from the SDK, it is on input the SDK accepts and then
//! never answers for: a `fill_rate` with a `bucket_size` below 1 (Go's
//! limiter then makes every call wait forever), a negative rate or
//! concurrency, and the `where` forms its evaluator rejects at query time.
//! Those are refused by `SetRateLimiters` with a message naming the limiter.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::pb::steampipe as pb;

/// Scope values of one call, by name.
pub type ScopeValues = BTreeMap<String, String>;

/// The scope value names the SDK fills itself.
pub const SCOPE_CONNECTION: &str = "connection";
/// The table's name.
pub const SCOPE_TABLE: &str = "table";
/// The Go name of the List, Get or hydrate function.
pub const SCOPE_FUNCTION: &str = "function_name";

/// One parsed limiter definition.
#[derive(Debug, Clone)]
pub struct Definition {
    name: String,
    fill_rate: f32,
    bucket_size: i64,
    max_concurrency: i64,
    scope: Vec<String>,
    where_: String,
    filter: Option<Filter>,
}

impl Definition {
    /// Parses a wire definition; `Err` says what is wrong with it.
    pub fn from_proto(p: &pb::RateLimiterDefinition) -> Result<Definition, String> {
        let name = &p.name;
        let bad = |m: String| Err(m);
        if name.is_empty() {
            return Err("a rate limiter without a name".into());
        }
        if !p.fill_rate.is_finite() || p.fill_rate < 0.0 {
            return bad(format!("fill_rate must be 0 or more, got {}", p.fill_rate));
        }
        if p.fill_rate > 0.0 && p.bucket_size < 1 {
            return bad(format!(
                "fill_rate {} needs a bucket_size of at least 1, got {} (no call could ever start)",
                p.fill_rate, p.bucket_size
            ));
        }
        if p.max_concurrency < 0 {
            return bad(format!(
                "max_concurrency must be 0 or more, got {}",
                p.max_concurrency
            ));
        }
        let filter = if p.r#where.is_empty() {
            None
        } else {
            let f = parse_filter(&p.r#where)
                .map_err(|e| format!("failed to parse 'where' property: {e}"))?;
            // As the SDK: a trial run over no values finds unsupported operators.
            f.eval(&ScopeValues::new())
                .map_err(|e| format!("'where' property: {e}"))?;
            Some(f)
        };
        Ok(Definition {
            name: name.clone(),
            fill_rate: p.fill_rate,
            bucket_size: p.bucket_size,
            max_concurrency: p.max_concurrency,
            scope: p.scope.clone(),
            where_: p.r#where.clone(),
            filter,
        })
    }

    /// A definition from its parts (a plugin's own), checked as
    /// `SetRateLimiters` checks one.
    pub fn new(
        name: &str,
        fill_rate: f32,
        bucket_size: i64,
        max_concurrency: i64,
        scope: &[&str],
        where_: &str,
    ) -> Result<Definition, String> {
        Definition::from_proto(&pb::RateLimiterDefinition {
            name: name.to_string(),
            fill_rate,
            bucket_size,
            max_concurrency,
            scope: scope.iter().map(|s| s.to_string()).collect(),
            r#where: where_.to_string(),
        })
        .map_err(|e| format!("rate limiter '{name}': {e}"))
    }

    /// The wire form.
    pub fn to_proto(&self) -> pb::RateLimiterDefinition {
        pb::RateLimiterDefinition {
            name: self.name.clone(),
            fill_rate: self.fill_rate,
            bucket_size: self.bucket_size,
            max_concurrency: self.max_concurrency,
            scope: self.scope.clone(),
            r#where: self.where_.clone(),
        }
    }

    /// The definition's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn satisfied(&self, values: &ScopeValues) -> bool {
        match &self.filter {
            None => true,
            // An error at query time means "does not apply", as the SDK.
            Some(f) => f.eval(values).unwrap_or(false),
        }
    }
}

/// A token bucket with `rate.Limiter`'s reservation arithmetic: tokens
/// accrue at `rate` a second up to `burst`; a reservation takes one token
/// now, going below zero if need be, and the caller waits until the
/// balance is back at zero.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64, burst: i64) -> Bucket {
        Bucket {
            rate,
            burst: burst as f64,
            tokens: burst as f64,
            last: Instant::now(),
        }
    }

    fn reserve(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now.max(self.last);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// One instance of a definition, for one set of scope values.
#[derive(Debug)]
pub struct Instance {
    name: String,
    bucket: Option<Mutex<Bucket>>,
    slots: Option<Arc<Semaphore>>,
}

impl Instance {
    fn new(d: &Definition) -> Instance {
        Instance {
            name: d.name.clone(),
            bucket: (d.fill_rate > 0.0)
                .then(|| Mutex::new(Bucket::new(d.fill_rate as f64, d.bucket_size))),
            slots: (d.max_concurrency > 0)
                .then(|| Arc::new(Semaphore::new(d.max_concurrency.min(1 << 20) as usize))),
        }
    }
}

/// The limiters that apply to one call (the SDK's `MultiLimiter`).
#[derive(Debug, Default, Clone)]
pub struct MultiLimiter {
    limiters: Vec<Arc<Instance>>,
}

/// Slots of concurrency caps, held while a hydrate call runs.
pub struct Slots(#[allow(dead_code)] Vec<OwnedSemaphorePermit>);

impl MultiLimiter {
    /// No limiter applies.
    pub fn is_empty(&self) -> bool {
        self.limiters.is_empty()
    }

    /// The names of the applying limiters.
    pub fn names(&self) -> Vec<&str> {
        self.limiters.iter().map(|l| l.name.as_str()).collect()
    }

    /// Takes a token from every applying bucket and waits for the longest
    /// delay among them; returns that delay.
    pub async fn wait(&self) -> Duration {
        if self.limiters.is_empty() {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let delay = self
            .limiters
            .iter()
            .filter_map(|l| l.bucket.as_ref())
            .map(|b| b.lock().unwrap_or_else(|p| p.into_inner()).reserve(now))
            .max()
            .unwrap_or_default();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        delay
    }

    /// Takes a slot of every applying concurrency cap (in name order, the
    /// same for every call, so two calls never hold each other's slots).
    pub async fn acquire(&self) -> Slots {
        let mut held = Vec::new();
        for l in &self.limiters {
            if let Some(s) = &l.slots {
                if let Ok(p) = s.clone().acquire_owned().await {
                    held.push(p);
                }
            }
        }
        Slots(held)
    }
}

/// The plugin's limiter definitions, the user's, and the instances made.
#[derive(Debug, Default)]
pub struct RateLimiters {
    plugin: Vec<Definition>,
    resolved: RwLock<Vec<Definition>>,
    instances: Mutex<HashMap<(String, String), Arc<Instance>>>,
}

impl RateLimiters {
    /// The plugin's own definitions; `Err` on one that does not parse (a
    /// programming error).
    pub fn new(plugin: &[pb::RateLimiterDefinition]) -> Result<RateLimiters, String> {
        let plugin = plugin
            .iter()
            .map(|p| {
                Definition::from_proto(p).map_err(|e| format!("rate limiter '{}': {e}", p.name))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RateLimiters::from_definitions(plugin))
    }

    /// The plugin's own definitions, already parsed.
    pub fn from_definitions(plugin: Vec<Definition>) -> RateLimiters {
        RateLimiters {
            resolved: RwLock::new(plugin.clone()),
            plugin,
            instances: Mutex::default(),
        }
    }

    /// No definition is in force.
    pub fn is_empty(&self) -> bool {
        self.resolved
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// The plugin's own definitions, as `GetRateLimiters` answers.
    pub fn plugin_definitions(&self) -> Vec<pb::RateLimiterDefinition> {
        self.plugin.iter().map(Definition::to_proto).collect()
    }

    /// The definitions in force (the plugin's, overridden and extended by the user's).
    pub fn definitions(&self) -> Vec<pb::RateLimiterDefinition> {
        self.resolved
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(Definition::to_proto)
            .collect()
    }

    /// `SetRateLimiters`: the plugin's definitions, then the user's (a user
    /// definition replaces the plugin's of the same name); every instance
    /// made so far is dropped. A definition that does not parse is left
    /// out and named in the `Err`; the others are in force.
    pub fn set_user(&self, defs: &[pb::RateLimiterDefinition]) -> Result<(), String> {
        let mut resolved = self.plugin.clone();
        let mut errors = Vec::new();
        for p in defs {
            match Definition::from_proto(p) {
                Ok(d) => match resolved.iter_mut().find(|r| r.name == d.name) {
                    Some(r) => *r = d,
                    None => resolved.push(d),
                },
                // The SDK's words.
                Err(e) => errors.push(format!(
                    "failed to create rate limiter '{}' from config: {e}",
                    p.name
                )),
            }
        }
        *self.resolved.write().unwrap_or_else(|p| p.into_inner()) = resolved;
        self.instances
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// The limiters that apply to a call with these scope values.
    pub fn resolve(&self, values: &ScopeValues) -> MultiLimiter {
        let defs = self.resolved.read().unwrap_or_else(|p| p.into_inner());
        if defs.is_empty() {
            return MultiLimiter::default();
        }
        let mut limiters: Vec<Arc<Instance>> = Vec::new();
        for d in defs.iter() {
            // Every scope name needs a value; the filter sees all values.
            let Some(key) = d
                .scope
                .iter()
                .map(|s| values.get(s).map(|v| (s.as_str(), v.as_str())))
                .collect::<Option<BTreeMap<&str, &str>>>()
            else {
                continue;
            };
            if !d.satisfied(values) {
                continue;
            }
            let key = key
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            let instance = self
                .instances
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry((d.name.clone(), key))
                .or_insert_with(|| Arc::new(Instance::new(d)))
                .clone();
            limiters.push(instance);
        }
        limiters.sort_by(|a, b| a.name.cmp(&b.name));
        MultiLimiter { limiters }
    }
}

/// What one call of a table is, for its limiters: the scan's values
/// (connection, table) and the call's tags (function name, service, action).
#[derive(Clone, Default)]
pub struct CallLimiter {
    limiters: Option<Arc<RateLimiters>>,
    values: ScopeValues,
}

impl std::fmt::Debug for CallLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallLimiter")
            .field("values", &self.values)
            .finish_non_exhaustive()
    }
}

impl CallLimiter {
    /// The scope values of one call: `tags` (the call's, first), then the
    /// table's name, then the connection's.
    pub fn new(
        limiters: Option<Arc<RateLimiters>>,
        connection: &str,
        table: &str,
        tags: &[(&str, &str)],
    ) -> CallLimiter {
        let mut values = ScopeValues::new();
        for (k, v) in tags {
            values.entry(k.to_string()).or_insert_with(|| v.to_string());
        }
        values
            .entry(SCOPE_TABLE.into())
            .or_insert_with(|| table.to_string());
        values
            .entry(SCOPE_CONNECTION.into())
            .or_insert_with(|| connection.to_string());
        CallLimiter { limiters, values }
    }

    /// The limiters for this call with the matrix values of one item
    /// (e.g. `region`), which come last.
    pub fn resolve(&self, matrix: &[(&str, &str)]) -> MultiLimiter {
        let Some(l) = &self.limiters else {
            return MultiLimiter::default();
        };
        if matrix.is_empty() {
            return l.resolve(&self.values);
        }
        let mut values = self.values.clone();
        for (k, v) in matrix {
            values.entry(k.to_string()).or_insert_with(|| v.to_string());
        }
        l.resolve(&values)
    }

    /// Waits as a List page or a Get call of the item's matrix values must
    /// (Go's `WaitForListRateLimit`).
    pub async fn wait(&self, matrix: &[(&str, &str)]) -> Duration {
        if self.limiters.is_none() {
            return Duration::ZERO;
        }
        self.resolve(matrix).wait().await
    }
}

// ---------------------------------------------------------------------------
// The `where` filter: the SDK's `filter` grammar (a SQL where clause), as far
// as its scope filter evaluates it: `=`, `!=`, `<>`, `[not] like`,
// `[not] ilike`, `[not] in (...)`, `and`, `or` and parentheses, over
// identifiers and string, number and bool constants.

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Ident(String),
    Const(String),
}

impl Operand {
    /// The SDK looks the left side up by its text and compares with the
    /// right side's text, whatever either is.
    fn text(&self) -> &str {
        match self {
            Operand::Ident(s) | Operand::Const(s) => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Filter {
    Or(Vec<Filter>),
    And(Vec<Filter>),
    Compare(String, Operand, Operand),
    Like {
        not: bool,
        ignore_case: bool,
        ident: String,
        pattern: String,
    },
    In {
        not: bool,
        left: Operand,
        values: Vec<Operand>,
    },
    /// forms the grammar accepts and the evaluator rejects
    Unsupported(String),
}

impl Filter {
    fn eval(&self, values: &ScopeValues) -> Result<bool, String> {
        let lookup = |k: &str| values.get(k).map(String::as_str).unwrap_or("");
        match self {
            Filter::Or(fs) => {
                for f in fs {
                    if f.eval(values)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Filter::And(fs) => {
                for f in fs {
                    if !f.eval(values)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Filter::Compare(op, l, r) => {
                let (l, r) = (lookup(l.text()), r.text());
                match op.as_str() {
                    "=" => Ok(l == r),
                    "!=" | "<>" => Ok(l != r),
                    other => Err(format!("invalid scope filter operator '{other}'")),
                }
            }
            Filter::Like {
                not,
                ignore_case,
                ident,
                pattern,
            } => Ok(like(lookup(ident), pattern, *ignore_case) != *not),
            Filter::In { not, left, values } => {
                if values.is_empty() {
                    return Err("failed to parse filter".into());
                }
                let l = lookup(left.text());
                Ok(values.iter().any(|v| v.text() == l) != *not)
            }
            Filter::Unsupported(m) => Err(m.clone()),
        }
    }
}

/// SQL `like` as the SDK evaluates it: `_` and `%` become fnmatch's `?`
/// and `*`, then fnmatch (with `[...]` classes and `\` escapes).
fn like(value: &str, pattern: &str, ignore_case: bool) -> bool {
    let pattern: String = pattern
        .chars()
        .map(|c| match c {
            '_' => '?',
            '%' => '*',
            c => c,
        })
        .collect();
    let (v, p): (Vec<char>, Vec<char>) = if ignore_case {
        (
            value.to_lowercase().chars().collect(),
            pattern.to_lowercase().chars().collect(),
        )
    } else {
        (value.chars().collect(), pattern.chars().collect())
    };
    fnmatch(&p, &v)
}

fn fnmatch(p: &[char], v: &[char]) -> bool {
    match p.first() {
        None => v.is_empty(),
        Some('*') => (0..=v.len()).any(|i| fnmatch(&p[1..], &v[i..])),
        Some('?') => !v.is_empty() && fnmatch(&p[1..], &v[1..]),
        Some('[') => {
            let Some(c) = v.first() else { return false };
            let mut i = 1;
            let negate = matches!(p.get(1), Some('!') | Some('^'));
            if negate {
                i += 1;
            }
            let mut matched = false;
            let mut first = true;
            while i < p.len() && (first || p[i] != ']') {
                first = false;
                let lo = p[i];
                if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|h| *h != ']') {
                    if lo <= *c && *c <= p[i + 2] {
                        matched = true;
                    }
                    i += 3;
                } else {
                    if lo == *c {
                        matched = true;
                    }
                    i += 1;
                }
            }
            if i >= p.len() {
                // No closing bracket: a literal '['.
                return *c == '[' && fnmatch(&p[1..], &v[1..]);
            }
            matched != negate && fnmatch(&p[i + 1..], &v[1..])
        }
        Some('\\') if p.len() > 1 => v.first() == Some(&p[1]) && fnmatch(&p[2..], &v[1..]),
        Some(c) => v.first() == Some(c) && fnmatch(&p[1..], &v[1..]),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

fn parse_filter(src: &str) -> Result<Filter, String> {
    let mut p = Parser {
        s: src.as_bytes(),
        i: 0,
    };
    p.ws();
    let f = p.or()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!(
            "unexpected text at offset {}: {:?}",
            p.i,
            String::from_utf8_lossy(&p.s[p.i..])
                .chars()
                .take(20)
                .collect::<String>()
        ));
    }
    Ok(f)
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// A keyword (case-insensitive), consumed if present.
    fn keyword(&mut self, kw: &str) -> bool {
        let end = self.i + kw.len();
        if end <= self.s.len() && self.s[self.i..end].eq_ignore_ascii_case(kw.as_bytes()) {
            // Not the start of a longer identifier.
            if self
                .s
                .get(end)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
            {
                return false;
            }
            self.i = end;
            return true;
        }
        false
    }

    fn or(&mut self) -> Result<Filter, String> {
        self.joined("or", Self::and, Filter::Or)
    }

    fn and(&mut self) -> Result<Filter, String> {
        self.joined("and", Self::comparison, Filter::And)
    }

    /// `part (word part)*`: one part as it is, several joined by `join`.
    fn joined(
        &mut self,
        word: &str,
        part: fn(&mut Self) -> Result<Filter, String>,
        join: fn(Vec<Filter>) -> Filter,
    ) -> Result<Filter, String> {
        let mut parts = vec![part(self)?];
        loop {
            let save = self.i;
            self.ws();
            if self.keyword(word) {
                self.ws();
                parts.push(part(self)?);
            } else {
                self.i = save;
                break;
            }
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            join(parts)
        })
    }

    fn comparison(&mut self) -> Result<Filter, String> {
        if self.peek() == Some(b'(') {
            let save = self.i;
            self.i += 1;
            self.ws();
            if let Ok(f) = self.or() {
                self.ws();
                if self.peek() == Some(b')') {
                    self.i += 1;
                    return Ok(f);
                }
            }
            self.i = save;
        }
        {
            let save = self.i;
            if self.keyword("not") {
                self.ws();
                self.comparison()?;
                return Ok(Filter::Unsupported(
                    "unsupported location for 'not' operator".into(),
                ));
            }
            self.i = save;
        }
        let start = self.i;
        let left = self.operand()?;
        let after_left = self.i;
        self.ws();
        // compare
        for op in ["<=", "<>", ">=", "!=", "<", "=", ">"] {
            if self.s[self.i..].starts_with(op.as_bytes()) {
                self.i += op.len();
                self.ws();
                let right = self.operand()?;
                return Ok(Filter::Compare(op.to_string(), left, right));
            }
        }
        // [not] like / ilike
        let save = self.i;
        let not = self.keyword("not") && {
            self.ws();
            true
        };
        let like_kw = if self.keyword("like") {
            Some(false)
        } else if self.keyword("ilike") {
            Some(true)
        } else {
            None
        };
        if let Some(ignore_case) = like_kw {
            let Operand::Ident(ident) = left else {
                return Err("the left side of like must be a scope name".into());
            };
            self.ws();
            let pattern = match self.operand()? {
                Operand::Const(s) if self.s[self.i - 1] == b'\'' => s,
                _ => return Err("the right side of like must be a quoted string".into()),
            };
            return Ok(Filter::Like {
                not,
                ignore_case,
                ident,
                pattern,
            });
        }
        self.i = save;
        // is [not]
        if self.keyword("is") {
            self.ws();
            self.keyword("not");
            self.ws();
            self.operand()?;
            return Ok(Filter::Unsupported(
                "invalid scope filter operator 'is'".into(),
            ));
        }
        // [not] in (...)
        let not = self.keyword("not") && {
            self.ws();
            true
        };
        if self.keyword("in") {
            self.ws();
            if self.peek() != Some(b'(') {
                return Err("expected '(' after in".into());
            }
            self.i += 1;
            self.ws();
            let mut values = Vec::new();
            if self.peek() != Some(b')') {
                loop {
                    values.push(self.operand()?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => {
                            self.i += 1;
                            self.ws();
                        }
                        Some(b')') => break,
                        _ => return Err("expected ',' or ')' in an in list".into()),
                    }
                }
            }
            self.i += 1;
            return Ok(Filter::In { not, left, values });
        }
        self.i = after_left;
        match left {
            Operand::Ident(_) => Ok(Filter::Unsupported(
                "invalid scope filter operator ''".into(),
            )),
            Operand::Const(_) => {
                self.i = start;
                Err(format!("expected a comparison at offset {start}"))
            }
        }
    }

    fn operand(&mut self) -> Result<Operand, String> {
        let start = self.i;
        match self.peek() {
            Some(b'\'') => {
                let mut out = Vec::new();
                self.i += 1;
                loop {
                    match self.peek() {
                        None => return Err(format!("unterminated string at offset {start}")),
                        Some(b'\'') if self.s.get(self.i + 1) == Some(&b'\'') => {
                            out.push(b'\'');
                            self.i += 2;
                        }
                        Some(b'\'') => {
                            self.i += 1;
                            break;
                        }
                        Some(c) => {
                            out.push(c);
                            self.i += 1;
                        }
                    }
                }
                Ok(Operand::Const(String::from_utf8_lossy(&out).into_owned()))
            }
            Some(b'"') => {
                let mut out = Vec::new();
                self.i += 1;
                loop {
                    match self.peek() {
                        None => return Err(format!("unterminated identifier at offset {start}")),
                        Some(b'"') if self.s.get(self.i + 1) == Some(&b'"') => {
                            out.push(b'"');
                            self.i += 2;
                        }
                        Some(b'"') => {
                            self.i += 1;
                            break;
                        }
                        Some(c) => {
                            out.push(c);
                            self.i += 1;
                        }
                    }
                }
                Ok(Operand::Ident(String::from_utf8_lossy(&out).into_owned()))
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                self.i += 1;
                while self.peek().is_some_and(|c| {
                    c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-')
                }) {
                    self.i += 1;
                }
                Ok(Operand::Const(
                    String::from_utf8_lossy(&self.s[start..self.i]).into_owned(),
                ))
            }
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                {
                    self.i += 1;
                }
                let word = String::from_utf8_lossy(&self.s[start..self.i]).to_lowercase();
                if word == "true" || word == "false" {
                    return Ok(Operand::Const(word));
                }
                Ok(Operand::Ident(word))
            }
            _ => Err(format!("expected a value at offset {start}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(
        name: &str,
        rate: f32,
        bucket: i64,
        conc: i64,
        scope: &[&str],
        w: &str,
    ) -> pb::RateLimiterDefinition {
        pb::RateLimiterDefinition {
            name: name.into(),
            fill_rate: rate,
            bucket_size: bucket,
            max_concurrency: conc,
            scope: scope.iter().map(|s| s.to_string()).collect(),
            r#where: w.into(),
        }
    }

    fn values(kv: &[(&str, &str)]) -> ScopeValues {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn holds(w: &str, kv: &[(&str, &str)]) -> bool {
        parse_filter(w).unwrap().eval(&values(kv)).unwrap()
    }

    #[test]
    fn where_filters_evaluate_as_the_sdk_scope_filter() {
        let v = [
            ("service", "ec2"),
            ("action", "DescribeInstances"),
            ("region", "us-east-1"),
        ];
        assert!(holds("service = 'ec2'", &v));
        assert!(holds("service='ec2' AND action = 'DescribeInstances'", &v));
        assert!(!holds("service = 'ec2' and action = 'X'", &v));
        assert!(holds("service = 's3' or region like 'us-%'", &v));
        assert!(holds("region like 'us-east-_'", &v));
        assert!(!holds("region like 'US-%'", &v));
        assert!(holds("region ilike 'US-%'", &v));
        assert!(holds("region not like 'eu-%'", &v));
        assert!(holds(
            "action in ('DescribeInstances', 'DescribeVolumes')",
            &v
        ));
        assert!(holds("action not in ('X')", &v));
        assert!(holds(
            "(service = 's3' or service = 'ec2') and region != 'eu-west-1'",
            &v
        ));
        assert!(holds("service <> 's3'", &v));
        // A name with no value is the empty string; an identifier on the
        // right is compared as its (lower-cased) text.
        assert!(holds("connection = ''", &v));
        assert!(holds("service = EC2", &v));
        assert!(holds("\"service\" = 'ec2'", &v));
        assert!(holds("action = 'it''s'", &[("action", "it's")]));
    }

    #[test]
    fn where_forms_the_sdk_rejects_are_refused_when_set() {
        for (w, want) in [
            ("region < 'x'", "invalid scope filter operator '<'"),
            ("not service = 'ec2'", "unsupported location for 'not'"),
            ("service is null", "invalid scope filter operator 'is'"),
            ("service", "invalid scope filter operator"),
            ("service = ", "failed to parse"),
            ("service = 'ec2", "failed to parse"),
            ("action in ()", "failed to parse filter"),
        ] {
            let e = Definition::from_proto(&def("l1", 1.0, 1, 0, &[], w)).unwrap_err();
            assert!(e.contains(want), "{w}: {e}");
        }
        // As the SDK's trial run over no values: an `and` stops at its
        // first false part, so an operator behind it is found only at
        // query time (and then the limiter does not apply).
        let d =
            Definition::from_proto(&def("l2", 1.0, 1, 0, &[], "service = 'x' and region < 'y'"))
                .unwrap();
        assert!(!d.satisfied(&values(&[("service", "x")])));
    }

    #[test]
    fn input_the_sdk_would_wait_forever_on_is_refused() {
        for (d, want) in [
            (def("a", 5.0, 0, 0, &[], ""), "bucket_size of at least 1"),
            (def("b", -1.0, 5, 0, &[], ""), "fill_rate must be 0 or more"),
            (
                def("c", 0.0, 0, -2, &[], ""),
                "max_concurrency must be 0 or more",
            ),
            (def("", 1.0, 1, 0, &[], ""), "without a name"),
        ] {
            let e = Definition::from_proto(&d).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn scope_picks_the_instance_and_where_picks_the_definition() {
        let l = RateLimiters::new(&[def(
            "per_region",
            1.0,
            1,
            0,
            &["connection", "region"],
            "service = 'ec2'",
        )])
        .unwrap();
        let a = values(&[("connection", "c1"), ("region", "r1"), ("service", "ec2")]);
        let b = values(&[("connection", "c1"), ("region", "r2"), ("service", "ec2")]);
        let s3 = values(&[("connection", "c1"), ("region", "r1"), ("service", "s3")]);
        let no_region = values(&[("connection", "c1"), ("service", "ec2")]);
        assert_eq!(l.resolve(&a).names(), ["per_region"]);
        assert!(l.resolve(&s3).is_empty());
        assert!(
            l.resolve(&no_region).is_empty(),
            "a scope name without a value"
        );
        assert!(Arc::ptr_eq(
            &l.resolve(&a).limiters[0],
            &l.resolve(&a).limiters[0]
        ));
        assert!(!Arc::ptr_eq(
            &l.resolve(&a).limiters[0],
            &l.resolve(&b).limiters[0]
        ));
    }

    #[test]
    fn user_definitions_override_the_plugin_ones_by_name() {
        let l = RateLimiters::new(&[def("p", 5.0, 5, 0, &[], "")]).unwrap();
        let err = l
            .set_user(&[
                def("p", 1.0, 2, 0, &[], ""),
                def("u", 0.0, 0, 3, &[], ""),
                def("bad", 1.0, 1, 0, &[], "x <"),
            ])
            .unwrap_err();
        assert_eq!(
            err,
            "failed to create rate limiter 'bad' from config: failed to parse 'where' property: expected a value at offset 3"
        );
        let names: Vec<String> = l.definitions().into_iter().map(|d| d.name).collect();
        assert_eq!(names, ["p", "u"]);
        assert_eq!(l.definitions()[0].fill_rate, 1.0);
        assert_eq!(l.plugin_definitions()[0].fill_rate, 5.0);
        l.set_user(&[]).unwrap();
        assert_eq!(l.definitions()[0].fill_rate, 5.0);
    }

    #[test]
    fn a_bucket_reserves_as_go_rate_limiter() {
        let t0 = Instant::now();
        let mut b = Bucket::new(2.0, 2);
        b.last = t0;
        assert_eq!(b.reserve(t0), Duration::ZERO);
        assert_eq!(b.reserve(t0), Duration::ZERO);
        assert_eq!(b.reserve(t0), Duration::from_millis(500));
        assert_eq!(b.reserve(t0), Duration::from_millis(1000));
        // 2 s later: 4 tokens accrued, the 2 owed repaid, capped at the burst.
        let t2 = t0 + Duration::from_secs(2);
        assert_eq!(b.reserve(t2), Duration::ZERO);
        assert_eq!(b.reserve(t2), Duration::ZERO);
        assert_eq!(b.reserve(t2), Duration::from_millis(500));
    }

    #[test]
    fn like_is_fnmatch() {
        assert!(like("us-east-1", "us-%", false));
        assert!(like("a[b", "a[b", false));
        assert!(like("b", "[a-c]", false));
        assert!(!like("d", "[a-c]", false));
        assert!(like("d", "[!a-c]", false));
        assert!(like("%", "\\%", false) || like("*", "\\%", false));
    }

    #[tokio::test]
    async fn the_longest_wait_of_the_applying_buckets_is_kept() {
        let l = RateLimiters::new(&[
            def("fast", 100.0, 1, 0, &[], ""),
            def("slow", 10.0, 1, 0, &[], ""),
        ])
        .unwrap();
        let m = l.resolve(&values(&[]));
        assert_eq!(m.wait().await, Duration::ZERO);
        let t = Instant::now();
        let d = m.wait().await;
        assert!(
            d > Duration::from_millis(80) && d <= Duration::from_millis(100),
            "{d:?}"
        );
        assert!(t.elapsed() >= d, "waited {:?} of {d:?}", t.elapsed());
    }

    #[tokio::test]
    async fn concurrency_slots_are_held_until_dropped() {
        let l = RateLimiters::new(&[def("c", 0.0, 0, 2, &[], "")]).unwrap();
        let m = l.resolve(&values(&[]));
        let a = m.acquire().await;
        let _b = m.acquire().await;
        let third = tokio::time::timeout(Duration::from_millis(50), m.acquire()).await;
        assert!(third.is_err(), "a third slot while two are held");
        drop(a);
        tokio::time::timeout(Duration::from_millis(50), m.acquire())
            .await
            .expect("a slot once one is given back");
    }
}
