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
        .compile_fds(fds)?;
    Ok(())
}
