//! Files only their owner may read. SQLite creates a database file 0644 (less the umask), so
//! every local user could read what it holds (orders; chat-app's sessions, their tokens
//! included); its WAL and shared-memory files copy the database file's mode (SQLite's unix VFS,
//! `findCreateFileMode`), so creating the database file private first is enough.

use std::path::Path;

/// Creates `path` empty and readable by its owner only, unless it exists (an existing file keeps
/// the mode its owner gave it). For a database file, call it before the first connection: it
/// opens and closes the file, which would release the POSIX locks this process's connections
/// hold on it ("How To Corrupt An SQLite Database File", §2.2); a file that did not exist has
/// none.
#[cfg(unix)]
pub fn create(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        result => result.map(drop),
    }
}

/// Elsewhere the file is left to be created as usual.
#[cfg(not(unix))]
pub fn create(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_new_file_is_the_owners_and_an_existing_one_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new.db");
        create(&new).unwrap();
        assert_eq!(std::fs::metadata(&new).unwrap().permissions().mode() & 0o777, 0o600);
        let existing = dir.path().join("existing.db");
        std::fs::write(&existing, b"kept").unwrap();
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o640)).unwrap();
        create(&existing).unwrap();
        assert_eq!(std::fs::metadata(&existing).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(std::fs::read(&existing).unwrap(), b"kept");
    }
}
