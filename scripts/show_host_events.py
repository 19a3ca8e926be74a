"""Prints sphost's JSON events (stdin) as a short human summary."""
import json
import sys

for line in sys.stdin:
    e = json.loads(line)
    ev = e["event"]
    if ev == "started":
        print(f"started pid {e['pid']} on {e['network']} {e['address']} in {e['ms']:.1f} ms")
    elif ev == "ping":
        print("health check: plugin", "SERVING" if e["ok"] else f"NOT SERVING {e.get('error')}")
    elif ev == "init":
        status = "error: " + e["error"] if e.get("error") else "ok"
        print(f"{e['rpc']:<24} {status}")
        if e["rpc"] == "GetSupportedOperations" and "response" in e:
            print("   ", json.dumps(e["response"]))
    elif ev == "reattached":
        print("reattached client(s):", e["clients"])
    elif ev == "schema":
        if e.get("error"):
            print("GetSchema error:", e["error"])
            continue
        s = e["response"]["schema"]
        tables = sorted(s["schema"])
        print(f"GetSchema (reattached)   mode={s['mode']} protocol_version={s['protocol_version']} "
              f"tables={tables}")
        for t in tables:
            cols = s["schema"][t]["columns"]
            print(f"    {t}: {len(cols)} columns")
    elif ev == "killed":
        print(f"Shutdown: exited in {e['ms']:.1f} ms, socket removed: {e['socket_gone']}, "
              f"forced kill: {e['forced']}")
    elif ev == "fatal":
        print("FATAL:", e["error"])
        sys.exit(1)
