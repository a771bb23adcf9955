//! Any command line: the POP3 parser turns it into a command (unknown and invalid input
//! are commands too) without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    let _ = postcell_pop3::command::parse(line);
});
