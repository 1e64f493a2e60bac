//! Reading a known_hosts file with a size bound, and replacing one atomically.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::crypto::rng::{OsRandom, SecureRandom};
use crate::error::{Error, ErrorKind, Result};

/// Largest known_hosts file read (a file this big is a mistake or an attack, not a list of
/// hosts).
pub(crate) const MAX_FILE_BYTES: u64 = 64 << 20;

/// An I/O error naming the file.
pub(crate) fn io_error(what: &str, path: &Path, e: &std::io::Error) -> Error {
    Error::new(ErrorKind::Io, format!("{what} {}: {e}", path.display()))
}

/// The file's bytes; None when it does not exist. Files over [`MAX_FILE_BYTES`] are refused.
pub(crate) fn read(path: &Path) -> Result<Option<Vec<u8>>> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("cannot read known_hosts file", path, &e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error("cannot read known_hosts file", path, &e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Error::new(
            ErrorKind::Io,
            format!(
                "known_hosts file {} is larger than {} MiB",
                path.display(),
                MAX_FILE_BYTES >> 20
            ),
        ));
    }
    Ok(Some(bytes))
}

/// Replaces the file at `path` with `contents` atomically: a temporary file in the same
/// directory, created 0600 (or with the existing file's mode) from the first byte, written,
/// synced, then renamed over the target. A symbolic link at `path` is followed, so the file it
/// points to is replaced and the link stays.
pub(crate) fn replace(path: &Path, contents: &[u8]) -> Result<()> {
    let target = resolve_links(path)?;
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = target
        .file_name()
        .ok_or_else(|| Error::invalid_arg(format!("{} is not a file name", path.display())))?;
    let mode = match fs::metadata(&target) {
        Ok(meta) => mode_of(&meta),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0o600,
        Err(e) => return Err(io_error("cannot read known_hosts file", &target, &e)),
    };

    let mut salt = [0u8; 8];
    OsRandom.fill(&mut salt);
    let suffix: String = salt.iter().map(|b| format!("{b:02x}")).collect();
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(".sekura-{suffix}"));
    let temp = dir.join(temp_name);

    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&temp)
        .map_err(|e| io_error("cannot create temporary file", &temp, &e))?;
    let written = (|| -> std::io::Result<()> {
        // Exactly the target's mode (the mode given to open is masked by the umask).
        #[cfg(unix)]
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, &target)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(io_error("cannot write known_hosts file", &target, &e));
    }
    Ok(())
}

#[cfg(unix)]
fn mode_of(meta: &fs::Metadata) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777
}

#[cfg(not(unix))]
fn mode_of(_meta: &fs::Metadata) -> u32 {
    0o600
}

/// `path` with symbolic links at its end followed (at most 32, like the kernel's limit).
fn resolve_links(path: &Path) -> Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..32 {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = fs::read_link(&current)
                    .map_err(|e| io_error("cannot read symbolic link", &current, &e))?;
                current = match current.parent() {
                    Some(parent) => parent.join(link),
                    None => link,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(Error::new(
        ErrorKind::Io,
        format!("too many symbolic links at {}", path.display()),
    ))
}
