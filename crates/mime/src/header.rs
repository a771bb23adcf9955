//! The header section of a message or of a MIME part, as octets: where it ends, and its
//! fields one by one (RFC 5322 section 2.2), without decoding anything.

/// Where the header section that starts at `start` ends: just after the empty line that
/// closes it, so the returned offset is where the body starts.
///
/// A line that is neither a field (`name:`), nor a folded continuation, nor empty ends the
/// header section without an empty line, as Python's `email` package and most servers do:
/// that line is the first line of the body. A section with no empty line at all runs to
/// `end` (a message that is only a header). `start == result` means the entity has no
/// header at all.
pub(crate) fn section_end(raw: &[u8], start: usize, end: usize) -> usize {
    let end = end.min(raw.len());
    let mut line_start = start.min(end);
    while line_start < end {
        let line_end = line_end(raw, line_start, end);
        let line = raw.get(line_start..line_end).unwrap_or_default();
        if is_empty_line(line) {
            return line_end;
        }
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation && field_name(line).is_none() {
            return line_start;
        }
        line_start = line_end;
    }
    end
}

/// The offset just after the line feed of the line that starts at `from`, or `end`.
pub(crate) fn line_end(raw: &[u8], from: usize, end: usize) -> usize {
    raw.get(from..end)
        .and_then(|rest| rest.iter().position(|&byte| byte == b'\n'))
        .map_or(end, |at| from + at + 1)
}

fn is_empty_line(line: &[u8]) -> bool {
    matches!(line, b"\n" | b"\r\n")
}

/// The name of the field that `line` starts, if it starts one: printable ASCII but the
/// colon, then the colon (RFC 5322 `ftext`; the obsolete syntax allows blanks before it).
fn field_name(line: &[u8]) -> Option<&[u8]> {
    let colon = line.iter().position(|&byte| byte == b':')?;
    let name = line.get(..colon)?;
    let name = trim_end_blanks(name);
    (!name.is_empty()
        && name
            .iter()
            .all(|&byte| (33..=126).contains(&byte) && byte != b':'))
    .then_some(name)
}

/// One header field: its name and its value as they appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field<'a> {
    /// The field name, without the colon; `None` for lines that belong to no field (a
    /// folded line at the very start of a header section).
    pub name: Option<&'a [u8]>,
    /// What follows the colon, folds included, without the final line break.
    pub value: &'a [u8],
    /// The whole field with its final line break, as HEADER.FIELDS copies it.
    pub raw: &'a [u8],
}

impl Field<'_> {
    /// Whether the field is called `name`, compared without ASCII case.
    pub fn is(&self, name: &str) -> bool {
        self.name
            .is_some_and(|own| own.eq_ignore_ascii_case(name.as_bytes()))
    }
}

/// The fields of a header section (`header` is the section itself, empty line included or
/// not), in order.
pub(crate) fn fields(header: &[u8]) -> Fields<'_> {
    Fields { header, at: 0 }
}

pub(crate) struct Fields<'a> {
    header: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        let header = self.header;
        let start = self.at;
        if start >= header.len() {
            return None;
        }
        let first_end = line_end(header, start, header.len());
        let first = header.get(start..first_end)?;
        if is_empty_line(first) {
            self.at = header.len();
            return None;
        }
        let mut end = first_end;
        while end < header.len() && matches!(header.get(end), Some(b' ' | b'\t')) {
            end = line_end(header, end, header.len());
        }
        self.at = end;
        let raw = header.get(start..end)?;
        let name = field_name(first);
        let value_start = match name {
            Some(_) => first
                .iter()
                .position(|&byte| byte == b':')
                .map_or(0, |at| at + 1),
            None => 0,
        };
        let value = raw.get(value_start..).unwrap_or_default();
        Some(Field {
            name,
            value: trim_line_break(value),
            raw,
        })
    }
}

/// The first field called `name` in `header`.
pub(crate) fn first<'a>(header: &'a [u8], name: &str) -> Option<Field<'a>> {
    fields(header).find(|field| field.is(name))
}

/// A field value without its folds (the line breaks are removed, the blanks after them
/// kept, RFC 5322 section 2.2.3) and without blanks at either end.
pub(crate) fn unfold(value: &[u8]) -> Vec<u8> {
    let unfolded: Vec<u8> = value
        .iter()
        .copied()
        .filter(|&byte| byte != b'\r' && byte != b'\n')
        .collect();
    trim_blanks(&unfolded).to_vec()
}

/// The empty line that closes a header section (`\r\n`, or `\n` in a message stored with
/// bare line feeds), if the section has one.
pub(crate) fn empty_line(header: &[u8]) -> Option<&[u8]> {
    let body = header.strip_suffix(b"\n")?;
    let last_line_start = body
        .iter()
        .rposition(|&byte| byte == b'\n')
        .map_or(0, |at| at + 1);
    let last_line = header.get(last_line_start..)?;
    is_empty_line(last_line).then_some(last_line)
}

fn trim_line_break(value: &[u8]) -> &[u8] {
    let value = value.strip_suffix(b"\n").unwrap_or(value);
    value.strip_suffix(b"\r").unwrap_or(value)
}

pub(crate) fn trim_blanks(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .unwrap_or(value.len());
    trim_end_blanks(value.get(start..).unwrap_or_default())
}

fn trim_end_blanks(value: &[u8]) -> &[u8] {
    let end = value
        .iter()
        .rposition(|byte| !byte.is_ascii_whitespace())
        .map_or(0, |at| at + 1);
    value.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_ends_after_the_empty_line() {
        let raw = b"Subject: a\r\n b\r\nTo: x\r\n\r\nbody";
        assert_eq!(section_end(raw, 0, raw.len()), raw.len() - 4);
        let raw = b"Subject: a\n\nbody";
        assert_eq!(section_end(raw, 0, raw.len()), 12);
    }

    #[test]
    fn a_header_without_an_empty_line_runs_to_the_end() {
        let raw = b"Subject: a\r\nTo: x\r\n";
        assert_eq!(section_end(raw, 0, raw.len()), raw.len());
        let raw = b"Subject: a";
        assert_eq!(section_end(raw, 0, raw.len()), raw.len());
    }

    #[test]
    fn a_line_that_is_not_a_field_starts_the_body() {
        let raw = b"Subject: a\r\nthis is text\r\n";
        assert_eq!(section_end(raw, 0, raw.len()), 12);
        let raw = b"\x00\x01 binary";
        assert_eq!(section_end(raw, 0, raw.len()), 0);
    }

    #[test]
    fn fields_keep_their_folds_and_line_breaks() {
        let header = b"Subject: a\r\n b\r\nTo : x\r\n\r\n";
        let all: Vec<_> = fields(header).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].name, Some(&b"Subject"[..]));
        assert_eq!(all[0].value, b" a\r\n b");
        assert_eq!(all[0].raw, b"Subject: a\r\n b\r\n");
        assert_eq!(all[1].name, Some(&b"To"[..]));
        assert!(all[1].is("to"));
        assert_eq!(unfold(all[0].value), b"a b");
        assert_eq!(empty_line(header), Some(&b"\r\n"[..]));
        assert_eq!(empty_line(b"To: x\r\n"), None);
        assert_eq!(empty_line(b"To: x\n\n"), Some(&b"\n"[..]));
    }
}
