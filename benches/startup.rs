//! Startup benchmark (prints figures; asserts nothing about speed).
//!
//! For 20 starts of the release plugin binary, as Steampipe's plugin manager
//! starts it (magic cookie, PLUGIN_* variables, no arguments), measures:
//! - spawn to the handshake line on stdout;
//! - spawn to the first `GetSchema` answer over the unix socket.
//!
//! As a baseline measured in the same run, it also times spawning `/bin/true`
//! (the cost of fork+exec on this machine), and reports each figure as a
//! ratio against it. Run with `cargo bench --bench startup`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use steampipe_plugin_aws::pb::steampipe::wrapper_plugin_client::WrapperPluginClient;
use steampipe_plugin_aws::pb::steampipe::GetSchemaRequest;

const RUNS: usize = 20;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn plugin_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join("steampipe-plugin-aws");
    assert!(p.exists(), "{} missing: run with cargo bench", p.display());
    p
}

fn start(bin: &Path) -> (std::process::Child, Duration, String) {
    let t = Instant::now();
    let mut child = Command::new(bin)
        .env(
            "MANTIX_PLUGIN_MAGIC_COOKIE",
            "really-complex-permanent-string-value",
        )
        .env("PLUGIN_PROTOCOL_VERSIONS", "0")
        .env("PLUGIN_MIN_PORT", "10000")
        .env("PLUGIN_MAX_PORT", "25000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn plugin");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let elapsed = t.elapsed();
    let socket = line
        .trim()
        .split('|')
        .nth(3)
        .expect("handshake")
        .to_string();
    (child, elapsed, socket)
}

fn main() {
    let bin = plugin_binary();
    let rt = tokio::runtime::Runtime::new().unwrap();

    let mut baseline = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        Command::new("/bin/true").status().unwrap();
        baseline.push(t.elapsed());
    }

    let mut handshake = Vec::new();
    let mut schema = Vec::new();
    for _ in 0..RUNS {
        let t0 = Instant::now();
        let (mut child, to_line, socket) = start(&bin);
        handshake.push(to_line);
        let answered = rt.block_on(async {
            let channel = tonic::transport::Endpoint::from_shared(format!("unix:{socket}"))
                .unwrap()
                .connect()
                .await
                .expect("connect");
            let mut client = WrapperPluginClient::new(channel);
            client
                .get_schema(GetSchemaRequest {
                    connection: "aws".into(),
                })
                .await
                .expect("GetSchema");
            t0.elapsed()
        });
        schema.push(answered);
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_file(&socket);
    }

    let base = median(baseline);
    let hs = median(handshake);
    let gs = median(schema);
    println!("startup benchmark: {RUNS} starts of {}", bin.display());
    println!(
        "  baseline spawn of /bin/true        median {:8.2} ms",
        ms(base)
    );
    println!(
        "  spawn -> handshake line            median {:8.2} ms  ({:.1}x baseline)",
        ms(hs),
        hs.as_secs_f64() / base.as_secs_f64()
    );
    println!(
        "  spawn -> first GetSchema answer    median {:8.2} ms  ({:.1}x baseline)",
        ms(gs),
        gs.as_secs_f64() / base.as_secs_f64()
    );
}
