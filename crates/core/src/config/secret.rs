//! The client secret: where it is read from (a value, a file or a command), kept out of `Debug` output,
//! and the warning when a file holding it can be read by other users.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// secret (`client_secret_command`), stopped with every process it started when it runs longer
    /// than the duration (`client_secret_command_timeout`).
    Command(String, Origin, Duration),
}

/// How long `client_secret_command` may run by default: a vault CLI answers in a few seconds; one that
/// waits for a prompt or a dead network never does.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest `client_secret_command_timeout` accepted, in seconds (an hour: a cron run must not wait
/// for longer than its interval).
const MAX_COMMAND_TIMEOUT_S: u64 = 3600;
/// The most a secret command may print on its standard output (a secret is at most a few hundred
/// characters; a command that prints without end must not fill the memory).
const MAX_COMMAND_OUTPUT: u64 = 64 * 1024;

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Value(_, o) => write!(f, "Value([redacted], {o})"),
            SecretSource::File(p, o) => write!(f, "File({}, {o})", p.display()),
            SecretSource::Command(_, o, t) => write!(f, "Command([redacted], {o}, {t:?})"),
        }
    }
}

/// Registers every client secret the configuration names with [`crate::redact`] as soon as the
/// configuration is read, before any value is validated, so that no later message (a refusal of
/// `cloud = "<the secret>"` or `AUDITSYNC_AUTHORITY=<the secret>`, a log line, a stored error) can
/// print it: the inline value (`AUDITSYNC_CLIENT_SECRET`, `client_secret`, even in a file TOML
/// cannot parse) and the content of the secret's file when [`read_secret_file`] can read it (a
/// regular file of at most 64 KiB; read once more when the secret is needed). The
/// command's output is registered when it runs ([`read_secret`]).
pub(super) fn register_known_secrets(env: &super::Env, text: Option<&str>, base: &Path) {
    if let Some(v) = env.get("AUDITSYNC_CLIENT_SECRET") {
        crate::redact::register(v);
    }
    let mut file = env.get("AUDITSYNC_CLIENT_SECRET_FILE").map(PathBuf::from);
    for line in text.unwrap_or_default().lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().trim_matches(['"', '\'']);
        let value = value.trim();
        let value = match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or_default(),
            _ => value.split(" #").next().unwrap_or_default().trim(),
        };
        match key {
            "client_secret" => crate::redact::register(value),
            "client_secret_file" if file.is_none() => file = Some(base.join(value)),
            _ => {}
        }
    }
    // The same bounded, non-blocking read as when the secret is needed ([`read_secret_file`]).
    if let Some(content) = file.and_then(|path| read_secret_file(&path).ok()) {
        crate::redact::register(content.trim());
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
    let timeout = command_timeout(layers, parsed.client_secret_command_timeout.as_ref())?;
    if let Some(v) = layers.env.get("AUDITSYNC_CLIENT_SECRET_COMMAND") {
        return Ok(Some(SecretSource::Command(
            v.to_owned(),
            Origin::Env("AUDITSYNC_CLIENT_SECRET_COMMAND".into()),
            timeout,
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
        return Ok(Some(SecretSource::Command(c.clone(), origin, timeout)));
    }
    Ok(None)
}

/// `client_secret_command_timeout`: whole seconds from 1 to an hour, default
/// [`DEFAULT_COMMAND_TIMEOUT`]. Checked whatever the secret's source, so a mistake shows at once.
fn command_timeout(
    layers: &Layers<'_>,
    file: Option<&toml::Value>,
) -> Result<Duration, ConfigError> {
    let key = "client_secret_command_timeout";
    let file = file.map(|v| match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let Some(raw) = layers.top(key, file) else {
        return Ok(DEFAULT_COMMAND_TIMEOUT);
    };
    match raw.value.trim().parse::<u64>() {
        Ok(s) if (1..=MAX_COMMAND_TIMEOUT_S).contains(&s) => Ok(Duration::from_secs(s)),
        _ => Err(ConfigError::Invalid {
            key,
            origin: raw.origin,
            reason: format!(
                "{} is not a whole number of seconds from 1 to {MAX_COMMAND_TIMEOUT_S}; the default is {}",
                super::quoted(&raw.value),
                DEFAULT_COMMAND_TIMEOUT.as_secs()
            ),
        }),
    }
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
    let (value, empty) = match source {
        SecretSource::Value(v, o) => (
            v.expose_secret().to_owned(),
            format!("client_secret {o} is empty; put the secret's value there"),
        ),
        SecretSource::File(path, o) => {
            let text = read_secret_file(path).map_err(|source| ConfigError::SecretFile {
                path: path.clone(),
                origin: o.clone(),
                source,
            })?;
            let empty = format!(
                "the client secret file {} (client_secret_file {o}) is empty; put the secret's value in it",
                path.display()
            );
            (text, empty)
        }
        SecretSource::Command(cmd, o, timeout) => (
            run_secret_command(cmd, o, *timeout).await?,
            format!(
                "client_secret_command {o} printed nothing on its standard output; run it by hand to see \
                 what it prints"
            ),
        ),
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(ConfigError::SecretEmpty(empty));
    }
    // From now on no text auditsync prints, logs or stores may hold it.
    crate::redact::register(value);
    Ok(SecretString::from(value.to_owned()))
}

/// The most `client_secret_file` may hold: a client secret is under 100 characters, a file of a few
/// lines around it is fine; a larger one is not a secret file (and `/dev/zero` never ends).
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Reads `client_secret_file` without ever blocking or filling the memory: anything but a regular file
/// (a named pipe would wait for a writer forever, a device may never end) is refused from its metadata,
/// the file is opened non-blocking and checked again (it may have been swapped), and more than
/// [`MAX_SECRET_FILE`] bytes is refused. The errors' text says what the path is and what to put there.
fn read_secret_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;

    let not_regular = |m: &std::fs::Metadata| {
        std::io::Error::other(format!(
            "it is {}, not a regular file; name a file that holds only the secret",
            crate::files::special_kind(m).unwrap_or("not a regular file")
        ))
    };
    let too_big = |n: u64| {
        std::io::Error::other(format!(
            "it is {n} bytes; a client secret is under 100 characters, so this is not the secret's \
             file (at most {} KiB is read): name the file that holds only the secret",
            MAX_SECRET_FILE / 1024
        ))
    };
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    if meta.len() > MAX_SECRET_FILE {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_SECRET_FILE {
        return Err(too_big(bytes.len() as u64));
    }
    // Notepad and PowerShell 5 write a byte-order mark, and their "Unicode" is UTF-16.
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(&bytes) {
        let (text, had_errors) = encoding.decode_without_bom_handling(&bytes[bom..]);
        if !had_errors {
            return Ok(text.into_owned());
        }
    }
    String::from_utf8(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "it is not UTF-8 text; save the secret as plain text",
        )
    })
}

/// A warning, with the chmod that fixes it, when a file holding a secret can be read by other users.
fn readable_by_others(path: &Path, what: &str) -> Option<String> {
    crate::files::open_to_others(path).map(|mode| {
        format!(
            "{} holds {what} and can be read by other users (mode {mode:o}); run: chmod 600 {}",
            path.display(),
            path.display()
        )
    })
}

/// Runs `client_secret_command` with no stdin and stderr discarded (it may print the secret), in a
/// process group of its own, and returns its standard output (at most [`MAX_COMMAND_OUTPUT`] bytes).
/// Past `timeout` the whole group is killed: the shell and whatever it started.
async fn run_secret_command(
    cmd: &str,
    origin: &Origin,
    timeout: Duration,
) -> Result<String, ConfigError> {
    use tokio::io::AsyncReadExt;

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
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    #[cfg(unix)]
    command.process_group(0);
    let failed = |status: String| ConfigError::SecretCommandFailed {
        origin: origin.clone(),
        status,
    };
    let mut child = command
        .spawn()
        .map_err(|e| failed(format!("it could not be started: {e}")))?;
    // Whatever way this function is left before the command ended on its own (the future dropped on
    // Ctrl-C or SIGTERM, an error, a timeout), the whole group is killed: `kill_on_drop` reaches only
    // the shell, and a terminal's Ctrl-C never reaches a group of its own.
    let mut group = GroupGuard::new(child.id());
    let stdout = child.stdout.take();
    tracing::debug!(
        timeout_s = timeout.as_secs(),
        "running client_secret_command {origin}"
    );
    let run = async {
        let mut out = Vec::new();
        if let Some(stdout) = stdout {
            stdout
                .take(MAX_COMMAND_OUTPUT + 1)
                .read_to_end(&mut out)
                .await?;
        }
        if out.len() as u64 > MAX_COMMAND_OUTPUT {
            // It would block writing to a pipe nobody reads: no use waiting for it.
            return Ok::<_, std::io::Error>((out, None));
        }
        let status = child.wait().await?;
        Ok((out, Some(status)))
    };
    let (out, status) = match tokio::time::timeout(timeout, run).await {
        Ok(Ok((_, None))) => {
            stop_group(&mut child).await;
            return Err(failed(format!(
                "it printed more than {} KiB, far more than a secret; it was stopped",
                MAX_COMMAND_OUTPUT / 1024
            )));
        }
        Ok(Ok((out, Some(status)))) => {
            // The shell ended on its own and was reaped: its group id may be reused, so it is not
            // signalled.
            group.disarm();
            (out, status)
        }
        Ok(Err(e)) => {
            stop_group(&mut child).await;
            return Err(failed(format!("its output could not be read: {e}")));
        }
        Err(_) => {
            stop_group(&mut child).await;
            return Err(ConfigError::SecretCommandTimedOut {
                origin: origin.clone(),
                seconds: timeout.as_secs(),
            });
        }
    };
    if !status.success() {
        return Err(failed(match status.code() {
            Some(127) => "it exited with status 127, command not found: cron runs commands with \
                          PATH=/usr/bin:/bin, so name the program by its absolute path (`which az` prints it)"
                .to_owned(),
            Some(126) => "it exited with status 126, the command was found but cannot be run (not \
                          executable, or a folder): name an executable file by its absolute path, or \
                          `chmod +x` it"
                .to_owned(),
            Some(code) => format!("it exited with status {code}"),
            None => "it was killed by a signal".to_owned(),
        }));
    }
    String::from_utf8(out).map_err(|_| failed("its output is not UTF-8 text".to_owned()))
}

/// Kills a secret command's process group with SIGKILL when dropped, unless disarmed: the shell and
/// every process it started that stayed in the group (`az … | jq`, a `sleep` it waits on).
struct GroupGuard(Option<u32>);

impl GroupGuard {
    fn new(pid: Option<u32>) -> Self {
        GroupGuard(pid)
    }

    /// The command ended by itself and was reaped: nothing to kill.
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self
            .0
            .take()
            .and_then(|id| rustix::process::Pid::from_raw(id as i32))
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

/// Kills the command's process group (the shell and every process it started that stayed in the
/// group), then the shell itself, and reaps it.
async fn stop_group(child: &mut tokio::process::Child) {
    #[cfg(unix)]
    if let Some(pid) = child
        .id()
        .and_then(|id| rustix::process::Pid::from_raw(id as i32))
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill().await;
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
