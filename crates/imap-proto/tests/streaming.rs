//! Property tests of the reader: how the bytes are cut into pieces never changes what
//! it reads, and it always gets back in step after an error.

use postcell_imap_proto::{
    CommandBody, CommandReader, Limits, NonSyncLiterals, ParseError, Progress, Utf8Mode,
};
use proptest::prelude::*;

/// Small limits, so that the generated inputs reach them.
fn limits() -> Limits {
    Limits {
        max_line: 200,
        max_literal: 300,
        max_literals: 4,
        max_nesting: 4,
        max_search_keys: 12,
        max_sequence_ranges: 6,
    }
}

fn reader(settings: u8) -> CommandReader {
    let mut reader = CommandReader::new(limits());
    if settings & 1 != 0 {
        reader.set_utf8_mode(Utf8Mode::On);
    }
    if settings & 2 != 0 {
        reader.set_non_sync_literals(NonSyncLiterals::LiteralPlus);
    }
    reader
}

fn drain(reader: &mut CommandReader, out: &mut Vec<Result<Progress, ParseError>>) {
    loop {
        match reader.read_command() {
            Ok(Progress::NeedMore) => return,
            other => out.push(other),
        }
    }
}

fn read_whole(input: &[u8], settings: u8) -> Vec<Result<Progress, ParseError>> {
    let mut reader = reader(settings);
    reader.feed(input);
    let mut out = Vec::new();
    drain(&mut reader, &mut out);
    out
}

fn read_in_pieces(input: &[u8], settings: u8, cuts: &[usize]) -> Vec<Result<Progress, ParseError>> {
    let mut reader = reader(settings);
    let mut out = Vec::new();
    let mut rest = input;
    let mut cuts = cuts.iter().cycle();
    while !rest.is_empty() {
        let n = cuts.next().copied().unwrap_or(1).clamp(1, rest.len());
        let (piece, tail) = rest.split_at(n);
        reader.feed(piece);
        drain(&mut reader, &mut out);
        rest = tail;
    }
    out
}

/// The largest literal size announced anywhere in `input`.
fn largest_announcement(input: &[u8]) -> u64 {
    let mut largest = 0;
    for (i, _) in input.iter().enumerate().filter(|(_, b)| **b == b'{') {
        let digits: Vec<u8> = input[i + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .copied()
            .collect();
        let value = String::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        if input.get(i + 1).is_some_and(u8::is_ascii_digit) {
            largest = largest.max(value);
        }
    }
    largest
}

/// Pieces of IMAP traffic, valid and not, with literals of every kind, long lines,
/// hostile searches and plain garbage.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    let commands: Vec<&'static [u8]> = vec![
        b"a1 NOOP\r\n",
        b"a2 LOGIN {4}\r\nfred {6}\r\nsecret\r\n",
        b"a3 LOGIN {4+}\r\nfred {6+}\r\nsecret\r\n",
        b"a4 APPEND INBOX (\\Seen) {10}\r\n0123456789\r\n",
        b"a5 APPEND INBOX ~{3+}\r\na\0b\r\n",
        b"a6 UID FETCH 1:*,5 (FLAGS BODY.PEEK[1.HEADER.FIELDS (FROM)]<0.10>) (CHANGEDSINCE 3 VANISHED)\r\n",
        b"a7 SEARCH RETURN (MIN COUNT) OR (SEEN FLAGGED) NOT TEXT {3+}\r\nabc\r\n",
        b"a8 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (% \"a/*\") RETURN (STATUS (MESSAGES))\r\n",
        b"a9 SELECT INBOX (QRESYNC (1 2 1:9 (1:3 4:6)))\r\n",
        b"b1 STORE 1 (UNCHANGEDSINCE 5) +FLAGS.SILENT (\\Deleted)\r\n",
        b"b2 CREATE \"&kAFP4W4IMH8-\" (USE (\\Sent))\r\n",
        b"b3 APPEND INBOX {5000+}\r\n",
        b"b4 APPEND INBOX {400}\r\n",
        b"b5 FROB {5}\r\n",
        b"b6 LOGIN \"unterminated\r\n",
        b"b7 SEARCH ((((((SEEN))))))\r\n",
        b"b8 SEARCH SEEN SEEN SEEN SEEN SEEN SEEN SEEN SEEN SEEN SEEN SEEN SEEN SEEN SEEN\r\n",
        b"b9 FETCH 0:3 FLAGS\r\n",
        b"c1 LOGIN {300}\r\n",
        b"\r\n",
        b"* NOOP\r\n",
    ];
    let long_line = (150usize..400).prop_map(|n| {
        let mut line = b"c2 SEARCH TEXT ".to_vec();
        line.extend(std::iter::repeat_n(b'x', n));
        line.extend_from_slice(b" {3+}\r\nabc\r\n");
        line
    });
    let noise_alphabet: Vec<u8> = b" {}+~\r\n0123456789()\"\\*:,$A[].<>".to_vec();
    prop_oneof![
        4 => prop::sample::select(commands).prop_map(<[u8]>::to_vec),
        1 => long_line,
        1 => prop::collection::vec(any::<u8>(), 0..24),
        2 => prop::collection::vec(prop::sample::select(noise_alphabet), 0..40),
        1 => (1usize..8).prop_map(|n| vec![b'y'; n]),
    ]
}

fn traffic() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(fragment(), 0..12).prop_map(|fragments| fragments.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn one_byte_at_a_time_reads_the_same_as_all_at_once(input in traffic(), settings in 0u8..4) {
        prop_assert_eq!(read_in_pieces(&input, settings, &[1]), read_whole(&input, settings));
    }

    #[test]
    fn any_cutting_reads_the_same_as_all_at_once(
        input in traffic(),
        settings in 0u8..4,
        cuts in prop::collection::vec(1usize..64, 1..16),
    ) {
        prop_assert_eq!(read_in_pieces(&input, settings, &cuts), read_whole(&input, settings));
    }

    /// Whatever came before, once a pending literal or line is flushed, the next command
    /// is read.
    #[test]
    fn the_reader_always_gets_back_in_step(input in traffic(), settings in 0u8..4) {
        // A refused literal's octets are skipped; the flush below covers up to 6,000.
        prop_assume!(largest_announcement(&input) <= 5000);
        let mut reader = reader(settings);
        reader.feed(&input);
        let mut out = Vec::new();
        drain(&mut reader, &mut out);
        let mut flush = vec![b'x'; 6000];
        flush.extend_from_slice(b"\r\nZ9 NOOP\r\n");
        reader.feed(&flush);
        let mut after = Vec::new();
        drain(&mut reader, &mut after);
        let last = after.into_iter().rev().find(|r| !matches!(r, Ok(Progress::NeedContinuation { .. })));
        match last {
            Some(Ok(Progress::Command(command))) => {
                prop_assert_eq!(command.tag.as_str(), "Z9");
                prop_assert_eq!(command.body, CommandBody::Noop);
            }
            other => prop_assert!(false, "not back in step: {:?}", other),
        }
    }
}

#[test]
fn a_command_split_at_every_position_reads_the_same() {
    let input = b"A1 APPEND Drafts (\\Draft) \"17-Jul-1996 02:44:25 -0700\" {11}\r\nhello world A2 NOOP\r\n";
    // Not a valid pair of commands (A2 is on the APPEND's line), but the same wherever cut.
    let expected = read_whole(input, 0);
    for cut in 1..input.len() {
        let mut reader = reader(0);
        let mut out = Vec::new();
        reader.feed(&input[..cut]);
        drain(&mut reader, &mut out);
        reader.feed(&input[cut..]);
        drain(&mut reader, &mut out);
        assert_eq!(out, expected, "cut at {cut}");
    }
}
