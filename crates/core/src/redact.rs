//! Redaction: the one filter every text passes before it is printed, logged or stored (a leaf: it
//! imports no other module of the crate).
//!
//! Two nets, so that a secret is caught whatever echoed it (a token endpoint that repeats the form body
//! in its error, an API that repeats the `Authorization` header, a proxy's error page):
//!
//! - a process-wide registry of the exact values to hide: the client secret (once read), every access
//!   token issued to this process, every client assertion (issue 13). [`register`] adds a value and its
//!   form-encoded and JSON-escaped spellings, and [`redact`] also looks through up to two layers of
//!   JSON escapes in any mixture (`\u002B`, `\u003D`, `\/`, `\u002F`, as .NET and other encoders
//!   write `+`, `=`, `/`);
//! - shapes that carry a credential whatever its value: `client_secret=…`, `client_assertion=…`,
//!   `access_token=…` (and `"access_token":"…"`, likewise for `refresh_token`, `id_token`, `assertion`,
//!   `password`), `Bearer …`, `Basic …` (also what is left of a value cut short at the end of a
//!   shortened text), and anything shaped like a JWT (`eyJ….….…`).
//!
//! Whatever matches becomes [`REDACTED`]. The exits that apply [`redact`]: the error message
//! (`src/error.rs`), every log line (`src/logging.rs` wraps the writer), the text stored in the
//! database (runs, failed blobs), the sync summary's error texts (stdout and JSON), `status`.

use std::borrow::Cow;
use std::sync::{Mutex, PoisonError};

/// What a redacted value is replaced by.
pub const REDACTED: &str = "[redacted]";

/// Values shorter than this are not registered: no real client secret or token is this short, and
/// hiding every occurrence of a two-letter string would garble every message. The shapes still apply.
pub const MIN_LEN: usize = 8;

/// At most this many values are kept; beyond, the oldest registered after the first
/// [`KEEP_FIRST`] go (a token lifetime of zero means a new token per request; old tokens have expired,
/// and the JWT shape still catches them).
const CAPACITY: usize = 512;
/// The first values registered (the client secret and its spellings) are never dropped.
const KEEP_FIRST: usize = 8;

static REGISTRY: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Adds a secret value (a client secret, an access token, a client assertion) to the values every
/// later [`redact`] hides, with its `application/x-www-form-urlencoded` and JSON-escaped spellings
/// (as a token endpoint echoing a form body, or a JSON error, would write it). Surrounding whitespace
/// is ignored; values shorter than [`MIN_LEN`] are not registered.
pub fn register(value: &str) {
    let value = value.trim();
    if value.chars().count() < MIN_LEN {
        return;
    }
    let form: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    let percent: String = form.replace('+', "%20");
    let json = serde_json::to_string(value).unwrap_or_default();
    let json = json.trim_matches('"').to_owned();
    let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    for v in [value.to_owned(), form, percent, json] {
        if !registry.contains(&v) {
            registry.push(v);
        }
    }
    while registry.len() > CAPACITY {
        let oldest = KEEP_FIRST.min(registry.len() - 1);
        registry.remove(oldest);
    }
}

/// The text with every registered value and every credential-shaped part replaced by [`REDACTED`];
/// borrowed unchanged when there is nothing to hide.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    {
        let registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        // Longest first, so a value is hidden whole before a shorter spelling of it could split it.
        let mut values: Vec<&String> = registry
            .iter()
            .filter(|v| out.contains(v.as_str()))
            .collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        for v in values {
            if out.contains(v.as_str()) {
                out = Cow::Owned(out.replace(v.as_str(), REDACTED));
            }
        }
    }
    if let Some(unescaped) = redact_escaped(&out) {
        out = Cow::Owned(unescaped);
    }
    if let Some(shaped) = redact_shapes(&out) {
        out = Cow::Owned(shaped);
    }
    out
}

/// How many layers of escaping are looked through: a JSON string (`\u002B`), and that JSON quoted
/// again inside another string or a Debug dump (`\\u002B`).
const ESCAPE_LAYERS: usize = 2;

/// The registered values as they appear behind JSON escapes, in any mixture: `\u002B`/`\u002b` for
/// `+`, `\u003D` for `=`, `\/` or `\u002F` for `/`, `\"`, `\\` (a .NET `JavaScriptEncoder` escapes `+`
/// and the HTML-sensitive characters; other encoders escape `/`; a value quoted twice is escaped
/// twice). Each text is read through up to [`ESCAPE_LAYERS`] layers of unescaping; a value found in
/// the unescaped view is hidden in the text as written. `None` when there is nothing to hide.
fn redact_escaped(text: &str) -> Option<String> {
    if !text.contains('\\') {
        return None;
    }
    let registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    if registry.is_empty() {
        return None;
    }
    let mut spans: Vec<(usize, usize)> = Vec::new();
    // The view, and for each of its bytes (and one past its end) the offset in `text`.
    let mut view: Vec<u8> = text.as_bytes().to_vec();
    let mut offsets: Vec<usize> = (0..=view.len()).collect();
    for _ in 0..ESCAPE_LAYERS {
        let Some((next, at)) = unescape(&view) else {
            break;
        };
        offsets = at.iter().map(|&i| offsets[i]).collect();
        view = next;
        // Only ASCII escapes are read into ASCII bytes, so the view is still UTF-8.
        let Ok(seen) = std::str::from_utf8(&view) else {
            break;
        };
        for v in registry.iter() {
            for (start, _) in seen.match_indices(v.as_str()) {
                spans.push((offsets[start], offsets[start + v.len()]));
            }
        }
    }
    drop(registry);
    replace_spans(text, spans)
}

/// The text with one layer of JSON escapes read (`\"`, `\\`, `\/`, `\uXXXX` of an ASCII
/// character; others are kept as written), and for each byte of it (and one past the end) the offset
/// of what it was read from. `None` when there was no escape to read.
fn unescape(text: &[u8]) -> Option<(Vec<u8>, Vec<usize>)> {
    let mut out = Vec::with_capacity(text.len());
    let mut at = Vec::with_capacity(text.len() + 1);
    let mut changed = false;
    let mut i = 0;
    while i < text.len() {
        let escape = (text[i] == b'\\').then(|| escape_at(&text[i..])).flatten();
        let (byte, len) = escape.unwrap_or((text[i], 1));
        changed |= escape.is_some();
        out.push(byte);
        at.push(i);
        i += len;
    }
    at.push(text.len());
    changed.then_some((out, at))
}

/// The byte a JSON escape at the start of `s` stands for, and the escape's length.
fn escape_at(s: &[u8]) -> Option<(u8, usize)> {
    match *s.get(1)? {
        b @ (b'"' | b'\\' | b'/') => Some((b, 2)),
        b'u' => {
            let hex = std::str::from_utf8(s.get(2..6)?).ok()?;
            let code = u8::from_str_radix(hex, 16).ok()?;
            code.is_ascii().then_some((code, 6))
        }
        _ => None,
    }
}

/// The text with each span (byte offsets, any order, may overlap) replaced by [`REDACTED`]; `None`
/// when there are none. Spans are widened to character boundaries.
fn replace_spans(text: &str, mut spans: Vec<(usize, usize)>) -> Option<String> {
    if spans.is_empty() {
        return None;
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in spans {
        let mut end = end.min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        if end <= at {
            continue;
        }
        let mut start = start.max(at);
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        out.push_str(&text[at..start]);
        out.push_str(REDACTED);
        at = end;
    }
    out.push_str(&text[at..]);
    Some(out)
}

/// Keys whose value is a credential, in a form body (`key=value`) or JSON (`"key":"value"`).
const KEYS: [&str; 7] = [
    "client_secret",
    "client_assertion",
    "access_token",
    "refresh_token",
    "id_token",
    "assertion",
    "password",
];
/// Authorization schemes whose parameter is a credential.
const SCHEMES: [&str; 2] = ["bearer", "basic"];

/// Characters a credential value is made of: base64 and base64url, form and percent encoding, the
/// characters of an Entra client secret (`~`, `.`, `-`, `_`).
fn value_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=' | b'%')
}

fn base64url_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')
}

/// The text with its credential-shaped parts replaced, or `None` when it has none.
fn redact_shapes(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let lower = text.to_ascii_lowercase();
    let lower = lower.as_bytes();
    // (start, end) of each value to hide, in byte offsets (always on ASCII boundaries).
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for key in KEYS {
        let mut from = 0;
        while let Some(at) = find(lower, key.as_bytes(), from) {
            from = at + key.len();
            // A key inside a longer name (`my_password_hint`) still counts; the value must follow.
            if let Some(span) = keyed_value(bytes, at + key.len()) {
                spans.push(span);
            }
        }
    }
    for scheme in SCHEMES {
        let mut from = 0;
        while let Some(at) = find(lower, scheme.as_bytes(), from) {
            from = at + scheme.len();
            let starts_word = at == 0 || !bytes[at - 1].is_ascii_alphanumeric();
            let mut i = at + scheme.len();
            let spaces = i;
            while i < bytes.len() && bytes[i] == b' ' {
                i += 1;
            }
            let end = run(bytes, i, value_char);
            // "Bearer" as a word followed by a value of some length with a digit or a symbol in it:
            // "Bearer eyJ…", "basic dXNl…", but not "basic authentication".
            let value = &bytes[i..end];
            let token_like = value.iter().any(|b| !b.is_ascii_alphabetic());
            // A value cut short where a shortened text says `…`: what is left of a token is hidden
            // whatever its length; at the very end of the text, unless it reads as a word ("the
            // Bearer scheme", "Bearer Tokens").
            let rest = &text[end..];
            let marked = rest.starts_with('…') || rest.starts_with("...");
            let word = value
                .iter()
                .enumerate()
                .all(|(n, b)| b.is_ascii_lowercase() || (n == 0 && b.is_ascii_uppercase()));
            let cut = !value.is_empty() && (marked || (rest.is_empty() && !word));
            let credential = (value.len() >= MIN_LEN && token_like) || cut;
            if starts_word && i > spaces && credential {
                spans.push((i, end));
            }
        }
    }
    let mut from = 0;
    while let Some(at) = find(bytes, b"eyJ", from) {
        from = at + 3;
        let head = run(bytes, at, base64url_char);
        if bytes.get(head) != Some(&b'.') {
            continue;
        }
        let body = run(bytes, head + 1, base64url_char);
        if body == head + 1 || bytes.get(body) != Some(&b'.') {
            continue;
        }
        let end = run(bytes, body + 1, base64url_char);
        spans.push((at, end));
        from = end;
    }
    replace_spans(text, spans)
}

/// After a key at `i`: `=value` (form), or `":"value"` / `': 'value'` / `\":\"value\"` (JSON, also
/// escaped inside a Debug string). A value after `:` must be quoted, so prose like "at access_token:
/// invalid type" keeps its words. The span of the value, when there is one.
fn keyed_value(bytes: &[u8], mut i: usize) -> Option<(usize, usize)> {
    let quote = |b: u8| matches!(b, b'"' | b'\'' | b'\\');
    while i < bytes.len() && quote(bytes[i]) {
        i += 1;
    }
    while i < bytes.len() && bytes[i] == b' ' {
        i += 1;
    }
    let sep = *bytes.get(i)?;
    if sep != b'=' && sep != b':' {
        return None;
    }
    i += 1;
    while i < bytes.len() && bytes[i] == b' ' {
        i += 1;
    }
    let mut quoted = false;
    while i < bytes.len() && quote(bytes[i]) {
        quoted = true;
        i += 1;
    }
    if sep == b':' && !quoted {
        return None;
    }
    let end = run(bytes, i, value_char);
    (end > i).then_some((i, end))
}

/// The end of the run of bytes from `i` that satisfy `ok`.
fn run(bytes: &[u8], mut i: usize, ok: impl Fn(u8) -> bool) -> usize {
    while i < bytes.len() && ok(bytes[i]) {
        i += 1;
    }
    i
}

/// The first position at or after `from` where `needle` starts.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_hidden_in_every_spelling() {
        let secret = "Ab3Q~x.y_z-Redact+Me/Too\"q";
        register(secret);
        let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        for text in [
            format!("the secret {secret} was echoed"),
            format!("grant_type=client_credentials&secret2={form}&x=1"),
            format!("{{\"echo\":{}}}", serde_json::to_string(secret).unwrap()),
        ] {
            let out = redact(&text);
            assert!(!out.contains("Redact"), "{out}");
            assert!(out.contains(REDACTED), "{out}");
        }
        assert_eq!(redact("nothing to hide"), "nothing to hide");
        // Too short to register: it would garble every message.
        register("abc");
        assert_eq!(redact("abc abc"), "abc abc");
    }

    #[test]
    fn registered_values_are_hidden_behind_json_escapes_in_any_mixture() {
        let secret = "Qx7+Escaped/Value=Lm~9.k";
        register(secret);
        for text in [
            // .NET's JavaScriptEncoder: `+` as \u002B, the rest as written.
            r#"{"error_description":"echo: Qx7\u002BEscaped/Value=Lm~9.k"}"#,
            r#"{"m":"Qx7\u002bEscaped\/Value\u003dLm~9.k"}"#,
            r#"{"m":"Qx7\u002BEscaped\u002FValue\u003DLm~9.k"}"#,
            // Quoted twice (a JSON error inside a JSON string, or a Debug dump of one).
            r#"{"inner":"{\"m\":\"Qx7\\u002BEscaped\\/Value\\u003DLm~9.k\"}"}"#,
        ] {
            let out = redact(text);
            assert!(!out.contains("Escaped"), "{text} -> {out}");
            assert!(out.contains(REDACTED), "{text} -> {out}");
        }
        // Other escapes keep their text.
        let plain = r#"{"m":"a \u002B b \"quoted\" c:\\path"}"#;
        assert_eq!(redact(plain), plain);
    }

    #[test]
    fn a_bearer_token_cut_short_is_hidden_to_its_end() {
        for text in [
            "Request failed. Headers: Authorization: Bearer eyJ0eXAi",
            "Request failed. Headers: Authorization: Bearer abc…",
            "Authorization: Bearer Zm9v...",
            "authorization: basic dXNl",
        ] {
            let out = redact(text);
            assert!(
                out.ends_with(REDACTED)
                    || out.contains("[redacted]…")
                    || out.contains("[redacted]..."),
                "{text} -> {out}"
            );
            for word in ["eyJ0", "abc", "Zm9v", "dXNl"] {
                assert!(!out.contains(word), "{text} -> {out}");
            }
        }
        // A scheme at the very end, or a word after it, is prose.
        for text in [
            "the scheme is Bearer",
            "the Bearer scheme",
            "use Bearer Tokens",
        ] {
            assert_eq!(redact(text), text);
        }
    }

    #[test]
    fn credential_shapes_are_hidden_whatever_the_value() {
        let cases = [
            "grant_type=client_credentials&client_id=x&client_secret=unregistered~Value.1&resource=r",
            "client_assertion=abcdefghijklmnop&client_assertion_type=jwt",
            r#"{"token_type":"Bearer","access_token":"opaque-token-value-123"}"#,
            r#"Debug: {\"access_token\":\"opaque-token-value-123\"}"#,
            "Authorization: Bearer opaque-token-value-123",
            "authorization: basic b3BhcXVlOnNlY3JldHZhbHVl",
            "the token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXZhbHVl was refused",
            "'password': 'opaque-token-value-123'",
        ];
        for text in cases {
            let out = redact(text);
            assert!(out.contains(REDACTED), "{text} -> {out}");
            for word in [
                "unregistered",
                "abcdefghijklmnop",
                "opaque",
                "b3BhcXVl",
                "c2lnbmF0",
                "eyJzdWIi",
            ] {
                assert!(!out.contains(word), "{text} -> {out}");
            }
        }
        // Prose about the fields keeps its words.
        for text in [
            "the token endpoint sent a token response auditsync cannot read (at access_token: invalid type)",
            "set client_secret, client_secret_file or client_secret_command",
            "the Bearer scheme",
            "basic authentication is not used; Bearer tokens are",
        ] {
            assert_eq!(redact(text), text);
        }
    }
}
