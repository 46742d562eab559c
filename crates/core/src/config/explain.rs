//! The configuration file's mistakes explained in the admin's terms, each with its line, the key and
//! what to write instead of the parser's words: a value without quotes (a GUID reads as a broken date
//! or number to TOML), typographic quotes (“ ” ‘ ’, from a word processor or a chat app), a key under
//! the wrong table, a misspelt key or table (the nearest known one is suggested), a backslash in a
//! Windows path, a number in quotes. A value is never quoted back: it may be a secret.

use super::layers::{SYNC_KEYS, TOP_KEYS};
use super::{ConfigError, Origin};

/// `[sync]` keys whose value is a whole number.
const NUMBER_KEYS: [&str; 5] = [
    "start_time_interval",
    "time_interval",
    "segment_count_limit",
    "concurrency",
    "requests_per_minute",
];
/// `[sync]` keys whose value is a list of text.
const LIST_KEYS: [&str; 2] = ["content_types", "operations"];
/// Quotes TOML does not read, that editors and chat apps put in place of `"` and `'`.
const SMART_QUOTES: [char; 10] = ['“', '”', '„', '‟', '‘', '’', '‚', '‛', '«', '»'];

/// The table a key belongs to: `Some("sync")` for the `[sync]` keys, `None` for the top level.
fn table_of(key: &str) -> Option<&'static str> {
    SYNC_KEYS.contains(&key).then_some("sync")
}

/// How a key's value is written, for "write this" hints: `key = "…"`, `key = 8`, `key = ["…"]`.
fn example(key: &str) -> String {
    if NUMBER_KEYS.contains(&key) {
        format!("{key} = 8")
    } else if LIST_KEYS.contains(&key) {
        format!("{key} = [\"…\"]")
    } else {
        format!("{key} = \"…\"")
    }
}

/// The key a line sets (`key = …`, `"key" = …`, `sync.key = …`) without quotes, and the table a
/// dotted key names; `None` for a table header, a comment or a line without `=`.
fn key_of(line: &str) -> Option<(Option<String>, String)> {
    let line = line.trim_start();
    if line.starts_with(['[', '#']) {
        return None;
    }
    let (left, _) = line.split_once('=')?;
    let parts: Vec<String> = left
        .split('.')
        .map(|p| p.trim().trim_matches(['"', '\'']).to_owned())
        .collect();
    let key = parts.last()?.clone();
    if key.is_empty() {
        return None;
    }
    let table = (parts.len() > 1).then(|| parts[..parts.len() - 1].join("."));
    Some((table, key))
}

/// The table a header line opens (`[sync]` → `sync`), if the line is one.
fn header(line: &str) -> Option<String> {
    let line = line.trim();
    let inner = line.strip_prefix('[')?;
    let inner = inner.split(']').next()?;
    Some(inner.trim_matches(['[', ' ', '"', '\'']).to_owned())
}

/// The 1-based line that sets `key` in its table (`[sync]` for the `[sync]` keys), if one does.
pub(super) fn line_of(text: &str, key: &str) -> Option<usize> {
    let want = table_of(key);
    let mut table: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        if let Some(h) = header(line) {
            table = Some(h);
            continue;
        }
        if let Some((dotted, k)) = key_of(line) {
            let at = dotted.or_else(|| table.clone());
            if k == key && at.as_deref() == want {
                return Some(i + 1);
            }
        }
    }
    None
}

/// Adds the line to a refusal of a value read from the file (`authority in FILE is not valid: line 4:
/// …`); any other error is returned as it is.
pub(super) fn with_line(e: ConfigError, text: Option<&str>) -> ConfigError {
    match (e, text) {
        (
            ConfigError::Invalid {
                key,
                origin: origin @ Origin::File(_),
                reason,
            },
            Some(text),
        ) => {
            let reason = match line_of(text, key) {
                Some(n) => format!("line {n}: {reason}"),
                None => reason,
            };
            ConfigError::Invalid {
                key,
                origin,
                reason,
            }
        }
        (e, _) => e,
    }
}

/// The known name nearest to `name` (case ignored), if one is near enough to be a slip of the keys.
pub(super) fn nearest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let name = name.to_lowercase();
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(&name, k), *k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// Why `name` (in `table`, or a table itself when `is_table`) is not a key auditsync reads, and what
/// to write.
fn unknown_key(name: &str, table: Option<&str>, is_table: bool) -> String {
    if is_table {
        return match nearest(name, &["sync"]) {
            Some(_) => format!("[{name}] is not a table auditsync knows; did you mean [sync]?"),
            None => format!(
                "[{name}] is not a table auditsync knows; the only table is [sync] (every other key is at \
                 the top of the file, before it)"
            ),
        };
    }
    let in_sync = table == Some("sync");
    if !in_sync && SYNC_KEYS.contains(&name) {
        return format!(
            "{name} belongs in the [sync] table but is at the top level: move it below a [sync] line \
             (keys after [sync] belong to it, so keep the top-level keys above that line)"
        );
    }
    if in_sync && TOP_KEYS.contains(&name) {
        return format!(
            "{name} is a top-level key but is in the [sync] table (every key after the [sync] line belongs \
             to it): move it above the [sync] line"
        );
    }
    let (own, other, elsewhere): (&[&str], &[&str], &str) = if in_sync {
        (&SYNC_KEYS, &TOP_KEYS, "a top-level key, above [sync]")
    } else {
        (&TOP_KEYS, &SYNC_KEYS, "in the [sync] table")
    };
    if let Some(k) = nearest(name, own) {
        return format!("{name} is not a key auditsync knows; did you mean {k}?");
    }
    if let Some(k) = nearest(name, other) {
        return format!("{name} is not a key auditsync knows; did you mean {k} ({elsewhere})?");
    }
    format!(
        "{name} is not a key auditsync knows{}; the keys are {} (config.example.toml documents each)",
        if in_sync { " in [sync]" } else { "" },
        own.join(", ")
    )
}

/// toml's message and the line it is on, explained where the mistake is a known one. Values are never
/// quoted back (a secret may be written in the wrong form).
pub(super) fn parse_error(e: &toml::de::Error, text: &str) -> String {
    let msg = e.message().trim();
    let Some(span) = e.span() else {
        return hide_values(msg);
    };
    let start = span.start.min(text.len());
    let line_no = text.get(..start).unwrap_or(text).matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let table = text.lines().take(line_no - 1).filter_map(header).last();
    let (dotted, key) = match key_of(line) {
        Some((d, k)) => (d, Some(k)),
        None => (None, None),
    };
    let table = dotted.or(table);
    let why = explain(msg, line, table.as_deref(), key.as_deref());
    format!("line {line_no}: {why}")
}

/// The explanation of one parse error on `line` (which sets `key`, if any, in `table`).
fn explain(msg: &str, line: &str, table: Option<&str>, key: Option<&str>) -> String {
    if line.contains(SMART_QUOTES) {
        let what = key.map_or("this line is".to_owned(), |k| format!("{k} is"));
        let fix = key.map_or("\"…\"".to_owned(), example);
        return format!(
            "{what} written with typographic quotes (“ ” or ‘ ’, as word processors and chat apps make \
             them), which TOML does not read; use straight quotes: {fix}"
        );
    }
    if let Some(name) = msg
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
    {
        let is_table = header(line).is_some_and(|h| h == name);
        return unknown_key(name, table, is_table);
    }
    let Some(key) = key else {
        return hide_values(msg);
    };
    let value = line.split_once('=').map_or("", |(_, v)| v.trim());
    let quoted = value.starts_with(['"', '\'']);
    if msg.contains("escape") && quoted {
        return format!(
            "the value of {key} has a backslash that TOML reads as an escape (as in \\n); write it in single \
             quotes, which keep backslashes as they are: {key} = 'C:\\auditsync\\…', or double each \
             backslash"
        );
    }
    if NUMBER_KEYS.contains(&key) {
        return format!("{key} is a whole number, written without quotes: {key} = 8");
    }
    if LIST_KEYS.contains(&key) {
        return format!(
            "{key} is a list of text in square brackets, each item in straight double quotes: {key} = \
             [\"…\", \"…\"]"
        );
    }
    if !quoted && !value.starts_with('[') {
        return format!(
            "the value of {key} is not in quotes; text (a GUID, a URL, a path) is written in straight \
             double quotes in TOML: {key} = \"…\""
        );
    }
    if msg.starts_with("invalid type") {
        return format!("{key} is text, written in straight double quotes: {key} = \"…\"");
    }
    format!("{key}: {}", hide_values(msg))
}

/// toml's message with any value it quotes (between backticks or double quotes) left out.
fn hide_values(msg: &str) -> String {
    if !(msg.starts_with("invalid type") || msg.starts_with("invalid value")) {
        return msg.to_owned();
    }
    let mut out = String::new();
    let mut inside: Option<char> = None;
    for c in msg.chars() {
        match (inside, c) {
            (None, '`' | '"') => {
                inside = Some(c);
                out.push(c);
                out.push('…');
            }
            (Some(q), c) if c == q => {
                inside = None;
                out.push(c);
            }
            (Some(_), _) => {}
            (None, c) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{C, T, load, minimal};

    fn refusal(text: &str) -> String {
        load(text, &[]).unwrap_err().to_string()
    }

    #[track_caller]
    fn says(text: &str, needles: &[&str]) {
        let err = refusal(text);
        for n in needles {
            assert!(err.contains(n), "{text:?}: {err} lacks {n:?}");
        }
        assert!(err.contains("/etc/auditsync.toml"), "{err}");
    }

    #[test]
    fn unquoted_values() {
        says(
            &format!("tenant_id = {T}\nclient_id = \"{C}\"\nclient_secret = \"s\"\n"),
            &["line 1", "tenant_id", "not in quotes", "tenant_id = \"…\""],
        );
        says(
            &format!("{}database = /var/lib/auditsync.db\n", minimal()),
            &["line 4", "database = \"…\""],
        );
        says(
            &format!("{}publisher_identifier = {{{T}}}\n", minimal()),
            &["line 4", "publisher_identifier = \"…\""],
        );
        says(
            &format!("{}[sync]\nconcurrency = \"8\"\n", minimal()),
            &["line 5", "concurrency = 8", "without quotes"],
        );
        says(
            &format!("{}[sync]\ncontent_types = \"Audit.General\"\n", minimal()),
            &["content_types = [\"…\""],
        );
    }

    #[test]
    fn smart_quotes() {
        for (o, c) in [("“", "”"), ("‘", "’"), ("„", "“"), ("«", "»")] {
            says(
                &minimal().replace(&format!("\"{C}\""), &format!("{o}{C}{c}")),
                &["line 2", "client_id", "typographic", "client_id = \"…\""],
            );
        }
    }

    #[test]
    fn keys_in_the_wrong_table_and_typos() {
        says(
            &format!("concurrency = 4\n{}", minimal()),
            &["line 1", "concurrency", "[sync]", "below"],
        );
        says(
            &format!("{}[sync]\ndatabase = \"a.db\"\n", minimal()),
            &["line 5", "database", "top-level", "above the [sync] line"],
        );
        says(
            &format!("{}tenantid = \"x\"\n", minimal()),
            &["line 4", "did you mean tenant_id?"],
        );
        says(
            &format!("{}[sync]\nconcurency = 4\n", minimal()),
            &["did you mean concurrency?"],
        );
        says(
            &format!("{}sync.concurency = 4\n", minimal()),
            &["did you mean concurrency?"],
        );
        says(
            &format!("{}[sync]\ntenantid = \"x\"\n", minimal()),
            &["did you mean tenant_id (a top-level key"],
        );
        says(&format!("{}[Sync]\n", minimal()), &["did you mean [sync]?"]);
        says(
            &format!("{}zzz = 1\n", minimal()),
            &["zzz is not a key", "tenant_id, client_id"],
        );
    }

    #[test]
    fn a_backslash_path_and_values_never_echoed() {
        says(
            &format!("{}database = \"C:\\data\\a.db\"\n", minimal()),
            &["database", "single quotes"],
        );
        let secret = "Xy8Q~abcdefghijklmnop";
        let err = refusal(&format!(
            "tenant_id = \"{T}\"\nclient_id = \"{C}\"\nclient_secret = {secret}\n"
        ));
        assert!(
            err.contains("client_secret") && !err.contains(secret),
            "{err}"
        );
        let err = refusal(&format!(
            "{}[sync]\nconcurrency = \"{secret}\"\n",
            minimal()
        ));
        assert!(!err.contains(secret), "{err}");
    }

    #[test]
    fn refusals_of_values_name_their_line() {
        says(
            &format!("{}[sync]\nconcurrency = 0\n", minimal()),
            &["concurrency in /etc/auditsync.toml", "line 5"],
        );
        assert_eq!(
            line_of("a = 1\n[sync]\nconcurrency = 2\n", "concurrency"),
            Some(3)
        );
        assert_eq!(line_of("sync.concurrency = 2\n", "concurrency"), Some(1));
        assert_eq!(line_of("[sync]\ntenant_id = 2\n", "tenant_id"), None);
    }
}
