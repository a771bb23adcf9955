//! Postcell's benchmark tools (not part of the test suite): the SMTP load
//! generator `smtp-load`, the IMAP load generator `imap-load`, and what they
//! share (message generation, latency summaries, a description of the
//! machine, measurements of server processes, a server's Prometheus metrics).
//!
//! Every tool sends load to loopback addresses only, and every load loop is
//! bounded in count and in time.

pub mod imap;
pub mod loopback;
pub mod machine;
pub mod maildir;
pub mod message;
pub mod metrics;
pub mod pace;
pub mod pop3;
pub mod process;
pub mod smtp;
pub mod stats;
