//! Key files on disk: bounded reads, and atomic writes that never expose a secret.
//!
//! Paramiko CVE-2022-24302 created key files with the default mode and chmod'ed them after
//! writing: for a moment the key was readable by everyone. Here the file is created with its
//! final mode by open(2) itself, under a temporary name in the same directory (O_CREAT |
//! O_EXCL | O_NOFOLLOW: never an existing file, never through a planted symlink), written,
//! synced, then renamed over the target: readers see the old file or the whole new one.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::private::MAX_KEY_FILE;
use crate::crypto::rng::{OsRandom, SecureRandom};
use crate::error::{Error, ErrorKind, Result};

fn io_error(action: &str, path: &Path, e: &std::io::Error) -> Error {
    Error::new(
        ErrorKind::Io,
        format!("cannot {action} {}: {e}", path.display()),
    )
}

/// Reads a key file of at most [`MAX_KEY_FILE`] bytes into memory that is zeroized on drop.
pub(crate) fn read_limited(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let file = File::open(path).map_err(|e| io_error("read key file", path, &e))?;
    let hint = file
        .metadata()
        .map(|m| usize::try_from(m.len()).unwrap_or(usize::MAX))
        .unwrap_or(0)
        .min(MAX_KEY_FILE);
    // Sized up front so that growing the buffer leaves no unzeroized copies behind.
    let mut data = Zeroizing::new(Vec::with_capacity(hint.saturating_add(1)));
    let limit = u64::try_from(MAX_KEY_FILE)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    file.take(limit)
        .read_to_end(&mut data)
        .map_err(|e| io_error("read key file", path, &e))?;
    if data.len() > MAX_KEY_FILE {
        return Err(Error::key_format(format!(
            "{}: not a key file (larger than {MAX_KEY_FILE} bytes)",
            path.display()
        )));
    }
    Ok(data)
}

/// A fresh temporary path beside `path`: `.NAME.RANDOM.tmp`.
fn temp_path(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid_arg(format!("{} is not a file path", path.display())))?;
    let mut random = [0u8; 8];
    OsRandom.fill(&mut random);
    let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let mut temp = std::ffi::OsString::from(".");
    temp.push(name);
    temp.push(format!(".{suffix}.tmp"));
    Ok(path.with_file_name(temp))
}

/// Writes `contents` to `path` atomically, the file created with `mode` (before the umask)
/// from its first byte. An existing file at `path` (or a symlink) is replaced, never written
/// through.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let (temp, mut file) = create_temp(path, mode)?;
    let written = file
        .write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error("write", &temp, &e))
        .and_then(|()| std::fs::rename(&temp, path).map_err(|e| io_error("replace", path, &e)));
    drop(file);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    // Make the rename itself durable; a failure here leaves a correct file, so it is ignored.
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Creates the temporary file with O_CREAT | O_EXCL | O_NOFOLLOW and `mode`.
fn create_temp(path: &Path, mode: u32) -> Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..8 {
        let temp = temp_path(path)?;
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&temp)
        {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(io_error("create", &temp, &e)),
        }
    }
    let e = last.unwrap_or_else(|| std::io::Error::other("no free temporary name"));
    Err(io_error("create a temporary file for", path, &e))
}
