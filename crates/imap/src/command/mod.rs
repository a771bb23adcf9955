//! One module per group of commands; each runs its command against the store and
//! writes the responses.

pub(crate) mod append;
pub(crate) mod auth;
pub(crate) mod copy;
pub(crate) mod expunge;
pub(crate) mod fetch;
pub(crate) mod mailbox;
pub(crate) mod search;
pub(crate) mod sort;
pub(crate) mod store;
pub(crate) mod thread;
