//! What a path is, in words, for the refusals of every command that must read or write a regular
//! file only (the database, the client secret file, a report's `--output`): the one place that tells
//! a regular file from a folder, a named pipe, a device or a socket. A leaf: it imports nothing of the
//! crate.

/// `None` for a regular file, else what it is: "a folder", "a named pipe", "a character device",
/// "a block device", "a socket", or "not a regular file" (another kind, or another platform).
pub fn special_kind(meta: &std::fs::Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        return None;
    }
    if t.is_dir() {
        return Some("a folder");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return Some("a named pipe");
        }
        if t.is_char_device() {
            return Some("a character device");
        }
        if t.is_block_device() {
            return Some("a block device");
        }
        if t.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a regular file")
}

/// The permission bits of `path` when other users (group or others) may read or write it; `None`
/// when they may not, when it cannot be read, and off Unix. For the warnings with the `chmod 600`
/// that fixes it (the secret's file, the configuration, the database).
pub fn open_to_others(path: &std::path::Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert_eq!(special_kind(&std::fs::metadata(&file).unwrap()), None);
        assert_eq!(
            special_kind(&std::fs::metadata(dir.path()).unwrap()),
            Some("a folder")
        );
        #[cfg(unix)]
        assert_eq!(
            special_kind(&std::fs::metadata("/dev/null").unwrap()),
            Some("a character device")
        );
    }
}
