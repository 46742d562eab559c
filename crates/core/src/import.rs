//! Historic events from Purview audit search exports (coe-flows.md §6, management-api.md §6), beyond
//! the API's 7 days. Three shapes, told apart by the header:
//! - the classic export `CreationDate,UserIds,Operations,AuditData`;
//! - the newer export `RecordId,CreationDate,RecordType,Operation,UserId,AuditData,...` (often with a
//!   UTF-8 byte-order mark);
//! - `Search-UnifiedAuditLog | Export-Csv` output (`"RecordType","CreationDate","UserIds",...`, every
//!   field quoted).
//!
//! As files reach an admin, re-saved by Excel or written by Windows PowerShell 5.1, they come in more
//! forms, and all are read ([`input`]): UTF-8 with or without a byte-order mark, UTF-16 LE or BE
//! (with a byte-order mark, or told from its NUL bytes), UTF-32 with a byte-order mark, and ANSI
//! (Windows-1252), decided row by row in a UTF-8 file (a row that is not UTF-8 is read as
//! Windows-1252, with a warning naming its line); `,`, `;` (Excel where the decimal mark
//! is a comma) or tab between fields, told from the header line outside quotes; a first line
//! `sep=;` (Excel), which is honoured and skipped; a `#TYPE` line (Export-Csv without
//! `-NoTypeInformation`). The report says
//! which of these a file was ([`Format`]).
//!
//! All three carry the record as JSON in `AuditData`, which is what is read: its `Id` and
//! `CreationTime`, through the same [`Filter`] as sync, so an imported launch is the same row as a
//! synced one. The file is streamed (UTF-16 and UTF-32 decoded as it is read) through a CSV state machine
//! (AuditData holds commas, quotes and doubled quotes; lines end in CRLF, LF or CR), with bounded
//! memory ([`records`]): a row may take [`MAX_RECORD`] bytes. A row that cannot be read, or is
//! larger, is reported with its line number and skipped; the rows around it are stored. Files that
//! are not text (empty, only NUL bytes, a binary first line, an archive) are refused with one line
//! saying what they are, quoting nothing of them but what looks like column names (the file may be
//! a configuration holding a secret); a text file with a NUL-filled region has its rows read and the
//! damaged ones reported by line.

mod input;
mod records;

use std::borrow::Cow;
use std::fs::File;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use crate::extract::{Filter, RecordError};
use crate::model::Event;
use crate::store::{StoreError, Writer};
use input::{SNIFF, Transcode, size, sniff};
use records::{Next, Records, Span};

pub use input::TextEncoding;
pub use records::{MAX_FIELDS, MAX_RECORD};

/// Events written per transaction, at most.
const BATCH: usize = 1_000;

/// AuditData held in one batch, at most: rows near [`MAX_RECORD`] each must not make a batch of
/// 1,000 hold gigabytes.
const BATCH_BYTES: usize = 64 << 20;

/// Rows that could not be used kept in detail per file, the first ones; the rest are counted. A file
/// of millions of bad lines must not hold millions of messages in memory (10 million short bad rows
/// took 640 MB before this bound).
pub const BAD_ROWS_KEPT: usize = 1_000;

/// Why a file could not be imported (as opposed to a row: see [`BadRow`]). The events of the batches
/// committed before the failure stay stored.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file cannot be opened.
    #[error("cannot read {path}: {source}")]
    Open {
        /// The file, as given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not text with a header line: empty, NUL bytes, an archive or another binary
    /// format, or a first line too long to be a header.
    #[error("cannot import {path}: it {reason}")]
    NotText {
        /// The file, as given.
        path: PathBuf,
        /// What it is instead, and what to do (a phrase after "it").
        reason: String,
    },
    /// The header has no `AuditData` column (compared without case or spaces).
    #[error(
        "{path} is not an audit log export: its header ({header}) has no AuditData column; export from \
         Microsoft Purview audit search, or with Search-UnifiedAuditLog | Export-Csv"
    )]
    NotAnExport {
        /// The file, as given.
        path: PathBuf,
        /// How many fields the header has and the first ones that look like column names (anything
        /// else, which may be a secret, as `…`), and how it was read.
        header: String,
    },
    /// Reading stopped on an I/O error partway through.
    #[error("cannot read {path} at line {line}: {reason}")]
    Read {
        /// The file, as given.
        path: PathBuf,
        /// The line where reading stopped, from 1 (a `sep=` or `#TYPE` line counts).
        line: u64,
        /// The I/O error's message.
        reason: String,
    },
    /// The database failed while storing a batch.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ImportError {
    /// The store's exit code for [`ImportError::Store`], 1 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            ImportError::Store(e) => e.exit_code(),
            _ => 1,
        }
    }
}

/// A row that could not be used.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BadRow {
    /// The line the row starts on, from 1 (a `sep=` or `#TYPE` line counts).
    pub line: u64,
    /// Why it cannot be used, for the admin (no AuditData, not an audit record, no `Id`, NUL bytes,
    /// larger than [`MAX_RECORD`], a quote never closed).
    pub reason: String,
}

/// Lines of a UTF-8 file named in the report when rows in it are not UTF-8 (read as Windows-1252);
/// the rest are counted.
pub const ANSI_LINES_SHOWN: usize = 5;

/// How a file was read: the shape recognised besides its columns.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Format {
    /// Its text encoding, told from its start ([`TextEncoding`]); rows are decoded one by one
    /// (UTF-8 when valid, else Windows-1252), see `ansi_lines`.
    pub encoding: TextEncoding,
    /// In a file that is not [`TextEncoding::Windows1252`] throughout: the first
    /// [`ANSI_LINES_SHOWN`] lines whose rows were not UTF-8 and were read as Windows-1252.
    pub ansi_lines: Vec<u64>,
    /// How many such lines, all of them.
    pub ansi_line_count: u64,
    /// The field separator: `,`, `;` or tab.
    pub separator: char,
    /// Whether a `sep=` line (Excel) named the separator.
    pub sep_line: bool,
    /// The separator a `sep=` line named when the header did not use it (and was read by its own).
    pub sep_line_overruled: Option<char>,
    /// Whether a `#TYPE` line (Export-Csv without `-NoTypeInformation`) came first.
    pub type_line: bool,
    /// The header's column names, as in the file.
    pub columns: Vec<String>,
    /// The last line counted in `ansi_line_count` (a row's fields are decoded one by one).
    #[serde(skip)]
    last_ansi_line: u64,
}

impl Format {
    /// How the text was read, without the columns: e.g. "UTF-16 LE with byte-order mark,
    /// ';'-separated (its sep=; line), after a #TYPE line".
    pub fn reading(&self) -> String {
        let sep = separator_name(self.separator as u8);
        let mut text = self.encoding.to_string();
        if let Some(first) = self.ansi_lines.first() {
            let mut lines: Vec<String> = self.ansi_lines.iter().map(u64::to_string).collect();
            if self.ansi_line_count > self.ansi_lines.len() as u64 {
                lines.push("…".to_owned());
            }
            text.push_str(&format!(
                ", Windows-1252 from line {first} on {} line{} that are not UTF-8 ({}; read as ANSI)",
                self.ansi_line_count,
                if self.ansi_line_count == 1 { "" } else { "s" },
                lines.join(", ")
            ));
        }
        text.push_str(&format!(", {sep}-separated"));
        if self.sep_line {
            match self.separator {
                '\t' => text.push_str(" (its sep= line)"),
                c => text.push_str(&format!(" (its sep={c} line)")),
            }
        }
        if let Some(named) = self.sep_line_overruled {
            text.push_str(&format!(
                " (told from the header; its sep= line names {})",
                separator_name(named as u8)
            ));
        }
        if self.type_line {
            text.push_str(", after a #TYPE line");
        }
        text
    }
}

impl std::fmt::Display for Format {
    /// [`Format::reading`], then ", columns A,B,C".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let columns = shown(&self.columns.join(","));
        write!(
            f,
            "{}, columns {}",
            self.reading(),
            crate::redact::redact(&columns)
        )
    }
}

/// What one file gave.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileReport {
    /// The file's path, for display.
    pub file: String,
    /// Which export it is, told by the header: "Purview audit search export", "Search-UnifiedAuditLog
    /// export" or "classic Purview audit export".
    pub shape: &'static str,
    /// How it was read: encoding, separator, preamble lines, columns.
    pub format: Format,
    /// Data rows read, bad ones included; blank rows are not counted.
    pub rows: u64,
    /// Rows whose record the filter kept, whether or not the store already had them.
    pub events_kept: u64,
    /// Of those, the ones the store did not have yet (an `Id` already stored, from any source, is not
    /// inserted again).
    pub events_new: u64,
    /// The first [`BAD_ROWS_KEPT`] rows that could not be used, in file order; they are skipped,
    /// not errors.
    pub bad_rows: Vec<BadRow>,
    /// How many rows could not be used, all of them (`bad_rows` holds the first of them).
    pub bad_row_count: u64,
}

/// The rows that could not be used: the first [`BAD_ROWS_KEPT`], and a count of all.
#[derive(Default)]
struct BadRows {
    kept: Vec<BadRow>,
    count: u64,
}

impl BadRows {
    fn push(&mut self, line: u64, reason: impl FnOnce() -> String) {
        self.count += 1;
        if self.kept.len() < BAD_ROWS_KEPT {
            self.kept.push(BadRow {
                line,
                reason: reason(),
            });
        }
    }
}

/// The export shapes, by their header.
fn shape(header: &[String]) -> &'static str {
    let has = |name: &str| header.iter().any(|h| h.trim().eq_ignore_ascii_case(name));
    if has("RecordId") {
        "Purview audit search export"
    } else if has("ResultIndex") || has("ObjectState") {
        "Search-UnifiedAuditLog export"
    } else {
        "classic Purview audit export"
    }
}

/// Text from the file for a message: control characters escaped, at most 300 characters.
fn shown(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == 300 {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Header fields named in the refusal of a file that is no export.
const PREVIEW_FIELDS: usize = 8;

/// The header of a file that is no export, for its refusal: how many fields it has and, when it
/// has several, the first [`PREVIEW_FIELDS`] of them that look like column names (letters, spaces
/// and `_ - . ( ) /`, no digits, up to 32 characters), each other field as `…`, all through
/// [`redact`](crate::redact::redact). The file may be anything (a configuration holding
/// `client_secret = "…"`, a copy of a key file): it is never quoted beyond what names it as no
/// export, and a line of one field (a key, a setting) is not quoted at all.
fn header_preview(columns: &[String]) -> String {
    if columns.len() < 2 {
        return "one field, not a list of column names".to_owned();
    }
    let looks_like_a_name = |name: &str| {
        (1..=32).contains(&name.chars().count())
            && name
                .chars()
                .all(|c| c.is_alphabetic() || " _-.()/".contains(c))
    };
    let mut names: Vec<&str> = columns
        .iter()
        .take(PREVIEW_FIELDS)
        .map(|c| {
            if looks_like_a_name(c) {
                c.as_str()
            } else {
                "…"
            }
        })
        .collect();
    if columns.len() > PREVIEW_FIELDS {
        names.push("…");
    }
    let text = format!("{} fields: {}", columns.len(), names.join(","));
    crate::redact::redact(&text).into_owned()
}

/// Whether a column name is `AuditData`, whatever its case, spacing ("Audit Data") or quotes.
fn is_audit_column(name: &[u8]) -> bool {
    name.iter()
        .filter(|b| !b.is_ascii_whitespace() && **b != b'"')
        .map(u8::to_ascii_lowercase)
        .eq(b"auditdata".iter().copied())
}

/// The fields of one line split at `separator`, quotes respected.
fn split_outside_quotes(line: &[u8], separator: u8) -> Vec<&[u8]> {
    let (mut fields, mut start, mut quoted) = (Vec::new(), 0, false);
    for (i, b) in line.iter().enumerate() {
        if *b == b'"' {
            quoted = !quoted;
        } else if *b == separator && !quoted {
            fields.push(&line[start..i]);
            start = i + 1;
        }
    }
    fields.push(&line[start..]);
    fields
}

/// The separator of a header line: the one of `,`, `;` and tab that yields an AuditData column, or
/// else the most frequent one outside quotes (so a refusal shows the columns as they were meant).
fn detect_separator(header: &[u8]) -> u8 {
    const CANDIDATES: [u8; 3] = [b',', b';', b'\t'];
    CANDIDATES
        .into_iter()
        .find(|sep| {
            split_outside_quotes(header, *sep)
                .into_iter()
                .any(is_audit_column)
        })
        .unwrap_or_else(|| {
            CANDIDATES
                .into_iter()
                .max_by_key(|sep| split_outside_quotes(header, *sep).len())
                .unwrap_or(b',')
        })
}

/// The separator an Excel `sep=;` line names (also quoted, or followed by separators, as a
/// re-saved file has it).
fn sep_line(line: &[u8]) -> Option<u8> {
    let line = line.strip_prefix(b"\"").unwrap_or(line);
    let rest = line
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case(b"sep="))
        .map(|_| &line[4..])?;
    let rest = rest.strip_suffix(b"\"").unwrap_or(rest);
    match rest {
        [c, more @ ..] if !matches!(c, b'"' | b'\r' | b'\n') && more.iter().all(|m| m == c) => {
            Some(*c)
        }
        _ => None,
    }
}

/// An export opened past its preamble and header.
struct Opened {
    records: Records<Box<dyn Read>>,
    format: Format,
    /// The AuditData column.
    audit: usize,
}

/// `bytes`, a field of the file on `line`, as text: UTF-8 when it is valid UTF-8, else
/// Windows-1252. In a file that is not ANSI throughout, such a line is noted in `format` and the
/// first [`ANSI_LINES_SHOWN`] are warned about by line (the report counts them all).
fn decode<'a>(format: &mut Format, bytes: &'a [u8], line: u64, path: &Path) -> Cow<'a, str> {
    let (text, ansi) = TextEncoding::decode(bytes);
    if !ansi || format.encoding == TextEncoding::Windows1252 || format.last_ansi_line == line {
        return text;
    }
    format.last_ansi_line = line;
    format.ansi_line_count += 1;
    if format.ansi_lines.len() < ANSI_LINES_SHOWN {
        format.ansi_lines.push(line);
        tracing::warn!(
            "{}: line {line} is not UTF-8; reading that row as Windows-1252 (ANSI), the other rows \
             as UTF-8. If a name looks wrong, save the file as UTF-8 (Excel: \"CSV UTF-8\") before \
             importing",
            path.display()
        );
    } else if format.ansi_line_count == ANSI_LINES_SHOWN as u64 + 1 {
        tracing::warn!(
            "{}: line {line} and maybe more are not UTF-8 either; they are read as Windows-1252 \
             too, without a warning each (the report counts them)",
            path.display()
        );
    }
    text
}

/// Opens an export: tells its encoding, decodes UTF-16 and UTF-32 as they stream, reads past a `sep=` line and
/// a `#TYPE` line, tells the separator and reads the header.
fn open_export(path: &Path, progress: &indicatif::ProgressBar) -> Result<Opened, ImportError> {
    let open_err = |source| ImportError::Open {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(open_err)?;
    if let Ok(meta) = file.metadata() {
        progress.set_length(meta.len());
    }
    progress.set_position(0);
    let mut file = progress.wrap_read(file);
    let mut head = Vec::with_capacity(SNIFF);
    (&mut file)
        .take(SNIFF as u64)
        .read_to_end(&mut head)
        .map_err(open_err)?;
    let not_text = |reason: String| ImportError::NotText {
        path: path.to_owned(),
        reason,
    };
    let (encoding, bom) = sniff(&head).map_err(not_text)?;
    if encoding == TextEncoding::Windows1252 {
        tracing::warn!(
            "{}: not UTF-8 text; reading it as Windows-1252 (ANSI). If a name looks wrong, save the \
             file as UTF-8 (Excel: \"CSV UTF-8\") before importing",
            path.display()
        );
    }
    let mut rest = Cursor::new(head);
    rest.set_position(bom as u64);
    let rest = rest.chain(file);
    let stream: Box<dyn Read> = match encoding.wide() {
        Some(wide) => Box::new(Transcode::new(rest, wide)),
        None => Box::new(rest),
    };
    let mut records = Records::new(stream);
    let (separator, sep_named, type_line) = preamble(&mut records, path)?;
    records.separator(separator);
    let mut format = Format {
        encoding,
        separator: char::from(separator),
        sep_line: sep_named == Some(separator),
        sep_line_overruled: sep_named.filter(|s| *s != separator).map(char::from),
        type_line,
        columns: Vec::new(),
        ansi_lines: Vec::new(),
        ansi_line_count: 0,
        last_ansi_line: 0,
    };
    let no_header = "has no header line: it holds only blank lines (or a sep= line); export the \
                     audit search again";
    let line = match records.next() {
        Ok(Next::Record(span)) => span.line,
        Ok(Next::TooLong { .. }) => {
            return Err(not_text(format!(
                "has no header line: its first row is longer than {} MiB (a quote is not closed?)",
                MAX_RECORD >> 20
            )));
        }
        Ok(Next::End) => return Err(not_text(no_header.to_owned())),
        Err(e) => return Err(read_error(path, records.line(), &e)),
    };
    let fields: Vec<Vec<u8>> = records.fields().map(<[u8]>::to_vec).collect();
    for field in &fields {
        let name = decode(&mut format, field, line, path);
        format.columns.push(name.trim().to_owned());
    }
    let Some(audit) = fields.iter().position(|f| is_audit_column(f)) else {
        return Err(ImportError::NotAnExport {
            path: path.to_owned(),
            header: format!(
                "{}; read as {}",
                header_preview(&format.columns),
                format.reading()
            ),
        });
    };
    Ok(Opened {
        records,
        format,
        audit,
    })
}

fn read_error(path: &Path, line: u64, e: &std::io::Error) -> ImportError {
    ImportError::Read {
        path: path.to_owned(),
        line,
        reason: e.to_string(),
    }
}

/// Reads past an Excel `sep=` line and a PowerShell `#TYPE` line (either first) and blank lines,
/// and tells the separator from the header line: (separator, what a `sep=` line named, after
/// `#TYPE`). A `sep=` line is honoured unless the header has no AuditData column with its separator
/// and has one with another (a file re-saved by a tool that kept the line but not the separator):
/// then the header's separator is used, with a warning naming both.
fn preamble(
    records: &mut Records<Box<dyn Read>>,
    path: &Path,
) -> Result<(u8, Option<u8>, bool), ImportError> {
    let (mut sep, mut type_line) = (None, false);
    loop {
        let at = records.line();
        let line = records
            .peek_line()
            .map_err(|e| read_error(path, at, &e))?
            .ok_or_else(|| ImportError::NotText {
                path: path.to_owned(),
                reason: format!(
                    "has no header line: its first line is longer than {mib} MiB (it runs over \
                     {mib} MiB before its line end, if it has one), and a header of an export is a \
                     few hundred bytes, so it is no CSV export; export the audit search again",
                    mib = records::MAX_LINE >> 20
                ),
            })?;
        let line = line.to_vec();
        let len = line.len();
        if sep.is_none()
            && !type_line
            && let Some(s) = sep_line(&line)
        {
            sep = Some(s);
        } else if !type_line && line.starts_with(b"#TYPE") {
            type_line = true;
        } else if line.iter().all(u8::is_ascii_whitespace) && !records.exhausted() {
            // A blank line before the header.
        } else {
            let separator = match sep {
                None => detect_separator(&line),
                Some(named) => header_separator(named, &line, path),
            };
            return Ok((separator, sep, type_line));
        }
        records.skip_line(len);
    }
}

/// The separator of a header that a `sep=` line named `named`: that one, unless only another one
/// yields an AuditData column (warned about).
fn header_separator(named: u8, header: &[u8], path: &Path) -> u8 {
    let has_audit = |sep: u8| {
        split_outside_quotes(header, sep)
            .into_iter()
            .any(is_audit_column)
    };
    let found = detect_separator(header);
    if has_audit(named) || found == named {
        return named;
    }
    let line = if named == b'\t' {
        "<tab>".to_owned()
    } else {
        char::from(named).to_string()
    };
    let (named_name, found_name) = (separator_name(named), separator_name(found));
    if !has_audit(found) {
        // Neither way is it an export; the refusal follows, and this says why the columns look off.
        tracing::warn!(
            "{}: its line sep={line} names {named_name} as the separator, but its header is \
             {found_name}-separated",
            path.display()
        );
        return named;
    }
    tracing::warn!(
        "{}: its line sep={line} names {named_name} as the separator, but its header is \
         {found_name}-separated; reading the file by the header's separator",
        path.display()
    );
    found
}

/// A separator for messages: `';'`, `','` or `tab`.
fn separator_name(sep: u8) -> String {
    if sep == b'\t' {
        "tab".to_owned()
    } else {
        format!("'{}'", char::from(sep))
    }
}

/// Why a row past the bounds was not loaded.
fn too_long(span: Span, bytes: u64, fields: bool, only_nul: bool, next_line: u64) -> String {
    let lines = if span.inner_lines > 0 {
        format!("lines {}–{}", span.line, span.line + span.inner_lines)
    } else {
        format!("line {}", span.line)
    };
    let bytes = size(bytes);
    if only_nul && span.at_eof {
        return format!(
            "from here to its end the file holds only NUL bytes ({bytes}): it was cut short, by a \
             crash or a full disk; export the audit search again and import it (rows already \
             stored are not added twice)"
        );
    }
    if only_nul {
        let hold = if span.inner_lines > 0 {
            "hold"
        } else {
            "holds"
        };
        return format!(
            "{lines} {hold} only NUL bytes ({bytes}), not a row: skipped; reading went on at line \
             {next_line}"
        );
    }
    let what = if fields {
        format!("has more than {MAX_FIELDS} fields")
    } else {
        format!(
            "is longer than {} MiB (the most one row may take; a real AuditData is a few KB)",
            MAX_RECORD >> 20
        )
    };
    if span.at_eof && span.inner_lines > 0 {
        format!(
            "a quote opened in this row is never closed, so the rest of the file ({lines}, {bytes}) \
             was read as one field, which {what}: none of it was loaded; close the quote (or export \
             again) and import the file again (rows already stored are not added twice)"
        )
    } else if span.at_eof {
        format!(
            "this row {what} and runs to the end of the file ({bytes}) without a line end: it was \
             not loaded"
        )
    } else {
        format!(
            "this row ({lines}, {bytes}) {what}: it was skipped and reading went on at line \
             {next_line}"
        )
    }
}

/// One row's `AuditData` field: the event it holds (`None` for another operation), or why the row is
/// bad.
fn read_audit_data(
    filter: &Filter,
    field: Option<&str>,
    span: Span,
) -> Result<Option<Event>, String> {
    let json = match field.map(str::trim) {
        None | Some("") => return Err("it has no AuditData".to_owned()),
        Some(json) => json,
    };
    match filter.record(json) {
        Ok(event) => Ok(event),
        Err(RecordError::NoId) => Err("its AuditData has no Id".to_owned()),
        Err(RecordError::Bad { reason, .. }) => {
            // A quote left open swallows the lines after it into this field.
            let spans = json.lines().count();
            let hint = if span.at_eof && span.inner_lines > 0 {
                format!(
                    "; a quote opened in this row is never closed, so the rest of the file (lines \
                     {}–{}) was read as one field and none of it was loaded: close the quote and \
                     import the file again",
                    span.line,
                    span.line + span.inner_lines
                )
            } else if spans > 1 {
                format!(
                    "; it runs over {spans} lines, so a quote is probably not closed and the rows on the \
                     next {} lines were read as part of it: fix the file and import it again",
                    spans - 1
                )
            } else {
                String::new()
            };
            Err(format!(
                "its AuditData is not an audit record: {reason}{hint}"
            ))
        }
    }
}

/// Reads one export into the store, [`BATCH`] events (or [`BATCH_BYTES`]) per transaction. `progress` is told how many
/// bytes were read.
///
/// # Errors
/// [`ImportError::Open`], [`ImportError::NotText`] (empty, binary, no header line),
/// [`ImportError::NotAnExport`] (no AuditData column), [`ImportError::Read`] when the file cannot
/// be read on (the events before are stored), [`ImportError::Store`]. Rows that cannot be read are
/// not errors: they are in the report, with their line numbers.
pub fn import_file(
    path: &Path,
    filter: &Filter,
    store: &mut dyn Writer,
    progress: &indicatif::ProgressBar,
) -> Result<FileReport, ImportError> {
    let Opened {
        mut records,
        mut format,
        audit,
    } = open_export(path, progress)?;
    let source = format!(
        "import:{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let (mut rows, mut events_kept, mut events_new) = (0, 0, 0);
    let mut bad_rows = BadRows::default();
    let mut batch: Vec<Event> = Vec::with_capacity(BATCH);
    // AuditData bytes in `batch`.
    let mut held = 0;
    let mut store_batch = |batch: &mut Vec<Event>| -> Result<(), ImportError> {
        events_kept += batch.len() as u64;
        events_new += store.insert_events(batch, &source)? as u64;
        batch.clear();
        Ok(())
    };
    loop {
        let span = match records.next() {
            Ok(Next::End) => break,
            Ok(Next::Record(span)) => span,
            Ok(Next::TooLong {
                span,
                bytes,
                fields,
                only_nul,
            }) => {
                rows += 1;
                let next_line = records.line();
                bad_rows.push(span.line, || {
                    too_long(span, bytes, fields, only_nul, next_line)
                });
                continue;
            }
            Err(e) => {
                // What was read before the failure is kept.
                store_batch(&mut batch)?;
                return Err(read_error(path, records.line(), &e));
            }
        };
        // Bytes, not text: a stray byte in another column must not cost the row its AuditData.
        if records.fields().all(|f| f.trim_ascii().is_empty()) {
            continue;
        }
        rows += 1;
        let result = if records.fields().any(|f| f.contains(&0)) {
            Err(
                "it holds NUL bytes: the file is damaged here (a crash or a full disk leaves \
                 zero-filled regions it did not write); the rows around it were read; export the \
                 audit search again and import it (rows already stored are not added twice)"
                    .to_owned(),
            )
        } else {
            let field = records
                .field(audit)
                .map(|f| decode(&mut format, f, span.line, path));
            read_audit_data(filter, field.as_deref(), span)
        };
        match result {
            Ok(Some(event)) => {
                held += event.raw.len();
                batch.push(event);
            }
            Ok(None) => {}
            Err(reason) => bad_rows.push(span.line, || reason),
        }
        if batch.len() == BATCH || held >= BATCH_BYTES {
            store_batch(&mut batch)?;
            held = 0;
        }
    }
    store_batch(&mut batch)?;
    if format.ansi_line_count > ANSI_LINES_SHOWN as u64 {
        tracing::warn!(
            "{}: {} lines in all were not UTF-8 and were read as Windows-1252 (ANSI), the first on \
             line {}",
            path.display(),
            format.ansi_line_count,
            format.ansi_lines.first().copied().unwrap_or_default()
        );
    }
    Ok(FileReport {
        file: path.display().to_string(),
        shape: shape(&format.columns),
        format,
        rows,
        events_kept,
        events_new,
        bad_rows: bad_rows.kept,
        bad_row_count: bad_rows.count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_rows_past_the_first_thousand_are_counted_not_kept() {
        let mut bad = BadRows::default();
        for line in 1..=50_000 {
            bad.push(line, || format!("row {line}"));
        }
        assert_eq!(bad.count, 50_000);
        assert_eq!(bad.kept.len(), BAD_ROWS_KEPT);
        assert_eq!(bad.kept[999].line, 1_000);
    }

    #[test]
    fn the_separator_is_told_from_the_header_outside_quotes() {
        assert_eq!(
            detect_separator(b"CreationDate,UserIds,Operations,AuditData"),
            b','
        );
        assert_eq!(
            detect_separator(b"CreationDate;UserIds;Operations;AuditData"),
            b';'
        );
        assert_eq!(detect_separator(b"\"A;B\",\"Audit Data\""), b',');
        assert_eq!(detect_separator(b"\"A,B\";\"AuditData\""), b';');
        assert_eq!(detect_separator(b"CreationDate\tAuditData"), b'\t');
        // No AuditData anywhere: the most frequent, for the refusal's message.
        assert_eq!(detect_separator(b"a;b;c,d"), b';');
    }

    #[test]
    fn a_refused_header_is_never_quoted_beyond_its_column_names() {
        let cols = |c: &[&str]| c.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        // A key, a setting: one field, not quoted.
        let one = header_preview(&cols(&["Sup3rSecretValue0123456789"]));
        assert!(!one.contains("Sup3r"), "{one}");
        let setting = header_preview(&cols(&["client_secret = \"abc~def.ghi\""]));
        assert!(!setting.contains("abc"), "{setting}");
        // Fields that are no column names (digits, '=', '~', quotes, long) are `…`.
        let mixed = header_preview(&cols(&[
            "CreationDate",
            "client_secret=Q8~x.y_z",
            "tok3nValue",
            "UserIds",
        ]));
        assert_eq!(mixed, "4 fields: CreationDate,…,…,UserIds");
        let many = header_preview(&cols(&["A"; 12]));
        assert_eq!(many, "12 fields: A,A,A,A,A,A,A,A,…");
    }

    #[test]
    fn excel_sep_lines_are_read() {
        assert_eq!(sep_line(b"sep=;"), Some(b';'));
        assert_eq!(sep_line(b"SEP=,"), Some(b','));
        assert_eq!(sep_line(b"\"sep=;\""), Some(b';'));
        assert_eq!(sep_line(b"sep=\t"), Some(b'\t'));
        assert_eq!(sep_line(b"sep=;;;"), Some(b';'));
        assert_eq!(sep_line(b"sep="), None);
        assert_eq!(sep_line(b"sep=ab"), None);
        assert_eq!(sep_line(b"CreationDate,AuditData"), None);
    }
}
