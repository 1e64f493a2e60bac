//! include/sekura.h is generated from src/ffi by cbindgen and committed. This test generates it
//! again in memory and fails, naming the command to run, when the committed file differs; the
//! ignored test `regenerate` (run by `make header`) writes it. It also compiles the header on
//! its own as strict C11 and as C++, so a declaration C compilers reject cannot be committed.
//!
//! The README's copies of facts are checked here too: its C example compiles against the
//! header, its algorithm table is what the library offers, its Rust version is Cargo.toml's.

#[path = "c/make.rs"]
mod make;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use make::MANIFEST_DIR;

fn header_path() -> PathBuf {
    Path::new(MANIFEST_DIR).join("include").join("sekura.h")
}

/// The version macros, from Cargo's package version: the one place the version is written is
/// Cargo.toml.
fn version_macros() -> String {
    format!(
        "\n/** The version of this header: major, minor and patch numbers, and all three as a \
         string.\n * Compare with sekura_version(), the version of the library loaded at run \
         time. */\n\
         #define SEKURA_VERSION_MAJOR {}\n\
         #define SEKURA_VERSION_MINOR {}\n\
         #define SEKURA_VERSION_PATCH {}\n\
         #define SEKURA_VERSION_STRING \"{}\"\n",
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
        env!("CARGO_PKG_VERSION"),
    )
}

/// The header as src/ffi and cbindgen.toml describe it now, generated once per run.
fn generate() -> &'static str {
    static HEADER: OnceLock<String> = OnceLock::new();
    HEADER.get_or_init(generate_uncached)
}

fn generate_uncached() -> String {
    let mut config = cbindgen::Config::from_file(Path::new(MANIFEST_DIR).join("cbindgen.toml"))
        .expect("cbindgen.toml should parse");
    config.after_includes = Some(version_macros());
    // Only src/ffi is the C API: parsing the whole crate would export the protocol's own
    // public constants (message numbers, window sizes) into every C program's namespace.
    // cbindgen follows src/ffi/mod.rs's `mod` items to the other files.
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(Path::new(MANIFEST_DIR).join("src/ffi/mod.rs"))
        .generate()
        .expect("cbindgen should parse src/ffi");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("the generated header should be UTF-8")
}

#[test]
fn header_is_current() {
    let generated = generate();
    let committed = fs::read_to_string(header_path()).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(committed.lines().count().min(generated.lines().count()))
            + 1;
        panic!(
            "include/sekura.h is not what src/ffi generates (first difference at line {line}); \
             run `make header` and commit include/sekura.h"
        );
    }
}

#[test]
fn every_declaration_is_documented() {
    let header = generate();
    let lines: Vec<&str> = header.lines().collect();
    let mut undocumented = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let declares = line.starts_with("#define SSH_")
            || line.starts_with("#define SFTP_")
            || line.starts_with("typedef ")
            || make::declared_function(line).is_some();
        if !declares {
            continue;
        }
        let previous = lines[..i].iter().rev().find(|l| !l.trim().is_empty());
        if !previous.is_some_and(|p| p.trim_end().ends_with("*/")) {
            undocumented.push(line.trim().to_string());
        }
    }
    assert!(
        undocumented.is_empty(),
        "these declarations in the header have no doc comment in src/ffi:\n  {}",
        undocumented.join("\n  ")
    );
}

/// Compiles `source` (named `source_name`) with `compiler` and `flags` against the header
/// generated now, checking syntax and types only.
fn compile_against_header(compiler: &str, flags: &[&str], source_name: &str, source: &str) {
    // A directory per source: tests run in parallel, and one rewriting the header while
    // another's compiler reads it made that compile fail.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("header-{source_name}"));
    fs::create_dir_all(&dir).expect("create the scratch directory");
    fs::write(dir.join("sekura.h"), generate()).expect("write the header");
    let path = dir.join(source_name);
    fs::write(&path, source).expect("write the test source");
    let output = make::run(
        Command::new(compiler)
            .args(flags)
            .arg("-fsyntax-only")
            .arg("-I")
            .arg(&dir)
            .arg(&path),
        "gcc and g++ (Debian: gcc g++)",
    );
    assert!(
        output.status.success(),
        "{source_name} does not compile with {compiler} {}:\n{}",
        flags.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

const STRICT_C: &[&str] = &["-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror"];

/// Includes only the header, twice (the include guard).
const ONLY_HEADER: &str =
    "#include <sekura.h>\n#include <sekura.h>\nint main(void) { return SSH_OK; }\n";

#[test]
fn header_compiles_as_strict_c() {
    compile_against_header("cc", STRICT_C, "only_header.c", ONLY_HEADER);
}

#[test]
fn header_compiles_as_cpp() {
    let flags = ["-std=c++11", "-Wall", "-Wextra", "-Wpedantic", "-Werror"];
    compile_against_header("c++", &flags, "only_header.cpp", ONLY_HEADER);
}

/// The names the header declares at file scope: macros, typedefs (struct and function
/// pointer) and functions.
fn declared_names(header: &str) -> Vec<String> {
    let identifier = |text: &str| -> String {
        text.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = Vec::new();
    for line in header.lines() {
        if let Some(rest) = line.strip_prefix("#define ") {
            names.push(identifier(rest));
        } else if let Some(rest) = line.strip_prefix("} ") {
            names.push(identifier(rest.trim_start()));
        } else if let Some(rest) = line.strip_prefix("typedef ") {
            if let Some((_, pointer)) = rest.split_once("(*") {
                names.push(identifier(pointer));
            } else if let Some(last) = rest.trim_end_matches(';').rsplit(' ').next() {
                if last != "{" {
                    names.push(identifier(last));
                }
            }
        } else if let Some(name) = make::declared_function(line) {
            names.push(name.to_owned());
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

/// Only Sekura's prefixes reach a C program's namespace: no protocol constant, no helper.
#[test]
fn the_header_declares_only_prefixed_names() {
    const PREFIXES: [&str; 6] = ["SSH_", "SEKURA_", "SFTP_", "ssh_", "sekura_", "sftp_"];
    let names = declared_names(generate());
    assert!(names.len() > 150, "too few names found: {names:?}");
    let stray: Vec<&String> = names
        .iter()
        .filter(|n| !PREFIXES.iter().any(|p| n.starts_with(p)))
        .collect();
    assert!(
        stray.is_empty(),
        "include/sekura.h declares names without a Sekura prefix: {stray:?}"
    );
}

/// Names that applications commonly define themselves, before including the header.
const NEXT_TO_APPLICATION_NAMES: &str = "#define DEBUG 1\n#define ERROR 2\n#define IGNORE 3\n\
     #define WINDOW_SIZE 4\ntypedef int KeyType;\ntypedef int Channel;\n#include <sekura.h>\n\
     int main(void) { return SSH_OK + DEBUG + ERROR + IGNORE + WINDOW_SIZE + (KeyType)0 + \
     (Channel)0; }\n";

#[test]
fn header_compiles_next_to_an_application_s_own_names() {
    compile_against_header("cc", STRICT_C, "app_names.c", NEXT_TO_APPLICATION_NAMES);
}

fn readme() -> String {
    fs::read_to_string(Path::new(MANIFEST_DIR).join("README.md")).expect("read README.md")
}

#[test]
fn readme_example_compiles() {
    let readme = readme();
    let start = readme.find("```c\n").expect("README.md has a ```c example") + 5;
    let length = readme[start..].find("```").expect("the example ends");
    compile_against_header(
        "cc",
        STRICT_C,
        "readme_example.c",
        &readme[start..start + length],
    );
}

/// The wire names in backquotes in the README's algorithm table row for `kind`: the default
/// column and the legacy column.
fn readme_algorithms(readme: &str, kind: &str) -> (Vec<String>, Vec<String>) {
    let row = readme
        .lines()
        .find(|line| line.starts_with(&format!("| {kind} |")))
        .unwrap_or_else(|| panic!("README.md's algorithm table has no row `| {kind} |`"));
    let names = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let cells: Vec<&str> = row.split('|').collect();
    (names(cells[2]), names(cells[3]))
}

#[test]
fn readme_lists_the_algorithms_the_library_offers() {
    use sekura::proto::{AlgorithmKind, Preferences};
    let readme = readme();
    let defaults = Preferences::default();
    let mut differences = String::new();
    for (row, kind) in [
        ("kex", AlgorithmKind::Kex),
        ("host key", AlgorithmKind::HostKey),
        ("cipher", AlgorithmKind::Cipher),
        ("MAC", AlgorithmKind::Mac),
        ("compression", AlgorithmKind::Compression),
    ] {
        let default = defaults.get(kind);
        let legacy: Vec<&str> = kind
            .supported_names()
            .into_iter()
            .filter(|name| !default.contains(name))
            .collect();
        let (readme_default, readme_legacy) = readme_algorithms(&readme, row);
        if readme_default != default || readme_legacy != legacy {
            differences.push_str(&format!(
                "| {row} | {} | {} |\n",
                backquoted(default),
                backquoted(&legacy)
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "README.md's algorithm table differs from the library's; these rows are right:\n{differences}"
    );
}

/// `a`, `b`: names as the README's table writes them.
fn backquoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn readme_states_the_minimum_rust_version() {
    let sentence = format!("Rust {} or later", env!("CARGO_PKG_RUST_VERSION"));
    assert!(
        readme().contains(&sentence),
        "README.md should say \"{sentence}\" (Cargo.toml's rust-version)"
    );
}

/// Writes include/sekura.h. Run by `make header`.
#[test]
#[ignore = "writes include/sekura.h; run it with `make header`"]
fn regenerate() {
    let path = header_path();
    fs::create_dir_all(path.parent().expect("include/ has a parent")).expect("create include/");
    fs::write(&path, generate()).expect("write include/sekura.h");
    println!("wrote {}", path.display());
}
