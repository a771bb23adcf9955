//! Feeds arbitrary bytes to the IMAP command reader in arbitrary chunks.
//!
//! Checks, for every input:
//! - nothing panics;
//! - the chunking does not matter: the commands, continuation requests and errors are
//!   the same whether the bytes arrive at once or in pieces;
//! - every error is answerable (its text has no CR or LF, its tag is a valid tag) and
//!   the reader resynchronises after it: once the bad command's remains are flushed, a
//!   following `Z9 NOOP` is read as a command.

#![no_main]

use libfuzzer_sys::fuzz_target;
use postcell_imap_proto::{
    CommandBody, CommandReader, Limits, NonSyncLiterals, ParseError, Progress, Utf8Mode,
};

/// Small limits, so that the fuzzer reaches every one of them.
fn limits() -> Limits {
    Limits {
        max_line: 256,
        max_literal: 1024,
        max_literals: 8,
        max_nesting: 6,
        max_search_keys: 40,
        max_sequence_ranges: 20,
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

/// Everything the reader has to say until it needs more bytes.
fn drain(reader: &mut CommandReader, out: &mut Vec<Result<Progress, ParseError>>) {
    loop {
        let result = reader.read_command();
        if let Err(error) = &result {
            check_error(error);
        }
        if result == Ok(Progress::NeedMore) {
            return;
        }
        out.push(result);
    }
}

fn check_error(error: &ParseError) {
    assert!(!error.message.is_empty());
    assert!(!error.message.contains(['\r', '\n']), "{error:?}");
    if let Some(tag) = &error.tag {
        assert!(
            !tag.is_empty() && !tag.contains([' ', '\r', '\n', '+', '(', '{', '*', '"']),
            "{error:?}"
        );
    }
    let reply = error.status_response().to_bytes(Utf8Mode::Off);
    assert!(reply.ends_with(b"\r\n"));
    assert_eq!(
        reply.iter().filter(|&&b| b == b'\n').count(),
        1,
        "{reply:?}"
    );
}

/// The largest literal size announced anywhere in `input` (0 if none).
fn largest_announcement(input: &[u8]) -> u64 {
    let mut largest = 0;
    for (i, _) in input.iter().enumerate().filter(|(_, b)| **b == b'{') {
        let rest = input.get(i + 1..).unwrap_or_default();
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            continue;
        }
        let value = std::str::from_utf8(&rest[..digits])
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        largest = largest.max(value);
    }
    largest
}

fuzz_target!(|data: &[u8]| {
    let [settings, chunk_seed, input @ ..] = data else {
        return;
    };

    // All at once.
    let mut whole = reader(*settings);
    whole.feed(input);
    let mut expected = Vec::new();
    drain(&mut whole, &mut expected);

    // In pieces of 1 to 16 octets, chosen by a little generator seeded from the input.
    let mut chunked = reader(*settings);
    let mut actual = Vec::new();
    let mut state = u32::from(*chunk_seed) | 1;
    let mut rest = input;
    while !rest.is_empty() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = (((state >> 16) % 16) as usize + 1).min(rest.len());
        let (piece, tail) = rest.split_at(n);
        chunked.feed(piece);
        drain(&mut chunked, &mut actual);
        rest = tail;
    }
    assert_eq!(actual, expected, "chunking changed the outcome");

    // Resynchronisation: flush any literal or line in progress, then a command must be
    // read. Only when no announced literal is larger than the flush.
    if largest_announcement(input) > 4096 {
        return;
    }
    let mut flush = vec![b'x'; 8192];
    flush.extend_from_slice(b"\r\nZ9 NOOP\r\n");
    let mut after = Vec::new();
    whole.feed(&flush);
    drain(&mut whole, &mut after);
    let last = after
        .iter()
        .rev()
        .find(|r| !matches!(r, Ok(Progress::NeedContinuation { .. })));
    match last {
        Some(Ok(Progress::Command(command))) => {
            assert_eq!(
                (command.tag.as_str(), &command.body),
                ("Z9", &CommandBody::Noop)
            );
        }
        other => panic!("no resynchronisation: {other:?}"),
    }
    assert_eq!(whole.buffered(), 0);
});
