//! Compiles `proto/` into Rust with a pure-Rust protobuf compiler (protox),
//! so that a fresh machine needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/steampipe/plugin.proto",
        "proto/goplugin/grpc_controller.proto",
        "proto/goplugin/grpc_stdio.proto",
        "proto/goplugin/grpc_broker.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto/steampipe", "proto/goplugin"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Rows are encoded once, as they are built (src/plugin/wire.rs).
        .extern_path(
            ".proto.ExecuteResponse",
            "crate::plugin::wire::ExecuteResponse",
        )
        .compile_fds(fds)?;
    embed_mod()?;
    Ok(())
}

/// The bundled Powerpipe mod travels inside the binary, so `check` works
/// wherever the plugin is installed: every file under `mod/`, by relative path.
fn embed_mod() -> Result<(), Box<dyn std::error::Error>> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out)?;
            } else {
                out.push(p);
            }
        }
        Ok(())
    }
    // Read when the script runs, not when it is compiled: cargo may reuse one
    // compiled build script for two checkouts of this package.
    let root = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("mod");
    println!("cargo:rerun-if-changed=mod");
    let mut files = Vec::new();
    walk(&root, &mut files)?;
    let mut code = String::from("/// Every file of the bundled mod: (path relative to mod/, content).\npub static FILES: &[(&str, &str)] = &[\n");
    for f in files {
        println!("cargo:rerun-if-changed={}", f.display());
        let rel = f.strip_prefix(&root)?.to_string_lossy().replace('\\', "/");
        code.push_str(&format!(
            "    ({rel:?}, include_str!({:?})),\n",
            f.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("embedded_mod.rs");
    std::fs::write(out, code)?;
    Ok(())
}
