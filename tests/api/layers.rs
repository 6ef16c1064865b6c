//! The layering the README's architecture section describes, checked on the sources: modules
//! depend only on modules below them (so no cycle between folders), and only the front door and
//! the server that wires it know gRPC. A `use` that breaks it fails here, naming the file.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

/// The library's modules, lowest first: each may use only those before it.
const LAYERS: &[&str] = &[
    "error",
    "domain",
    "store",
    "tokens",
    "fair_shares",
    "auth",
    "feed",
    "webhooks",
    "service",
    "api",
    "grpc",
    "rest",
];

/// The front doors: each converts, authenticates and maps errors on its own, sharing only
/// what lies below them (`api`, the proto messages and their conversion), never each other.
const DOORS: &[&str] = &["grpc", "rest"];

/// Where gRPC itself (tonic, prost, the generated `pb` types, the `grpc` door) may appear: the
/// doors, the proto messages' conversion they share (`api`), the generated code, and the
/// server that accepts connections and wires it all.
const TRANSPORT_FILES: &[&str] = &[
    "src/grpc/",
    "src/rest/",
    "src/api/",
    "src/pb.rs",
    "src/app.rs",
    "src/main.rs",
    "src/connections.rs",
    "src/bin/",
];
const TRANSPORT_NAMES: &[&str] = &["tonic::", "prost::", "crate::pb", "crate::grpc"];

#[test]
fn each_module_uses_only_the_modules_below_it() {
    let mut breaches = Vec::new();
    for (rank, module) in LAYERS.iter().enumerate() {
        for file in sources_of(module) {
            for used in crate_modules_used(&code_of(&file)) {
                let above = LAYERS[rank + 1..].contains(&used.as_str());
                if above || used == "app" {
                    breaches.push(format!("{} uses crate::{used}", file.display()));
                }
            }
        }
    }
    assert!(
        breaches.is_empty(),
        "layers used upwards:\n{}",
        breaches.join("\n")
    );
}

#[test]
fn neither_door_uses_the_other() {
    let mut breaches = Vec::new();
    for door in DOORS {
        for file in sources_of(door) {
            let code = code_of(&file);
            for other in DOORS.iter().filter(|other| *other != door) {
                if crate_modules_used(&code).contains(*other)
                    || code.contains(&format!("{other}::"))
                {
                    breaches.push(format!("{} uses {other}", file.display()));
                }
            }
        }
    }
    assert!(
        breaches.is_empty(),
        "a door uses the other:\n{}",
        breaches.join("\n")
    );
}

#[test]
fn only_the_doors_and_the_server_know_grpc() {
    let mut breaches = Vec::new();
    for file in rust_files(&root().join("src")) {
        let relative = file.strip_prefix(root()).unwrap().display().to_string();
        if TRANSPORT_FILES
            .iter()
            .any(|allowed| relative.starts_with(allowed))
        {
            continue;
        }
        let code = code_of(&file);
        for name in TRANSPORT_NAMES.iter().filter(|name| code.contains(*name)) {
            breaches.push(format!("{relative} uses {name}"));
        }
    }
    assert!(
        breaches.is_empty(),
        "gRPC outside its door:\n{}",
        breaches.join("\n")
    );
}

#[test]
fn the_checker_reads_braced_and_nested_uses() {
    let code = "use crate::{\n    domain::{Call, Position},\n    store::Store, Error,\n};\n\
                fn f() { crate::feed::Feed::new(); }\n";
    assert_eq!(
        crate_modules_used(code),
        BTreeSet::from(["domain".to_owned(), "feed".to_owned(), "store".to_owned()])
    );
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `src/<module>.rs` and everything under `src/<module>/`.
fn sources_of(module: &str) -> Vec<PathBuf> {
    let src = root().join("src");
    let mut files = rust_files(&src.join(module));
    let file = src.join(format!("{module}.rs"));
    if file.is_file() {
        files.push(file);
    }
    assert!(!files.is_empty(), "no sources for module {module}");
    files
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for path in entries.map(|entry| entry.unwrap().path()) {
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
    files
}

/// The file without its comments (doc comments may name any module).
fn code_of(file: &Path) -> String {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The crate's top-level modules named by `crate::x` paths and `use crate::{x::..., y}`
/// groups (lower-case names only: `crate::Error` is a re-export, not a module).
fn crate_modules_used(code: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            used.extend(top_level_names(group));
        } else {
            used.extend(leading_name(rest));
        }
    }
    used.retain(|name| name.starts_with(|c: char| c.is_ascii_lowercase()) && name != "self");
    used
}

/// The names at the top level of a `{...}` group, whose opening brace was already read.
fn top_level_names(group: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0;
    let mut expecting_name = true;
    for (at, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => expecting_name = true,
            c if depth == 0 && expecting_name && !c.is_whitespace() => {
                names.extend(leading_name(&group[at..]));
                expecting_name = false;
            }
            _ => {}
        }
    }
    names
}

fn leading_name(text: &str) -> Option<String> {
    let name: String = text
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}
