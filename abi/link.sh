#!/bin/sh
# Links the shared library that is installed and that the C programs use.
#
#   abi/link.sh shared LIBSEKURA_A OUTDIR VERSION
#       Links OUTDIR/libsekura.so.VERSION from the static library, exporting exactly what
#       abi/sekura.map names, each symbol versioned SEKURA_0, with the soname libsekura.so.0;
#       adds the links OUTDIR/libsekura.so.0 and OUTDIR/libsekura.so.
#   abi/link.sh native-libs
#       Prints the system libraries that a program linking libsekura.a needs, as rustc
#       reports them (`rustc --print native-static-libs`): pkg-config's Libs.private.
#
# Why the shared library is linked here rather than by cargo: rustc gives the linker its own
# version script for a cdylib, listing every `#[no_mangle]` function by exact name; GNU ld
# refuses to combine it with a second one and lld lets the exact names win, so no symbol
# would get the SEKURA_0 version. The crate therefore builds no cdylib at all. The Makefile
# and the tests in tests/ both call this script, so the link is written once.
#
# -z noexecstack: some assembly objects of the hash crates carry no .note.GNU-stack, which
# would otherwise make the whole library ask for an executable stack; glibc 2.41 and later
# refuse to dlopen such a library, and it is a hardening defect.
set -eu

abi_dir=$(cd "$(dirname "$0")" && pwd)
soname=libsekura.so.0

# Sekura's dependencies are pure Rust (no #[link] to C libraries beyond libc), so the native
# libraries of an empty static library are Sekura's. tests/install.rs links a program against
# the installed libsekura.a with them and would fail if one were missing.
native_libs() {
    scratch=$(mktemp -d)
    printf '' | "${RUSTC:-rustc}" --edition 2021 --crate-type staticlib \
        --crate-name native_libs --print native-static-libs \
        -o "$scratch/libnative_libs.a" - 2>&1 |
        sed -n 's/^note: native-static-libs: //p'
    rm -rf "$scratch"
}

shared() {
    archive=$1 out=$2 version=$3
    [ -f "$archive" ] || { echo "abi/link.sh: no $archive; build it with cargo first" >&2; exit 1; }
    libs=$(native_libs)
    [ -n "$libs" ] || { echo "abi/link.sh: rustc printed no native-static-libs" >&2; exit 1; }
    mkdir -p "$out"
    # shellcheck disable=SC2086 # $libs is a list of -l flags
    "${CC:-cc}" -shared -o "$out/libsekura.so.$version.tmp" \
        -Wl,--whole-archive "$archive" -Wl,--no-whole-archive \
        -Wl,--version-script="$abi_dir/sekura.map" -Wl,-soname,"$soname" \
        -Wl,--gc-sections -Wl,-z,defs -Wl,-z,relro,-z,now -Wl,-z,noexecstack -Wl,--as-needed \
        $libs
    mv -f "$out/libsekura.so.$version.tmp" "$out/libsekura.so.$version"
    for other in "$out"/libsekura.so.*.*; do   # other versions, left by an older build
        [ "$other" = "$out/libsekura.so.$version" ] || rm -f "$other"
    done
    ln -sfn "libsekura.so.$version" "$out/$soname"
    ln -sfn "$soname" "$out/libsekura.so"
}

case "${1-}" in
    shared) [ $# -eq 4 ] || { echo "usage: abi/link.sh shared LIBSEKURA_A OUTDIR VERSION" >&2; exit 2; }
            shift; shared "$@" ;;
    native-libs) native_libs ;;
    *) echo "usage: abi/link.sh shared LIBSEKURA_A OUTDIR VERSION | native-libs" >&2; exit 2 ;;
esac
