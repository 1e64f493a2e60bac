//! include/sekura.h is generated from src/ffi by cbindgen and committed. This test generates it
//! again in memory and fails, naming the command to run, when the committed file differs; the
//! ignored test `regenerate` (run by `make header`) writes it. It also compiles the header on
//! its own as strict C11 and as C++, so a declaration C compilers reject cannot be committed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

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
fn generate() -> String {
    static HEADER: OnceLock<String> = OnceLock::new();
    HEADER.get_or_init(generate_uncached).clone()
}

fn generate_uncached() -> String {
    let mut config = cbindgen::Config::from_file(Path::new(MANIFEST_DIR).join("cbindgen.toml"))
        .expect("cbindgen.toml should parse");
    config.after_includes = Some(version_macros());
    let bindings = cbindgen::Builder::new()
        .with_crate(MANIFEST_DIR)
        .with_config(config)
        .generate()
        .expect("cbindgen should parse the crate");
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
            || function_name(line).is_some();
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

/// The function a line of the header starts to declare, if it does.
fn function_name(line: &str) -> Option<&str> {
    if line.starts_with([' ', '\t', '*', '/', '#', '}']) || line.starts_with("typedef") {
        return None;
    }
    let before_paren = &line[..line.find('(')?];
    let name = before_paren
        .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()?;
    (!name.is_empty()).then_some(name)
}

/// Compiles a translation unit that includes only the header, with `compiler` and `flags`.
fn compile_header_alone(compiler: &str, flags: &[&str], source_name: &str) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("header");
    fs::create_dir_all(&dir).expect("create the scratch directory");
    fs::write(dir.join("sekura.h"), generate()).expect("write the header");
    let source = dir.join(source_name);
    fs::write(
        &source,
        "#include \"sekura.h\"\n#include \"sekura.h\"\nint main(void) { return SSH_OK; }\n",
    )
    .expect("write the test source");
    let output = Command::new(compiler)
        .args(flags)
        .arg("-fsyntax-only")
        .arg("-I")
        .arg(&dir)
        .arg(&source)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `{compiler}` ({e}); install gcc and g++ (Debian: gcc g++)")
        });
    assert!(
        output.status.success(),
        "the header does not compile with {compiler} {}:\n{}",
        flags.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn header_compiles_as_strict_c() {
    compile_header_alone(
        "cc",
        &["-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror"],
        "only_header.c",
    );
}

#[test]
fn header_compiles_as_cpp() {
    compile_header_alone(
        "c++",
        &["-std=c++11", "-Wall", "-Wextra", "-Wpedantic", "-Werror"],
        "only_header.cpp",
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
