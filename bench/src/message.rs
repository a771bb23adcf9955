//! RFC 5322 test messages of a chosen size, and SMTP dot-stuffing.

use chrono::{DateTime, TimeDelta, Utc};

/// Length of a padding line, without its CRLF.
pub const LINE_LEN: usize = 76;
const LINE_WITH_CRLF: usize = LINE_LEN + 2;

/// Builds the messages of one run. Each message is `size` bytes (headers,
/// blank line and body, CRLF line endings) unless the headers alone are
/// already longer than that.
pub struct MessageFactory {
    size: usize,
    from: String,
    run_id: String,
    id_domain: String,
    total: u64,
    /// When set, message `i` is dated `date + i seconds`, so that building a
    /// message twice gives the same bytes; otherwise each is dated now.
    date: Option<DateTime<Utc>>,
}

impl MessageFactory {
    pub fn new(size: usize, from: &str, run_id: &str, id_domain: &str, total: u64) -> Self {
        MessageFactory {
            size,
            from: from.to_string(),
            run_id: run_id.to_string(),
            id_domain: id_domain.to_string(),
            total,
            date: None,
        }
    }

    /// Dates message `i` at `base + i seconds` instead of now.
    pub fn with_date(mut self, base: DateTime<Utc>) -> Self {
        self.date = Some(base);
        self
    }

    /// The message as written in RFC 5322 form (not dot-stuffed).
    pub fn build(&self, index: u64, to: &str) -> Vec<u8> {
        let headers = format!(
            "Date: {date}\r\n\
             From: <{from}>\r\n\
             To: <{to}>\r\n\
             Subject: postcell-bench message {n} of {total}\r\n\
             Message-ID: <{run}.{index}@{domain}>\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=us-ascii\r\n\
             Content-Transfer-Encoding: 7bit\r\n\
             \r\n",
            date = self.date_of(index).to_rfc2822(),
            from = self.from,
            n = index + 1,
            total = self.total,
            run = self.run_id,
            domain = self.id_domain,
        );
        let mut out = Vec::with_capacity(self.size.max(headers.len() + LINE_WITH_CRLF));
        out.extend_from_slice(headers.as_bytes());
        let body_len = self.size.saturating_sub(headers.len());
        push_body(&mut out, body_len, index);
        out
    }

    fn date_of(&self, index: u64) -> DateTime<Utc> {
        match self.date {
            Some(base) => {
                let offset = TimeDelta::try_seconds(i64::try_from(index).unwrap_or(i64::MAX))
                    .unwrap_or(TimeDelta::zero());
                base.checked_add_signed(offset).unwrap_or(base)
            }
            None => Utc::now(),
        }
    }
}

/// Appends `len` bytes of body made of lines of at most 76 characters,
/// each ending in CRLF. The body is never empty: below 3 bytes one short
/// line is written (the message is then slightly larger than asked).
fn push_body(out: &mut Vec<u8>, len: usize, seed: u64) {
    let full = len / LINE_WITH_CRLF;
    let rem = len % LINE_WITH_CRLF;
    // Line lengths (without CRLF) that add up to `len` with their CRLFs.
    let mut lines: Vec<usize> = vec![LINE_LEN; full];
    match rem {
        0 => {}
        1 | 2 if full > 0 => {
            // Split the last full line in two so the total stays exact.
            lines.pop();
            lines.push(38);
            lines.push(LINE_LEN - 38 - 2 + rem);
        }
        1 | 2 => lines.push(1),
        r => lines.push(r - 2),
    }
    if lines.is_empty() {
        lines.push(1);
    }
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ";
    for (n, &line_len) in lines.iter().enumerate() {
        let start = out.len();
        let mut k = (seed as usize)
            .wrapping_mul(7)
            .wrapping_add(n.wrapping_mul(13));
        for _ in 0..line_len {
            out.push(ALPHABET[k % ALPHABET.len()]);
            k = k.wrapping_add(1);
        }
        // Every 16th line starts with a dot, so dot-stuffing is exercised.
        if n % 16 == 5 {
            out[start] = b'.';
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// The DATA payload for `message`: lines starting with '.' get an extra '.'
/// (RFC 5321 4.5.2), a final CRLF is added if missing, then ".\r\n".
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 512 + 8);
    let mut at_line_start = true;
    for &b in message {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Parses "4k", "64k", "1m", "4096", "4kb", "4KiB" into bytes.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix("ib")
        .or_else(|| t.strip_suffix('b'))
        .unwrap_or(&t);
    let (digits, mult) = if let Some(d) = t.strip_suffix('k') {
        (d, 1024)
    } else if let Some(d) = t.strip_suffix('m') {
        (d, 1024 * 1024)
    } else {
        (t, 1)
    };
    let n: usize = digits
        .trim()
        .parse()
        .map_err(|_| format!("bad size {s:?}: use e.g. 4k, 64k, 1m or a byte count"))?;
    let bytes = n
        .checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))?;
    if !(64..=64 * 1024 * 1024).contains(&bytes) {
        return Err(format!("size {s:?} must be between 64 bytes and 64m"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert!(parse_size("x").is_err());
        assert!(parse_size("1").is_err());
    }

    #[test]
    fn messages_have_exact_size_and_short_lines() {
        for size in [1000, 4096, 4097, 4098, 4099, 65536, 100_000] {
            let f = MessageFactory::new(size, "a@b.test", "run", "b.test", 10);
            for i in [0, 7, 123_456] {
                let m = f.build(i, "user1@bench.test");
                assert_eq!(m.len(), size, "size {size} index {i}");
                assert!(m.ends_with(b"\r\n"));
                let text = std::str::from_utf8(&m).unwrap();
                let (head, body) = text.split_once("\r\n\r\n").unwrap();
                assert!(head.contains(&format!("Message-ID: <run.{i}@b.test>")));
                assert!(head.contains("To: <user1@bench.test>"));
                for line in body.split("\r\n") {
                    assert!(line.len() <= LINE_LEN, "{line:?}");
                    assert!(!line.contains('\r') && !line.contains('\n'));
                }
            }
        }
    }

    #[test]
    fn fixed_dates_repeat() {
        let base = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let f = MessageFactory::new(4096, "a@b.test", "run", "b.test", 10).with_date(base);
        assert_eq!(f.build(3, "u@b.test"), f.build(3, "u@b.test"));
        let text = String::from_utf8(f.build(3, "u@b.test")).unwrap();
        assert!(
            text.starts_with("Date: Fri, 2 Jan 2026 03:04:08 +0000\r\n"),
            "{text}"
        );
        assert!(text.contains("Subject: postcell-bench message 4 of 10\r\n"));
    }

    #[test]
    fn stuffing() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuff(b".\r\n"), b"..\r\n.\r\n");
        assert_eq!(dot_stuff(b"x"), b"x\r\n.\r\n");
        let f = MessageFactory::new(4096, "a@b.test", "run", "b.test", 1);
        let m = f.build(0, "u@b.test");
        let s = dot_stuff(&m);
        assert!(s.windows(4).any(|w| w == b"\r\n.."));
        assert_eq!(s.windows(5).filter(|w| w == b"\r\n.\r\n").count(), 1);
    }
}
