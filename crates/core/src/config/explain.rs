//! The configuration file's mistakes explained in the admin's terms, each with its line, the key and
//! what to write instead of the parser's words: a value without quotes (a GUID reads as a broken date
//! or number to TOML), typographic quotes (“ ” ‘ ’, from a word processor or a chat app), a key under
//! the wrong table, a misspelt key or table (the nearest known one is suggested), a backslash in a
//! Windows path, a number in quotes (or negative, fractional, too large), `[[sync]]` and `[sync.x]`,
//! a table or key given twice, a key without `=` (`key: value`, a full-width `＝`), an invisible
//! character in a key, a string left open, a file that is not UTF-8 (UTF-16, Windows-1252). A value
//! is never quoted back (it may be a secret), and a key only when auditsync knows it.

use super::layers::{GRAPH_KEYS, SYNC_KEYS, TOP_KEYS};
use super::{ConfigError, Origin};

/// `[sync]` and `[graph]` keys whose value is a whole number (a `u32`).
const NUMBER_KEYS: [&str; 10] = [
    "start_time_interval",
    "time_interval",
    "segment_count_limit",
    "concurrency",
    "requests_per_minute",
    "same_failure_limit",
    "blob_size_limit_mib",
    "in_flight",
    "daily_submissions",
    "page_size",
];
/// Keys whose value is true or false.
const BOOL_KEYS: [&str; 1] = ["enabled"];
/// The tables the file may hold, with their keys.
const TABLES: [(&str, &[&str]); 2] = [("sync", &SYNC_KEYS), ("graph", &GRAPH_KEYS)];
/// `[sync]` keys whose value is a list of text.
const LIST_KEYS: [&str; 2] = ["content_types", "operations"];
/// Quotes TOML does not read, that editors and chat apps put in place of `"` and `'`.
const SMART_QUOTES: [char; 10] = ['“', '”', '„', '‟', '‘', '’', '‚', '‛', '«', '»'];

/// The table a key belongs to: `Some("sync")` for the `[sync]` keys, `Some("graph")` for the
/// `[graph]` keys, `None` for the top level.
fn table_of(key: &str) -> Option<&'static str> {
    TABLES
        .iter()
        .find(|(_, keys)| keys.contains(&key))
        .map(|(name, _)| *name)
}

/// The keys of `table` (`None`: the top level).
fn keys_of(table: Option<&str>) -> &'static [&'static str] {
    match table {
        None => &TOP_KEYS,
        Some(t) => TABLES
            .iter()
            .find(|(name, _)| *name == t)
            .map_or(&[], |(_, keys)| *keys),
    }
}

/// Every key auditsync reads, at any level.
fn all_keys() -> Vec<&'static str> {
    TOP_KEYS
        .iter()
        .chain(&SYNC_KEYS)
        .chain(&GRAPH_KEYS)
        .copied()
        .collect()
}

/// Whether `name` is a table auditsync reads.
fn known_table(name: &str) -> bool {
    TABLES.iter().any(|(t, _)| *t == name)
}

/// How a key's value is written, for "write this" hints: `key = "…"`, `key = 8`, `key = ["…"]`.
fn example(key: &str) -> String {
    if NUMBER_KEYS.contains(&key) {
        format!("{key} = 8")
    } else if BOOL_KEYS.contains(&key) {
        format!("{key} = true")
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
        .map(|p| {
            p.trim()
                .trim_matches(|c: char| c == '"' || c == '\'' || SMART_QUOTES.contains(&c))
                .trim()
                .to_owned()
        })
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
    if is_table && let Some((parent, _)) = name.split_once('.').filter(|(p, _)| known_table(p)) {
        return format!(
            "[{name}] is not a table auditsync knows: [{parent}] has no tables inside it; its keys ({}) go \
             directly below the [{parent}] line",
            keys_of(Some(parent)).join(", ")
        );
    }
    if is_table {
        let names: Vec<&str> = TABLES.iter().map(|(t, _)| *t).collect();
        return match nearest(name, &names) {
            Some(t) => format!("[{name}] is not a table auditsync knows; did you mean [{t}]?"),
            None => format!(
                "[{name}] is not a table auditsync knows; the tables are [sync] and [graph] (every other key \
                 is at the top of the file, before them)"
            ),
        };
    }
    let here = table.filter(|t| known_table(t));
    if let Some(home) = table_of(name).filter(|home| here != Some(*home)) {
        let at = match here {
            Some(t) => format!("in the [{t}] table"),
            None => "at the top level".to_owned(),
        };
        return format!(
            "{name} belongs in the [{home}] table but is {at}: move it below a [{home}] line (keys after a \
             [table] line belong to it, so keep the top-level keys above the first table)"
        );
    }
    if let Some(t) = here
        && TOP_KEYS.contains(&name)
    {
        return format!(
            "{name} is a top-level key but is in the [{t}] table (every key after the [{t}] line belongs \
             to it): move it above the [{t}] line"
        );
    }
    let own = keys_of(here);
    if let Some(k) = nearest(name, own) {
        return format!("{name} is not a key auditsync knows; did you mean {k}?");
    }
    for (other, keys) in std::iter::once((None, &TOP_KEYS[..]))
        .chain(TABLES.iter().map(|(t, keys)| (Some(*t), *keys)))
        .filter(|(t, _)| *t != here)
    {
        if let Some(k) = nearest(name, keys) {
            let elsewhere = match other {
                Some(t) => format!("in the [{t}] table"),
                None => match here {
                    Some(t) => format!("a top-level key, above [{t}]"),
                    None => "a top-level key".to_owned(),
                },
            };
            return format!("{name} is not a key auditsync knows; did you mean {k} ({elsewhere})?");
        }
    }
    format!(
        "{name} is not a key auditsync knows{}; the keys are {} (config.example.toml documents each)",
        here.map(|t| format!(" in [{t}]")).unwrap_or_default(),
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
    let at = At {
        text,
        line_no,
        line,
        table: table.as_deref(),
        key: key.as_deref(),
    };
    format!("line {line_no}: {}", explain(msg, &at))
}

/// Where a parse error is: the whole text, the 1-based line and its text, the table it is in, the
/// key it sets (if any).
struct At<'a> {
    text: &'a str,
    line_no: usize,
    line: &'a str,
    table: Option<&'a str>,
    key: Option<&'a str>,
}

/// The explanation of one parse error.
fn explain(msg: &str, at: &At<'_>) -> String {
    let line = at.line;
    if line.contains(SMART_QUOTES) {
        let what = at
            .key
            .map_or("this line is".to_owned(), |k| format!("{k} is"));
        let fix = at.key.map_or("key = \"…\"".to_owned(), example);
        return format!(
            "{what} written with typographic quotes (“ ” or ‘ ’, as word processors and chat apps make \
             them), which TOML does not read; retype them as straight quotes (\"), and write a key without \
             any quotes: {fix}"
        );
    }
    if line.trim_start().starts_with("[[") {
        return array_of_tables(header(line).unwrap_or_default().as_str());
    }
    if let Some(name) = msg
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
    {
        if let Some(h) = header(line).filter(|h| h == name || h.ends_with(&format!(".{name}"))) {
            return unknown_key(&h, at.table, true);
        }
        return unknown_key(name, at.table, false);
    }
    if msg.starts_with("duplicate key") {
        return duplicate(at);
    }
    if msg.contains("expected `=`") {
        return no_equals(line);
    }
    if msg.starts_with("invalid unquoted key") {
        return bad_key(line);
    }
    let Some(key) = at.key else {
        return hide_values(msg);
    };
    value_error(msg, line, key)
}

/// The explanation of an error in the value `line` gives `key`.
fn value_error(msg: &str, line: &str, key: &str) -> String {
    let value = line.split_once('=').map_or("", |(_, v)| v.trim());
    let quoted = value.starts_with(['"', '\'']);
    if msg.starts_with("invalid basic string") || msg.starts_with("invalid literal string") {
        return format!(
            "the value of {key} opens a quote but does not close it on the same line; a text value is \
             written on one line between two straight quotes: {}",
            example(key)
        );
    }
    if msg.contains("escape") && quoted {
        return format!(
            "the value of {key} has a backslash that TOML reads as an escape (as in \\n); write it in single \
             quotes, which keep backslashes as they are: {key} = 'C:\\auditsync\\…', or double each \
             backslash"
        );
    }
    if known_table(key) {
        return format!(
            "{key} is a table, not a value: write [{key}] on a line of its own, its keys on the lines \
             below it ({key}.{} = … also works)",
            keys_of(Some(key))[0]
        );
    }
    if BOOL_KEYS.contains(&key) {
        return format!("{key} is true or false, written without quotes: {key} = true");
    }
    if NUMBER_KEYS.contains(&key) {
        return number(key, value);
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

/// Why the value written for a whole-number key is not one, judged from how it is written (never
/// quoting it).
fn number(key: &str, value: &str) -> String {
    let value = value.split('#').next().unwrap_or("").trim();
    let digits = |v: &str| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '_');
    let why = if value.starts_with(['"', '\'']) {
        "written without quotes"
    } else if value.starts_with('-') {
        "at least 0, and this one is negative"
    } else if digits(value.trim_start_matches('+')) {
        "at most 4294967295, and this one is larger"
    } else if value.replace('_', "").parse::<f64>().is_ok() {
        "without a fraction or an exponent (no `.`, no `e`)"
    } else {
        "digits only (not true/false, a list or a table)"
    };
    format!("{key} is a whole number, {why}: e.g. {key} = 8 (config.example.toml gives its range)")
}

/// `[[name]]`: an array of tables, which auditsync never reads.
fn array_of_tables(name: &str) -> String {
    if known_table(name) {
        return format!(
            "[[{name}]] (double brackets) makes a list of tables, which auditsync does not read; \
             write [{name}] with single brackets, once, and its keys below it"
        );
    }
    format!(
        "{}; a table is written with single brackets, e.g. [sync]",
        unknown_key(name, None, true)
    )
}

/// A table or key written twice; names the line of the first one.
fn duplicate(at: &At<'_>) -> String {
    let before: Vec<&str> = at.text.lines().take(at.line_no - 1).collect();
    if let Some(h) = header(at.line) {
        let first = before
            .iter()
            .position(|l| header(l).as_deref() == Some(h.as_str()));
        let shown = format!("[{h}]");
        let name = if known_table(&h) {
            shown.as_str()
        } else {
            "this table"
        };
        return match first {
            Some(i) => format!(
                "{name} appears a second time (the first is on line {}); TOML allows a table once: put all \
                 its keys below the first {name} line and delete this one",
                i + 1
            ),
            None => format!(
                "{name} is given twice (a {name} line and a dotted key naming it, perhaps); TOML allows a \
                 table once: put all its keys below one {name} line"
            ),
        };
    }
    let Some(key) = at.key else {
        return "a key is set twice; keep one of the two lines".to_owned();
    };
    let mut table: Option<String> = None;
    let mut first = None;
    for (i, l) in before.iter().enumerate() {
        if let Some(h) = header(l) {
            table = Some(h);
        } else if let Some((dotted, k)) = key_of(l)
            && k == key
            && dotted.or_else(|| table.clone()).as_deref() == at.table
        {
            first = Some(i + 1);
            break;
        }
    }
    let name = if known_key(key) { key } else { "this key" };
    match first {
        Some(n) => format!("{name} is set twice (first on line {n}); keep one of the two lines"),
        None => format!("{name} is set twice; keep one of the two lines"),
    }
}

/// Whether `key` is one auditsync reads (at either level).
fn known_key(key: &str) -> bool {
    all_keys().contains(&key)
}

/// A line that names a key without `=` (`cloud: "gcc"`, `cloud ＝ "gcc"`); the key is named only when
/// it is (or is near) a known one, as the line may be a pasted value.
fn no_equals(line: &str) -> String {
    let trimmed = line.trim_start();
    let word: String = trimmed
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    let after = trimmed[word.len()..].trim_start().chars().next();
    let sep = match after {
        Some(':') => " (a colon `:` is not TOML's `=`)".to_owned(),
        Some('＝') => {
            " (the full-width `＝`, U+FF1D, of a CJK keyboard, is not TOML's `=`)".to_owned()
        }
        Some(c) if !c.is_ascii() => format!(" (U+{:04X} is not TOML's `=`)", u32::from(c)),
        _ => String::new(),
    };
    let all = all_keys();
    let key = if known_key(&word) {
        Some(word.as_str())
    } else {
        nearest(&word, &all)
    };
    match key {
        Some(k) => format!(
            "{k} has no `=` after it{sep}; TOML writes a key and its value with a plain equals sign: {}",
            example(k)
        ),
        None => format!(
            "this line has no `=`{sep}; every line is a key and its value (key = \"…\"), a table header \
             ([sync]) or a comment (# …)"
        ),
    }
}

/// A key holding a character a bare key may not: a no-break or zero-width space (pasted from a web
/// page or a document), a letter outside ASCII.
fn bad_key(line: &str) -> String {
    let left = line.split_once('=').map_or(line, |(l, _)| l);
    let odd = left
        .trim_matches(|c: char| c == ' ' || c == '\t')
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '"' | '\'')));
    let what = match odd {
        Some('\u{a0}') => "a no-break space (U+00A0)".to_owned(),
        Some('\u{200b}') => "a zero-width space (U+200B)".to_owned(),
        Some('\u{feff}') => "a zero-width no-break space (U+FEFF)".to_owned(),
        Some('\u{3000}') => "an ideographic space (U+3000)".to_owned(),
        Some(' ' | '\t') => "a space".to_owned(),
        Some(c) => format!("the character U+{:04X}", u32::from(c)),
        None => "a character TOML does not allow".to_owned(),
    };
    let clean: String = left
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        .collect();
    let all = all_keys();
    let key = if known_key(&clean) {
        Some(clean.as_str())
    } else {
        nearest(&clean, &all)
    };
    let fix = key.map_or("key = \"…\"".to_owned(), example);
    format!(
        "the key on this line holds {what}, often invisible in an editor (pasted from a web page or a \
         document); a key is plain letters, digits, _ and -: retype it as {fix}"
    )
}

/// The file's bytes as text: UTF-8 (a UTF-8 byte-order mark is dropped), or a refusal naming the
/// encoding seen (UTF-16 by its byte-order mark or its NUL bytes, else another 8-bit one such as
/// Windows-1252) and how to save it as UTF-8. Never quotes the text (it holds the secret).
///
/// # Errors
/// [`ConfigError::Parse`] (exit 2).
pub(super) fn decode(path: &std::path::Path, bytes: Vec<u8>) -> Result<String, ConfigError> {
    let bytes = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => rest.to_vec(),
        None => bytes,
    };
    let bytes = match String::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => return Ok(text),
        Ok(text) => text.into_bytes(),
        Err(e) => e.into_bytes(),
    };
    let seen = if bytes.starts_with(b"\xFF\xFE") {
        "UTF-16 (little-endian, with a byte-order mark: Notepad's \"Unicode\", PowerShell 5's default)"
            .to_owned()
    } else if bytes.starts_with(b"\xFE\xFF") {
        "UTF-16 (big-endian, with a byte-order mark)".to_owned()
    } else if bytes.contains(&0) {
        "UTF-16 without a byte-order mark (it has NUL bytes between the letters)".to_owned()
    } else {
        let at = match std::str::from_utf8(&bytes) {
            Err(e) => {
                bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    + 1
            }
            Ok(_) => 1,
        };
        format!(
            "not UTF-8: line {at} has a byte UTF-8 does not allow, as Windows-1252 (\"ANSI\") and other \
             8-bit encodings write é, ü or ’"
        )
    };
    Err(ConfigError::Parse {
        path: path.to_owned(),
        message: format!(
            "it is saved as {seen}; auditsync reads configuration files in UTF-8 only: save it as UTF-8 \
             (Notepad: File > Save as, Encoding \"UTF-8\"; PowerShell: Set-Content -Encoding utf8; or \
             iconv -f UTF-16 -t UTF-8 / iconv -f WINDOWS-1252 -t UTF-8)"
        ),
    })
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

    #[test]
    fn values_of_the_wrong_shape_are_explained_truthfully() {
        says(
            &format!("{}[[sync]]\ntime_interval = 1\n", minimal()),
            &["line 4", "[[sync]]", "single brackets"],
        );
        for (value, why) in [
            ("-1", "negative"),
            ("1.5", "without a fraction"),
            ("99999999999999999999", "at most 4294967295"),
            ("true", "digits only"),
            ("\"8\"", "without quotes"),
        ] {
            let err = refusal(&format!("{}[sync]\nconcurrency = {value}\n", minimal()));
            assert!(
                err.contains(why) && err.contains("line 5"),
                "{value}: {err}"
            );
            if !value.starts_with('"') {
                assert!(!err.contains("without quotes"), "{value}: {err}");
            }
        }
        says(
            &format!("{}sync = 5\n", minimal()),
            &["sync is a table", "[sync]"],
        );
    }

    #[test]
    fn keys_without_equals_twice_or_with_invisible_characters() {
        says(
            &format!("{}cloud: \"gcc\"\n", minimal()),
            &["line 4", "cloud has no `=`", "colon", "cloud = \"…\""],
        );
        says(
            &format!("{}cloud \u{ff1d} \"gcc\"\n", minimal()),
            &["line 4", "cloud has no `=`", "U+FF1D", "cloud = \"…\""],
        );
        says(
            &format!(
                "{}[sync]\nconcurrency = 1\n[sync]\ntime_interval = 1\n",
                minimal()
            ),
            &["line 6", "[sync] appears a second time", "line 4"],
        );
        says(
            &format!("{}cloud = \"gcc\"\ncloud = \"gcc\"\n", minimal()),
            &["line 5", "cloud is set twice (first on line 4)"],
        );
        for (key, what) in [
            ("clo\u{a0}ud", "no-break space (U+00A0)"),
            ("cloud\u{a0}", "no-break space (U+00A0)"),
            ("clo\u{200b}ud", "zero-width space (U+200B)"),
        ] {
            let err = refusal(&format!("{}{key} = \"gcc\"\n", minimal()));
            assert!(
                err.contains("line 4")
                    && err.contains(what)
                    && err.contains("retype it as cloud = \"…\""),
                "{key:?}: {err}"
            );
        }
        says(
            &format!("{}cloud = \"gcc\n", minimal()),
            &[
                "line 4",
                "cloud opens a quote but does not close it",
                "cloud = \"…\"",
            ],
        );
        says(
            &format!("{}cloud = 'gcc\n", minimal()),
            &["line 4", "does not close it"],
        );
        let err = refusal(&format!("{}[sync.extra]\nx = 1\n", minimal()));
        assert!(
            err.contains("line 4")
                && err.contains("[sync.extra]")
                && err.contains("concurrency")
                && !err.contains("tenant_id"),
            "{err}"
        );
    }

    #[test]
    fn the_fix_for_typographic_quotes_has_none() {
        for (o, c) in [("“", "”"), ("‘", "’"), ("«", "»")] {
            let err = refusal(&format!("{}{o}cloud{c} = \"gcc\"\n", minimal()));
            assert!(err.contains("cloud = \"…\""), "{err}");
            let fix = err.rsplit(':').next().unwrap();
            assert!(!fix.contains(SMART_QUOTES), "{err}");
        }
    }

    #[test]
    fn encodings_other_than_utf8_are_named() {
        let path = std::path::Path::new("/etc/auditsync.toml");
        let text = format!("{}cloud = \"gcc\"\n", minimal());
        let mut le = vec![0xFF, 0xFE];
        let mut be = vec![0xFE, 0xFF];
        let mut bare = Vec::new();
        for unit in text.encode_utf16() {
            le.extend(unit.to_le_bytes());
            be.extend(unit.to_be_bytes());
            bare.extend(unit.to_le_bytes());
        }
        for (bytes, seen) in [
            (le, "UTF-16 (little-endian"),
            (be, "UTF-16 (big-endian"),
            (bare, "UTF-16 without a byte-order mark"),
            (
                format!("{}# caf\u{e9}\n", minimal())
                    .replace('\u{e9}', "\u{1}")
                    .into_bytes()
                    .into_iter()
                    .map(|b| if b == 1 { 0xE9 } else { b })
                    .collect(),
                "line 4",
            ),
        ] {
            let err = decode(path, bytes).unwrap_err().to_string();
            assert!(
                err.contains(seen)
                    && err.contains("save it as UTF-8")
                    && err.contains("/etc/auditsync.toml"),
                "{err}"
            );
            assert!(!err.contains(C) && !err.contains("stream did not"), "{err}");
        }
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend(text.as_bytes());
        assert_eq!(decode(path, bom).unwrap(), text);
    }
}
