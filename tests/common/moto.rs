//! The moto EC2/STS emulator (PyPI `moto[server]`, installed by
//! `scripts/install-deps.sh` into `target/pyenv`): started on a free loopback
//! port for the life of the test process, seeded by `tests/fixtures/*.py`,
//! and read back through its request recorder.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The Python of the test venv; fails loudly if it is missing.
pub fn python() -> PathBuf {
    let p = std::env::var_os("TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::root().join("target/pyenv/bin/python"));
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-deps.sh (it creates the venv with moto and boto3)",
        p.display()
    );
    p
}

/// A running emulator.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Moto {
    /// Starts an emulator; it stops with the test process.
    pub fn start() -> Moto {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(python())
            .arg(super::root().join("tests/fixtures/moto_guard.py"))
            .arg(port.to_string())
            // The recorder writes its file here, not into the working tree.
            .env("MOTO_RECORDER_FILEPATH", dir.path().join("moto_recording"))
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "moto did not start on port {port}");
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            _dir: dir,
        }
    }

    /// Runs `tests/fixtures/ec2_fleet.py` with `args`; returns what it wrote.
    pub fn seed(&self, args: &[&str]) -> Value {
        let out = tempfile::NamedTempFile::new().unwrap();
        let status = Command::new(python())
            .arg(super::root().join("tests/fixtures/ec2_fleet.py"))
            .arg(&self.endpoint)
            .arg(out.path())
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "seeding the fleet failed");
        serde_json::from_slice(&std::fs::read(out.path()).unwrap()).unwrap()
    }

    /// A raw HTTP request to the emulator's own API.
    pub fn http(&self, method: &str, path: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
        assert!(
            head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
            "{head}"
        );
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_string()
        }
    }

    /// Starts (or restarts) the emulator's request recorder.
    pub fn start_recording(&self) {
        self.http("POST", "/moto-api/recorder/reset-recording");
        self.http("POST", "/moto-api/recorder/start-recording");
    }

    /// The requests recorded since `start_recording`. moto appends a line
    /// per request to its recording as it answers, so a download made while
    /// a request is being written can end in half a line: that download is
    /// made again (for up to 2 s) rather than read short.
    pub fn recording(&self) -> Vec<Recorded> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            let text = self.http("GET", "/moto-api/recorder/download-recording");
            let parsed: Result<Vec<serde_json::Value>, _> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(serde_json::from_str)
                .collect();
            match parsed {
                Ok(lines) => return lines.iter().filter_map(Recorded::parse).collect(),
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => panic!("moto's request recording is not JSON lines after 2 s: {e}"),
            }
        }
    }
}

impl Moto {
    /// The URL of the emulator's own API at `path` (for a host's `http` step).
    pub fn api_url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint)
    }
}

impl Recorded {
    /// The requests of a recording downloaded from
    /// `/moto-api/recorder/download-recording` (by a host's `http` step);
    /// `None` if it is not complete JSON lines.
    pub fn from_recording(text: &str) -> Option<Vec<Recorded>> {
        let lines: Result<Vec<Value>, _> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect();
        lines
            .ok()
            .map(|l| l.iter().filter_map(Recorded::parse).collect())
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}

/// One recorded AWS query-protocol request.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `Action=`
    pub action: String,
    /// the region from the SigV4 credential scope
    pub region: String,
    /// the access key id from the credential scope
    pub access_key: String,
    /// every form parameter, in order
    pub params: Vec<(String, String)>,
}

impl Recorded {
    fn parse(v: &Value) -> Option<Recorded> {
        let auth = v["headers"]["Authorization"].as_str()?;
        let scope = auth.split("Credential=").nth(1)?.split(',').next()?;
        let parts: Vec<&str> = scope.split('/').collect();
        let body = v["body"].as_str().unwrap_or("");
        let body = if v["body_encoded"] == true {
            use base64::Engine;
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .ok()?,
            )
            .ok()?
        } else {
            body.to_string()
        };
        let params: Vec<(String, String)> = body
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (url_decode(k), url_decode(v))
            })
            .collect();
        let action = params.iter().find(|(k, _)| k == "Action")?.1.clone();
        Some(Recorded {
            action,
            region: parts.get(2)?.to_string(),
            access_key: parts.first()?.to_string(),
            params,
        })
    }

    /// The value of parameter `k`.
    pub fn param(&self, k: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    /// The DescribeInstances filters as `(name, values)`.
    pub fn filters(&self) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        for n in 1.. {
            let Some(name) = self.param(&format!("Filter.{n}.Name")) else {
                break;
            };
            let mut values = Vec::new();
            for m in 1.. {
                match self.param(&format!("Filter.{n}.Value.{m}")) {
                    Some(v) => values.push(v.to_string()),
                    None => break,
                }
            }
            out.push((name.to_string(), values));
        }
        out
    }
}

fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let h = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(h, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Starts `tests/fixtures/<script>` with `args` and waits for its
/// `ready PORT` line; returns the process and `http://127.0.0.1:PORT`.
fn spawn_ready(script: &str, args: &[String]) -> (Child, String) {
    let mut child = Command::new(python())
        .arg(super::root().join("tests/fixtures").join(script))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {script}: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("ready ")
        .unwrap_or_else(|| panic!("{script} did not start: {line:?}"))
        .to_string();
    (child, format!("http://127.0.0.1:{port}"))
}

/// A fault-injecting proxy (`tests/fixtures/fault_proxy.py`) in front of an emulator.
pub struct FaultProxy {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    log: tempfile::NamedTempFile,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct ProxyEntry {
    /// `Action=`
    pub action: String,
    /// the SigV4 region
    pub region: String,
    /// unix time, seconds
    pub t: f64,
    /// a fault rule fired on it (an injected error, or any other fault kind)
    pub faulted: bool,
    /// the kind of fault (`error`, `reset`, `close`, `delay`, `truncate`,
    /// `html`), if one fired
    pub fault: Option<String>,
    /// 1-based count of this action's requests at the proxy
    pub n: u64,
    /// the SDK's attempt number (`amz-sdk-request: attempt=N`), 1 for a first try
    pub attempt: Option<u64>,
    /// the SDK's `amz-sdk-invocation-id`: the same for every try of one call
    pub invocation: Option<String>,
    /// unix time, seconds, when the proxy was done with it (answered or
    /// dropped); `None` while in flight
    pub t_end: Option<f64>,
    /// the access key id that signed it
    pub key: String,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` with `rules` (see the script's doc).
    pub fn start(upstream: &str, rules: Value) -> FaultProxy {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut args = vec![upstream.to_string(), log.path().display().to_string()];
        args.push(rules.to_string());
        let (child, endpoint) = spawn_ready("fault_proxy.py", &args);
        FaultProxy {
            child,
            endpoint,
            log,
        }
    }

    /// The requests for `action` seen so far, in arrival order.
    pub fn calls(&self, action: &str) -> Vec<ProxyEntry> {
        self.entries()
            .into_iter()
            .filter(|e| e.action == action)
            .collect()
    }

    /// Every request seen so far.
    pub fn entries(&self) -> Vec<ProxyEntry> {
        let text = std::fs::read_to_string(self.log.path()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let ends: std::collections::HashMap<u64, f64> = lines
            .iter()
            .filter_map(|v| Some((v["done"].as_u64()?, v["t_end"].as_f64()?)))
            .collect();
        lines
            .into_iter()
            .filter(|v| v.get("done").is_none())
            .map(|v| ProxyEntry {
                action: v["action"].as_str().unwrap().to_string(),
                region: v["region"].as_str().unwrap().to_string(),
                t: v["t"].as_f64().unwrap(),
                faulted: v["faulted"].as_bool().unwrap(),
                fault: v["fault"].as_str().map(str::to_string),
                n: v["n"].as_u64().unwrap_or(0),
                attempt: v["attempt"].as_u64(),
                invocation: v["invocation"].as_str().map(str::to_string),
                t_end: v["seq"].as_u64().and_then(|s| ends.get(&s).copied()),
                key: v["key"].as_str().unwrap_or_default().to_string(),
            })
            .collect()
    }
}

/// The fast EC2/STS endpoint of the benchmarks (`tests/fixtures/bench_endpoint.py`):
/// pages recorded from moto, replicated to `instances` distinct ids per region.
pub struct FastEndpoint {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    log: tempfile::NamedTempFile,
}

impl Drop for FastEndpoint {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl FastEndpoint {
    /// Starts it; `latency_ms` is added to every DescribeInstances page.
    pub fn start(instances: usize, latency_ms: u64, regions: &[&str]) -> FastEndpoint {
        FastEndpoint::start_paged(instances, latency_ms, regions, 0)
    }

    /// Like [`FastEndpoint::start`], serving at most `page_size` instances a page (0: MaxResults).
    pub fn start_paged(
        instances: usize,
        latency_ms: u64,
        regions: &[&str],
        page_size: usize,
    ) -> FastEndpoint {
        let log = tempfile::NamedTempFile::new().unwrap();
        let args: Vec<String> = [
            "--instances".to_string(),
            instances.to_string(),
            "--latency-ms".to_string(),
            latency_ms.to_string(),
            "--regions".to_string(),
            regions.join(","),
            "--page-size".to_string(),
            page_size.to_string(),
            "--log".to_string(),
            log.path().display().to_string(),
        ]
        .into();
        let (child, endpoint) = spawn_ready("bench_endpoint.py", &args);
        FastEndpoint {
            child,
            endpoint,
            log,
        }
    }

    /// A front for `upstream` (moto): it answers GetInstanceMetadataDefaults,
    /// ModifyInstanceMetadataDefaults (initial values `defaults`, a JSON
    /// object by region or `*`) and CBOR GetMetricData (asked of the
    /// upstream in JSON) itself, and forwards every other request.
    pub fn front(upstream: &str, defaults: &Value) -> FastEndpoint {
        let log = tempfile::NamedTempFile::new().unwrap();
        let args: Vec<String> = [
            "--upstream".to_string(),
            upstream.to_string(),
            "--defaults".to_string(),
            defaults.to_string(),
            "--calls".to_string(),
            log.path().display().to_string(),
        ]
        .into();
        let (child, endpoint) = spawn_ready("bench_endpoint.py", &args);
        FastEndpoint {
            child,
            endpoint,
            log,
        }
    }

    /// The calls a front answered itself (see `--calls` in the script), in order.
    pub fn calls(&self) -> Vec<Value> {
        std::fs::read_to_string(self.log.path())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The DescribeInstances pages served so far: (region, offset).
    pub fn pages(&self) -> Vec<(String, usize)> {
        std::fs::read_to_string(self.log.path())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                Some((it.next()?.to_string(), it.next()?.parse().ok()?))
            })
            .collect()
    }
}
