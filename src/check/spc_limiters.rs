//! The `plugin` blocks of a Steampipe `.spc` file, as `check --config` reads
//! them: which plugin instances are the aws plugin (a connection may say
//! `plugin = plugin.aws_prod`), and their `limiter` blocks, which `check`
//! hands to the plugin as Steampipe's plugin manager does (`SetRateLimiters`).
//!
//! ```hcl
//! plugin "aws" {
//!   limiter "ec2_per_region" {
//!     fill_rate = 10
//!     bucket_size = 10
//!     max_concurrency = 4
//!     scope = ["connection", "region"]
//!     where = "service = 'ec2'"
//!   }
//! }
//! ```

use std::path::Path;

use hcl::eval::{Context, Evaluate};
use hcl::Value as Hcl;

use crate::pb::steampipe::RateLimiterDefinition;

/// Whether a `plugin` reference (`aws`, `turbot/aws@latest`, ...) names the aws plugin.
pub fn is_aws_plugin(plugin: &str) -> bool {
    plugin == "aws"
        || plugin.ends_with("/aws")
        || plugin.contains("/aws@")
        || plugin.starts_with("aws@")
}

fn string_attr(body: &hcl::Body, key: &str) -> Option<String> {
    body.attributes()
        .find(|a| a.key() == key)
        .map(|a| a.expr().to_string().trim_matches('"').to_string())
}

/// The labels of the `plugin` blocks that are the aws plugin: labelled
/// `aws` without a `source`, or with an aws `source`.
pub fn aws_plugin_labels(body: &hcl::Body) -> Vec<String> {
    body.blocks()
        .filter(|b| b.identifier() == "plugin")
        .filter_map(|b| {
            let label = b.labels().first()?.as_str().to_string();
            let source = string_attr(b.body(), "source").unwrap_or_else(|| label.clone());
            is_aws_plugin(&source).then_some(label)
        })
        .collect()
}

/// A `.spc` file, read and parsed; errors on one line naming the file.
pub fn read_spc(path: &Path) -> Result<hcl::Body, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    hcl::parse(&text).map_err(|e| {
        format!(
            "{}: {}",
            path.display(),
            crate::plugin::config::hcl_error(&e)
        )
    })
}

/// The `limiter` blocks of the aws `plugin` blocks of `path`, checked as
/// Steampipe checks them when it loads the file.
pub fn limiters_from_spc(path: &Path) -> Result<Vec<RateLimiterDefinition>, String> {
    limiters_in(path, &read_spc(path)?)
}

/// [`limiters_from_spc`] of a file already parsed (`path` names it in errors).
pub fn limiters_in(path: &Path, body: &hcl::Body) -> Result<Vec<RateLimiterDefinition>, String> {
    let aws = aws_plugin_labels(body);
    let mut out = Vec::new();
    for plugin in body.blocks().filter(|b| {
        b.identifier() == "plugin"
            && b.labels()
                .first()
                .is_some_and(|l| aws.iter().any(|a| a == l.as_str()))
    }) {
        for block in plugin
            .body()
            .blocks()
            .filter(|b| b.identifier() == "limiter")
        {
            let name = block
                .labels()
                .first()
                .map(|l| l.as_str().to_string())
                .ok_or_else(|| format!("{}: a limiter block without a name", path.display()))?;
            let def = limiter(&name, block.body())
                .map_err(|e| format!("{}: limiter '{name}': {e}", path.display()))?;
            out.push(def);
        }
    }
    Ok(out)
}

fn limiter(name: &str, body: &hcl::Body) -> Result<RateLimiterDefinition, String> {
    let mut d = RateLimiterDefinition {
        name: name.to_string(),
        ..Default::default()
    };
    let ctx = Context::new();
    for a in body.attributes() {
        let key = a.key();
        let v = a
            .expr()
            .evaluate(&ctx)
            .map_err(|_| format!("'{key}' must be a literal value"))?;
        let whole = |v: &Hcl| match v {
            Hcl::Number(n) => n
                .as_i64()
                .ok_or_else(|| format!("'{key}' must be a whole number")),
            _ => Err(format!("'{key}' must be a number")),
        };
        match key {
            "bucket_size" => d.bucket_size = whole(&v)?,
            "max_concurrency" => d.max_concurrency = whole(&v)?,
            "fill_rate" => match &v {
                Hcl::Number(n) => d.fill_rate = n.as_f64().unwrap_or_default() as f32,
                _ => return Err("'fill_rate' must be a number".into()),
            },
            "scope" => match v {
                Hcl::Array(items) => {
                    for i in items {
                        match i {
                            Hcl::String(s) => d.scope.push(s),
                            _ => return Err("'scope' must be a list of strings".into()),
                        }
                    }
                }
                _ => return Err("'scope' must be a list of strings".into()),
            },
            "where" => match v {
                Hcl::String(s) => d.r#where = s,
                _ => return Err("'where' must be a string".into()),
            },
            other => {
                return Err(format!(
                    "unsupported argument '{other}'; the supported arguments are: bucket_size, fill_rate, max_concurrency, scope, where"
                ))
            }
        }
    }
    // Steampipe's own check (the SDK's Definition.Validate) on loading the file.
    if (d.fill_rate == 0.0 || d.bucket_size == 0) && d.max_concurrency == 0 {
        return Err(
            "set a rate (fill_rate and bucket_size) or max_concurrency, or both".to_string(),
        );
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spc(text: &str) -> Result<Vec<RateLimiterDefinition>, String> {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        limiters_from_spc(f.path()).map_err(|e| e.replace(&f.path().display().to_string(), "F"))
    }

    #[test]
    fn limiter_blocks_of_aws_plugin_blocks_are_read() {
        let d = spc(r#"
plugin "aws" {
  limiter "one" {
    fill_rate = 2.5
    bucket_size = 10
    scope = ["connection", "region"]
    where = "service = 'ec2'"
  }
}
plugin "aws_prod" {
  source = "turbot/aws@latest"
  limiter "two" {
    max_concurrency = 3
  }
}
plugin "gcp" {
  limiter "not_ours" {
    max_concurrency = 1
  }
}
connection "a" {
  plugin = plugin.aws_prod
}
"#)
        .unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].name, "one");
        assert_eq!(d[0].fill_rate, 2.5);
        assert_eq!(d[0].bucket_size, 10);
        assert_eq!(d[0].scope, ["connection", "region"]);
        assert_eq!(d[0].r#where, "service = 'ec2'");
        assert_eq!(d[1].name, "two");
        assert_eq!(d[1].max_concurrency, 3);
    }

    #[test]
    fn a_bad_limiter_is_one_line_naming_file_and_limiter() {
        for (text, want) in [
            (
                "plugin \"aws\" {\n limiter \"x\" {\n fill_rate = 1\n }\n}\n",
                "F: limiter 'x': set a rate",
            ),
            (
                "plugin \"aws\" {\n limiter \"x\" {\n max_concurrency = \"a\"\n }\n}\n",
                "F: limiter 'x': 'max_concurrency' must be a number",
            ),
            (
                "plugin \"aws\" {\n limiter \"x\" {\n rate = 1\n }\n}\n",
                "F: limiter 'x': unsupported argument 'rate'",
            ),
        ] {
            let e = spc(text).unwrap_err();
            assert!(e.starts_with(want), "{e}");
            assert!(!e.contains('\n'));
        }
    }
}
