//! Every file operation whose effect must survive a crash goes through this module, so the
//! order "write, sync the file, rename, sync the directory" is written down once.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Creates a directory and its parents, then syncs the parent so the new entry is durable.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    fs::create_dir_all(path)?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Creates a new file that must not exist yet and makes its directory entry durable.
pub fn create_new_file(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new().read(true).append(true).create_new(true).open(path)?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(file)
}

/// Makes the data written to `file` durable (its size included, not its timestamps).
pub fn sync_data(file: &File) -> io::Result<()> {
    file.sync_data()
}

/// Makes everything written to the file system that contains `path` durable, with one call.
/// Cheaper than syncing many files one by one, because the file system flushes its journal
/// once.
pub fn sync_file_system(path: &Path) -> io::Result<()> {
    let dir = File::open(path)?;
    if unsafe { libc::syncfs(std::os::unix::io::AsRawFd::as_raw_fd(&dir)) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Replaces `path` with `contents` so that a crash leaves either the old or the new file.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let temporary = path.with_extension("tmp");
    {
        let mut file = File::create(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    fs::rename(&temporary, path)?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Removes a directory tree; a missing directory is not an error.
pub fn remove_dir_all(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    }
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Syncs a directory, which makes creations, renames and removals inside it durable.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}
