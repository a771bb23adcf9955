//! RFC 5322 test messages of a chosen size, and SMTP dot-stuffing.
//!
//! With [`MessageFactory::with_search_words`], one message in
//! [`SEARCH_PERIOD`] carries the English word [`SearchWord::English`] in its
//! plain-text body and another one in [`SEARCH_PERIOD`] the Japanese word
//! [`SearchWord::Japanese`] in a base64-encoded UTF-8 body, at indexes fixed
//! by [`SearchWord::of_message`], so that a body SEARCH has a known answer.

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
    /// Whether some messages carry the search words (see [`SearchWord`]).
    search_words: bool,
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
            search_words: false,
        }
    }

    /// Puts the search words into the messages [`SearchWord::of_message`] names.
    pub fn with_search_words(mut self) -> Self {
        self.search_words = true;
        self
    }

    /// Dates message `i` at `base + i seconds` instead of now.
    pub fn with_date(mut self, base: DateTime<Utc>) -> Self {
        self.date = Some(base);
        self
    }

    /// The message as written in RFC 5322 form (not dot-stuffed).
    pub fn build(&self, index: u64, to: &str) -> Vec<u8> {
        let word = if self.search_words {
            SearchWord::of_message(index)
        } else {
            None
        };
        if word == Some(SearchWord::Japanese) {
            return self.build_japanese(index, to);
        }
        let headers = self.headers(index, to, "text/plain; charset=us-ascii", "7bit");
        let mut out = Vec::with_capacity(self.size.max(headers.len() + LINE_WITH_CRLF));
        out.extend_from_slice(headers.as_bytes());
        let body_len = self.size.saturating_sub(headers.len());
        push_body(&mut out, body_len, index);
        if word == Some(SearchWord::English) {
            put_word(&mut out, headers.len(), SearchWord::English.word());
        }
        out
    }

    fn headers(&self, index: u64, to: &str, content_type: &str, encoding: &str) -> String {
        format!(
            "Date: {date}\r\n\
             From: <{from}>\r\n\
             To: <{to}>\r\n\
             Subject: postcell-bench message {n} of {total}\r\n\
             Message-ID: <{run}.{index}@{domain}>\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: {content_type}\r\n\
             Content-Transfer-Encoding: {encoding}\r\n\
             \r\n",
            date = self.date_of(index).to_rfc2822(),
            from = self.from,
            n = index + 1,
            total = self.total,
            run = self.run_id,
            domain = self.id_domain,
        )
    }

    /// A message whose body is UTF-8 text holding the Japanese word, base64
    /// encoded in lines of at most 76 characters, `size` bytes in all.
    ///
    /// Base64 text comes in groups of 4 characters and every line ends in
    /// CRLF, so an encoded body always has an even length: when the headers
    /// leave an odd number of bytes, the Content-Type is written without the
    /// (optional) space after its `;`. Lines are whole groups of 4, so that
    /// no decoder has to join a group across a line break.
    fn build_japanese(&self, index: u64, to: &str) -> Vec<u8> {
        let mut headers = self.headers(index, to, "text/plain; charset=UTF-8", "base64");
        if self.size.saturating_sub(headers.len()) % 2 == 1 {
            headers = self.headers(index, to, "text/plain;charset=UTF-8", "base64");
        }
        let body_len = self.size.saturating_sub(headers.len());
        let shortest = base64_len(JAPANESE_TEXT.len()).next_multiple_of(4);
        // The most base64 characters that fit with a CRLF per line of 76.
        let mut chars: usize = 0;
        while chars + 4 + 2 * (chars + 4).div_ceil(LINE_LEN) <= body_len {
            chars += 4;
        }
        // The body is too small for the sentence: the message is then larger than asked.
        let chars = chars.max(shortest);
        let lines = (body_len.saturating_sub(chars) / 2).clamp(chars.div_ceil(LINE_LEN), chars / 4);
        let mut text = Vec::with_capacity(chars / 4 * 3);
        text.extend_from_slice(JAPANESE_TEXT.as_bytes());
        let filler = (chars / 4 * 3).saturating_sub(text.len());
        if filler >= 3 {
            push_body(&mut text, filler, index);
        } else {
            text.resize(text.len() + filler, b' ');
        }
        let encoded = base64(&text);
        let mut out = Vec::with_capacity(headers.len() + encoded.len() + 2 * lines);
        out.extend_from_slice(headers.as_bytes());
        let mut rest = encoded.as_slice();
        for left in (1..=lines).rev() {
            // As long as possible, leaving at least one group for every later line.
            let take = LINE_LEN
                .min(rest.len().saturating_sub(4 * (left - 1)))
                .max(4)
                .min(rest.len());
            let (line, tail) = rest.split_at(take);
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
            rest = tail;
        }
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

/// One message in this many carries each search word.
pub const SEARCH_PERIOD: u64 = 100;

/// The decoded text of a message with the Japanese word ("The meeting
/// tomorrow is in meeting room 2."), followed by ASCII filler lines.
const JAPANESE_TEXT: &str = "明日の打ち合わせは第二会議室で行います。\r\n";

/// The words a body SEARCH looks for. Neither can appear in the filler: its
/// lines are runs of consecutive characters of one alphabet (`...xyzAB...`),
/// so no "xy" is ever followed by "l", whatever the case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchWord {
    /// "xylophone", in the plain-text (7bit) body.
    English,
    /// "会議室" (meeting room), in a UTF-8 body encoded in base64.
    Japanese,
}

impl SearchWord {
    pub const ALL: [SearchWord; 2] = [SearchWord::English, SearchWord::Japanese];

    pub fn word(self) -> &'static str {
        match self {
            SearchWord::English => "xylophone",
            SearchWord::Japanese => "会議室",
        }
    }

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            SearchWord::English => "english",
            SearchWord::Japanese => "japanese",
        }
    }

    /// The index (0-based) of the first message that carries the word; the
    /// next ones follow every [`SEARCH_PERIOD`] messages.
    fn first(self) -> u64 {
        match self {
            SearchWord::English => 41,
            SearchWord::Japanese => 91,
        }
    }

    /// The word message `index` (0-based, as in [`MessageFactory::build`]) carries.
    pub fn of_message(index: u64) -> Option<SearchWord> {
        SearchWord::ALL
            .into_iter()
            .find(|w| index % SEARCH_PERIOD == w.first())
    }

    /// How many of the messages 0..`messages` of a mailbox carry the word:
    /// what a body SEARCH for it must find.
    pub fn expected_hits(self, messages: u64) -> u64 {
        if messages <= self.first() {
            0
        } else {
            (messages - self.first() - 1) / SEARCH_PERIOD + 1
        }
    }
}

/// Writes ` word ` over the middle of the first body line long enough for it
/// (the body starts at `body_start`); without such a line, appends the word on
/// a line of its own (the message is then larger than asked).
fn put_word(out: &mut Vec<u8>, body_start: usize, word: &str) {
    let word = format!(" {word} ");
    let mut start = body_start;
    while start < out.len() {
        let end = out[start..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(out.len(), |p| start + p);
        if end - start >= word.len() + 4 {
            let at = start + (end - start - word.len()) / 2;
            out[at..at + word.len()].copy_from_slice(word.as_bytes());
            return;
        }
        start = end + 2;
    }
    out.extend_from_slice(word.trim().as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Characters of the base64 encoding of `len` bytes, padding included.
fn base64_len(len: usize) -> usize {
    len.div_ceil(3) * 4
}

/// Base64 (RFC 4648 section 4, with `=` padding), without line breaks.
fn base64(data: &[u8]) -> Vec<u8> {
    const DIGITS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(base64_len(data.len()));
    for group in data.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (k, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if k <= group.len() {
                out.push(DIGITS[((n >> shift) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    out
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

    /// Base64 decoding for the tests (line breaks skipped).
    fn unbase64(text: &[u8]) -> Vec<u8> {
        let value = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        };
        let digits: Vec<u8> = text
            .iter()
            .copied()
            .filter(|c| !matches!(c, b'\r' | b'\n' | b'='))
            .collect();
        let mut out = Vec::new();
        for group in digits.chunks(4) {
            let mut n = 0u32;
            for (k, &c) in group.iter().enumerate() {
                n |= u32::from(value(c)) << (18 - 6 * k);
            }
            for k in 0..group.len() - 1 {
                out.push((n >> (16 - 8 * k)) as u8);
            }
        }
        out
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn base64_vectors() {
        // RFC 4648 section 10.
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded.as_bytes());
            assert_eq!(unbase64(encoded.as_bytes()), plain.as_bytes());
            assert_eq!(base64_len(plain.len()), encoded.len());
        }
    }

    #[test]
    fn expected_hits_count_the_marked_messages() {
        for word in SearchWord::ALL {
            for messages in (0..1000).chain([99_999, 100_000, 100_001, 123_456]) {
                let marked = (0..messages)
                    .filter(|&i| SearchWord::of_message(i) == Some(word))
                    .count() as u64;
                assert_eq!(word.expected_hits(messages), marked, "{word:?} {messages}");
            }
        }
        assert_eq!(SearchWord::English.expected_hits(100_000), 1000);
        assert_eq!(SearchWord::Japanese.expected_hits(100_000), 1000);
        assert_eq!(SearchWord::English.expected_hits(2000), 20);
        assert_eq!(SearchWord::English.expected_hits(41), 0);
        assert_eq!(SearchWord::English.expected_hits(42), 1);
        assert_eq!(SearchWord::Japanese.expected_hits(92), 1);
        // Two different sets.
        assert!(
            (0..1000).all(|i| !(SearchWord::of_message(i) == Some(SearchWord::English)
                && SearchWord::of_message(i) == Some(SearchWord::Japanese)))
        );
    }

    #[test]
    fn search_words_only_where_expected_and_sizes_exact() {
        let en = SearchWord::English.word().as_bytes();
        let ja = SearchWord::Japanese.word().as_bytes();
        // Content-Type with and without the space after ';' (both parities).
        let mut spaced = [0, 0];
        for size in [1000, 4096, 4097, 4098, 4099, 65536, 100_000] {
            let f =
                MessageFactory::new(size, "a@b.test", "run", "b.test", 100_000).with_search_words();
            for i in [
                0, 1, 40, 41, 42, 90, 91, 141, 191, 991, 9_941, 9_991, 99_991,
            ] {
                let m = f.build(i, "big@bench.test");
                assert_eq!(m.len(), size, "size {size} index {i}");
                let lower = m.to_ascii_lowercase();
                let text = std::str::from_utf8(&m).unwrap();
                let (head, body) = text.split_once("\r\n\r\n").unwrap();
                for line in body.split_terminator("\r\n") {
                    assert!(line.len() <= LINE_LEN && !line.is_empty(), "{line:?}");
                }
                assert!(m.ends_with(b"\r\n"));
                match SearchWord::of_message(i) {
                    Some(SearchWord::English) => {
                        assert!(contains(body.as_bytes(), b" xylophone "), "{i}");
                        assert!(head.contains("charset=us-ascii"));
                        assert!(!contains(&m, ja));
                    }
                    Some(SearchWord::Japanese) => {
                        let with_space =
                            head.contains("Content-Type: text/plain; charset=UTF-8\r\n");
                        assert!(
                            with_space
                                || head.contains("Content-Type: text/plain;charset=UTF-8\r\n"),
                            "{head}"
                        );
                        spaced[usize::from(with_space)] += 1;
                        assert!(head.ends_with("\r\nContent-Transfer-Encoding: base64"));
                        for line in body.split_terminator("\r\n") {
                            assert_eq!(line.len() % 4, 0, "{line:?}");
                        }
                        let decoded = unbase64(body.as_bytes());
                        let decoded = String::from_utf8(decoded).unwrap();
                        assert!(decoded.starts_with(JAPANESE_TEXT));
                        assert!(contains(decoded.as_bytes(), ja));
                        assert!(!contains(&decoded.to_ascii_lowercase().into_bytes(), en));
                        assert!(!contains(&m, ja), "the raw message is base64");
                        assert!(!contains(&lower, en));
                    }
                    None => {
                        assert!(!contains(&lower, en), "{i}");
                        assert!(!contains(&m, ja), "{i}");
                    }
                }
            }
        }
        assert!(spaced[0] > 0 && spaced[1] > 0, "{spaced:?}");
        // Without the option, no message carries a word.
        let f = MessageFactory::new(4096, "a@b.test", "run", "b.test", 100);
        assert!(!contains(&f.build(41, "u@b.test").to_ascii_lowercase(), en));
        let plain = f.build(91, "u@b.test");
        assert!(
            String::from_utf8(plain)
                .unwrap()
                .contains("charset=us-ascii")
        );
    }

    #[test]
    fn small_bodies_still_carry_the_words() {
        for size in [64, 300, 400, 450] {
            let f = MessageFactory::new(size, "a@b.test", "run", "b.test", 100).with_search_words();
            let m = f.build(41, "u@b.test");
            assert!(contains(&m.to_ascii_lowercase(), b"xylophone"), "{size}");
            let m = f.build(91, "u@b.test");
            let text = String::from_utf8(m).unwrap();
            let (_, body) = text.split_once("\r\n\r\n").unwrap();
            let decoded = String::from_utf8(unbase64(body.as_bytes())).unwrap();
            assert!(decoded.contains("会議室"), "{size}");
        }
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
