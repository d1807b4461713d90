//! Generates the gRPC code for `proto/negotium/v1` with the protoc that
//! ships inside `protoc-bin-vendored`, so a fresh machine needs no system
//! protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path()?;
        // SAFETY: build scripts are single-threaded; nothing else reads the
        // environment concurrently.
        unsafe { std::env::set_var("PROTOC", protoc) };
    }
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure().compile_protos(
        &["proto/negotium/v1/negotiation.proto", "proto/negotium/v1/cluster.proto", "proto/negotium/v1/training.proto"],
        &["proto"],
    )?;
    Ok(())
}
