//! The exported C ABI: libsekura.so exports exactly the functions listed in
//! abi/sekura.symbols, each versioned SEKURA_0, under the soname libsekura.so.0, and they are
//! exactly the functions include/sekura.h declares. A change to the list is deliberate: run
//! `make abi` (the ignored test `regenerate`) and commit abi/sekura.symbols.

#[path = "c/make.rs"]
mod make;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const VERSION_NODE: &str = "SEKURA_0";
const SONAME: &str = "libsekura.so.0";

/// The shared library as installed, linked once per run by the Makefile.
fn shared_lib() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let build = make::scratch_dir("abi");
        make::make(&build, &["lib"]);
        build.join("lib").join(SONAME)
    })
}

fn symbols_file() -> PathBuf {
    Path::new(make::MANIFEST_DIR)
        .join("abi")
        .join("sekura.symbols")
}

/// `(name, version)` of every symbol `nm -D --defined-only` lists, without the version
/// definition itself; version is "" for an unversioned symbol.
fn exported(lib: &Path) -> Vec<(String, String)> {
    let output = make::run(
        Command::new("nm").arg("-D").arg("--defined-only").arg(lib),
        "binutils",
    );
    assert!(
        output.status.success(),
        "nm -D {} failed: {}",
        lib.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, kind, symbol) = (fields.next()?, fields.next()?, fields.next()?);
            if kind == "A" && symbol == VERSION_NODE {
                return None;
            }
            let (name, version) = symbol.split_once("@@").unwrap_or((symbol, ""));
            Some((name.to_owned(), version.to_owned()))
        })
        .collect()
}

/// The exported names, sorted, one per line: abi/sekura.symbols' format.
fn symbol_list() -> String {
    let names: BTreeSet<String> = exported(shared_lib())
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    names.into_iter().map(|name| name + "\n").collect()
}

#[test]
fn every_export_is_versioned() {
    let unversioned: Vec<String> = exported(shared_lib())
        .into_iter()
        .filter(|(_, version)| version != VERSION_NODE)
        .map(|(name, version)| format!("{name}@@{version}"))
        .collect();
    assert!(
        unversioned.is_empty(),
        "libsekura.so exports symbols outside the {VERSION_NODE} node (see abi/sekura.map): {}",
        unversioned.join(", ")
    );
}

#[test]
fn exports_match_the_committed_list() {
    let committed = std::fs::read_to_string(symbols_file()).unwrap_or_default();
    let built = symbol_list();
    if committed != built {
        let committed: BTreeSet<&str> = committed.lines().collect();
        let built: BTreeSet<&str> = built.lines().collect();
        panic!(
            "libsekura.so's exports differ from abi/sekura.symbols\n  added: {:?}\n  removed: \
             {:?}\nIf the change is intended, run `make abi` and commit abi/sekura.symbols \
             (removing or changing an exported function breaks the ABI: see abi/sekura.map)",
            built.difference(&committed).collect::<Vec<_>>(),
            committed.difference(&built).collect::<Vec<_>>()
        );
    }
}

#[test]
fn header_declares_exactly_the_exports() {
    let header = std::fs::read_to_string(Path::new(make::MANIFEST_DIR).join("include/sekura.h"))
        .expect("read include/sekura.h");
    let declared: BTreeSet<String> = header
        .lines()
        .filter_map(make::declared_function)
        .map(str::to_owned)
        .collect();
    let built: BTreeSet<String> = symbol_list().lines().map(str::to_owned).collect();
    assert_eq!(
        declared, built,
        "include/sekura.h declares other functions than libsekura.so exports (is the header \
         current? `make header`)"
    );
}

/// The C test programs (tests/c/*.c, run by tests/c_programs.rs) call every exported
/// function at least once, so a function added to the C API is added to them too.
#[test]
fn c_tests_call_every_export() {
    let dir = Path::new(make::MANIFEST_DIR).join("tests/c");
    let mut sources = String::new();
    for entry in std::fs::read_dir(&dir).expect("read tests/c") {
        let path = entry.expect("a tests/c entry").path();
        if path.extension().is_some_and(|e| e == "c") {
            sources += &std::fs::read_to_string(&path).expect("read a C test");
        }
    }
    let missing: Vec<String> = symbol_list()
        .lines()
        .filter(|name| !sources.contains(&format!("{name}(")))
        .map(str::to_owned)
        .collect();
    assert!(
        missing.is_empty(),
        "no C test in tests/c calls: {}",
        missing.join(", ")
    );
}

/// The soname of a shared object, from `readelf -d`.
fn soname(lib: &Path) -> String {
    let output = make::run(Command::new("readelf").arg("-d").arg(lib), "binutils");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find(|line| line.contains("(SONAME)"))
        .and_then(|line| line.split('[').nth(1))
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_default()
        .to_owned()
}

/// The installed library has its soname, and cargo makes no shared library of its own: an
/// unversioned libsekura.so would shadow the real one if somebody installed it.
#[test]
fn only_the_versioned_shared_library_is_built() {
    assert_eq!(soname(shared_lib()), SONAME, "abi/link.sh's soname");
    for dir in [make::profile_dir(), make::profile_dir().join("deps")] {
        let cdylib = dir.join("libsekura.so");
        assert!(
            !cdylib.exists(),
            "{} exists: Cargo.toml must not build a cdylib",
            cdylib.display()
        );
    }
}

/// The stack is not executable (`GNU_STACK` without E): glibc 2.41+ refuses to dlopen a
/// library that asks for one, which would break every language binding.
#[test]
fn the_stack_is_not_executable() {
    let output = make::run(
        Command::new("readelf").arg("-lW").arg(shared_lib()),
        "binutils",
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let stack = text
        .lines()
        .find(|line| line.trim_start().starts_with("GNU_STACK"))
        .unwrap_or_else(|| panic!("no GNU_STACK program header:\n{text}"));
    let flags = stack.split_whitespace().nth(6).unwrap_or_default();
    assert_eq!(flags, "RW", "GNU_STACK flags: {stack}");
}

/// Writes abi/sekura.symbols from the built library. Run by `make abi`.
#[test]
#[ignore = "writes abi/sekura.symbols; run it with `make abi`"]
fn regenerate() {
    std::fs::write(symbols_file(), symbol_list()).expect("write abi/sekura.symbols");
    println!("wrote {}", symbols_file().display());
}
