//! Historic events from Purview audit search exports (coe-flows.md §6, management-api.md §6), beyond
//! the API's 7 days. Three shapes, told apart by the header:
//! - the classic export `CreationDate,UserIds,Operations,AuditData`;
//! - the newer export `RecordId,CreationDate,RecordType,Operation,UserId,AuditData,...` (often with a
//!   UTF-8 byte-order mark);
//! - `Search-UnifiedAuditLog | Export-Csv` output (`"RecordType","CreationDate","UserIds",...`, every
//!   field quoted).
//!
//! All three carry the record as JSON in `AuditData`, which is what is read: its `Id` and
//! `CreationTime`, through the same [`Filter`] as sync, so an imported launch is the same row as a
//! synced one. The file is streamed through a real CSV reader (AuditData holds commas, quotes and
//! doubled quotes; lines end in CRLF), so there is no size limit. A row that cannot be read is
//! reported with its line number and skipped; the rows around it are stored.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::extract::{Filter, RecordError};
use crate::model::Event;
use crate::store::{StoreError, Writer};

/// Events written per transaction.
const BATCH: usize = 1_000;

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
    /// The header has no `AuditData` column (compared without case or spaces).
    #[error(
        "{path} is not an audit log export: its header ({header}) has no AuditData column; export from \
         Microsoft Purview audit search, or with Search-UnifiedAuditLog | Export-Csv"
    )]
    NotAnExport {
        /// The file, as given.
        path: PathBuf,
        /// The header's column names, joined with commas.
        header: String,
    },
    /// The header cannot be read, or reading stopped on an I/O error partway through.
    #[error("cannot read {path} at line {line}: {reason}")]
    Read {
        /// The file, as given.
        path: PathBuf,
        /// The line where reading stopped, from 1 (a `#TYPE` line counts).
        line: u64,
        /// The CSV reader's message.
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
    /// The line the row starts on, from 1 (a `#TYPE` line counts).
    pub line: u64,
    /// Why it cannot be used, for the admin (no AuditData, not an audit record, no `Id`, or the
    /// CSV reader's complaint).
    pub reason: String,
}

/// What one file gave.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileReport {
    /// The file's path, for display.
    pub file: String,
    /// Which export it is, told by the header: "Purview audit search export", "Search-UnifiedAuditLog
    /// export" or "classic Purview audit export".
    pub shape: &'static str,
    /// Data rows read, bad ones included; blank rows are not counted.
    pub rows: u64,
    /// Rows whose record the filter kept, whether or not the store already had them.
    pub events_kept: u64,
    /// Of those, the ones the store did not have yet (an `Id` already stored, from any source, is not
    /// inserted again).
    pub events_new: u64,
    /// The rows that could not be used, in file order; they are skipped, not errors.
    pub bad_rows: Vec<BadRow>,
}

/// The export shapes, by their header.
fn shape(header: &csv::StringRecord) -> &'static str {
    let has = |name: &str| header.iter().any(|h| h.trim().eq_ignore_ascii_case(name));
    if has("RecordId") {
        "Purview audit search export"
    } else if has("ResultIndex") || has("ObjectState") {
        "Search-UnifiedAuditLog export"
    } else {
        "classic Purview audit export"
    }
}

/// An export opened past its preamble: a byte-order mark and a `#TYPE` line are skipped.
struct Opened {
    reader: BufReader<File>,
    /// Lines skipped before the header (the `#TYPE` line).
    skipped: u64,
    /// Whether lines end in CRLF.
    crlf: bool,
}

/// Opens an export and reads past what comes before its header.
fn open_export(path: &Path, progress: &indicatif::ProgressBar) -> Result<Opened, ImportError> {
    let file = File::open(path).map_err(|source| ImportError::Open {
        path: path.to_owned(),
        source,
    })?;
    if let Ok(meta) = file.metadata() {
        progress.set_length(meta.len());
    }
    progress.set_position(0);
    let mut reader = BufReader::with_capacity(1 << 16, file);
    // A UTF-8 byte-order mark would otherwise stick to the first column's name.
    let bom = reader
        .fill_buf()
        .map(|b| b.starts_with(b"\xEF\xBB\xBF"))
        .unwrap_or(false);
    if bom {
        reader.consume(3);
    }
    // Windows PowerShell's Export-Csv without -NoTypeInformation writes a "#TYPE ..." line first.
    let type_line = reader
        .fill_buf()
        .ok()
        .filter(|b| b.starts_with(b"#TYPE"))
        .and_then(|b| b.iter().position(|c| *c == b'\n'));
    if let Some(end) = type_line {
        reader.consume(end + 1);
    }
    // The csv reader numbers the records of a CRLF file one line short (it counts the "\n" of a
    // record's end at the start of the next record); the header line tells which kind the file is.
    let crlf = reader
        .fill_buf()
        .ok()
        .and_then(|b| {
            b.iter()
                .position(|c| *c == b'\n')
                .map(|i| i > 0 && b[i - 1] == b'\r')
        })
        .unwrap_or(false);
    Ok(Opened {
        reader,
        skipped: u64::from(type_line.is_some()),
        crlf,
    })
}

/// The `AuditData` column, whatever its case and spacing ("Audit Data").
fn audit_column(header: &csv::StringRecord) -> Option<usize> {
    header.iter().position(|h| {
        h.chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .eq_ignore_ascii_case("AuditData")
    })
}

/// One row's `AuditData` field: the event it holds (`None` for another operation), or why the row is
/// bad.
fn read_audit_data(filter: &Filter, field: Option<&[u8]>) -> Result<Option<Event>, String> {
    let json = match field.map(|f| std::str::from_utf8(f).map(str::trim)) {
        None | Some(Ok("")) => return Err("it has no AuditData".to_owned()),
        Some(Err(_)) => return Err("its AuditData is not UTF-8 text".to_owned()),
        Some(Ok(json)) => json,
    };
    match filter.record(json) {
        Ok(event) => Ok(event),
        Err(RecordError::NoId) => Err("its AuditData has no Id".to_owned()),
        Err(RecordError::Bad { reason, .. }) => {
            // A quote left open swallows the lines after it into this field.
            let spans = json.lines().count();
            let hint = if spans > 1 {
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

/// Reads one export into the store, [`BATCH`] events per transaction. `progress` is told how many
/// bytes were read.
///
/// # Errors
/// [`ImportError::Open`], [`ImportError::NotAnExport`] (no AuditData column), [`ImportError::Read`]
/// when the file cannot be read on, [`ImportError::Store`]. Rows that cannot be read are not errors:
/// they are in the report, with their line numbers.
pub fn import_file(
    path: &Path,
    filter: &Filter,
    store: &mut dyn Writer,
    progress: &indicatif::ProgressBar,
) -> Result<FileReport, ImportError> {
    let Opened {
        reader,
        skipped,
        crlf,
    } = open_export(path, progress)?;
    let line_of = |p: &csv::Position| p.line() + u64::from(crlf) + skipped;
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(progress.wrap_read(reader));
    let read_err = |line: u64, e: &dyn std::fmt::Display| ImportError::Read {
        path: path.to_owned(),
        line,
        reason: e.to_string(),
    };
    let header = csv
        .headers()
        .map_err(|e| read_err(1 + skipped, &e))?
        .clone();
    let Some(audit) = audit_column(&header) else {
        return Err(ImportError::NotAnExport {
            path: path.to_owned(),
            header: header.iter().collect::<Vec<_>>().join(","),
        });
    };
    let source = format!(
        "import:{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let mut report = FileReport {
        file: path.display().to_string(),
        shape: shape(&header),
        rows: 0,
        events_kept: 0,
        events_new: 0,
        bad_rows: Vec::new(),
    };
    let mut batch: Vec<Event> = Vec::with_capacity(BATCH);
    // Bytes, not text: a stray byte in another column must not cost the row its AuditData.
    let mut row = csv::ByteRecord::new();
    loop {
        let line = line_of(csv.position());
        match csv.read_byte_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {}
            // A row that is not text (or not CSV) is one bad row; the reader goes on at the next line.
            Err(e) if !matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                report.rows += 1;
                report.bad_rows.push(BadRow {
                    line,
                    reason: e.to_string(),
                });
                continue;
            }
            Err(e) => return Err(read_err(line, &e)),
        }
        let line = row.position().map_or(line, line_of);
        if row.iter().all(|f| f.trim_ascii().is_empty()) {
            continue;
        }
        report.rows += 1;
        match read_audit_data(filter, row.get(audit)) {
            Ok(Some(event)) => batch.push(event),
            Ok(None) => {}
            Err(reason) => report.bad_rows.push(BadRow { line, reason }),
        }
        if batch.len() == BATCH {
            report.events_kept += batch.len() as u64;
            report.events_new += store.insert_events(&batch, &source)? as u64;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        report.events_kept += batch.len() as u64;
        report.events_new += store.insert_events(&batch, &source)? as u64;
    }
    Ok(report)
}
