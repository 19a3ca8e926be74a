//! PostgreSQL (Debian's `postgresql`) in a temporary cluster on loopback,
//! standing in for Steampipe's database: tables are created from `GetSchema`
//! with the FDW's type mapping and loaded with the rows `Execute` streamed.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A running temporary cluster.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_root: bool,
}

fn pg_bin() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (/usr/lib/postgresql missing): run scripts/install-deps.sh")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop().expect(
        "no PostgreSQL server binaries under /usr/lib/postgresql: run scripts/install-deps.sh",
    )
}

fn is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

impl Postgres {
    /// initdb + start on a free loopback port (as user `postgres` when running as root).
    pub fn start() -> Postgres {
        let bin = pg_bin();
        let dir = tempfile::Builder::new().prefix("sp-pg-").tempdir().unwrap();
        let as_root = is_root();
        if as_root {
            let st = Command::new("chown")
                .arg("-R")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(st.success(), "chown to postgres failed");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = Postgres {
            dir,
            bin,
            port,
            as_root,
        };
        let data = pg.dir.path().join("data");
        pg.server_cmd(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            pg.dir.path().display()
        );
        pg.server_cmd(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                pg.dir.path().join("log").to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "start",
            ],
        );
        pg
    }

    fn server_cmd(&self, tool: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(tool);
        let out = if self.as_root {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .current_dir(self.dir.path())
                .output()
        } else {
            Command::new(&exe).args(args).output()
        }
        .unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
        assert!(
            out.status.success(),
            "{tool} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs SQL with psql; `Err` carries psql's error text.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-p", &self.port.to_string()])
            .args([
                "-A",
                "-F",
                "\u{1f}",
                "-P",
                "null=\u{2400}",
                "-P",
                "footer=off",
            ])
            .arg("-c")
            .arg(sql)
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Runs `sql` with `search_path` set (as Steampipe puts connection schemas
    /// on it); returns the rows as objects keyed by column (NULL as JSON null).
    pub fn query(&self, search_path: &str, sql: &str) -> Vec<serde_json::Map<String, Value>> {
        let text = self
            .psql(&format!("set search_path to {search_path};\n{sql}"))
            .unwrap_or_else(|e| panic!("query failed: {e}\n{sql}"));
        let mut lines = text.lines().filter(|l| !l.is_empty() && *l != "SET");
        let Some(header) = lines.next() else {
            return Vec::new();
        };
        let cols: Vec<&str> = header.split('\u{1f}').collect();
        lines
            .map(|l| {
                cols.iter()
                    .zip(l.split('\u{1f}'))
                    .map(|(c, v)| {
                        let v = if v == "\u{2400}" {
                            Value::Null
                        } else {
                            Value::String(v.to_string())
                        };
                        (c.to_string(), v)
                    })
                    .collect()
            })
            .collect()
    }

    /// Creates `schema.table` from a `GetSchema` TableSchema (protojson) with
    /// the FDW's column type mapping, and inserts `rows` (host row events, whose
    /// values the host already converted as the FDW does).
    pub fn load_table(&self, schema: &str, table: &str, table_schema: &Value, rows: &[Value]) {
        let columns: Vec<(String, &'static str)> = table_schema["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    pg_type(c["type"].as_str().unwrap()),
                )
            })
            .collect();
        let defs: Vec<String> = columns
            .iter()
            .map(|(n, t)| format!("\"{n}\" {t}"))
            .collect();
        let mut sql = format!(
            "create schema if not exists \"{schema}\";\ncreate table \"{schema}\".\"{table}\" ({});\n",
            defs.join(", ")
        );
        let names: Vec<String> = columns.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        for chunk in rows.chunks(200) {
            let tuples: Vec<String> = chunk
                .iter()
                .map(|r| {
                    let vals: Vec<String> = columns
                        .iter()
                        .map(|(n, t)| literal(&r["values"][n.as_str()], t))
                        .collect();
                    format!("({})", vals.join(", "))
                })
                .collect();
            sql.push_str(&format!(
                "insert into \"{schema}\".\"{table}\" ({}) values\n{};\n",
                names.join(", "),
                tuples.join(",\n")
            ));
        }
        self.psql(&sql)
            .unwrap_or_else(|e| panic!("loading {schema}.{table} failed: {e}"));
    }

    /// The data directory (for logs on failure).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let exe = self.bin.join("pg_ctl");
        let args = ["-D", data.to_str().unwrap(), "-m", "immediate", "stop"];
        let _ = if self.as_root {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        };
    }
}

/// The FDW's ColumnType → Postgres type mapping (steampipe-postgres-fdw sql.go).
pub fn pg_type(column_type: &str) -> &'static str {
    match column_type {
        "BOOL" => "bool",
        "INT" => "bigint",
        "DOUBLE" => "double precision",
        "STRING" => "text",
        "JSON" => "jsonb",
        "DATETIME" | "TIMESTAMP" => "timestamptz",
        "IPADDR" | "INET" => "inet",
        "CIDR" => "cidr",
        "LTREE" => "ltree",
        other => panic!("unsupported column type {other}: the FDW would fail the import"),
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn literal(v: &Value, pg_type: &str) -> String {
    if v.is_null() {
        return "NULL".to_string();
    }
    match pg_type {
        "jsonb" => format!("{}::jsonb", quote(&v.to_string())),
        "bool" | "bigint" | "double precision" => v.to_string(),
        "text" => quote(v.as_str().expect("text value")),
        t => format!("{}::{t}", quote(v.as_str().expect("text form"))),
    }
}
