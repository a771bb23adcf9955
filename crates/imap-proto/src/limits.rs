//! Bounds on what one command may make the reader hold or do.

/// Limits the reader enforces before it allocates or recurses.
///
/// The defaults suit an authenticated session; a session may lower them before
/// authentication (a `LOGIN` has no use for a 64 MiB literal) with
/// [`CommandReader::set_limits`](crate::CommandReader::set_limits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest command text, counting every line of the command but not literal data
    /// (the measure RFC 7162 section 4 uses). Also the most that string literals (a
    /// password, a search string: every literal but APPEND's message) may hold in one
    /// command, together. Default 64 KiB.
    pub max_line: usize,
    /// Largest literal: the APPEND message (`{n}` or `~{n}`). Default 64 MiB.
    pub max_literal: u64,
    /// Most literals in one command. The reader checks the command so far at each
    /// literal, so this also bounds that work. Default 100.
    pub max_literals: usize,
    /// Deepest nesting of parenthesised lists, `NOT` and `OR`. Default 16.
    pub max_nesting: usize,
    /// Most search keys in one SEARCH, nested keys included. Default 1,000.
    pub max_search_keys: usize,
    /// Most ranges (`1:5` or `7`) in one sequence set. Default 10,000.
    pub max_sequence_ranges: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line: 64 * 1024,
            max_literal: 64 * 1024 * 1024,
            max_literals: 100,
            max_nesting: 16,
            max_search_keys: 1_000,
            max_sequence_ranges: 10_000,
        }
    }
}

/// Whether the session has enabled UTF-8 (`ENABLE UTF8=ACCEPT` or `ENABLE IMAP4rev2`).
///
/// Off, mailbox names on the wire are modified UTF-7 (RFC 3501 section 5.1.3) and
/// responses never put 8-bit bytes in a quoted string; on, both are UTF-8 (RFC 6855,
/// RFC 9051 section 5.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Utf8Mode {
    #[default]
    Off,
    On,
}

/// How the reader treats non-synchronizing literals `{n+}` (RFC 7888).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum NonSyncLiterals {
    /// LITERAL-, part of IMAP4rev2: `{n+}` only up to 4096 octets; a larger one is
    /// refused (`BAD [TOOBIG]`) and its bytes are skipped.
    #[default]
    LiteralMinus,
    /// LITERAL+: `{n+}` of any size up to [`Limits::max_literal`].
    LiteralPlus,
}

/// The largest non-synchronizing literal LITERAL- allows (RFC 7888 section 4).
pub const LITERAL_MINUS_MAX: u64 = 4096;
