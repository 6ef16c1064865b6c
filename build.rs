//! Compiles `proto/` with protox (pure Rust, so no system `protoc` is needed) and generates the
//! tonic server and client code plus the descriptor set that server reflection serves.

use std::{env, fs, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/calls/v1/call.proto",
        "proto/calls/v1/call_service.proto",
        "proto/calls/v1/watch.proto",
        "proto/calls/v1/watch_service.proto",
    ];
    println!("cargo:rerun-if-changed=proto");

    let file_descriptors = protox::compile(protos, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("calls_descriptor.bin"),
        file_descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .codec_path("crate::grpc::codec::SmallBufferCodec")
        .compile_fds(file_descriptors)?;
    Ok(())
}
