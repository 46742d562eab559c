//! The client secret: where it is read from (a value, a file or a command), kept out of `Debug` output,
//! and the warning when a file holding it can be read by other users.

use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use super::layers::{FileConfig, Layers};
use super::{ConfigError, Origin};

/// How the client secret is obtained: exactly one of `client_secret`, `client_secret_file` and
/// `client_secret_command` (an `AUDITSYNC_CLIENT_SECRET*` variable overrides all three). Nothing is
/// read or run until [`Settings::client_secret`](super::Settings::client_secret). Its `Debug` shows
/// neither the value nor the command (which may hold the secret); each carries where it was set.
pub enum SecretSource {
    /// The secret itself (`client_secret`).
    Value(SecretString, Origin),
    /// A file whose content, trimmed, is the secret (`client_secret_file`); a relative path in the
    /// configuration file is already joined to that file's folder.
    File(PathBuf, Origin),
    /// A command run once by `sh -c` (`cmd /C` on Windows) whose standard output, trimmed, is the
    /// secret (`client_secret_command`).
    Command(String, Origin),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Value(_, o) => write!(f, "Value([redacted], {o})"),
            SecretSource::File(p, o) => write!(f, "File({}, {o})", p.display()),
            SecretSource::Command(_, o) => write!(f, "Command([redacted], {o})"),
        }
    }
}

/// The secret's source: the environment's variables first (`AUDITSYNC_CLIENT_SECRET`, `_FILE`,
/// `_COMMAND`, in that order), else the one key the file sets (more than one is
/// [`ConfigError::SecretConflict`]), else `None`. Files holding the secret that other users can read
/// add a warning to `warnings`.
pub(super) fn secret_source(
    layers: &Layers<'_>,
    parsed: &FileConfig,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<Option<SecretSource>, ConfigError> {
    if let Some(v) = layers.env.get("AUDITSYNC_CLIENT_SECRET") {
        return Ok(Some(SecretSource::Value(
            SecretString::from(v.to_owned()),
            Origin::Env("AUDITSYNC_CLIENT_SECRET".into()),
        )));
    }
    if let Some(v) = layers.env.get("AUDITSYNC_CLIENT_SECRET_FILE") {
        let path = PathBuf::from(v);
        warnings.extend(readable_by_others(&path, "client_secret_file"));
        return Ok(Some(SecretSource::File(
            path,
            Origin::Env("AUDITSYNC_CLIENT_SECRET_FILE".into()),
        )));
    }
    if let Some(v) = layers.env.get("AUDITSYNC_CLIENT_SECRET_COMMAND") {
        return Ok(Some(SecretSource::Command(
            v.to_owned(),
            Origin::Env("AUDITSYNC_CLIENT_SECRET_COMMAND".into()),
        )));
    }
    let origin = layers.file_origin.clone();
    let set = [
        parsed.client_secret.is_some(),
        parsed.client_secret_file.is_some(),
        parsed.client_secret_command.is_some(),
    ];
    if set.iter().filter(|s| **s).count() > 1 {
        return Err(ConfigError::SecretConflict(origin));
    }
    if let Some(v) = &parsed.client_secret {
        if let Origin::File(p) = &origin {
            warnings.extend(readable_by_others(p, "client_secret"));
        }
        return Ok(Some(SecretSource::Value(v.clone(), origin)));
    }
    if let Some(p) = &parsed.client_secret_file {
        let path = base.join(p);
        warnings.extend(readable_by_others(&path, "client_secret_file"));
        return Ok(Some(SecretSource::File(path, origin)));
    }
    if let Some(c) = &parsed.client_secret_command {
        return Ok(Some(SecretSource::Command(c.clone(), origin)));
    }
    Ok(None)
}

/// Reads the client secret from `source`, running `client_secret_command` if that is the source; `file`
/// (the configuration file) is named when no source is set. Its value is trimmed and must not be empty.
pub(super) async fn read_secret(
    source: Option<&SecretSource>,
    file: Option<&Path>,
) -> Result<SecretString, ConfigError> {
    let Some(source) = source else {
        return Err(ConfigError::Missing {
            key: "client_secret",
            env: "AUDITSYNC_CLIENT_SECRET".to_owned(),
            hint: match file {
                Some(p) => format!(
                    "(nor client_secret_file or client_secret_command) in {}",
                    p.display()
                ),
                None => "(nor client_secret_file or client_secret_command)".to_owned(),
            },
        });
    };
    let (value, origin) = match source {
        SecretSource::Value(v, o) => (v.expose_secret().to_owned(), o),
        SecretSource::File(path, o) => {
            let text = tokio::fs::read_to_string(path).await.map_err(|source| {
                ConfigError::SecretFile {
                    path: path.clone(),
                    origin: o.clone(),
                    source,
                }
            })?;
            (text, o)
        }
        SecretSource::Command(cmd, o) => (run_secret_command(cmd, o).await?, o),
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(ConfigError::SecretEmpty {
            origin: origin.clone(),
        });
    }
    // From now on no text auditsync prints, logs or stores may hold it.
    crate::redact::register(value);
    Ok(SecretString::from(value.to_owned()))
}

/// A warning, with the chmod that fixes it, when a file holding a secret can be read by other users.
#[cfg(unix)]
fn readable_by_others(path: &Path, what: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        format!(
            "{} holds {what} and can be read by other users (mode {:o}); run: chmod 600 {}",
            path.display(),
            mode & 0o777,
            path.display()
        )
    })
}

#[cfg(not(unix))]
fn readable_by_others(_path: &Path, _what: &str) -> Option<String> {
    None
}

/// Runs `client_secret_command` with no stdin and stderr discarded (it may print the secret), and
/// returns its standard output.
async fn run_secret_command(cmd: &str, origin: &Origin) -> Result<String, ConfigError> {
    let mut command = if cfg!(windows) {
        let mut c = tokio::process::Command::new("cmd");
        c.arg("/C").arg(cmd);
        c
    } else {
        let mut c = tokio::process::Command::new("sh");
        c.arg("-c").arg(cmd);
        c
    };
    command
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let failed = |status: String| ConfigError::SecretCommandFailed {
        origin: origin.clone(),
        status,
    };
    let out = command
        .output()
        .await
        .map_err(|e| failed(format!("it could not be started: {e}")))?;
    if !out.status.success() {
        return Err(failed(match out.status.code() {
            Some(code) => format!("it exited with status {code}"),
            None => "it was killed by a signal".to_owned(),
        }));
    }
    String::from_utf8(out.stdout).map_err(|_| failed("its output is not UTF-8 text".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{load, minimal};

    #[test]
    fn one_secret_source_in_the_file_and_the_environment_wins() {
        let two = format!("{}client_secret_file = \"x\"\n", minimal());
        assert!(matches!(
            load(&two, &[]),
            Err(ConfigError::SecretConflict(_))
        ));
        let s = load(&two, &[("AUDITSYNC_CLIENT_SECRET", "e")]).unwrap();
        assert!(matches!(
            s.tenant.secret,
            Some(SecretSource::Value(_, Origin::Env(_)))
        ));
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let s = load(&minimal().replace("\"s\"", "\"hunter2-secret\""), &[]).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
