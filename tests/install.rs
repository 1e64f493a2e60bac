//! `make install PREFIX=...` installs a tree that a C program builds against with nothing but
//! pkg-config, linking the shared library (found through its soname) or the static one.

#[path = "c/make.rs"]
mod make;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The installed prefix, installed once per run.
fn prefix() -> &'static Path {
    static PREFIX: OnceLock<PathBuf> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let dir = make::scratch_dir("install");
        let prefix = dir.join("prefix");
        make::make(
            &dir.join("build"),
            &["install", &format!("PREFIX={}", prefix.display())],
        );
        prefix
    })
}

fn pkg_config(args: &[&str]) -> Vec<String> {
    let output = make::run(
        Command::new("pkg-config")
            .args(args)
            .arg("sekura")
            .env("PKG_CONFIG_PATH", prefix().join("lib/pkgconfig"))
            .env_remove("PKG_CONFIG_LIBDIR"),
        "pkg-config (Debian: pkg-config)",
    );
    assert!(
        output.status.success(),
        "pkg-config {args:?} sekura failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Compiles examples-c/sekura-ssh.c, a real consumer, with `flags` into the scratch tree.
fn build_consumer(name: &str, flags: &[String]) -> PathBuf {
    let program = prefix().with_file_name(name);
    let source = Path::new(make::MANIFEST_DIR).join("examples-c/sekura-ssh.c");
    let output = make::run(
        Command::new("cc")
            .args([
                "-std=c11",
                "-Wall",
                "-Wextra",
                "-Wpedantic",
                "-Werror",
                "-pthread",
            ])
            .arg("-o")
            .arg(&program)
            .arg(source)
            .args(flags),
        "gcc (Debian: gcc)",
    );
    assert!(
        output.status.success(),
        "cc {} failed:\n{}",
        flags.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    program
}

/// The shared objects a program needs (`readelf -d`, NEEDED entries).
fn needed(program: &Path) -> Vec<String> {
    let output = make::run(Command::new("readelf").arg("-d").arg(program), "binutils");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains("(NEEDED)"))
        .filter_map(|line| line.split('[').nth(1)?.split(']').next().map(str::to_owned))
        .collect()
}

/// Runs `program -V` (prints the versions, exits 0) and `program` alone (usage, 255).
fn assert_runs(program: &Path, library_path: Option<&Path>) {
    let run = |args: &[&str]| -> Output {
        let mut cmd = Command::new(program);
        cmd.args(args).env_remove("LD_LIBRARY_PATH");
        if let Some(dir) = library_path {
            cmd.env("LD_LIBRARY_PATH", dir);
        }
        make::run(&mut cmd, "the program just built")
    };
    let version = run(&["-V"]);
    let stderr = String::from_utf8_lossy(&version.stderr);
    assert!(
        version.status.success() && stderr.contains(&format!("Sekura {VERSION}")),
        "{} -V: {:?}, stderr: {stderr}",
        program.display(),
        version.status
    );
    let usage = run(&[]);
    assert_eq!(
        usage.status.code(),
        Some(255),
        "{} without arguments",
        program.display()
    );
    assert!(String::from_utf8_lossy(&usage.stderr).starts_with("usage:"));
}

#[test]
fn installs_the_libraries_header_and_pkg_config_file() {
    let lib = prefix().join("lib");
    let real = lib.join(format!("libsekura.so.{VERSION}"));
    assert!(
        real.is_file() && !real.is_symlink(),
        "{} is installed",
        real.display()
    );
    let link = |name: &str| std::fs::read_link(lib.join(name)).map(|p| p.display().to_string());
    assert_eq!(
        link("libsekura.so.0").ok(),
        Some(format!("libsekura.so.{VERSION}"))
    );
    assert_eq!(link("libsekura.so").ok(), Some("libsekura.so.0".to_owned()));
    assert!(lib.join("libsekura.a").is_file());
    assert!(prefix().join("include/sekura.h").is_file());
    assert_eq!(pkg_config(&["--modversion"]), [VERSION]);
    let private = pkg_config(&["--static", "--libs"]);
    assert!(
        private.iter().any(|flag| flag == "-lpthread") && private.iter().any(|f| f == "-lc"),
        "Libs.private holds rustc's native-static-libs: {private:?}"
    );
}

#[test]
fn a_program_links_the_installed_shared_library_with_pkg_config() {
    let flags = pkg_config(&["--cflags", "--libs"]);
    let program = build_consumer("consumer-dynamic", &flags);
    assert!(
        needed(&program).contains(&"libsekura.so.0".to_owned()),
        "the program records the soname: {:?}",
        needed(&program)
    );
    assert_runs(&program, Some(&prefix().join("lib")));
}

#[test]
fn a_program_links_the_installed_static_library_with_pkg_config() {
    // `pkg-config --static` adds Libs.private; `-l:libsekura.a` makes the linker take the
    // archive, which it otherwise passes over for the shared library beside it.
    let flags: Vec<String> = pkg_config(&["--static", "--cflags", "--libs"])
        .into_iter()
        .map(|flag| match flag.as_str() {
            "-lsekura" => "-l:libsekura.a".to_owned(),
            _ => flag,
        })
        .collect();
    let program = build_consumer("consumer-static", &flags);
    let needed = needed(&program);
    assert!(
        !needed.iter().any(|lib| lib.starts_with("libsekura")),
        "statically linked, the program needs no libsekura: {needed:?}"
    );
    assert_runs(&program, None);
}
