//! Sequence sets: `1:4,7,9:*` (RFC 9051 section 9, `sequence-set`), and the `$` of
//! SEARCHRES (RFC 5182) that names the result of the last `SEARCH RETURN (SAVE)`.
//!
//! ```text
//! C: A1 FETCH 1:4,7,9:* FLAGS
//! C: A2 UID STORE $ +FLAGS (\Seen)
//! S: * VANISHED (EARLIER) 1:3,7
//! ```

use std::fmt;
use std::num::NonZeroU32;
use std::ops::RangeInclusive;

use crate::error::ErrorKind;
use crate::lexer::{Cursor, PResult, fail, parse_u64};

/// `seq-number = nz-number / "*"`: a message number or UID, or `*`, the largest one in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqNumber {
    Value(NonZeroU32),
    /// `*`: the largest number in use in the mailbox.
    Largest,
}

impl SeqNumber {
    fn resolve(self, largest: u32) -> u32 {
        match self {
            SeqNumber::Value(n) => n.get(),
            SeqNumber::Largest => largest,
        }
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeqNumber::Value(n) => write!(f, "{n}"),
            SeqNumber::Largest => f.write_str("*"),
        }
    }
}

/// `seq-range = seq-number ":" seq-number`, or one `seq-number` (then `first == last`).
/// The order does not matter: `5:3` is `3:5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqRange {
    pub first: SeqNumber,
    pub last: SeqNumber,
}

impl SeqRange {
    pub fn single(n: NonZeroU32) -> Self {
        Self {
            first: SeqNumber::Value(n),
            last: SeqNumber::Value(n),
        }
    }

    /// The numbers this range covers when `largest` is the largest number in use, lowest
    /// first. `None` when it names `*` and the mailbox is empty (`largest == 0`).
    pub fn resolve(&self, largest: u32) -> Option<RangeInclusive<u32>> {
        let (a, b) = (self.first.resolve(largest), self.last.resolve(largest));
        if a == 0 || b == 0 {
            return None;
        }
        Some(a.min(b)..=a.max(b))
    }
}

impl fmt::Display for SeqRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}:{}", self.first, self.last)
        }
    }
}

/// A non-empty sequence set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SequenceSet {
    ranges: Vec<SeqRange>,
}

impl SequenceSet {
    /// A set of the given ranges, as given; `None` if there are none.
    pub fn from_ranges(ranges: Vec<SeqRange>) -> Option<Self> {
        (!ranges.is_empty()).then_some(Self { ranges })
    }

    /// The compact set of `numbers` (any order, duplicates and zeros ignored), as a
    /// response carries it: `[7, 1, 2, 3]` is `1:3,7`. `None` if no number is left.
    pub fn from_numbers(numbers: impl IntoIterator<Item = u32>) -> Option<Self> {
        let mut numbers: Vec<u32> = numbers.into_iter().filter(|&n| n != 0).collect();
        numbers.sort_unstable();
        numbers.dedup();
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for n in numbers {
            match ranges.last_mut() {
                Some((_, last)) if last.checked_add(1) == Some(n) => *last = n,
                _ => ranges.push((n, n)),
            }
        }
        let ranges = ranges
            .into_iter()
            .filter_map(|(a, b)| {
                Some(SeqRange {
                    first: SeqNumber::Value(NonZeroU32::new(a)?),
                    last: SeqNumber::Value(NonZeroU32::new(b)?),
                })
            })
            .collect();
        Self::from_ranges(ranges)
    }

    /// The set of `numbers` in their given order, as ESORT's `ALL` carries a sorted
    /// result (RFC 5267 section 3.2): only runs that climb by one become ranges, so
    /// `[7, 8, 9, 2, 1]` is `7:9,2,1`. `None` if no number is left.
    pub fn from_numbers_in_order(numbers: impl IntoIterator<Item = u32>) -> Option<Self> {
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for n in numbers.into_iter().filter(|&n| n != 0) {
            match ranges.last_mut() {
                Some((_, last)) if last.checked_add(1) == Some(n) => *last = n,
                _ => ranges.push((n, n)),
            }
        }
        let ranges = ranges
            .into_iter()
            .filter_map(|(a, b)| {
                Some(SeqRange {
                    first: SeqNumber::Value(NonZeroU32::new(a)?),
                    last: SeqNumber::Value(NonZeroU32::new(b)?),
                })
            })
            .collect();
        Self::from_ranges(ranges)
    }

    pub fn ranges(&self) -> &[SeqRange] {
        &self.ranges
    }

    /// Whether the set uses `*` (QRESYNC's known-uids and seq-match-data may not).
    pub fn has_largest(&self) -> bool {
        self.ranges
            .iter()
            .any(|r| r.first == SeqNumber::Largest || r.last == SeqNumber::Largest)
    }

    /// The numbers the set covers when `largest` is the largest number in use, as sorted,
    /// merged ranges. Numbers above `largest` are kept: for UIDs they simply match
    /// nothing, for message numbers the session answers `BAD` (RFC 9051 section 9).
    pub fn resolve(&self, largest: u32) -> Vec<RangeInclusive<u32>> {
        let mut ranges: Vec<RangeInclusive<u32>> = self
            .ranges
            .iter()
            .filter_map(|r| r.resolve(largest))
            .collect();
        ranges.sort_unstable_by_key(|r| *r.start());
        let mut merged: Vec<RangeInclusive<u32>> = Vec::with_capacity(ranges.len());
        for range in ranges {
            match merged.last_mut() {
                Some(last) if last.end().saturating_add(1) >= *range.start() => {
                    if range.end() > last.end() {
                        *last = *last.start()..=*range.end();
                    }
                }
                _ => merged.push(range),
            }
        }
        merged
    }

    /// Whether `n` is in the set when `largest` is the largest number in use.
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        self.ranges
            .iter()
            .filter_map(|r| r.resolve(largest))
            .any(|r| r.contains(&n))
    }
}

impl fmt::Display for SequenceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, range) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{range}")?;
        }
        Ok(())
    }
}

/// The message set argument of FETCH, STORE, COPY, MOVE, UID EXPUNGE and SEARCH: a
/// sequence set, or `$`, the result saved by the last `SEARCH RETURN (SAVE)` (RFC 5182;
/// like Dovecot, `$` is accepted only as the whole set, not inside `1,$`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MessageSet {
    Set(SequenceSet),
    SavedResult,
}

impl fmt::Display for MessageSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageSet::Set(set) => write!(f, "{set}"),
            MessageSet::SavedResult => f.write_str("$"),
        }
    }
}

fn is_set_byte(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b':' | b',' | b'*' | b'$')
}

fn invalid(message: &'static str) -> crate::lexer::Fail {
    fail(ErrorKind::InvalidSequenceSet, message)
}

/// Reads the token of a sequence set and checks what follows it is a delimiter.
fn set_token<'a>(c: &mut Cursor<'a>) -> PResult<&'a [u8]> {
    let token = c.take_while(is_set_byte);
    if token.is_empty() {
        return Err(invalid("expected a sequence set like 1:4,7"));
    }
    match c.peek() {
        None | Some(b' ' | b')' | b'\r' | b'\n') => Ok(token),
        Some(_) => Err(invalid("invalid sequence set")),
    }
}

/// `sequence-set` or `$`.
pub(crate) fn message_set(c: &mut Cursor<'_>) -> PResult<MessageSet> {
    let token = set_token(c)?;
    if token == b"$" {
        return Ok(MessageSet::SavedResult);
    }
    parse_ranges(token, c.limits.max_sequence_ranges).map(MessageSet::Set)
}

/// `sequence-set` without `$`.
pub(crate) fn sequence_set(c: &mut Cursor<'_>) -> PResult<SequenceSet> {
    let token = set_token(c)?;
    parse_ranges(token, c.limits.max_sequence_ranges)
}

fn parse_number(part: &[u8]) -> PResult<SeqNumber> {
    if part == b"*" {
        return Ok(SeqNumber::Largest);
    }
    if part.is_empty() {
        return Err(invalid(
            "a sequence set has an empty number (as in 1: or 1,,2)",
        ));
    }
    let n = parse_u64(part).ok_or_else(|| invalid("invalid number in a sequence set"))?;
    let n = u32::try_from(n).map_err(|_| invalid("number out of range in a sequence set"))?;
    NonZeroU32::new(n)
        .map(SeqNumber::Value)
        .ok_or_else(|| invalid("0 is not a valid message number or UID"))
}

fn parse_ranges(token: &[u8], max_ranges: usize) -> PResult<SequenceSet> {
    let mut ranges = Vec::new();
    for part in token.split(|&b| b == b',') {
        if ranges.len() >= max_ranges {
            return Err(fail(
                ErrorKind::InvalidSequenceSet,
                format!("a sequence set has more than {max_ranges} ranges"),
            ));
        }
        let mut ends = part.split(|&b| b == b':');
        let first = parse_number(ends.next().unwrap_or_default())?;
        let last = match ends.next() {
            Some(last) => parse_number(last)?,
            None => first,
        };
        if ends.next().is_some() {
            return Err(invalid("a sequence range has more than two ends"));
        }
        ranges.push(SeqRange { first, last });
    }
    SequenceSet::from_ranges(ranges).ok_or_else(|| invalid("expected a sequence set"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{Limits, Utf8Mode};

    fn parse(input: &str) -> PResult<MessageSet> {
        let limits = Limits {
            max_sequence_ranges: 3,
            ..Limits::default()
        };
        let mut c = Cursor::new(input.as_bytes(), &limits, Utf8Mode::Off);
        message_set(&mut c)
    }

    fn kind(result: PResult<MessageSet>) -> Option<ErrorKind> {
        match result {
            Err(crate::lexer::Fail::Error { kind, .. }) => Some(kind),
            _ => None,
        }
    }

    #[test]
    fn ranges_stars_and_reversed_ranges() {
        let MessageSet::Set(set) = parse("1:4,7,9:*").unwrap() else {
            panic!()
        };
        assert_eq!(set.to_string(), "1:4,7,9:*");
        assert!(set.has_largest());
        assert_eq!(set.resolve(12), vec![1..=4, 7..=7, 9..=12]);
        let MessageSet::Set(set) = parse("5:3").unwrap() else {
            panic!()
        };
        assert_eq!(set.resolve(10), vec![3..=5]);
        assert!(set.contains(4, 10));
        assert_eq!(parse("$").unwrap(), MessageSet::SavedResult);
    }

    #[test]
    fn star_past_the_largest_uid_still_names_the_last_message() {
        let MessageSet::Set(set) = parse("559:*").unwrap() else {
            panic!()
        };
        assert_eq!(set.resolve(500), vec![500..=559]);
        assert!(set.resolve(0).is_empty());
    }

    #[test]
    fn invalid_sets() {
        for bad in [
            "0",
            "1:",
            ":1",
            "a",
            "1,,2",
            "1:2:3",
            "1a",
            "4294967296",
            "1,$",
            "",
            "1:0",
        ] {
            assert_eq!(
                kind(parse(bad)),
                Some(ErrorKind::InvalidSequenceSet),
                "{bad}"
            );
        }
        assert_eq!(kind(parse("1,2,3,4")), Some(ErrorKind::InvalidSequenceSet));
        assert!(parse("1,2,3").is_ok());
    }

    #[test]
    fn compaction_for_responses() {
        let set = SequenceSet::from_numbers([7, 3, 1, 2, 2, 0, 9, 8]).unwrap();
        assert_eq!(set.to_string(), "1:3,7:9");
        assert!(SequenceSet::from_numbers([0]).is_none());
        let set = SequenceSet::from_numbers_in_order([7, 8, 9, 2, 1, 3, 4]).unwrap();
        assert_eq!(set.to_string(), "7:9,2,1,3:4");
        assert!(SequenceSet::from_numbers_in_order([]).is_none());
        assert_eq!(
            SequenceSet::from_numbers([u32::MAX, 1])
                .unwrap()
                .to_string(),
            "1,4294967295"
        );
    }
}
