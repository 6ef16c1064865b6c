//! Code generated from `proto/` by `build.rs`.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

pub mod calls {
    pub mod v1 {
        tonic::include_proto!("calls.v1");
    }
}

/// The encoded file descriptor set that server reflection serves.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("calls_descriptor");
