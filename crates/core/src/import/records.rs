//! CSV records read with bounded memory: `csv_core`'s state machine over a fixed input buffer, into
//! a record buffer that grows to [`MAX_RECORD`] and no further. A record past the bound is read to
//! its end (where the state machine, quotes included, says it ends) and dropped, so the rows after
//! it are read as usual; only its size and lines are kept, for the report.

use std::io::{self, Read};

use csv_core::ReadRecordResult;

/// The most one record (one row, all its fields) may take: 16 MiB. A real AuditData is a few KB
/// (a launch record is about 1.5 KB; the largest records of other workloads run to hundreds of KB),
/// and a spreadsheet cell, which the exports are made to open in, holds at most 32,767
/// characters: the bound is 500 times that, so no real row reaches it, while a quote left open or a
/// file without line ends costs at most this much memory, not the whole file.
pub const MAX_RECORD: usize = 16 << 20;

/// The most fields a record may have; real exports have 4 to 10.
pub const MAX_FIELDS: usize = 4_096;

/// The most the first lines (a `sep=` line, a `#TYPE` line, the header) may take each.
pub(super) const MAX_LINE: usize = 1 << 20;

/// Input read per call.
const CHUNK: usize = 64 << 10;

/// What [`Records::next`] found.
#[derive(Debug)]
pub(super) enum Next {
    /// A record within the bounds; its fields are [`Records::field`].
    Record(Span),
    /// A record past [`MAX_RECORD`] or [`MAX_FIELDS`], read to its end and dropped.
    TooLong {
        /// Where it was.
        span: Span,
        /// Its size in bytes (field contents).
        bytes: u64,
        /// Whether it was past [`MAX_FIELDS`] (else past [`MAX_RECORD`]).
        fields: bool,
        /// Whether every byte of it was NUL (a file zero-filled past its end by a crash).
        only_nul: bool,
    },
    /// No record is left.
    End,
}

/// Where a record was in the file.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    /// The line it starts on, from 1.
    pub line: u64,
    /// Line ends inside it (in quoted fields).
    pub inner_lines: u64,
    /// Whether the file ended inside it, before a line end (a quote left open, or no final line end).
    pub at_eof: bool,
}

/// The records of a text stream (UTF-8 or Windows-1252 bytes: the separators, quotes and line ends
/// are ASCII in both).
pub(super) struct Records<R> {
    input: R,
    buf: Vec<u8>,
    at: usize,
    end: usize,
    eof: bool,
    core: csv_core::Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
    fields: usize,
    /// The line of the next unread byte, from 1; `\r\n`, `\n` and a lone `\r` each end a line.
    line: u64,
    /// Whether the last byte counted was `\r` (so a `\n` after it ends no further line).
    after_cr: bool,
    /// Whether the last byte counted ended a line.
    ended_line: bool,
}

impl<R: Read> Records<R> {
    /// Records of `input`, separated by `,` until [`Records::separator`] says otherwise.
    pub(super) fn new(input: R) -> Self {
        Records {
            input,
            buf: vec![0; CHUNK],
            at: 0,
            end: 0,
            eof: false,
            core: csv_core::Reader::new(),
            out: vec![0; 64 << 10],
            ends: vec![0; 64],
            fields: 0,
            line: 1,
            after_cr: false,
            ended_line: false,
        }
    }

    /// Sets the field separator; call before the first [`Records::next`].
    pub(super) fn separator(&mut self, separator: u8) {
        self.core = csv_core::ReaderBuilder::new().delimiter(separator).build();
    }

    /// Whether every byte of the input has been read.
    pub(super) fn exhausted(&self) -> bool {
        self.eof && self.at == self.end
    }

    /// The line of the next unread byte.
    pub(super) fn line(&self) -> u64 {
        self.line
    }

    /// Reads until `want` bytes are buffered or the input ends; false when nothing more came.
    fn fill(&mut self, want: usize) -> io::Result<bool> {
        if self.at > 0 {
            self.buf.copy_within(self.at..self.end, 0);
            (self.end, self.at) = (self.end - self.at, 0);
        }
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        let before = self.end;
        while self.end < want && !self.eof {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end > before)
    }

    /// Counts the line ends in `buf[from..to]`.
    fn count_lines(&mut self, from: usize, to: usize) {
        for &b in &self.buf[from..to] {
            if b == b'\r' || (b == b'\n' && !self.after_cr) {
                self.line += 1;
            }
            self.after_cr = b == b'\r';
        }
        if to > from {
            self.ended_line = matches!(self.buf[to - 1], b'\r' | b'\n');
        }
    }

    /// The next line, without its line end, if it is within [`MAX_LINE`] bytes (`None` when it is
    /// longer). At the end of the input it is empty.
    pub(super) fn peek_line(&mut self) -> io::Result<Option<&[u8]>> {
        loop {
            // Where the line ends (`Some(None)`: past MAX_LINE), or `None` to read on.
            let found = {
                let window = &self.buf[self.at..self.end];
                match window.iter().position(|b| *b == b'\n' || *b == b'\r') {
                    Some(i) if i > MAX_LINE => Some(None),
                    // A `\r` at the buffer's end may have its `\n` still to come: read on first.
                    Some(i) if i + 1 < window.len() || self.eof => Some(Some(i)),
                    None if self.eof => Some(Some(window.len())),
                    None if window.len() > MAX_LINE => Some(None),
                    _ => None,
                }
            };
            if let Some(len) = found {
                return Ok(len.map(|len| &self.buf[self.at..self.at + len]));
            }
            let want = self.end - self.at + CHUNK;
            self.fill(want)?;
        }
    }

    /// Reads past the line [`Records::peek_line`] showed, and its line end.
    pub(super) fn skip_line(&mut self, len: usize) {
        let mut to = self.at + len;
        if self.buf.get(to) == Some(&b'\r') {
            to += 1;
        }
        if to < self.end && self.buf[to] == b'\n' {
            to += 1;
        }
        self.count_lines(self.at, to);
        self.at = to;
    }

    /// Field `i` of the last record read, as bytes.
    pub(super) fn field(&self, i: usize) -> Option<&[u8]> {
        if i >= self.fields {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.out[start..self.ends[i]])
    }

    /// The fields of the last record read.
    pub(super) fn fields(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.fields).filter_map(|i| self.field(i))
    }

    /// Reads past blank lines to the next record's first byte; false at the end of the input.
    fn skip_blank_lines(&mut self) -> io::Result<bool> {
        loop {
            let skip = self.buf[self.at..self.end]
                .iter()
                .take_while(|b| **b == b'\n' || **b == b'\r')
                .count();
            self.count_lines(self.at, self.at + skip);
            self.at += skip;
            if self.at < self.end {
                return Ok(true);
            }
            if !self.fill(CHUNK)? {
                return Ok(false);
            }
        }
    }

    /// The next record, or one past the bounds skipped whole, or the end.
    pub(super) fn next(&mut self) -> io::Result<Next> {
        self.fields = 0;
        if !self.skip_blank_lines()? {
            return Ok(Next::End);
        }
        let line = self.line;
        let (mut nout, mut nend) = (0, 0);
        // Past the bounds: (bytes dropped so far, past MAX_FIELDS, all of them NUL).
        let mut over: Option<(u64, bool, bool)> = None;
        loop {
            if self.at == self.end && !self.eof {
                self.fill(CHUNK)?;
            }
            let input = &self.buf[self.at..self.end];
            let at_eof = input.is_empty();
            let (result, nin, o, e) =
                self.core
                    .read_record(input, &mut self.out[nout..], &mut self.ends[nend..]);
            self.count_lines(self.at, self.at + nin);
            self.at += nin;
            (nout, nend) = (nout + o, nend + e);
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull if self.out.len() < MAX_RECORD => {
                    let len = (self.out.len() * 2).min(MAX_RECORD);
                    self.out.resize(len, 0);
                }
                ReadRecordResult::OutputEndsFull if self.ends.len() < MAX_FIELDS => {
                    let len = (self.ends.len() * 2).min(MAX_FIELDS);
                    self.ends.resize(len, 0);
                }
                ReadRecordResult::OutputFull | ReadRecordResult::OutputEndsFull => {
                    // Dropped: the state machine reads on into the same buffers.
                    let (bytes, many, nul) = over.unwrap_or((0, false, true));
                    if result == ReadRecordResult::OutputFull {
                        let nul = nul && self.out[..nout].iter().all(|b| *b == 0);
                        over = Some((bytes + nout as u64, many, nul));
                        nout = 0;
                    } else {
                        over = Some((bytes, true, nul));
                        nend = 0;
                    }
                }
                ReadRecordResult::Record => {
                    // The line end that closed the record (or, at the end of the file, the last
                    // byte of a quoted field) starts no line of the record's own.
                    let closed = self.line > line && (!at_eof || self.ended_line);
                    let span = Span {
                        line,
                        inner_lines: self.line - line - u64::from(closed),
                        at_eof,
                    };
                    let Some((bytes, fields, nul)) = over else {
                        self.fields = nend;
                        return Ok(Next::Record(span));
                    };
                    return Ok(Next::TooLong {
                        span,
                        bytes: bytes + nout as u64,
                        fields,
                        only_nul: nul && self.out[..nout].iter().all(|b| *b == 0),
                    });
                }
                ReadRecordResult::End => return Ok(Next::End),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out one byte per call, so every buffer boundary is crossed.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.is_empty()) {
                (Some((b, rest)), false) => {
                    buf[0] = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    /// (line, fields) of every record, or (line, ["<too long>"]).
    fn read_all(mut records: Records<impl Read>) -> Vec<(u64, Vec<String>)> {
        let mut out = Vec::new();
        loop {
            match records.next().unwrap() {
                Next::End => return out,
                Next::Record(span) => out.push((
                    span.line,
                    records
                        .fields()
                        .map(|f| String::from_utf8_lossy(f).into_owned())
                        .collect(),
                )),
                Next::TooLong { span, .. } => out.push((span.line, vec!["<too long>".into()])),
            }
        }
    }

    #[test]
    fn lines_are_counted_across_every_buffer_boundary_for_crlf_lf_and_cr() {
        let text = b"h1,h2\r\na,\"x\r\ny\"\r\n\r\nb,c\nd,e\rf,g";
        let want = vec![
            (1, vec!["h1".to_owned(), "h2".to_owned()]),
            (2, vec!["a".to_owned(), "x\r\ny".to_owned()]),
            (5, vec!["b".to_owned(), "c".to_owned()]),
            (6, vec!["d".to_owned(), "e".to_owned()]),
            (7, vec!["f".to_owned(), "g".to_owned()]),
        ];
        assert_eq!(read_all(Records::new(&text[..])), want);
        assert_eq!(read_all(Records::new(Trickle(text))), want);
    }

    #[test]
    fn a_preamble_line_is_peeked_and_skipped_whatever_its_line_end() {
        for text in [&b"sep=;\r\na;b\r\n"[..], b"sep=;\na;b\n", b"sep=;\ra;b\r"] {
            let mut records = Records::new(Trickle(text));
            assert_eq!(records.peek_line().unwrap(), Some(&b"sep=;"[..]));
            records.skip_line(5);
            records.separator(b';');
            assert_eq!(
                read_all(records),
                vec![(2, vec!["a".to_owned(), "b".to_owned()])]
            );
        }
    }

    #[test]
    fn a_record_past_the_bound_is_dropped_and_the_next_one_read() {
        let mut text = b"a,\"".to_vec();
        text.resize(MAX_RECORD + 10, b'x');
        text.extend(b"\n\",b\nc,d\n");
        assert_eq!(
            read_all(Records::new(&text[..])),
            vec![
                (1, vec!["<too long>".to_owned()]),
                (3, vec!["c".to_owned(), "d".to_owned()])
            ]
        );
    }
}
