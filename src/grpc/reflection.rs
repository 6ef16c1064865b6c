//! Server reflection (v1 and v1alpha) over every file a client meets, each under its canonical
//! path: our API, health, reflection itself and the `google.rpc` error details.
//!
//! tonic-types, tonic-health and tonic-reflection compile their protos from flat directories,
//! so their descriptor sets name `google/rpc/error_details.proto` just `error_details.proto`
//! (and `status.proto`, `health.proto`, `reflection_v1.proto`...). Clients key files by path:
//! `buf curl` links the real `google/rpc/error_details.proto` in, finds a second file defining
//! `google.rpc.BadRequest`, and prints every error detail as base64. So the names (and the
//! imports that point at them) are rewritten once at start-up, here, rather than copying the
//! upstream `.proto` files into this repository. The well-known types (`google/protobuf/*`)
//! already carry their canonical names, as do our own files.

use prost::Message;
use prost_types::{FileDescriptorProto, FileDescriptorSet};
use tonic_reflection::server::{
    v1::{ServerReflection as ServerReflectionV1, ServerReflectionServer as ServerV1},
    v1alpha::{
        ServerReflection as ServerReflectionV1Alpha, ServerReflectionServer as ServerV1Alpha,
    },
    Builder,
};

use crate::pb;

/// The flat names the crates we serve use, and the paths every other tool knows these files by.
const CANONICAL_PATHS: &[(&str, &str)] = &[
    ("status.proto", "google/rpc/status.proto"),
    ("error_details.proto", "google/rpc/error_details.proto"),
    ("health.proto", "grpc/health/v1/health.proto"),
    ("reflection_v1.proto", "grpc/reflection/v1/reflection.proto"),
    (
        "reflection_v1alpha.proto",
        "grpc/reflection/v1alpha/reflection.proto",
    ),
];

/// Both reflection services, over the same files.
pub fn reflection_services() -> Result<
    (
        ServerV1<impl ServerReflectionV1>,
        ServerV1Alpha<impl ServerReflectionV1Alpha>,
    ),
    tonic_reflection::server::Error,
> {
    let configure = || {
        Builder::configure()
            // Our own set is registered as encoded bytes, served as compiled (custom options
            // kept); the others are decoded to be renamed. Both reflection services' files are
            // in `renamed_descriptor_set`, under their canonical names.
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_file_descriptor_set(renamed_descriptor_set())
            .include_reflection_service(false)
    };
    Ok((configure().build_v1()?, configure().build_v1alpha()?))
}

/// The descriptor sets of the crates we serve, with every file under its canonical path.
pub fn renamed_descriptor_set() -> FileDescriptorSet {
    let encoded_sets = [
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_types::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let file = encoded_sets
        .into_iter()
        .flat_map(|encoded| {
            FileDescriptorSet::decode(encoded)
                .expect("the descriptor sets of our dependencies decode")
                .file
        })
        .map(with_canonical_names)
        .collect();
    FileDescriptorSet { file }
}

fn with_canonical_names(mut file: FileDescriptorProto) -> FileDescriptorProto {
    file.name = file.name.map(canonical_path);
    file.dependency = file.dependency.into_iter().map(canonical_path).collect();
    file
}

fn canonical_path(name: String) -> String {
    CANONICAL_PATHS
        .iter()
        .find(|(flat, _)| *flat == name)
        .map_or(name, |(_, canonical)| (*canonical).to_owned())
}

#[cfg(test)]
mod tests {
    use prost_reflect::DescriptorPool;

    use super::*;

    fn every_served_file() -> Vec<FileDescriptorProto> {
        let mut files = FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET)
            .unwrap()
            .file;
        files.extend(renamed_descriptor_set().file);
        files
    }

    #[test]
    fn every_served_file_is_named_by_its_package_path() {
        // A new flat file in a dependency's next release fails here until it has a row above.
        for file in every_served_file() {
            let name = file.name();
            let directory = file.package().replace('.', "/");
            assert!(
                name.starts_with(&format!("{directory}/")),
                "{name} (package {}) is not under {directory}/",
                file.package()
            );
        }
    }

    #[test]
    fn the_error_details_are_served_under_their_canonical_paths() {
        let names: Vec<String> = renamed_descriptor_set()
            .file
            .into_iter()
            .map(|file| file.name().to_owned())
            .collect();
        for expected in [
            "google/rpc/status.proto",
            "google/rpc/error_details.proto",
            "grpc/health/v1/health.proto",
        ] {
            assert!(names.iter().any(|name| name == expected), "{names:?}");
        }
    }

    #[test]
    fn every_import_resolves_to_a_served_file() {
        // The pool refuses a file whose imports it does not hold.
        let mut pool = DescriptorPool::new();
        let mut files = every_served_file();
        files.sort_by_key(|file| file.name().to_owned());
        files.dedup_by_key(|file| file.name().to_owned());
        pool.add_file_descriptor_protos(files)
            .expect("every renamed file and its imports form one pool");
        assert!(pool.get_message_by_name("google.rpc.BadRequest").is_some());
    }

    #[test]
    fn both_reflection_services_build() {
        reflection_services().expect("reflection builds");
    }
}
