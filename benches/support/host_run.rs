//! Runs an sphost scenario while sampling the plugin's RSS and the CPU time of
//! the plugin and the host at each event (shared by the benches).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub struct HostRun {
    /// sphost's events; each also carries `arrived_ms` (from sphost's spawn
    /// to the line being read) and, while the plugin runs, `plugin_cpu_ms`
    /// and `host_cpu_ms` (CPU used so far).
    pub events: Vec<Value>,
    pub idle_rss_kb: u64,
    pub peak_rss_kb: u64,
}

/// CPU time (user + system) of a process so far, in ms; `None` once it is gone.
pub fn cpu_ms(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3,
    // utime and stime are fields 14 and 15, in clock ticks (100 a second).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 * 10.0)
}

pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Runs a scenario, sampling the plugin's RSS while it runs. The idle RSS is
/// read when step 0, a `sleep`, ends.
pub fn host_run(scenario: &Value) -> HostRun {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.json");
    std::fs::write(&file, scenario.to_string()).unwrap();
    let t0 = Instant::now();
    let mut child = Command::new(super::common::sphost())
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = Arc::new(AtomicU32::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let idle = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (pid, done, idle, peak) = (pid.clone(), done.clone(), idle.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let p = pid.load(Ordering::SeqCst);
                if p != 0 {
                    if let Some(rss) = status_kb(p, "VmRSS:") {
                        if idle.load(Ordering::SeqCst) == 0 {
                            idle.store(rss, Ordering::SeqCst);
                        }
                        peak.fetch_max(rss, Ordering::SeqCst);
                    }
                    if let Some(hwm) = status_kb(p, "VmHWM:") {
                        peak.fetch_max(hwm, Ordering::SeqCst);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let mut events = Vec::new();
    let host_pid = child.id().to_string();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let mut v: Value = serde_json::from_str(&line.unwrap()).unwrap();
        v["arrived_ms"] = json!(t0.elapsed().as_secs_f64() * 1000.0);
        // CPU used so far by the plugin and by the host, at each event.
        let p = pid.load(Ordering::SeqCst);
        if let (Some(plugin), Some(host)) = (cpu_ms(&p.to_string()), cpu_ms(&host_pid)) {
            v["plugin_cpu_ms"] = json!(plugin);
            v["host_cpu_ms"] = json!(host);
        }
        if v["event"] == "started" {
            pid.store(v["pid"].as_u64().unwrap() as u32, Ordering::SeqCst);
        }
        if v["event"] == "slept" && v["step"] == 0 {
            // The plugin sat idle for the first step: that is its idle RSS.
            if let Some(rss) = status_kb(pid.load(Ordering::SeqCst), "VmRSS:") {
                idle.store(rss, Ordering::SeqCst);
            }
        }
        events.push(v);
    }
    done.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    assert!(child.wait().unwrap().success(), "sphost failed: {events:?}");
    HostRun {
        events,
        idle_rss_kb: idle.load(Ordering::SeqCst),
        peak_rss_kb: peak.load(Ordering::SeqCst),
    }
}
