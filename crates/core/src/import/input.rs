//! What a file is before any CSV is read: its encoding (a byte-order mark; else UTF-8, rows that are
//! not UTF-8 being read as Windows-1252 one by one; ANSI throughout when its start is not UTF-8 and
//! holds no UTF-8 beyond ASCII), or why it is not text at all (empty, only NUL bytes, a binary first
//! line, an archive), and a streaming UTF-16 (and UTF-32) to UTF-8 decoder for the exports of
//! Windows PowerShell 5.1.

use std::borrow::Cow;
use std::io::{self, Read};

use encoding_rs::{CoderResult, Decoder, UTF_16BE, UTF_16LE, WINDOWS_1252};

/// Bytes read from the start of a file to tell what it is (a header and its first rows).
pub(super) const SNIFF: usize = 64 << 10;

/// How the bytes of an export become text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum TextEncoding {
    /// UTF-8, with or without a byte-order mark (Purview's own exports carry one).
    Utf8 {
        /// Whether the file starts with `EF BB BF`.
        bom: bool,
    },
    /// UTF-16 little-endian: Windows PowerShell 5.1's `Export-Csv -Encoding Unicode` and `Out-File`.
    Utf16Le {
        /// Whether the file starts with `FF FE` (else told from its NUL bytes at odd offsets).
        bom: bool,
    },
    /// UTF-16 big-endian.
    Utf16Be {
        /// Whether the file starts with `FE FF`.
        bom: bool,
    },
    /// UTF-32 little-endian with a byte-order mark (Windows PowerShell 5.1's `-Encoding UTF32`).
    Utf32Le,
    /// UTF-32 big-endian with a byte-order mark.
    Utf32Be,
    /// ANSI text (Windows-1252, what Excel and Windows PowerShell 5.1 write by default on a western
    /// Windows): the file's start is not UTF-8 and holds no UTF-8 character beyond ASCII, so it is
    /// read as this throughout, with a warning (a field that is valid UTF-8 is still read as UTF-8:
    /// ASCII reads the same either way, and valid UTF-8 is never turned into mojibake).
    Windows1252,
}

impl std::fmt::Display for TextEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mark = |bom: bool| {
            if bom {
                "with byte-order mark"
            } else {
                "without byte-order mark"
            }
        };
        match *self {
            TextEncoding::Utf8 { bom: true } => write!(f, "UTF-8 with byte-order mark"),
            TextEncoding::Utf8 { bom: false } => write!(f, "UTF-8"),
            TextEncoding::Utf16Le { bom } => write!(f, "UTF-16 LE {}", mark(bom)),
            TextEncoding::Utf16Be { bom } => write!(f, "UTF-16 BE {}", mark(bom)),
            TextEncoding::Utf32Le => write!(f, "UTF-32 LE with byte-order mark"),
            TextEncoding::Utf32Be => write!(f, "UTF-32 BE with byte-order mark"),
            TextEncoding::Windows1252 => write!(f, "Windows-1252 (ANSI, not UTF-8)"),
        }
    }
}

impl TextEncoding {
    /// The wide encoding to decode as the file streams, if it is one.
    pub(super) fn wide(self) -> Option<Wide> {
        match self {
            TextEncoding::Utf16Le { .. } => Some(Wide::Utf16(false)),
            TextEncoding::Utf16Be { .. } => Some(Wide::Utf16(true)),
            TextEncoding::Utf32Le => Some(Wide::Utf32(false)),
            TextEncoding::Utf32Be => Some(Wide::Utf32(true)),
            TextEncoding::Utf8 { .. } | TextEncoding::Windows1252 => None,
        }
    }

    /// `bytes` (a field of a UTF-8 or Windows-1252 file, or of the UTF-8 a UTF-16 file was decoded
    /// to) as text, decided per field: UTF-8 when it is valid UTF-8, else Windows-1252 (every byte
    /// is a character there). The flag says whether it was read as Windows-1252. One stray ANSI row
    /// in a UTF-8 file costs nothing to the rows around it.
    pub(super) fn decode(bytes: &[u8]) -> (Cow<'_, str>, bool) {
        match std::str::from_utf8(bytes) {
            Ok(text) => (Cow::Borrowed(text), false),
            Err(_) => (WINDOWS_1252.decode_without_bom_handling(bytes).0, true),
        }
    }
}

/// Tells from the first bytes of a file (up to [`SNIFF`]) how it is encoded and how long its
/// byte-order mark is, or why it is no CSV export at all (a phrase that follows "it").
pub(super) fn sniff(head: &[u8]) -> Result<(TextEncoding, usize), String> {
    const AGAIN: &str = "export the audit search again from Microsoft Purview (or with \
                         Search-UnifiedAuditLog | Export-Csv) and import that .csv file";
    if head.is_empty() {
        return Err(format!(
            "is empty (0 bytes): there is nothing to import; {AGAIN}"
        ));
    }
    if head.starts_with(b"\xEF\xBB\xBF") {
        return Ok((TextEncoding::Utf8 { bom: true }, 3));
    }
    if head.starts_with(b"\xFF\xFE\x00\x00") {
        return Ok((TextEncoding::Utf32Le, 4));
    }
    if head.starts_with(b"\x00\x00\xFE\xFF") {
        return Ok((TextEncoding::Utf32Be, 4));
    }
    if head.starts_with(b"\xFF\xFE") {
        return Ok((TextEncoding::Utf16Le { bom: true }, 2));
    }
    if head.starts_with(b"\xFE\xFF") {
        return Ok((TextEncoding::Utf16Be { bom: true }, 2));
    }
    if let Some(what) = container(head) {
        return Err(what.to_owned());
    }
    if head.iter().all(|b| *b == 0) {
        return Err(format!(
            "holds only NUL bytes (its first {} are all zero): it was never written, or a crash or \
             a full disk cut it short; {AGAIN}",
            size(head.len() as u64)
        ));
    }
    if let Some(encoding) = utf16_without_bom(head) {
        return Ok((encoding, 0));
    }
    if let Some(at) = head.iter().position(|b| *b == 0) {
        // Text with a damaged region (a crash or a full disk zero-fills what was not written) is
        // text: its rows are read and the damaged ones reported by line. A file is binary when its
        // first line is not text, or when little of it looks like text.
        let first_line_end = head.iter().position(|b| matches!(b, b'\n' | b'\r'));
        let text = looks_like_text(head);
        if text && first_line_end.is_none_or(|end| end >= at) {
            return Err(format!(
                "is damaged at its start: its first line holds NUL bytes (from offset {at}), as a \
                 crash or a full disk leaves a region it did not write, so it has no header to \
                 read; {AGAIN}"
            ));
        }
        if !text {
            return Err(format!(
                "is a binary file (a NUL byte at offset {at}), not a CSV export (UTF-16 or UTF-32 \
                 text is read when it starts with a byte-order mark); {AGAIN}"
            ));
        }
    }
    Ok((utf8_or_ansi(head, head.len() == SNIFF), 0))
}

/// Whether the bytes that are not NUL are text: at most 1 in 100 is another control character (a
/// CSV export has none but tab and the line ends; a binary format has them everywhere).
fn looks_like_text(head: &[u8]) -> bool {
    let (mut bytes, mut control) = (0usize, 0usize);
    for &b in head.iter().filter(|b| **b != 0) {
        bytes += 1;
        if (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C)) || b == 0x7F {
            control += 1;
        }
    }
    control * 100 <= bytes
}

/// UTF-8, unless the start of the file is not valid UTF-8 and holds no UTF-8 character beyond ASCII
/// at all (then it is ANSI throughout). A start that is mostly UTF-8 with a stray ANSI row is UTF-8:
/// such rows are decoded one by one ([`TextEncoding::decode`]). `cut`: the bytes end where the
/// sniff stopped, so a character cut there is not a fault.
fn utf8_or_ansi(head: &[u8], cut: bool) -> TextEncoding {
    let (mut wide_chars, mut invalid) = (0usize, 0usize);
    let mut chunks = head.utf8_chunks().peekable();
    while let Some(chunk) = chunks.next() {
        wide_chars += chunk.valid().chars().filter(|c| !c.is_ascii()).count();
        let bad = chunk.invalid();
        // A character cut where the sniff stopped is no fault.
        let cut_char = cut && bad.len() < 4 && chunks.peek().is_none();
        if !bad.is_empty() && !cut_char {
            invalid += 1;
        }
    }
    if invalid > 0 && wide_chars == 0 {
        TextEncoding::Windows1252
    } else {
        TextEncoding::Utf8 { bom: false }
    }
}

/// Files of other kinds that are imported by mistake, by their first bytes.
fn container(head: &[u8]) -> Option<&'static str> {
    const KINDS: [(&[u8], &str); 10] = [
        (
            b"PK\x03\x04",
            "is a ZIP archive (an Excel .xlsx workbook is one), not a CSV file: open it in Excel and \
             save it as CSV, or unzip it and import the .csv inside",
        ),
        (
            b"\x1F\x8B",
            "is gzip-compressed: decompress it (gunzip) and import the .csv inside",
        ),
        (
            b"\xD0\xCF\x11\xE0",
            "is an Excel 97-2003 workbook (.xls), not a CSV file: open it in Excel and save it as CSV",
        ),
        (
            b"SQLite format 3\x00",
            "is an SQLite database (perhaps auditsync's own), not an audit log export",
        ),
        (b"%PDF", "is a PDF document, not an audit log export"),
        (
            b"BZh",
            "is bzip2-compressed: decompress it (bunzip2) and import the .csv inside",
        ),
        (
            b"\xFD7zXZ\x00",
            "is xz-compressed: decompress it (unxz) and import the .csv inside",
        ),
        (
            b"\x28\xB5\x2F\xFD",
            "is zstd-compressed: decompress it (unzstd) and import the .csv inside",
        ),
        (
            b"7z\xBC\xAF\x27\x1C",
            "is a 7-Zip archive: extract it and import the .csv inside",
        ),
        (
            b"Rar!\x1A\x07",
            "is a RAR archive: extract it and import the .csv inside",
        ),
    ];
    KINDS
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|(_, what)| *what)
}

/// UTF-16 without a byte-order mark: text that is mostly ASCII has a NUL in every other byte.
fn utf16_without_bom(head: &[u8]) -> Option<TextEncoding> {
    let pairs: Vec<&[u8]> = head[..head.len().min(4096)].chunks_exact(2).collect();
    if pairs.len() < 4 {
        return None;
    }
    let zeros = |i: usize| pairs.iter().filter(|p| p[i] == 0).count();
    let (even, odd) = (zeros(0), zeros(1));
    let n = pairs.len();
    if odd * 2 >= n && even * 20 <= n {
        Some(TextEncoding::Utf16Le { bom: false })
    } else if even * 2 >= n && odd * 20 <= n {
        Some(TextEncoding::Utf16Be { bom: false })
    } else {
        None
    }
}

/// A byte count for people: "812 bytes", "64 KiB", "17.0 MiB".
pub(super) fn size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} bytes"),
        1024..1_048_576 => format!("{} KiB", bytes / 1024),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

/// The wide encodings, decoded to UTF-8 as they stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wide {
    /// UTF-16, big-endian when true (through `encoding_rs`).
    Utf16(bool),
    /// UTF-32, big-endian when true (`encoding_rs`, like the WHATWG standard, has no UTF-32; it is
    /// one code point per 4 bytes).
    Utf32(bool),
}

/// UTF-16 or UTF-32 (the byte-order mark already read past) decoded to UTF-8 as it is read, a
/// buffer at a time: the file is never held whole. A lone surrogate or a value that is no
/// character becomes U+FFFD.
pub(super) struct Transcode<R> {
    inner: R,
    wide: Wide,
    decoder: Decoder,
    raw: Box<[u8]>,
    raw_at: usize,
    raw_end: usize,
    raw_eof: bool,
    out: Box<[u8]>,
    out_at: usize,
    out_end: usize,
    finished: bool,
}

impl<R: Read> Transcode<R> {
    /// Decodes `inner` from `wide`.
    pub(super) fn new(inner: R, wide: Wide) -> Self {
        let encoding = if wide == Wide::Utf16(true) {
            UTF_16BE
        } else {
            UTF_16LE
        };
        Transcode {
            inner,
            wide,
            decoder: encoding.new_decoder_without_bom_handling(),
            raw: vec![0; 32 << 10].into_boxed_slice(),
            raw_at: 0,
            raw_end: 0,
            raw_eof: false,
            // A UTF-16 code unit becomes at most 3 bytes of UTF-8, a UTF-32 one at most 4.
            out: vec![0; 48 << 10].into_boxed_slice(),
            out_at: 0,
            out_end: 0,
            finished: false,
        }
    }

    /// Reads more when fewer than 4 bytes (one UTF-32 unit) are left.
    fn refill(&mut self) -> io::Result<()> {
        if self.raw_end - self.raw_at >= 4 || self.raw_eof {
            return Ok(());
        }
        self.raw.copy_within(self.raw_at..self.raw_end, 0);
        (self.raw_end, self.raw_at) = (self.raw_end - self.raw_at, 0);
        loop {
            match self.inner.read(&mut self.raw[self.raw_end..]) {
                Ok(n) => {
                    self.raw_end += n;
                    self.raw_eof = n == 0;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Decodes whole UTF-32 units into `out`; at the end, a cut unit becomes U+FFFD.
    fn utf32(&mut self, big_endian: bool) {
        let (mut at, mut written) = (self.raw_at, 0);
        while self.raw_end - at >= 4 && self.out.len() - written >= 4 {
            let unit: [u8; 4] = [
                self.raw[at],
                self.raw[at + 1],
                self.raw[at + 2],
                self.raw[at + 3],
            ];
            let value = if big_endian {
                u32::from_be_bytes(unit)
            } else {
                u32::from_le_bytes(unit)
            };
            let c = char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER);
            written += c.encode_utf8(&mut self.out[written..]).len();
            at += 4;
        }
        if self.raw_eof && self.raw_end - at < 4 {
            if at < self.raw_end {
                written += char::REPLACEMENT_CHARACTER
                    .encode_utf8(&mut self.out[written..])
                    .len();
                at = self.raw_end;
            }
            self.finished = true;
        }
        self.raw_at = at;
        (self.out_at, self.out_end) = (0, written);
    }
}

impl<R: Read> Read for Transcode<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.out_at < self.out_end {
                let n = buf.len().min(self.out_end - self.out_at);
                buf[..n].copy_from_slice(&self.out[self.out_at..self.out_at + n]);
                self.out_at += n;
                return Ok(n);
            }
            if self.finished || buf.is_empty() {
                return Ok(0);
            }
            self.refill()?;
            match self.wide {
                Wide::Utf32(big_endian) => self.utf32(big_endian),
                Wide::Utf16(_) => {
                    let (result, read, written, _) = self.decoder.decode_to_utf8(
                        &self.raw[self.raw_at..self.raw_end],
                        &mut self.out,
                        self.raw_eof,
                    );
                    self.raw_at += read;
                    (self.out_at, self.out_end) = (0, written);
                    self.finished = self.raw_eof && result == CoderResult::InputEmpty;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out one byte per call, so every unit is cut across reads.
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

    #[test]
    fn utf16_and_utf32_are_decoded_whole_however_the_reads_split_them() {
        let text = "Zoë,\"経費 😀\"\r\n";
        for wide in [
            Wide::Utf16(false),
            Wide::Utf16(true),
            Wide::Utf32(false),
            Wide::Utf32(true),
        ] {
            let bytes: Vec<u8> = match wide {
                Wide::Utf16(big_endian) => text
                    .encode_utf16()
                    .flat_map(|u| {
                        if big_endian {
                            u.to_be_bytes()
                        } else {
                            u.to_le_bytes()
                        }
                    })
                    .collect(),
                Wide::Utf32(big_endian) => text
                    .chars()
                    .flat_map(|c| {
                        if big_endian {
                            u32::from(c).to_be_bytes()
                        } else {
                            u32::from(c).to_le_bytes()
                        }
                    })
                    .collect(),
            };
            // One byte per read: code units and surrogate pairs cut in two.
            let mut decoded = Vec::new();
            let mut reader = Transcode::new(Trickle(&bytes), wide);
            let mut one = [0u8; 1];
            while reader.read(&mut one).unwrap() == 1 {
                decoded.push(one[0]);
            }
            assert_eq!(String::from_utf8(decoded).unwrap(), text);
        }
    }

    #[test]
    fn files_are_told_by_their_first_bytes() {
        assert_eq!(
            sniff(b"\xEF\xBB\xBFa,b"),
            Ok((TextEncoding::Utf8 { bom: true }, 3))
        );
        assert_eq!(
            sniff(b"\xFF\xFEa\0"),
            Ok((TextEncoding::Utf16Le { bom: true }, 2))
        );
        assert_eq!(
            sniff(b"\xFE\xFF\0a"),
            Ok((TextEncoding::Utf16Be { bom: true }, 2))
        );
        assert_eq!(
            sniff(b"a\0,\0b\0\r\0\n\0"),
            Ok((TextEncoding::Utf16Le { bom: false }, 0))
        );
        assert_eq!(
            sniff(b"\0a\0,\0b\0\r\0\n"),
            Ok((TextEncoding::Utf16Be { bom: false }, 0))
        );
        assert_eq!(
            sniff("é,b".as_bytes()),
            Ok((TextEncoding::Utf8 { bom: false }, 0))
        );
        assert_eq!(sniff(b"caf\xE9,b\r\n"), Ok((TextEncoding::Windows1252, 0)));
        // Mostly UTF-8 with one ANSI row: UTF-8, the row decoded on its own.
        assert_eq!(
            sniff("Zoë\r\nZoë\r\nCr\u{e8}me".as_bytes()),
            Ok((TextEncoding::Utf8 { bom: false }, 0))
        );
        assert_eq!(
            sniff(b"Zo\xC3\xAB\r\nCr\xE8me\r\n"),
            Ok((TextEncoding::Utf8 { bom: false }, 0))
        );
        // A character cut by the end of the sniffed bytes is still UTF-8.
        let mut cut = vec![b'a'; SNIFF - 1];
        cut.push(0xC3);
        assert_eq!(sniff(&cut), Ok((TextEncoding::Utf8 { bom: false }, 0)));
        assert!(sniff(b"").unwrap_err().contains("empty"));
        assert!(sniff(&[0; 100]).unwrap_err().contains("only NUL bytes"));
        assert!(
            sniff(b"a,b\r\n\0\0\0").is_ok(),
            "text cut short by zeros is read"
        );
        assert!(
            sniff(b"a\0b,c\r\nd")
                .unwrap_err()
                .contains("damaged at its start")
        );
        assert!(
            sniff(b"\x01\x02\0\x03\x04\x05,c\r\nd")
                .unwrap_err()
                .contains("binary file")
        );
        // A header, a row, a NUL-filled region, a row: text with a damaged region.
        let mut damaged = b"CreationDate,AuditData\r\nx,{}\r\n".to_vec();
        damaged.extend([0; 4096]);
        damaged.extend(b"\r\nx,{}\r\n");
        assert_eq!(sniff(&damaged), Ok((TextEncoding::Utf8 { bom: false }, 0)));
        // A first line, then bytes that are no text (control bytes all over): binary.
        let mut binary = b"header\n".to_vec();
        binary.extend((0..4096u32).map(|i| (i % 7) as u8));
        assert!(sniff(&binary).unwrap_err().contains("binary file"));
        assert!(sniff(b"PK\x03\x04rest").unwrap_err().contains("ZIP"));
        assert!(sniff(b"BZh91AY&SY\x01").unwrap_err().contains("bzip2"));
        assert!(sniff(b"\xFD7zXZ\x00\x00").unwrap_err().contains("xz"));
        assert_eq!(
            sniff(b"\xFF\xFE\0\0a\0\0\0"),
            Ok((TextEncoding::Utf32Le, 4))
        );
        assert_eq!(
            sniff(b"\0\0\xFE\xFF\0\0\0a"),
            Ok((TextEncoding::Utf32Be, 4))
        );
    }

    #[test]
    fn each_field_is_utf8_when_valid_else_windows_1252() {
        assert_eq!(
            TextEncoding::decode("é".as_bytes()),
            (Cow::Borrowed("é"), false)
        );
        assert_eq!(
            TextEncoding::decode(b"\xE9\x80"),
            (Cow::Owned("é€".to_owned()), true)
        );
        // A UTF-8 field after an ANSI one is UTF-8 again.
        assert_eq!(
            TextEncoding::decode("Zoë".as_bytes()),
            (Cow::Borrowed("Zoë"), false)
        );
    }
}
