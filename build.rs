//! Compiles `proto/` with protox (pure Rust, so no system `protoc` is needed) and generates the
//! tonic server and client code plus the descriptor set that server reflection serves.

use std::{env, fs, path::PathBuf};

const CODEC: &str = "crate::grpc::codec::SmallBufferCodec";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/calls/v1/call.proto",
        "proto/calls/v1/call_service.proto",
        "proto/calls/v1/watch.proto",
        "proto/calls/v1/watch_service.proto",
    ];
    println!("cargo:rerun-if-changed=proto");

    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler
        .include_source_info(true)
        .include_imports(true)
        .open_files(protos)?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // The compiler's own encoding keeps the custom options (`google.api.http`) that a round
    // trip through prost_types would drop: the REST door and the OpenAPI document read them.
    fs::write(
        out_dir.join("calls_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    let file_descriptors = compiler.file_descriptor_set();
    // Messages and clients. Type names let the request checks find each message's descriptor.
    let mut messages = tonic_prost_build::Config::new();
    messages.enable_type_names();
    tonic_prost_build::configure()
        .codec_path(CODEC)
        .build_server(false)
        .compile_fds_with_config(file_descriptors.clone(), messages)?;
    // Servers, apart: the same messages, except that ListCalls answers with a page encoded
    // straight from the database rows (src/grpc/call_page.rs). Clients decode it as the
    // generated `ListCallsResponse`; the bytes on the wire are the same.
    let servers_dir = out_dir.join("servers");
    fs::create_dir_all(&servers_dir)?;
    tonic_prost_build::configure()
        .codec_path(CODEC)
        .build_client(false)
        .extern_path(".calls.v1", "crate::pb::calls::v1")
        .extern_path(".calls.v1.ListCallsResponse", "crate::grpc::EncodedPage")
        .out_dir(servers_dir)
        .compile_fds(file_descriptors)?;
    Ok(())
}
