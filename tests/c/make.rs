//! Building Sekura's C side for a test: the shared library, examples-c/* and tests/c/*.
//!
//! The tests run the Makefile, the one place the link and the compiler flags are written,
//! with `NO_CARGO=1` and `STATIC_LIB` pointing at the static library that cargo built for
//! this very test run (`cargo test` builds every crate type of the library into
//! `target/<profile>/deps/`). So the C programs test the same code as the Rust tests, in the
//! same profile, and no second cargo build runs.
//!
//! Used by tests/abi.rs, tests/c_programs.rs, tests/c_server.rs, tests/c_sshd.rs,
//! tests/header.rs and tests/install.rs as
//! `#[path = "c/make.rs"] mod make;`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The crate's directory, where the Makefile is.
pub const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// `target/<profile>`: the test executable is `target/<profile>/deps/<test>-<hash>`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test executable lives in target/<profile>/deps")
        .to_path_buf()
}

/// The static library cargo built with this test executable: `deps/libsekura-<hash>.a`,
/// the newest if several builds left one (the crate has no cdylib, so cargo names it with
/// the same hash as the rlib the test links).
pub fn static_lib() -> PathBuf {
    let deps = profile_dir().join("deps");
    std::fs::read_dir(&deps)
        .expect("read target/<profile>/deps")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_name()?.to_str()?;
            let ours = name.starts_with("libsekura-") && name.ends_with(".a");
            let modified = path.metadata().and_then(|m| m.modified()).ok()?;
            ours.then_some((modified, path))
        })
        .max()
        .map(|(_, path)| path)
        .unwrap_or_else(|| {
            panic!(
                "no libsekura-*.a in {}: cargo should have built it with this test \
                 (crate-type staticlib)",
                deps.display()
            )
        })
}

/// A fresh directory `target/tmp/<name>-<profile>` for this test executable's C build.
pub fn scratch_dir(name: &str) -> PathBuf {
    let profile = profile_dir()
        .file_name()
        .expect("profile directory name")
        .to_string_lossy()
        .into_owned();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{profile}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove the old scratch directory");
    }
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

/// Runs `make` in the crate with `BUILD=build_dir` and `args` (targets and variables);
/// panics with make's output if it fails.
pub fn make(build_dir: &Path, args: &[&str]) {
    let output = run(
        Command::new("make")
            .current_dir(MANIFEST_DIR)
            .arg("--no-print-directory")
            .arg("NO_CARGO=1")
            .arg(format!("STATIC_LIB={}", static_lib().display()))
            .arg(format!("BUILD={}", build_dir.display()))
            .args(args)
            // A make running this test (make test) must not hand its jobserver down.
            .env_remove("MAKEFLAGS")
            .env_remove("MFLAGS")
            .env_remove("MAKELEVEL"),
        "make (Debian: make)",
    );
    assert!(
        output.status.success(),
        "make {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Builds one program of the Makefile, `program` (e.g. `bin/sekura-sshd`) in a fresh build
/// directory [`scratch_dir`]`(name)`, and returns its path.
pub fn build_program(name: &str, program: &str) -> PathBuf {
    let build = scratch_dir(name);
    let path = build.join(program);
    make(&build, &[path.to_str().expect("UTF-8 build path")]);
    path
}

/// Runs `cmd` to completion, capturing its output; a missing program fails naming the
/// Debian package to install (`what`), never skips.
pub fn run(cmd: &mut Command, what: &str) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {:?} ({e}); install {what}", cmd.get_program()))
}

/// The function a line of include/sekura.h starts to declare, if it does: cbindgen writes a
/// declaration's return type, name and opening parenthesis on its first line.
pub fn declared_function(line: &str) -> Option<&str> {
    if line.starts_with([' ', '\t', '*', '/', '#', '}']) || line.starts_with("typedef") {
        return None;
    }
    let name = line[..line.find('(')?]
        .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()?;
    (!name.is_empty()).then_some(name)
}
