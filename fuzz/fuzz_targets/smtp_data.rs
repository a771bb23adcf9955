//! Any DATA stream, split into lines the way the connection splits them: the reader
//! never panics, never ends the message except at a CRLF "." CRLF line, and a message
//! it accepts holds only CRLF line ends and no NUL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postcell_smtp::data::{DataReader, Progress};

fuzz_target!(|stream: &[u8]| {
    let mut reader = DataReader::new(64 * 1024, None);
    let mut rest = stream;
    while let Some(end) = rest.iter().position(|&b| b == b'\n') {
        let line = &rest[..end];
        let (text, bare_lf) = match line.strip_suffix(b"\r") {
            Some(text) => (text, false),
            None => (line, true),
        };
        rest = &rest[end + 1..];
        if reader.push_line(text, bare_lf) == Progress::End {
            assert_eq!(text, b".");
            assert!(!bare_lf);
            break;
        }
    }
    if let Ok(message) = reader.finish() {
        assert!(!message.contains(&0));
        for (i, &b) in message.iter().enumerate() {
            if b == b'\n' {
                assert!(
                    i > 0 && message[i - 1] == b'\r',
                    "bare LF in an accepted message"
                );
            }
        }
    }
});
