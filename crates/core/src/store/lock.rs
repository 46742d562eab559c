//! One writer at a time per database **file**, whatever names it: an advisory lock (`flock`) held on the
//! database file itself, plus the same lock on `<real path>.lock`, which holds the pid and start time of
//! its owner for the message a second run prints. The kernel drops both when their process dies, however
//! it dies, so a lock left by a killed run is simply taken over.
//!
//! A writer (sync, import, prune) holds them exclusively. A reader (status, report, doctor) that opens
//! the database without SQLite's WAL index (see `sqlite::connect_read_only`) holds them shared while it
//! reads, so no writer can start and rewrite the file under it; a writer waits for such a reader as it
//! waits for another writer.
//!
//! # Why the lock is on the database file
//!
//! Two configurations can name one database through different paths: a symlink, a hard link, a bind
//! mount, `./a.db` and `/srv/a.db`. A lock keyed on a path (`<path>.lock`) misses a hard link (two
//! names, two lock files, two writers at once: the database was corrupted). `flock` on the database
//! file is keyed on the file (its inode): every name of it meets the same lock. The writer creates the
//! file (empty, mode 0600) to lock it when it does not exist yet, so the first sync through one name
//! already keeps out a sync through another. `<real path>.lock` is kept as well: auditsync releases
//! before this one locked only it, so a newer binary still waits for an older one (and never migrates
//! the schema under it), and it carries the holder's pid and start time. When the database's lock is
//! held but this name's `.lock` is not, the holder came in through another name: its pid is found in
//! `/proc/locks` (by device and inode), and its `.lock` through `/proc/<pid>/fd` when this user may look.
//!
//! # The rule this imposes: never close a file descriptor of the database while SQLite has it open
//!
//! SQLite locks the database with POSIX `fcntl` locks, and POSIX drops *all* of a process's `fcntl`
//! locks on a file when *any* descriptor of that file is closed by the process. `flock` and `fcntl`
//! locks are independent of each other on Linux's local filesystems, but the descriptor this lock holds
//! is still a descriptor of the database: it is opened before SQLite opens the database and closed
//! only after the connection is dropped (the store's fields are declared connection first, and Rust drops
//! fields in declaration order). Nothing else in a process that has the database open may open and
//! close it (which is why a process never opens the store for reading while it holds it for writing).
//! On NFS, Linux emulates `flock` with `fcntl` locks; SQLite on NFS is unsafe anyway and not supported.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;

use super::StoreError;
use crate::time::ts;

/// Held for as long as the run lasts; dropping it releases the lock. Drop it only after the SQLite
/// connection on the same database (see the module's docs).
#[derive(Debug)]
pub struct RunLock {
    /// The database file, held exclusively: the lock every name of the file meets.
    _database: File,
    /// `<real path>.lock`, held exclusively, with this run's pid and start time.
    _sidecar: File,
    /// The locked file's device and inode.
    identity: Identity,
}

/// A file's device and inode (on other systems than Unix: its real path).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity(#[cfg(unix)] (u64, u64), #[cfg(not(unix))] PathBuf);

impl Identity {
    #[cfg(unix)]
    fn of(meta: &std::fs::Metadata, _path: &Path) -> Identity {
        use std::os::unix::fs::MetadataExt;
        Identity((meta.dev(), meta.ino()))
    }

    #[cfg(not(unix))]
    fn of(_meta: &std::fs::Metadata, path: &Path) -> Identity {
        Identity(real_path(path))
    }
}

impl RunLock {
    /// Whether this is the lock of `database` (whatever name it goes by).
    pub(crate) fn locks(&self, database: &Path) -> bool {
        std::fs::metadata(database).is_ok_and(|m| Identity::of(&m, database) == self.identity)
    }
}

/// What a reader found at the lock.
#[derive(Debug)]
pub(crate) enum Share {
    /// Held shared (the database file and its `.lock`, if there is one): no writer can start until it
    /// is dropped, which must happen after the reader's connection is dropped.
    Held(#[allow(dead_code, reason = "held for its lock, never read")] Vec<File>),
    /// A writer holds it: the holder as its lock file says ("pid 123, since …").
    Writer(String),
    /// A writer holds it through another name of the file (a hard link): SQLite keeps the write-ahead
    /// log beside the name it opened, so this name cannot be read safely until it is done.
    Elsewhere(String),
    /// This user may not open the database file or lock it: no writer can be kept out.
    Absent,
}

/// Opens an existing file for reading without ever blocking (a named pipe put where the database
/// should be) and only if it is a regular file.
fn open_regular(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    nonblocking(&mut options);
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(file)
}

#[cfg(unix)]
fn nonblocking(options: &mut OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt;
    options.custom_flags(libc::O_NONBLOCK);
}

#[cfg(not(unix))]
fn nonblocking(_options: &mut OpenOptions) {}

/// The holder as the lock file says, on one line.
fn owner(file: &mut File) -> String {
    let mut owner = String::new();
    let _ = file.rewind();
    let _ = file.read_to_string(&mut owner);
    owner.trim().replace('\n', ", ")
}

/// Who holds the database's lock exclusively: as this name's `.lock` says when the holder took it
/// through this name, else found through `/proc` (the holder came in through another name: a hard
/// link; then `true`).
fn holder(database: &Path) -> (String, bool) {
    if let Ok(mut sidecar) = open_regular(&lock_path(database))
        && matches!(sidecar.try_lock_shared(), Err(TryLockError::WouldBlock))
    {
        return (owner(&mut sidecar), false);
    }
    let via = "through another name of the same file";
    let text = match std::fs::metadata(database)
        .ok()
        .and_then(|m| proc_holder(&m))
    {
        Some((pid, Some(text))) if text.contains(&format!("pid {pid}")) => format!("{text}, {via}"),
        Some((pid, _)) => format!("pid {pid}, {via}"),
        None => format!("a process {via}"),
    };
    (text, true)
}

/// The pid holding an exclusive `flock` on the file of `meta` (from `/proc/locks`), and what its
/// `.lock` file says if this user may look at its open files.
#[cfg(target_os = "linux")]
fn proc_holder(meta: &std::fs::Metadata) -> Option<(u32, Option<String>)> {
    use std::os::unix::fs::MetadataExt;
    let dev = meta.dev();
    let (major, minor) = (
        ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff),
        (dev & 0xff) | ((dev >> 12) & !0xff),
    );
    let key = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    // "1: FLOCK  ADVISORY  WRITE 12345 08:01:1234567 0 EOF"
    let pid: u32 = locks.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.get(1) == Some(&"FLOCK")
            && f.get(3) == Some(&"WRITE")
            && f.get(5) == Some(&key.as_str()))
        .then(|| f.get(4)?.parse().ok())
        .flatten()
    })?;
    let text = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .and_then(|fds| {
            fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                .find(|target| target.extension().is_some_and(|e| e == "lock"))
                .and_then(|p| std::fs::read_to_string(p).ok())
                .map(|t| t.trim().replace('\n', ", "))
        });
    Some((pid, text))
}

#[cfg(not(target_os = "linux"))]
fn proc_holder(_meta: &std::fs::Metadata) -> Option<(u32, Option<String>)> {
    None
}

/// Holds the lock of `database` shared if no writer holds it, without waiting and without creating
/// any file (a reader may not write the folder). The database file is opened here, before SQLite opens
/// it, and the descriptor is kept in [`Share::Held`] (see the module's docs).
pub(crate) fn share(database: &Path) -> Share {
    let Ok(file) = open_regular(database) else {
        return Share::Absent;
    };
    match file.try_lock_shared() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return match holder(database) {
                (owner, false) => Share::Writer(owner),
                (owner, true) => Share::Elsewhere(owner),
            };
        }
        Err(TryLockError::Error(_)) => return Share::Absent,
    }
    let mut held = vec![file];
    // An older auditsync locks only the `.lock` file.
    if let Ok(mut sidecar) = open_regular(&lock_path(database)) {
        match sidecar.try_lock_shared() {
            Ok(()) => held.push(sidecar),
            Err(TryLockError::WouldBlock) => return Share::Writer(owner(&mut sidecar)),
            Err(TryLockError::Error(_)) => {}
        }
    }
    Share::Held(held)
}

/// The database's real path: symlinks resolved (in the folder, and the file itself when it exists), so
/// that two configurations naming one database through different paths share its lock, and its
/// `-wal` is looked for where SQLite keeps it (beside the real file).
pub(crate) fn real_path(database: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(database) {
        return real;
    }
    // A symlink to a file not created yet: where SQLite will create it.
    let mut database = database.to_owned();
    for _ in 0..40 {
        let Ok(target) = std::fs::read_link(&database) else {
            break;
        };
        database = match database.parent() {
            Some(folder) => folder.join(target),
            None => target,
        };
    }
    let database = database.as_path();
    let folder = match database.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(folder), database.file_name()) {
        (Ok(folder), Some(name)) => folder.join(name),
        _ => database.to_owned(),
    }
}

/// `<real path of the database>.lock`.
pub(super) fn lock_path(database: &Path) -> PathBuf {
    let mut name = real_path(database).into_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

/// Opens the database file to lock it, creating it empty with mode 0600 (it will hold user names and
/// IP addresses) when it does not exist yet; never blocks, and refuses anything but a regular file.
fn open_database(database: &Path) -> Result<File, StoreError> {
    let file = match open_regular(database) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut options = OpenOptions::new();
            options.read(true).write(true).create(true).truncate(false);
            nonblocking(&mut options);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            options.open(database)
        }
        Err(e) => Err(e),
    };
    let file = file.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => super::no_folder(database),
        std::io::ErrorKind::Other => super::check_path(database)
            .err()
            .unwrap_or_else(|| StoreError::Write {
                path: database.to_owned(),
                reason: e.to_string(),
            }),
        _ => StoreError::Write {
            path: database.to_owned(),
            reason: format!(
                "cannot open it to take the run lock ({e}); check its owner and permissions and the \
                 folder's"
            ),
        },
    })?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err(super::check_path(database)
            .err()
            .unwrap_or_else(|| StoreError::NotAFile {
                path: database.to_owned(),
                kind: "not a regular file",
            }));
    }
    Ok(file)
}

/// Warns when the database file has several names (hard links): the lock keeps two runs apart, but
/// SQLite keeps its journal beside the name it opened, so after a crash a run through another name
/// would not see the journal the crashed one left.
fn warn_if_linked(meta: &std::fs::Metadata, database: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if meta.nlink() > 1 {
            tracing::warn!(
                "{} has {} names (hard links); runs through them never overlap, but SQLite keeps its journal \
                 beside the name a run opened, so after a crash a run through another name would not see it: \
                 name the database by one path in every configuration (a symlink is fine)",
                database.display(),
                meta.nlink()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (meta, database);
}

impl RunLock {
    /// Takes the lock of `database`, waiting up to `wait` for another run to finish.
    ///
    /// # Errors
    /// [`StoreError::Busy`] naming the holder when the wait is over, [`StoreError::Write`] when the lock
    /// file cannot be created (a read-only folder).
    pub async fn acquire(database: &Path, wait: Duration) -> Result<RunLock, StoreError> {
        let started = Instant::now();
        let mut said = false;
        loop {
            match RunLock::try_acquire(database) {
                Err(e @ (StoreError::Busy { .. } | StoreError::Reading { .. }))
                    if started.elapsed() < wait =>
                {
                    if !said {
                        let holder = match &e {
                            StoreError::Busy { owner, .. } => {
                                format!("the sync that holds it ({owner})")
                            }
                            _ => "the status, report, export or doctor reading it".to_owned(),
                        };
                        tracing::info!(
                            "waiting up to {} s for {holder} to finish with {}",
                            wait.as_secs(),
                            database.display()
                        );
                        said = true;
                    }
                    tokio::time::sleep(Duration::from_millis(200).min(wait)).await;
                }
                Err(mut e @ (StoreError::Busy { .. } | StoreError::Reading { .. })) => {
                    if let StoreError::Busy { waited, .. } | StoreError::Reading { waited, .. } =
                        &mut e
                    {
                        *waited = wait.as_secs();
                    }
                    return Err(e);
                }
                other => return other,
            }
        }
    }

    /// Takes the lock of `database` if nobody holds it, without waiting. Creates the database file
    /// (empty, mode 0600) if there is none, so that it can be locked.
    ///
    /// # Errors
    /// As [`RunLock::acquire`], with `waited` 0; [`StoreError::NoFolder`], [`StoreError::IsDirectory`]
    /// and [`StoreError::NotAFile`] before anything is created.
    pub fn try_acquire(database: &Path) -> Result<RunLock, StoreError> {
        super::check_path(database)?;
        let path = lock_path(database);
        let io = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::NotFound => super::no_folder(database),
            std::io::ErrorKind::ReadOnlyFilesystem => StoreError::Write {
                path: path.clone(),
                reason: format!(
                    "the lock file cannot be written because the database's folder is on a read-only \
                     mount ({e}); check the mount"
                ),
            },
            std::io::ErrorKind::PermissionDenied if path.exists() => StoreError::Write {
                path: path.clone(),
                reason: format!(
                    "this user may not write the lock file ({e}); run auditsync as the user that owns the \
                     database and its lock file, or give that user the files (chown)"
                ),
            },
            std::io::ErrorKind::PermissionDenied => StoreError::Write {
                path: path.clone(),
                reason: format!(
                    "the lock file cannot be created because this user may not write the database's folder \
                     ({e}); check the folder's owner and permissions"
                ),
            },
            _ => StoreError::Write {
                path: path.clone(),
                reason: format!("cannot create the lock file: {e}"),
            },
        };
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        nonblocking(&mut options);
        // 0644 whatever the umask allows beyond it: it holds only the holder's pid and start time,
        // and a reader of another user (a reporting group) opens it to take the shared lock and
        // to name the holder.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
        let mut sidecar = options.open(&path).map_err(io)?;
        let file = open_database(database)?;
        let meta = file.metadata().map_err(io)?;
        let identity = Identity::of(&meta, database);
        warn_if_linked(&meta, database);
        // The database file first: it is what every name of the database shares.
        let busy = |readers: bool, owner: String| {
            if readers {
                StoreError::Reading {
                    database: database.to_owned(),
                    waited: 0,
                }
            } else {
                StoreError::Busy {
                    database: database.to_owned(),
                    owner,
                    waited: 0,
                }
            }
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                // Only readers share it; a writer holds it alone.
                let readers = file.try_lock_shared().is_ok();
                return Err(busy(readers, holder(database).0));
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        match sidecar.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let readers = open_regular(&path).is_ok_and(|s| s.try_lock_shared().is_ok());
                return Err(busy(readers, owner(&mut sidecar)));
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let previous = owner(&mut sidecar);
        if !previous.is_empty() {
            tracing::debug!("the lock was last held by {previous}; that run has ended");
        }
        sidecar.set_len(0).map_err(io)?;
        sidecar.rewind().map_err(io)?;
        write!(
            sidecar,
            "pid {}\nsince {}\n",
            std::process::id(),
            ts(Utc::now())
        )
        .map_err(io)?;
        Ok(RunLock {
            _database: file,
            _sidecar: sidecar,
            identity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_at_a_time_and_a_dead_owner_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        // A lock file left by a run that died: no process holds the lock, so it is taken over.
        std::fs::write(lock_path(&db), "pid 999999\nsince 2026-01-01T00:00:00Z\n").unwrap();
        let held = RunLock::acquire(&db, Duration::ZERO).await.unwrap();
        let err = RunLock::acquire(&db, Duration::from_millis(300))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(held);
        RunLock::acquire(&db, Duration::ZERO).await.unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn every_name_of_the_file_meets_the_same_lock_and_learns_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        // Created through one name (the file did not exist), then linked under another.
        let held = RunLock::try_acquire(&db).unwrap();
        let meta = std::fs::metadata(&db).unwrap();
        assert!(meta.is_file());
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            0o600
        );
        std::fs::create_dir(dir.path().join("other")).unwrap();
        let hard = dir.path().join("other/b.db");
        std::fs::hard_link(&db, &hard).unwrap();
        assert!(held.locks(&hard));
        match RunLock::try_acquire(&hard) {
            Err(StoreError::Busy { owner, .. }) => {
                assert!(
                    owner.contains(&format!("pid {}", std::process::id())),
                    "{owner}"
                );
                assert!(owner.contains("another name"), "{owner}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(share(&hard), Share::Elsewhere(_)));
        assert!(matches!(share(&db), Share::Writer(_)));
        drop(held);
        let reader = share(&hard);
        assert!(matches!(reader, Share::Held(_)));
        assert!(matches!(
            RunLock::try_acquire(&db),
            Err(StoreError::Reading { .. })
        ));
        drop(reader);
        RunLock::try_acquire(&db).unwrap();
    }
}
