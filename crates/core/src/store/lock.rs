//! One writer at a time per database: an advisory lock (`flock`) on `<database>.lock`, holding the pid
//! and start time of its owner for the message the second run prints. The kernel drops the lock when
//! its process dies, however it dies, so a lock left by a killed run is simply taken over.
//!
//! A writer (sync, import, prune) holds it exclusively. A reader (status, report, doctor) that opens
//! the database without SQLite's WAL index (see `sqlite::connect_read_only`) holds it shared while it
//! reads, so no writer can start and rewrite the file under it; a writer waits for such a reader as it
//! waits for another writer.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;

use super::StoreError;
use crate::time::ts;

/// Held for as long as the run lasts; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    /// The real path of the database it locks.
    database: PathBuf,
}

impl RunLock {
    /// Whether this is the lock of `database` (whatever path names it).
    pub(crate) fn locks(&self, database: &Path) -> bool {
        self.database == real_path(database)
    }
}

/// What a reader found at the lock.
#[derive(Debug)]
pub(crate) enum Share {
    /// Held shared: no writer can start until it is dropped.
    Held(#[allow(dead_code, reason = "held for its lock, never read")] File),
    /// A writer holds it: the holder as its lock file says ("pid 123, since …").
    Writer(String),
    /// There is no lock file, or this user may not open it: no writer has run here, or none can be
    /// kept out.
    Absent,
}

/// The holder as the lock file says, on one line.
fn owner(file: &mut File) -> String {
    let mut owner = String::new();
    let _ = file.rewind();
    let _ = file.read_to_string(&mut owner);
    owner.trim().replace('\n', ", ")
}

/// Holds the lock of `database` shared if no writer holds it, without waiting and without creating
/// the lock file (a reader may not write the folder).
pub(crate) fn share(database: &Path) -> Share {
    let Ok(mut file) = File::open(lock_path(database)) else {
        return Share::Absent;
    };
    match file.try_lock_shared() {
        Ok(()) => Share::Held(file),
        Err(TryLockError::WouldBlock) => Share::Writer(owner(&mut file)),
        Err(TryLockError::Error(_)) => Share::Absent,
    }
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
                            _ => "the status, report or doctor reading it".to_owned(),
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

    /// Takes the lock of `database` if nobody holds it, without waiting.
    ///
    /// # Errors
    /// As [`RunLock::acquire`], with `waited` 0.
    pub fn try_acquire(database: &Path) -> Result<RunLock, StoreError> {
        let path = lock_path(database);
        let io = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::NoFolder(database.to_owned()),
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
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                // Only readers share it; a writer holds it alone.
                let readers = File::open(&path).is_ok_and(|f| {
                    let shared = f.try_lock_shared().is_ok();
                    let _ = f.unlock();
                    shared
                });
                return Err(if readers {
                    StoreError::Reading {
                        database: database.to_owned(),
                        waited: 0,
                    }
                } else {
                    StoreError::Busy {
                        database: database.to_owned(),
                        owner: owner(&mut file),
                        waited: 0,
                    }
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let previous = owner(&mut file);
        if !previous.is_empty() {
            tracing::debug!("the lock was last held by {previous}; that run has ended");
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(
            file,
            "pid {}\nsince {}\n",
            std::process::id(),
            ts(Utc::now())
        )
        .map_err(io)?;
        Ok(RunLock {
            _file: file,
            database: real_path(database),
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
}
