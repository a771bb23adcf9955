//! Test harness shared by the Postcell crates.
//!
//! * [`pg`]: a throwaway PostgreSQL server built from the system binaries,
//!   either per test ([`TempPostgres::start`]) or one per test binary
//!   ([`pg::shared`]) with a fresh database per test.
//! * [`ports`]: picking free TCP ports and waiting for a listener.
//! * [`cell`]: a cell of `postcell serve` nodes on 127.0.0.2, .3, .4... sharing one
//!   private PostgreSQL and one blob folder;
//! * [`process`]: child processes that cannot outlive a test, Python helpers
//!   and checks for external tools.
//! * [`postfix`]: a private Postfix on a loopback port, the remote MTA of relay tests.
//!
//! External tools (PostgreSQL, python3, swaks, openssl, postfix) are installed
//! by `scripts/test`. Tests never skip when a tool is missing: they panic
//! with a message naming the tool and how to install it, because a silently
//! skipped interop test looks exactly like a passing one.

pub mod cell;
pub mod pg;
pub mod ports;
pub mod postfix;
pub mod process;

pub use pg::{TempPostgres, shared as shared_postgres};
pub use ports::{free_port, wait_for_port};
pub use postfix::{PostfixOptions, TempPostfix};
pub use process::{ChildGuard, expect_tool, find_tool, python3, require_tool, run_python_file};
