//! The one way auditsync writes a file other than its database (`report --output`, `simulator
//! --write-config`, the demo's page), so that an output can never destroy data:
//!
//! - it is never one of the files to keep (the database, its `-wal`, `-shm`, `-journal` and lock, the
//!   configuration, the client secret's file), compared by what the path names, not how it is
//!   spelled: the same device and inode for files that exist (hard links, symbolic links, `./x`,
//!   absolute paths), the same resolved path for those that do not exist yet (a `-wal`); nor any
//!   other SQLite database (another configuration's);
//! - a file already there (or a symbolic link, even a dangling one) is replaced only with `--force`;
//! - it is written whole or not at all: a temporary file in the same folder, created 0600 (reports
//!   hold user names, configurations a secret), flushed to disk, then renamed over the path. The
//!   rename replaces a symbolic link itself, never the file it points to; without `--force` the
//!   rename refuses to replace a file that appeared meanwhile.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Why an output file was not written. [`OutputError::Io`] exits 1; the rest are refusals that the
/// admin fixes on the command line (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The path names a file auditsync must keep.
    #[error(
        "{flag} {path} is {what}; auditsync never writes over it (not even with --force): choose another \
         file name"
    )]
    Kept {
        /// The option that named the path (`--output`).
        flag: &'static str,
        /// The path as given.
        path: PathBuf,
        /// The file it is, e.g. "the database /srv/auditsync.db (its -wal file)".
        what: String,
    },
    /// A file (or a symbolic link) is already there and `--force` was not given.
    #[error(
        "{flag} {path}: {what} already exists; pass --force to replace it, or choose another file name"
    )]
    Exists {
        /// The option that named the path.
        flag: &'static str,
        /// The path as given.
        path: PathBuf,
        /// What is there: "a file", "a symbolic link to the file …", "a dangling symbolic link".
        what: String,
    },
    /// What is there is not a file a report or configuration could have been written to (a named
    /// pipe, a device, a socket, a link to one of them, or anything in `/dev`, `/proc` or `/sys`):
    /// replacing it with a regular file would break the system (`/dev/null`) or lose what it
    /// leads to, so it is refused even with `--force`.
    #[error(
        "{flag} {path} exists and {what}; auditsync writes only regular files and never replaces anything else \
         (not even with --force): choose a file name in an ordinary folder (to print the output, leave \
         out {flag})"
    )]
    Special {
        /// The option that named the path.
        flag: &'static str,
        /// The path as given.
        path: PathBuf,
        /// What it is, e.g. "is a named pipe (FIFO)", "is a symbolic link to the character device /dev/null".
        what: String,
    },
    /// The folder the file would go into does not exist (a usage mistake: exit 2).
    #[error(
        "cannot write {what} to {path}: the folder {} does not exist ({flag}); create it first or name a \
         file in a folder that exists",
        .folder.display()
    )]
    NoFolder {
        /// What was being written ("the report").
        what: &'static str,
        /// The option that named the path.
        flag: &'static str,
        /// The path as given.
        path: PathBuf,
        /// The missing folder.
        folder: PathBuf,
    },
    /// The path is a folder.
    #[error("{flag} {path} is a folder; name a file, e.g. {}", .path.join(.example).display())]
    Folder {
        /// The option that named the path.
        flag: &'static str,
        /// The path as given.
        path: PathBuf,
        /// A file name to suggest.
        example: &'static str,
    },
    /// Creating, writing, flushing or renaming the file failed.
    #[error(
        "cannot write {what} to {path}: {source} ({flag} needs a file in a folder that exists and is writable)"
    )]
    Io {
        /// What was being written ("the report").
        what: &'static str,
        /// The option that named the path.
        flag: &'static str,
        /// The path as given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl OutputError {
    /// 1 for an I/O failure, 2 for a refusal.
    pub fn exit_code(&self) -> u8 {
        match self {
            OutputError::Io { .. } => 1,
            _ => 2,
        }
    }
}

/// A file an output must never be, and what to call it in the refusal.
#[derive(Debug, Clone)]
pub struct Keep {
    /// The file, as configured (it need not exist).
    pub path: PathBuf,
    /// What it is, e.g. "the configuration file auditsync.toml".
    pub what: String,
}

/// Where an output goes.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The path as given on the command line.
    pub path: &'a Path,
    /// The option that named it, for messages (`--output`).
    pub flag: &'static str,
    /// What is written, for messages ("the report").
    pub what: &'static str,
    /// A file name to suggest when the path is a folder.
    pub example: &'static str,
    /// `--force`: replace a file that is there.
    pub force: bool,
}

/// Refuses a target that is a file to keep, a folder, in a folder that does not exist, or (without
/// `force`) a file already there, without writing anything.
///
/// # Errors
/// [`OutputError::Kept`], [`OutputError::Folder`], [`OutputError::Io`], [`OutputError::Exists`].
pub fn check(target: &Target<'_>, keep: &[Keep]) -> Result<(), OutputError> {
    let path = target.path;
    if let Some(k) = keep.iter().find(|k| same_file(path, &k.path)) {
        return Err(OutputError::Kept {
            flag: target.flag,
            path: path.to_owned(),
            what: k.what.clone(),
        });
    }
    if is_sqlite(path) {
        return Err(OutputError::Kept {
            flag: target.flag,
            path: path.to_owned(),
            what: "an SQLite database (another auditsync database, perhaps)".into(),
        });
    }
    if let Some(db) = companion_of_sqlite(path) {
        return Err(OutputError::Kept {
            flag: target.flag,
            path: path.to_owned(),
            what: format!(
                "a companion file (-wal, -shm or -journal) of the SQLite database {}",
                db.display()
            ),
        });
    }
    if path.is_dir() || path.as_os_str().is_empty() {
        return Err(OutputError::Folder {
            flag: target.flag,
            path: path.to_owned(),
            example: target.example,
        });
    }
    if !folder_of(path).is_dir() {
        return Err(OutputError::NoFolder {
            what: target.what,
            flag: target.flag,
            path: path.to_owned(),
            folder: folder_of(path).to_owned(),
        });
    }
    match existing(path) {
        Existing::Nothing => Ok(()),
        Existing::Special(what) => Err(OutputError::Special {
            flag: target.flag,
            path: path.to_owned(),
            what,
        }),
        Existing::Replaceable(_) if target.force => Ok(()),
        Existing::Replaceable(what) => Err(OutputError::Exists {
            flag: target.flag,
            path: path.to_owned(),
            what,
        }),
    }
}

/// What is at an output path already.
enum Existing {
    /// Nothing (the usual case).
    Nothing,
    /// A regular file, a symbolic link to one, or a dangling link: `--force` may replace it (a link
    /// is replaced itself, never followed); the text says which, for [`OutputError::Exists`].
    Replaceable(String),
    /// Anything else, with the text for [`OutputError::Special`].
    Special(String),
}

/// Looks (metadata only, so it never blocks on a pipe) at what is at `path`.
fn existing(path: &Path) -> Existing {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Existing::Nothing;
    };
    // A system folder's entries (`/dev/stdout`, `/proc/self/fd/1`) are never outputs, whatever
    // they lead to: as root, a rename would replace them.
    let system = in_system_folder(path)
        .map(|system| Existing::Special(format!("is in {system}, a folder of the system")));
    if !meta.file_type().is_symlink() {
        return match auditsync_core::files::special_kind(&meta) {
            Some(kind) => Existing::Special(format!("is {kind}")),
            None => system.unwrap_or_else(|| Existing::Replaceable("a file".into())),
        };
    }
    let resolved = resolve(path).unwrap_or_else(|| path.to_owned());
    match std::fs::metadata(path) {
        Err(_) => {
            system.unwrap_or_else(|| Existing::Replaceable("a dangling symbolic link".into()))
        }
        Ok(target) => match auditsync_core::files::special_kind(&target) {
            Some(kind) => Existing::Special(format!(
                "is a symbolic link to {kind} ({})",
                resolved.display()
            )),
            None => system.unwrap_or_else(|| match in_system_folder(&resolved) {
                Some(_) => Existing::Special(format!(
                    "is a symbolic link into a folder of the system ({})",
                    resolved.display()
                )),
                None => Existing::Replaceable(format!(
                    "a symbolic link to the file {}",
                    resolved.display()
                )),
            }),
        },
    }
}

/// `/dev`, `/proc` or `/sys` when the path (its folder resolved) is inside one of them.
fn in_system_folder(path: &Path) -> Option<&'static str> {
    let folder = std::fs::canonicalize(folder_of(path)).ok()?;
    ["/dev", "/proc", "/sys"]
        .into_iter()
        .find(|system| folder.starts_with(system))
}

/// Writes `bytes` to the target after [`check`]: into a new 0600 temporary file beside it, flushed,
/// then renamed over it (with `force`) or into a place that must still be free (without).
///
/// # Errors
/// Those of [`check`]; [`OutputError::Exists`] when a file appeared meanwhile; [`OutputError::Io`].
pub fn write(target: &Target<'_>, keep: &[Keep], bytes: &[u8]) -> Result<(), OutputError> {
    write_streamed(target, keep, |out: &mut dyn Write| {
        out.write_all(bytes)
            .map_err(|source| io_error(target, source))
    })
}

/// [`write`] for an output too large to hold in memory (`export`): `produce` writes it piece by
/// piece into the new 0600 temporary file beside the target (buffered), which is flushed and renamed
/// over the target only when `produce` succeeded. When `produce` fails (an interruption, a failed
/// read), the temporary file is removed and the target is left as it was: never a half file under
/// the name asked for. The same refusals as [`write`], made before `produce` is called.
///
/// # Errors
/// Those of [`check`] and [`write`] (as `E`), or `produce`'s own.
pub fn write_streamed<E: From<OutputError>>(
    target: &Target<'_>,
    keep: &[Keep],
    produce: impl FnOnce(&mut dyn Write) -> Result<(), E>,
) -> Result<(), E> {
    check(target, keep)?;
    let io = |source| io_error(target, source);
    let folder = folder_of(target.path);
    let mut builder = tempfile::Builder::new();
    builder.prefix(".auditsync-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o600));
    }
    let mut file = builder.tempfile_in(folder).map_err(io)?;
    {
        let mut buffered = std::io::BufWriter::with_capacity(256 * 1024, file.as_file_mut());
        produce(&mut buffered)?;
        buffered.flush().map_err(io)?;
    }
    file.as_file().sync_all().map_err(io)?;
    let persisted = if target.force {
        file.persist(target.path)
    } else {
        file.persist_noclobber(target.path)
    };
    if let Err(e) = persisted {
        // The temporary file is removed when `e` is dropped.
        return Err(match e.error.kind() {
            std::io::ErrorKind::AlreadyExists => OutputError::Exists {
                flag: target.flag,
                path: target.path.to_owned(),
                what: "a file".into(),
            },
            _ => io(e.error),
        }
        .into());
    }
    // The rename itself reaches the disk with the folder (best effort: not every system can).
    if let Ok(dir) = std::fs::File::open(folder) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// [`OutputError::Io`] for the target: what failed while it was being written.
pub fn io_error(target: &Target<'_>, source: std::io::Error) -> OutputError {
    OutputError::Io {
        what: target.what,
        flag: target.flag,
        path: target.path.to_owned(),
        source,
    }
}

/// Whether the path is a regular file (not a symbolic link, which would be replaced, not followed)
/// that starts as every SQLite database does.
fn is_sqlite(path: &Path) -> bool {
    use std::io::Read;
    if !std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == b"SQLite format 3\0")
}

/// The SQLite database a path is a companion of (`x.db-wal`, `x.db-shm`, `x.db-journal` beside an
/// SQLite database `x.db`), even when the companion does not exist yet.
fn companion_of_sqlite(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let base = ["-wal", "-shm", "-journal"]
        .into_iter()
        .find_map(|suffix| name.strip_suffix(suffix))?;
    let db = folder_of(path).join(base);
    is_sqlite(&db).then_some(db)
}

/// The folder a path's file is in (`.` for a bare name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Whether `a` and `b` name one file: the same device and inode when both exist, else the same
/// resolved path (symbolic links followed, `.` and `..` gone), which is where a file not created
/// yet would be. Also what `import` refuses to read (the configuration, the secret, the database).
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b))
            && ma.dev() == mb.dev()
            && ma.ino() == mb.ino()
        {
            return true;
        }
    }
    match (resolve(a), resolve(b)) {
        (Some(ra), Some(rb)) => ra == rb,
        _ => false,
    }
}

/// The path with every symbolic link (of the file and of its folders) followed, as the file would be
/// opened; for a file that does not exist, its resolved folder joined with its name.
fn resolve(path: &Path) -> Option<PathBuf> {
    if let Ok(real) = std::fs::canonicalize(path) {
        return Some(real);
    }
    let mut path = std::path::absolute(path).ok()?;
    // A dangling link: where it points (a chain of them, within reason).
    for _ in 0..40 {
        let Ok(target) = std::fs::read_link(&path) else {
            break;
        };
        path = folder_of(&path).join(target);
    }
    let name = path.file_name()?.to_owned();
    let folder = path.parent()?;
    let folder = std::fs::canonicalize(folder)
        .ok()
        .unwrap_or_else(|| normalise(folder));
    Some(folder.join(name))
}

/// `.` and `..` taken out of an absolute path without looking at the disk.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &Path, force: bool) -> Target<'_> {
        Target {
            path,
            flag: "--output",
            what: "the report",
            example: "usage.html",
            force,
        }
    }

    #[test]
    fn a_file_is_known_however_it_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        std::fs::write(&db, "db").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let keep = [Keep {
            path: db.clone(),
            what: "the database".into(),
        }];
        let wal = [Keep {
            path: dir.path().join("a.db-wal"),
            what: "the database's -wal".into(),
        }];
        for (path, keep) in [
            (dir.path().join("sub/../a.db"), &keep),
            (dir.path().join("./a.db"), &keep),
            (dir.path().join("sub/../a.db-wal"), &wal),
            (dir.path().join("sub/../nowhere/../a.db-wal"), &wal),
        ] {
            let err = check(&target(&path, true), keep).unwrap_err();
            assert!(matches!(err, OutputError::Kept { .. }), "{path:?}: {err}");
        }
        check(&target(&dir.path().join("b.db"), false), &keep).unwrap();
    }

    #[test]
    fn written_whole_and_private_and_kept_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        write(&target(&path, false), &[], b"one").unwrap();
        let err = write(&target(&path, false), &[], b"two").unwrap_err();
        assert!(matches!(err, OutputError::Exists { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        write(&target(&path, true), &[], b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_streamed_output_appears_only_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        write_streamed(&target(&path, false), &[], |out: &mut dyn Write| {
            for i in 0..1000 {
                writeln!(out, "line {i}").map_err(|e| io_error(&target(&path, false), e))?;
            }
            Ok::<(), OutputError>(())
        })
        .unwrap();
        let whole = std::fs::read_to_string(&path).unwrap();
        assert_eq!(whole.lines().count(), 1000);
        // A failure half way (an interruption, a failed read) leaves the file that was there, even
        // with force, and no temporary file.
        let failed = write_streamed(&target(&path, true), &[], |out: &mut dyn Write| {
            out.write_all(b"half").unwrap();
            Err(OutputError::Folder {
                flag: "--output",
                path: path.clone(),
                example: "x",
            })
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), whole);
        let failed = write_streamed(&target(&dir.path().join("new.csv"), false), &[], |_| {
            Err(OutputError::Folder {
                flag: "--output",
                path: path.clone(),
                example: "x",
            })
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // The refusals come before anything is produced.
        let mut called = false;
        let refused = write_streamed(&target(&path, false), &[], |_| {
            called = true;
            Ok::<(), OutputError>(())
        });
        assert!(matches!(refused, Err(OutputError::Exists { .. })));
        assert!(!called);
    }

    #[cfg(unix)]
    #[test]
    fn only_a_regular_file_or_a_link_to_one_is_ever_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let null_link = dir.path().join("null.csv");
        std::os::unix::fs::symlink("/dev/null", &null_link).unwrap();
        let file = dir.path().join("old.csv");
        std::fs::write(&file, "old").unwrap();
        let file_link = dir.path().join("link.csv");
        std::os::unix::fs::symlink(&file, &file_link).unwrap();
        let dangling = dir.path().join("dangling.csv");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        for path in [
            Path::new("/dev/null"),
            Path::new("/dev/stdout"),
            Path::new("/proc/self/status"),
            &null_link,
        ] {
            let err = check(&target(path, true), &[]).unwrap_err();
            assert!(
                matches!(err, OutputError::Special { .. }),
                "{path:?}: {err}"
            );
            assert_eq!(err.exit_code(), 2);
        }
        for path in [&file, &file_link, &dangling] {
            check(&target(path, true), &[]).unwrap();
            let err = check(&target(path, false), &[]).unwrap_err();
            assert!(matches!(err, OutputError::Exists { .. }), "{path:?}: {err}");
        }
        let err = check(&target(&dir.path().join("nodir/x.csv"), true), &[]).unwrap_err();
        assert!(matches!(err, OutputError::NoFolder { .. }), "{err}");
        assert_eq!(err.exit_code(), 2);
    }
}
