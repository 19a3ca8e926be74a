//! Connection config: the HCL attribute string each `ConnectionConfig.config`
//! carries (`name = literal` lines, sorted, as Steampipe re-emits them from the
//! user's `.spc` file), parsed with hcl-rs into typed values. Every error names
//! the connection and, where there is one, the attribute at fault.

use hcl::eval::{Context, Evaluate};
use hcl::Value as Hcl;

/// A plugin's parsed connection config (and whatever per-connection state it keeps).
pub trait ConnectionConfig: Send + Sync + Sized + 'static {
    /// Parses the HCL attribute string of connection `connection`; `""` means no config.
    fn parse(connection: &str, hcl: &str) -> Result<Self, ConfigError>;
}

/// A connection whose config cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("connection '{connection}': {}{message}", attribute.as_ref().map(|a| format!("attribute '{a}': ")).unwrap_or_default())]
pub struct ConfigError {
    /// the connection name
    pub connection: String,
    /// the attribute at fault, if the error concerns one
    pub attribute: Option<String>,
    /// what is wrong, and what is expected
    pub message: String,
}

impl ConfigError {
    /// An error about the whole connection.
    pub fn connection(connection: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            connection: connection.to_string(),
            attribute: None,
            message: message.into(),
        }
    }
    /// An error about one attribute.
    pub fn attribute(connection: &str, attribute: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            connection: connection.to_string(),
            attribute: Some(attribute.to_string()),
            message: message.into(),
        }
    }
}

/// An HCL error on one line, without the source line: the line may hold a
/// secret (`secret_key = "...` unterminated). The attribute it belongs to is
/// named when the line starts with one. (hcl-rs's own text is a multi-line
/// excerpt of the source.)
pub fn hcl_error(e: &hcl::Error) -> String {
    match e {
        hcl::Error::Parse(p) => {
            let attribute: String = p
                .line()
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            let near = if attribute.is_empty() {
                String::new()
            } else {
                format!(" (in attribute '{attribute}')")
            };
            format!(
                "invalid HCL at line {}, column {}{near}: {}",
                p.location().line(),
                p.location().column(),
                crate::logging::escape_line(p.message())
            )
        }
        // Not a syntax error; its text names no source line.
        other => format!(
            "invalid HCL: {}",
            crate::logging::escape_line(&other.to_string())
        ),
    }
}

/// Describes a value for an error message without echoing long (or secret) text.
fn describe(v: &Hcl) -> String {
    match v {
        Hcl::Null => "null".into(),
        Hcl::Bool(b) => format!("bool {b}"),
        Hcl::Number(n) => format!("number {n}"),
        Hcl::String(_) => "a string".into(),
        Hcl::Array(_) => "a list".into(),
        Hcl::Object(_) => "an object".into(),
    }
}

/// The attributes of one connection's config, taken one by one by name; what
/// is left untaken at [`Attributes::finish`] is an unsupported argument.
pub struct Attributes {
    connection: String,
    values: Vec<(String, Hcl)>,
    known: Vec<&'static str>,
}

impl Attributes {
    /// Parses and evaluates the attribute string (literals and constant expressions only).
    pub fn parse(connection: &str, hcl: &str) -> Result<Attributes, ConfigError> {
        let body =
            hcl::parse(hcl).map_err(|e| ConfigError::connection(connection, hcl_error(&e)))?;
        if let Some(block) = body.blocks().next() {
            return Err(ConfigError::connection(
                connection,
                format!(
                    "blocks are not supported in a connection config (found block '{}')",
                    block.identifier()
                ),
            ));
        }
        let ctx = Context::new();
        let mut values = Vec::new();
        for attr in body.attributes() {
            let key = attr.key().to_string();
            if values.iter().any(|(k, _)| *k == key) {
                return Err(ConfigError::attribute(
                    connection,
                    &key,
                    "is set more than once",
                ));
            }
            // The evaluator's own text can quote the expression (a secret's
            // value among it): name the attribute, not its content.
            let v = attr.expr().evaluate(&ctx).map_err(|_| {
                ConfigError::attribute(
                    connection,
                    &key,
                    "must be a literal value (a string, number, bool, list or object); expressions, variables and functions are not allowed",
                )
            })?;
            values.push((key, v));
        }
        Ok(Attributes {
            connection: connection.to_string(),
            values,
            known: Vec::new(),
        })
    }

    fn take(&mut self, name: &'static str) -> Option<Hcl> {
        self.known.push(name);
        let i = self.values.iter().position(|(k, _)| k == name)?;
        let (_, v) = self.values.remove(i);
        match v {
            Hcl::Null => None,
            v => Some(v),
        }
    }

    fn err(&self, name: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::attribute(&self.connection, name, message)
    }

    /// A string attribute.
    pub fn string(&mut self, name: &'static str) -> Result<Option<String>, ConfigError> {
        match self.take(name) {
            None => Ok(None),
            Some(Hcl::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.err(name, format!("expected a string, got {}", describe(&v)))),
        }
    }

    /// A list-of-strings attribute.
    pub fn strings(&mut self, name: &'static str) -> Result<Option<Vec<String>>, ConfigError> {
        match self.take(name) {
            None => Ok(None),
            Some(Hcl::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        Hcl::String(s) => out.push(s),
                        v => {
                            return Err(self.err(
                                name,
                                format!(
                                    "expected a list of strings, but element {i} is {}",
                                    describe(&v)
                                ),
                            ))
                        }
                    }
                }
                Ok(Some(out))
            }
            Some(v) => Err(self.err(
                name,
                format!("expected a list of strings, got {}", describe(&v)),
            )),
        }
    }

    /// A whole-number attribute.
    pub fn int(&mut self, name: &'static str) -> Result<Option<i64>, ConfigError> {
        match self.take(name) {
            None => Ok(None),
            Some(Hcl::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Some(i)),
                None => Err(self.err(name, format!("expected a whole number, got {n}"))),
            },
            Some(v) => Err(self.err(name, format!("expected a number, got {}", describe(&v)))),
        }
    }

    /// A bool attribute.
    pub fn bool(&mut self, name: &'static str) -> Result<Option<bool>, ConfigError> {
        match self.take(name) {
            None => Ok(None),
            Some(Hcl::Bool(b)) => Ok(Some(b)),
            Some(v) => Err(self.err(
                name,
                format!("expected true or false, got {}", describe(&v)),
            )),
        }
    }

    /// Fails on any attribute that was not taken, listing the supported ones.
    pub fn finish(self) -> Result<(), ConfigError> {
        if let Some((k, _)) = self.values.first() {
            let mut known = self.known.clone();
            known.sort_unstable();
            return Err(ConfigError::attribute(
                &self.connection,
                k,
                format!(
                    "unsupported argument; the supported arguments are: {}",
                    known.join(", ")
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_attributes_are_read_and_unknown_ones_named() {
        let mut a = Attributes::parse(
            "c1",
            "count = 3\nname = \"x\"\nregions = [\"a\", \"b\"]\nverbose = true\n",
        )
        .unwrap();
        assert_eq!(a.int("count").unwrap(), Some(3));
        assert_eq!(a.string("name").unwrap(), Some("x".into()));
        assert_eq!(
            a.strings("regions").unwrap(),
            Some(vec!["a".into(), "b".into()])
        );
        let err = a.finish().unwrap_err();
        assert_eq!(err.attribute.as_deref(), Some("verbose"));
        assert!(err
            .to_string()
            .starts_with("connection 'c1': attribute 'verbose': unsupported"));
    }

    #[test]
    fn wrong_types_name_the_attribute_and_what_was_expected() {
        let mut a = Attributes::parse("c1", "count = \"abc\"\nregions = [1]\n").unwrap();
        assert_eq!(
            a.int("count").unwrap_err().to_string(),
            "connection 'c1': attribute 'count': expected a number, got a string"
        );
        assert!(a
            .strings("regions")
            .unwrap_err()
            .to_string()
            .contains("element 0 is number 1"));
    }

    #[test]
    fn a_syntax_error_never_echoes_the_line_that_may_hold_a_secret() {
        for hcl in [
            "secret_key = \"s3cr3t-value\nregions = [\"a\"]\n",
            "secret_key = \"s3cr3t-value\"\nsecret_key = \"s3cr3t-value\"\n",
            "secret_key = s3cr3t-value +\n",
        ] {
            let err = Attributes::parse("c1", hcl).err().unwrap().to_string();
            assert!(!err.contains("s3cr3t-value"), "{err}");
            assert!(err.starts_with("connection 'c1': "), "{err}");
        }
        let err = Attributes::parse("c1", "secret_key = \"abc\n")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("line 1") && err.contains("secret_key"),
            "{err}"
        );
    }

    #[test]
    fn broken_hcl_is_an_error_on_the_connection() {
        let err = Attributes::parse("c9", "regions = [\n").err().unwrap();
        assert_eq!(err.connection, "c9");
        assert!(err.to_string().starts_with("connection 'c9': invalid HCL"));
    }
}
