//! One sync at a time per database: an advisory lock (`flock`) on `<database>.lock`, holding the pid and
//! start time of its owner for the message the second run prints. The kernel drops the lock when its
//! process dies, however it dies, so a lock left by a killed run is simply taken over.

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
}

fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
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
        loop {
            match RunLock::try_acquire(database) {
                Err(StoreError::Busy { .. }) if started.elapsed() < wait => {
                    tokio::time::sleep(Duration::from_millis(200).min(wait)).await;
                }
                Err(StoreError::Busy {
                    database, owner, ..
                }) => {
                    return Err(StoreError::Busy {
                        database,
                        owner,
                        waited: wait.as_secs(),
                    });
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
        let io = |e: std::io::Error| StoreError::Write {
            path: path.clone(),
            reason: match e.kind() {
                std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => {
                    format!(
                        "the lock file cannot be written because the database's folder is read-only \
                         ({e}); check its permissions and the mount"
                    )
                }
                _ => format!("cannot create the lock file: {e}"),
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
                let mut owner = String::new();
                let _ = file.read_to_string(&mut owner);
                return Err(StoreError::Busy {
                    database: database.to_owned(),
                    owner: owner.trim().replace('\n', ", "),
                    waited: 0,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let mut previous = String::new();
        let _ = file.read_to_string(&mut previous);
        if !previous.trim().is_empty() {
            tracing::debug!(
                "took over the lock last held by {} (that run has ended)",
                previous.trim().replace('\n', ", ")
            );
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
        Ok(RunLock { _file: file })
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
