//! System flags (RFC 9051 section 2.3.2) as bits in `messages.flags`.

pub const SEEN: i64 = 1;
pub const ANSWERED: i64 = 1 << 1;
pub const FLAGGED: i64 = 1 << 2;
pub const DELETED: i64 = 1 << 3;
pub const DRAFT: i64 = 1 << 4;
