//! Any command line: the SMTP parser returns a command or an error, never panics, and
//! an error always maps to a reply.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    if let Err(error) = postcell_smtp::command::parse(line) {
        let _ = error.reply();
    }
});
