//! Loads a Powerpipe mod (every `*.pp` / `*.sp` file under its directory) with
//! hcl-rs, resolves its variables as Powerpipe does (defaults, `PP_VAR_*`,
//! `powerpipe.ppvars`, `*.auto.ppvars`, then `--var` / `--var-file` in order),
//! evaluates its locals, and renders each control's SQL.
//!
//! Only what a compliance mod uses is modelled: `mod`, `variable`, `locals`,
//! `query`, `control` and `benchmark` blocks; the HCL functions `contains`,
//! `replace`, `merge`, `file`, `join`, `lower`, `upper`, `length`, `concat`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hcl::eval::{Context, Evaluate, FuncArgs, FuncDef, ParamType};
use hcl::{Block, Body, Expression, Value};

use crate::logging::escape_line;
use crate::plugin::config::hcl_error;

/// Something wrong with the mod or with a variable value; the text names the file, block or variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ModError(pub String);

fn err(msg: impl Into<String>) -> ModError {
    ModError(msg.into())
}

/// A `variable` block.
#[derive(Debug, Clone)]
pub struct Variable {
    /// the type expression as written (`list(string)`, `connection.steampipe`…)
    pub type_text: String,
    /// the default value, if it could be evaluated
    pub default: Option<Value>,
    /// the description
    pub description: String,
}

/// A `query` block.
#[derive(Debug, Clone)]
pub struct Query {
    /// the file it is in
    pub file: PathBuf,
    sql: Expression,
}

/// A `control` block.
#[derive(Debug, Clone)]
pub struct Control {
    /// the short name
    pub name: String,
    /// the file it is in
    pub file: PathBuf,
    attrs: BTreeMap<String, Expression>,
}

/// A `benchmark` block.
#[derive(Debug, Clone)]
pub struct Benchmark {
    /// the short name
    pub name: String,
    /// the file it is in
    pub file: PathBuf,
    attrs: BTreeMap<String, Expression>,
}

/// A loaded mod, before variables are applied.
#[derive(Debug, Clone)]
pub struct ModDef {
    /// the directory
    pub dir: PathBuf,
    /// `mod "<name>"`
    pub name: String,
    mod_attrs: BTreeMap<String, Expression>,
    mod_blocks: Vec<Block>,
    /// variables by name
    pub variables: BTreeMap<String, Variable>,
    locals: Vec<(String, Expression, PathBuf)>,
    /// queries by short name
    pub queries: BTreeMap<String, Query>,
    /// controls by short name
    pub controls: BTreeMap<String, Control>,
    /// benchmarks by short name
    pub benchmarks: BTreeMap<String, Benchmark>,
}

fn attrs_of(body: &Body) -> BTreeMap<String, Expression> {
    body.attributes()
        .map(|a| (a.key().to_string(), a.expr().clone()))
        .collect()
}

fn label(block: &Block, file: &Path) -> Result<String, ModError> {
    block
        .labels()
        .first()
        .map(|l| l.as_str().to_string())
        .ok_or_else(|| {
            err(format!(
                "{}: {} block without a name",
                file.display(),
                block.identifier()
            ))
        })
}

fn mod_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ModError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| err(format!("cannot read mod directory {}: {e}", dir.display())))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            mod_files(&p, out)?;
        } else if name.ends_with(".pp") || name.ends_with(".sp") {
            out.push(p);
        }
    }
    Ok(())
}

impl ModDef {
    /// Loads every mod file under `dir`.
    pub fn load(dir: &Path) -> Result<ModDef, ModError> {
        let mut files = Vec::new();
        mod_files(dir, &mut files)?;
        let mut m = ModDef {
            dir: dir.to_path_buf(),
            name: String::new(),
            mod_attrs: BTreeMap::new(),
            mod_blocks: Vec::new(),
            variables: BTreeMap::new(),
            locals: Vec::new(),
            queries: BTreeMap::new(),
            controls: BTreeMap::new(),
            benchmarks: BTreeMap::new(),
        };
        for file in files {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| err(format!("{}: {e}", file.display())))?;
            let body = hcl::parse(&text)
                .map_err(|e| err(format!("{}: {}", file.display(), hcl_error(&e))))?;
            for block in body.blocks() {
                let rel = file.strip_prefix(dir).unwrap_or(&file).to_path_buf();
                match block.identifier() {
                    "mod" => {
                        if !m.name.is_empty() {
                            return Err(err(format!("{}: a second mod block", rel.display())));
                        }
                        m.name = label(block, &rel)?;
                        m.mod_attrs = attrs_of(block.body());
                        m.mod_blocks = block.body().blocks().cloned().collect();
                    }
                    "variable" => {
                        let name = label(block, &rel)?;
                        let a = attrs_of(block.body());
                        m.variables.insert(
                            name,
                            Variable {
                                type_text: a.get("type").map(|e| e.to_string()).unwrap_or_default(),
                                default: a
                                    .get("default")
                                    .and_then(|e| e.evaluate(&base_context(dir)).ok()),
                                description: a
                                    .get("description")
                                    .and_then(|e| e.evaluate(&Context::new()).ok())
                                    .and_then(|v| v.as_str().map(str::to_string))
                                    .unwrap_or_default(),
                            },
                        );
                    }
                    "locals" => {
                        for a in block.body().attributes() {
                            m.locals
                                .push((a.key().to_string(), a.expr().clone(), rel.clone()));
                        }
                    }
                    "query" => {
                        let name = label(block, &rel)?;
                        let a = attrs_of(block.body());
                        let sql = a.get("sql").cloned().ok_or_else(|| {
                            err(format!(
                                "{}: query.{name} does not define a query or SQL",
                                rel.display()
                            ))
                        })?;
                        m.queries.insert(name, Query { file: rel, sql });
                    }
                    "control" => {
                        let name = label(block, &rel)?;
                        let attrs = attrs_of(block.body());
                        if attrs.contains_key("sql") == attrs.contains_key("query") {
                            return Err(err(format!(
                                "{}: control.{name} must set exactly one of sql or query",
                                rel.display()
                            )));
                        }
                        m.controls.insert(
                            name.clone(),
                            Control {
                                name,
                                file: rel,
                                attrs,
                            },
                        );
                    }
                    "benchmark" => {
                        let name = label(block, &rel)?;
                        let attrs = attrs_of(block.body());
                        m.benchmarks.insert(
                            name.clone(),
                            Benchmark {
                                name,
                                file: rel,
                                attrs,
                            },
                        );
                    }
                    _ => {}
                }
            }
        }
        if m.name.is_empty() {
            return Err(err(format!(
                "{}: no mod.pp with a mod block",
                dir.display()
            )));
        }
        for c in m.controls.values() {
            if let Some(q) = c.attrs.get("query") {
                let target = reference(q, "query").ok_or_else(|| {
                    err(format!(
                        "{}: control.{}: query must be query.<name>",
                        c.file.display(),
                        c.name
                    ))
                })?;
                if !m.queries.contains_key(&target) {
                    return Err(err(format!(
                        "{}: control.{} refers to query.{target}, which is not defined",
                        c.file.display(),
                        c.name
                    )));
                }
            }
        }
        Ok(m)
    }

    /// The plugin versions the mod requires (`require { plugin "aws" { min_version } }`).
    pub fn required_plugins(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for b in self
            .mod_blocks
            .iter()
            .filter(|b| b.identifier() == "require")
        {
            for p in b.body().blocks().filter(|p| p.identifier() == "plugin") {
                let name = p
                    .labels()
                    .first()
                    .map(|l| l.as_str().to_string())
                    .unwrap_or_default();
                let v = attrs_of(p.body())
                    .get("min_version")
                    .and_then(|e| e.evaluate(&Context::new()).ok())
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                out.push((name, v));
            }
        }
        out
    }
}

/// `benchmark.x.title` / `control.y.description` → (kind, name, attribute), if
/// `expr` is such a reference to another block's attribute.
fn attribute_reference(expr: &Expression) -> Option<(String, String, String)> {
    let text = expr.to_string();
    let mut parts = text.trim().split('.');
    let (kind, name, attr) = (parts.next()?, parts.next()?, parts.next()?);
    let ident = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_');
    (matches!(kind, "benchmark" | "control")
        && ident(name)
        && ident(attr)
        && parts.next().is_none())
    .then(|| (kind.to_string(), name.to_string(), attr.to_string()))
}

/// `query.x` / `control.y` / `benchmark.z` → the short name, if `expr` is such a reference.
pub fn reference(expr: &Expression, kind: &str) -> Option<String> {
    let text = expr.to_string();
    let text = text.trim();
    let rest = text.strip_prefix(kind)?.strip_prefix('.')?;
    (!rest.is_empty() && rest.chars().all(|c| c.is_alphanumeric() || c == '_'))
        .then(|| rest.to_string())
}

fn s(args: &FuncArgs, i: usize) -> Result<String, String> {
    args.get(i)
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| format!("argument {} must be a string", i + 1))
}

thread_local! {
    static MOD_DIR: std::cell::RefCell<PathBuf> = std::cell::RefCell::new(PathBuf::new());
}

fn base_context(dir: &Path) -> Context<'static> {
    let mut ctx = Context::new();
    ctx.declare_func(
        "contains",
        FuncDef::builder()
            .param(ParamType::Any)
            .param(ParamType::Any)
            .build(|args: FuncArgs| match &args[0] {
                Value::Array(items) => Ok(Value::Bool(items.contains(&args[1]))),
                other => Err(format!(
                    "contains: the first argument must be a list, got {other}"
                )),
            }),
    );
    ctx.declare_func(
        "replace",
        FuncDef::builder()
            .params([ParamType::String, ParamType::String, ParamType::String])
            .build(|args: FuncArgs| {
                Ok(Value::String(
                    s(&args, 0)?.replace(&s(&args, 1)?, &s(&args, 2)?),
                ))
            }),
    );
    ctx.declare_func(
        "merge",
        FuncDef::builder()
            .variadic_param(ParamType::Any)
            .build(|args: FuncArgs| {
                let mut out = hcl::Map::new();
                for a in args.iter() {
                    match a {
                        Value::Object(m) => out.extend(m.clone()),
                        Value::Null => {}
                        other => {
                            return Err(format!("merge: arguments must be objects, got {other}"))
                        }
                    }
                }
                Ok(Value::Object(out))
            }),
    );
    ctx.declare_func(
        "join",
        FuncDef::builder()
            .param(ParamType::String)
            .param(ParamType::Any)
            .build(|args: FuncArgs| {
                let sep = s(&args, 0)?;
                let items = args[1]
                    .as_array()
                    .ok_or("join: the second argument must be a list")?;
                let parts: Result<Vec<String>, String> = items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| "join: list of strings".to_string())
                    })
                    .collect();
                Ok(Value::String(parts?.join(&sep)))
            }),
    );
    ctx.declare_func(
        "lower",
        FuncDef::builder()
            .param(ParamType::String)
            .build(|a: FuncArgs| Ok(Value::String(s(&a, 0)?.to_lowercase()))),
    );
    ctx.declare_func(
        "upper",
        FuncDef::builder()
            .param(ParamType::String)
            .build(|a: FuncArgs| Ok(Value::String(s(&a, 0)?.to_uppercase()))),
    );
    ctx.declare_func(
        "length",
        FuncDef::builder()
            .param(ParamType::Any)
            .build(|a: FuncArgs| {
                Ok(Value::from(match &a[0] {
                    Value::Array(v) => v.len(),
                    Value::Object(m) => m.len(),
                    Value::String(s) => s.chars().count(),
                    other => return Err(format!("length of {other}")),
                }))
            }),
    );
    ctx.declare_func(
        "concat",
        FuncDef::builder()
            .variadic_param(ParamType::Any)
            .build(|a: FuncArgs| {
                let mut out = Vec::new();
                for v in a.iter() {
                    out.extend(
                        v.as_array()
                            .ok_or("concat: arguments must be lists")?
                            .iter()
                            .cloned(),
                    );
                }
                Ok(Value::Array(out))
            }),
    );
    // HCL functions are plain fn pointers: file() finds the mod directory of
    // the evaluation under way on this thread.
    MOD_DIR.with(|d| *d.borrow_mut() = dir.to_path_buf());
    ctx.declare_func(
        "file",
        FuncDef::builder()
            .param(ParamType::String)
            .build(|a: FuncArgs| {
                let rel = s(&a, 0)?;
                let p = MOD_DIR.with(|d| d.borrow().join(&rel));
                std::fs::read_to_string(&p)
                    .map(Value::String)
                    .map_err(|e| format!("file({}): {e}", p.display()))
            }),
    );
    // `connection.steampipe.default`: the database variable's default.
    let mut steampipe = hcl::Map::new();
    steampipe.insert(
        "default".to_string(),
        Value::from("postgres://steampipe@localhost:9193/steampipe"),
    );
    let mut connection = hcl::Map::new();
    connection.insert("steampipe".to_string(), Value::Object(steampipe));
    ctx.declare_var("connection", Value::Object(connection));
    ctx
}

/// Where a variable value came from, lowest precedence first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarSource {
    /// `PP_VAR_<name>`
    Env,
    /// `powerpipe.ppvars` / `*.auto.ppvars` / `--var-file`
    File(PathBuf),
    /// `--var name=value`
    Arg,
}

/// Variable values set by the user, applied in order (later wins).
#[derive(Debug, Clone, Default)]
pub struct VarInputs {
    values: Vec<(String, Value, VarSource)>,
}

impl VarInputs {
    /// Every `PP_VAR_<name>` in the environment.
    pub fn from_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
        defs: &ModDef,
    ) -> Result<(), ModError> {
        for (k, v) in vars {
            let Some(name) = k.strip_prefix("PP_VAR_") else {
                continue;
            };
            let Some(def) = defs.variables.get(name) else {
                continue;
            };
            let value = if def.type_text.trim() == "string" {
                Value::String(v)
            } else {
                parse_value(&v).map_err(|e| err(format!("{k}: {e}")))?
            };
            self.values.push((name.to_string(), value, VarSource::Env));
        }
        Ok(())
    }

    /// The attributes of a `.ppvars` file.
    pub fn from_file(&mut self, path: &Path) -> Result<(), ModError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
        let body =
            hcl::parse(&text).map_err(|e| err(format!("{}: {}", path.display(), hcl_error(&e))))?;
        for a in body.attributes() {
            let v = a.expr().evaluate(&Context::new()).map_err(|e| {
                err(format!(
                    "{}: {}: {}",
                    path.display(),
                    a.key(),
                    escape_line(&e.to_string())
                ))
            })?;
            self.values
                .push((a.key().to_string(), v, VarSource::File(path.to_path_buf())));
        }
        Ok(())
    }

    /// One `--var name=value` (the value is HCL: `'["a","b"]'`, `42`, or bare text for a string).
    pub fn from_arg(&mut self, arg: &str) -> Result<(), ModError> {
        let (name, raw) = arg
            .split_once('=')
            .ok_or_else(|| err(format!("--var {arg:?}: expected name=value")))?;
        let value = parse_value(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        self.values
            .push((name.trim().to_string(), value, VarSource::Arg));
        Ok(())
    }

    /// The mod's own `powerpipe.ppvars` and `*.auto.ppvars` (alphabetical).
    pub fn from_mod_dir(&mut self, dir: &Path) -> Result<(), ModError> {
        let main = dir.join("powerpipe.ppvars");
        if main.exists() {
            self.from_file(&main)?;
        }
        let mut autos: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| err(format!("{}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(".auto.ppvars"))
            .collect();
        autos.sort();
        for p in autos {
            self.from_file(&p)?;
        }
        Ok(())
    }
}

fn parse_value(raw: &str) -> Result<Value, String> {
    let body = hcl::parse(&format!("v = {raw}\n")).map_err(|e| hcl_error(&e))?;
    let attr = body.attributes().next().ok_or("no value")?;
    attr.expr()
        .evaluate(&Context::new())
        .map_err(|e| escape_line(&e.to_string()))
}

fn check_type(name: &str, type_text: &str, v: &Value) -> Result<(), ModError> {
    let t = type_text.replace(' ', "");
    let ok = match t.as_str() {
        "string" => v.is_string(),
        "number" => v.is_number(),
        "bool" => v.is_boolean(),
        "list(string)" | "set(string)" => {
            v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
        }
        "list(number)" => v.as_array().is_some_and(|a| a.iter().all(Value::is_number)),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(err(format!(
            "variable {name}: expected a value of type {type_text}, got {v}"
        )))
    }
}

/// A mod with its variables resolved and locals evaluated.
pub struct ResolvedMod {
    /// the definition
    pub def: ModDef,
    /// the variable values in force
    pub vars: BTreeMap<String, Value>,
    /// the evaluated locals
    pub locals: BTreeMap<String, Value>,
}

impl ResolvedMod {
    /// Applies `inputs` over the defaults and evaluates the locals.
    pub fn resolve(def: ModDef, inputs: &VarInputs) -> Result<ResolvedMod, ModError> {
        let mut vars: BTreeMap<String, Value> = BTreeMap::new();
        for (name, v) in &def.variables {
            if let Some(d) = &v.default {
                vars.insert(name.clone(), d.clone());
            }
        }
        for (name, value, source) in &inputs.values {
            let Some(v) = def.variables.get(name) else {
                if *source == VarSource::Arg {
                    return Err(err(format!(
                        "--var {name}: the mod {} has no variable {name} (it has: {})",
                        def.name,
                        def.variables.keys().cloned().collect::<Vec<_>>().join(", ")
                    )));
                }
                continue;
            };
            check_type(name, &v.type_text, value)?;
            vars.insert(name.clone(), value.clone());
        }
        for (name, v) in &def.variables {
            if !vars.contains_key(name) {
                return Err(err(format!(
                    "variable {name} has no default and no value was given ({})",
                    v.description
                )));
            }
        }
        // Locals may refer to each other: evaluate until nothing changes.
        let mut locals: BTreeMap<String, Value> = BTreeMap::new();
        let mut pending: Vec<&(String, Expression, PathBuf)> = def.locals.iter().collect();
        while !pending.is_empty() {
            let ctx = context(&def.dir, &vars, &locals);
            let before = pending.len();
            let mut last_err = None;
            pending.retain(|(name, expr, file)| match expr.evaluate(&ctx) {
                Ok(v) => {
                    locals.insert(name.clone(), v);
                    false
                }
                Err(e) => {
                    last_err = Some(format!("{}: local.{name}: {e}", file.display()));
                    true
                }
            });
            if pending.len() == before {
                return Err(err(last_err.unwrap_or_default()));
            }
        }
        Ok(ResolvedMod { def, vars, locals })
    }

    fn ctx(&self) -> Context<'static> {
        context(&self.def.dir, &self.vars, &self.locals)
    }

    fn eval(&self, what: &str, expr: &Expression) -> Result<Value, ModError> {
        expr.evaluate(&self.ctx())
            .map_err(|e| err(format!("{what}: {}", escape_line(&e.to_string()))))
    }

    fn eval_string(
        &self,
        what: &str,
        attrs: &BTreeMap<String, Expression>,
        key: &str,
    ) -> Result<Option<String>, ModError> {
        self.eval_string_at(what, attrs, key, 0)
    }

    /// As [`Self::eval_string`]; `depth` counts the `benchmark.<name>.<key>`
    /// / `control.<name>.<key>` references followed to get here (upstream's
    /// FedRAMP benchmarks take their titles from the NIST ones).
    fn eval_string_at(
        &self,
        what: &str,
        attrs: &BTreeMap<String, Expression>,
        key: &str,
        depth: usize,
    ) -> Result<Option<String>, ModError> {
        if let Some((kind, name, attr)) = attrs.get(key).and_then(attribute_reference) {
            let target = match kind.as_str() {
                "benchmark" => self.def.benchmarks.get(&name).map(|b| &b.attrs),
                _ => self.def.controls.get(&name).map(|c| &c.attrs),
            };
            let Some(target) = target else {
                return Err(err(format!("{what}.{key}: {kind}.{name} is not defined")));
            };
            if depth > 16 {
                return Err(err(format!(
                    "{what}.{key}: {kind}.{name}.{attr} refers back to itself"
                )));
            }
            return self.eval_string_at(&format!("{kind}.{name}"), target, &attr, depth + 1);
        }
        match attrs.get(key) {
            None => Ok(None),
            Some(e) => match self.eval(&format!("{what}.{key}"), e)? {
                Value::String(s) => Ok(Some(s)),
                Value::Null => Ok(None),
                other => Err(err(format!("{what}.{key}: expected a string, got {other}"))),
            },
        }
    }

    /// The SQL a control runs.
    pub fn control_sql(&self, control: &str) -> Result<String, ModError> {
        let c = self
            .def
            .controls
            .get(control)
            .ok_or_else(|| err(format!("no control {control} in mod {}", self.def.name)))?;
        let what = format!("{}: control.{}", c.file.display(), c.name);
        if let Some(sql) = self.eval_string(&what, &c.attrs, "sql")? {
            return Ok(sql);
        }
        let q = reference(&c.attrs["query"], "query").expect("checked at load");
        let query = &self.def.queries[&q];
        match self.eval(
            &format!("{}: query.{q}.sql", query.file.display()),
            &query.sql,
        )? {
            Value::String(s) => Ok(s),
            other => Err(err(format!("query.{q}.sql must be a string, got {other}"))),
        }
    }

    /// The SQL of query `name`.
    pub fn query_sql(&self, name: &str) -> Result<String, ModError> {
        let q = self
            .def
            .queries
            .get(name)
            .ok_or_else(|| err(format!("no query {name}")))?;
        match self.eval(&format!("query.{name}.sql"), &q.sql)? {
            Value::String(s) => Ok(s),
            other => Err(err(format!(
                "query.{name}.sql must be a string, got {other}"
            ))),
        }
    }

    /// A control's evaluated attributes: title, description, severity, documentation.
    pub fn control_text(&self, control: &str, key: &str) -> Result<Option<String>, ModError> {
        let c = self
            .def
            .controls
            .get(control)
            .ok_or_else(|| err(format!("no control {control}")))?;
        self.eval_string(&format!("control.{control}"), &c.attrs, key)
    }

    /// A control's or benchmark's tags, as a sorted map.
    pub fn tags(&self, kind: &str, name: &str) -> Result<BTreeMap<String, String>, ModError> {
        let attrs = match kind {
            "control" => {
                &self
                    .def
                    .controls
                    .get(name)
                    .ok_or_else(|| err(format!("no control {name}")))?
                    .attrs
            }
            _ => {
                &self
                    .def
                    .benchmarks
                    .get(name)
                    .ok_or_else(|| err(format!("no benchmark {name}")))?
                    .attrs
            }
        };
        let Some(e) = attrs.get("tags") else {
            return Ok(BTreeMap::new());
        };
        match self.eval(&format!("{kind}.{name}.tags"), e)? {
            Value::Object(m) => Ok(m
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()),
            other => Err(err(format!(
                "{kind}.{name}.tags must be an object, got {other}"
            ))),
        }
    }

    /// A benchmark's evaluated text attribute.
    pub fn benchmark_text(&self, name: &str, key: &str) -> Result<Option<String>, ModError> {
        let b = self
            .def
            .benchmarks
            .get(name)
            .ok_or_else(|| err(format!("no benchmark {name}")))?;
        self.eval_string(&format!("benchmark.{name}"), &b.attrs, key)
    }

    /// A benchmark's children as `(kind, short name)`, in order.
    pub fn children(&self, benchmark: &str) -> Result<Vec<(String, String)>, ModError> {
        let b = self
            .def
            .benchmarks
            .get(benchmark)
            .ok_or_else(|| err(format!("no benchmark {benchmark}")))?;
        let Some(Expression::Array(items)) = b.attrs.get("children") else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in items {
            let found = ["benchmark", "control"]
                .iter()
                .find_map(|k| reference(item, k).map(|n| (k.to_string(), n)));
            let (kind, name) = found.ok_or_else(|| {
                err(format!(
                    "benchmark.{benchmark}: child {item} is not benchmark.<name> or control.<name>"
                ))
            })?;
            let exists = match kind.as_str() {
                "benchmark" => self.def.benchmarks.contains_key(&name),
                _ => self.def.controls.contains_key(&name),
            };
            if !exists {
                return Err(err(format!(
                    "benchmark.{benchmark}: child {kind}.{name} is not defined"
                )));
            }
            out.push((kind, name));
        }
        Ok(out)
    }

    /// The mod block's evaluated text attribute.
    pub fn mod_text(&self, key: &str) -> Result<Option<String>, ModError> {
        self.eval_string("mod", &self.def.mod_attrs, key)
    }

    /// The mod block's evaluated attribute.
    pub fn mod_value(&self, key: &str) -> Result<Option<Value>, ModError> {
        self.def
            .mod_attrs
            .get(key)
            .map(|e| self.eval(&format!("mod.{key}"), e))
            .transpose()
    }
}

fn context(
    dir: &Path,
    vars: &BTreeMap<String, Value>,
    locals: &BTreeMap<String, Value>,
) -> Context<'static> {
    let mut ctx = base_context(dir);
    ctx.declare_var("var", Value::Object(vars.clone().into_iter().collect()));
    ctx.declare_var("local", Value::Object(locals.clone().into_iter().collect()));
    ctx
}
