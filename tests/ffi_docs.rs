//! Every exported C function's doc comment says who owns what it takes and hands out, and
//! from which threads it may be called: a line starting with one of [`OWNERSHIP`] and a line
//! starting with [`THREADS`], both before its `# Safety` section. include/sekura.h is
//! generated from these comments, so C programmers read them there.

use std::fs;
use std::path::{Path, PathBuf};

/// How an ownership line starts.
const OWNERSHIP: &[&str] = &[
    "Returns a new",
    "On success",
    "Borrowed:",
    "Takes ownership",
    "Frees",
];

/// How the thread line starts.
const THREADS: &str = "Thread safety:";

/// The `.rs` files under `dir`, at any depth.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read a directory of src/ffi") {
        let path = entry.expect("read a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `#[no_mangle]` `extern "C"` functions of `source`: each one's name and the lines of
/// its doc comment before `# Safety`, without the `///`.
fn exported_functions(source: &str) -> Vec<(String, Vec<String>)> {
    let lines: Vec<&str> = source.lines().map(str::trim).collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if *line != "#[no_mangle]" {
            continue;
        }
        let signature = lines[i + 1..].iter().find(|l| !l.starts_with("#["));
        let Some((_, rest)) = signature.and_then(|l| l.split_once("extern \"C\" fn ")) else {
            continue;
        };
        let name = rest.split('(').next().unwrap_or(rest).to_owned();
        let mut doc: Vec<String> = lines[..i]
            .iter()
            .rev()
            .take_while(|l| l.starts_with("///") || l.starts_with("#["))
            .filter_map(|l| l.strip_prefix("///"))
            .map(|l| l.trim().to_owned())
            .collect();
        doc.reverse();
        doc.truncate(
            doc.iter()
                .position(|l| l == "# Safety")
                .unwrap_or(doc.len()),
        );
        found.push((name, doc));
    }
    found
}

#[test]
fn every_exported_function_documents_ownership_and_thread_safety() {
    let ffi = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join("ffi");
    let mut files = Vec::new();
    rust_files(&ffi, &mut files);
    files.sort();
    let (mut checked, mut lacking) = (0, Vec::new());
    for file in &files {
        let source = fs::read_to_string(file).expect("read a source file");
        let functions = exported_functions(&source);
        assert_eq!(
            functions.len(),
            source.matches("#[no_mangle]").count(),
            "{}: every #[no_mangle] should be on a line of its own, before an extern \"C\" fn",
            file.display()
        );
        checked += functions.len();
        for (name, doc) in functions {
            let has = |prefixes: &[&str]| {
                doc.iter()
                    .any(|line| prefixes.iter().any(|p| line.starts_with(p)))
            };
            let mut missing = Vec::new();
            if !has(OWNERSHIP) {
                missing.push("ownership line");
            }
            if !has(&[THREADS]) {
                missing.push("\"Thread safety:\" line");
            }
            if !missing.is_empty() {
                let place = file.strip_prefix(&ffi).unwrap_or(file).display();
                lacking.push(format!(
                    "{name} (src/ffi/{place}): no {}",
                    missing.join(", no ")
                ));
            }
        }
    }
    assert!(
        checked > 0,
        "no exported functions found under {}",
        ffi.display()
    );
    assert!(
        lacking.is_empty(),
        "these exported functions lack an ownership line (starting {}) or a \"{THREADS}\" line \
         before their # Safety section:\n  {}",
        OWNERSHIP.join(", "),
        lacking.join("\n  ")
    );
}
