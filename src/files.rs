//! Files the desk creates hold customers' mail: the SQLite database and its `-wal`/`-shm`,
//! `.eml` files, backups. None of them may be readable or writable by other users, whatever
//! the umask; group access is kept only where the umask grants it (an operator may share a
//! group with the MTA's pipe user).
//!
//! Two layers, because either alone has a gap: the process umask gains `o` bits at start
//! (covers files opened by libraries, such as SQLite's own journal files), and every file the
//! desk creates itself is created with an explicit mode (covers the library used in-process,
//! as the tests and any embedding do, where `main` never ran).

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Mode of new files before the umask: owner and group read/write, nothing for others.
pub const FILE_MODE: u32 = 0o660;
/// Mode of new folders before the umask.
pub const DIR_MODE: u32 = 0o770;

/// Adds "no access for others" to the process umask and keeps whatever else it says.
pub fn restrict_umask() {
    // SAFETY: umask(2) cannot fail and only changes this process's file-creation mask. It is
    // called at the start of `main`, before any other thread exists that could create files
    // in between the two calls.
    unsafe {
        let old = libc::umask(0o077);
        libc::umask(old | 0o007);
    }
}

/// Creates `dir` and its missing parents without access for others.
pub fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Creates a new file (failing if it exists) without access for others.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Writes `bytes` to a new file at `path` (replacing nothing) without access for others.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut file = create_private_file(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Whether other users may read or write `path` (false when it does not exist).
pub fn open_to_others(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.mode() & 0o006 != 0)
}

/// The user this process runs as, for error messages (`uid 998 (recoverydesk)`).
pub fn current_user() -> String {
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    match user_name(uid) {
        Some(name) => format!("uid {uid} ({name})"),
        None => format!("uid {uid}"),
    }
}

fn user_name(uid: libc::uid_t) -> Option<String> {
    let mut buffer = vec![0 as libc::c_char; 4096];
    // SAFETY: an all-zero passwd is a valid value to be filled in; getpwuid_r writes only into
    // `entry` and `buffer` (whose length it is given) and sets `found` to null or to `entry`.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    let status = unsafe { libc::getpwuid_r(uid, &mut entry, buffer.as_mut_ptr(), buffer.len(), &mut found) };
    if status != 0 || found.is_null() || entry.pw_name.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points to a NUL-terminated string inside `buffer`.
    let name = unsafe { std::ffi::CStr::from_ptr(entry.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_files_and_folders_have_no_access_for_others() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        create_private_dir_all(&nested).unwrap();
        write_private_file(&nested.join("x.eml"), b"mail").unwrap();
        for path in [dir.path().join("a"), nested.clone(), nested.join("x.eml")] {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o007, 0, "{}: {mode:o}", path.display());
        }
        assert!(!open_to_others(&nested.join("x.eml")));
        assert!(
            write_private_file(&nested.join("x.eml"), b"again").is_err(),
            "never replaces a file"
        );
        std::fs::set_permissions(nested.join("x.eml"), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(open_to_others(&nested.join("x.eml")));
    }

    #[test]
    fn the_user_is_named_with_its_uid() {
        assert!(current_user().starts_with("uid "), "{}", current_user());
    }
}
