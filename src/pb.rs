//! Code generated from `proto/` by `build.rs`.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

pub mod calls {
    pub mod v1 {
        tonic::include_proto!("calls.v1");
        // The servers, generated apart (see build.rs).
        include!(concat!(env!("OUT_DIR"), "/servers/calls.v1.rs"));
    }
}

/// The encoded file descriptor set that server reflection serves.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("calls_descriptor");
