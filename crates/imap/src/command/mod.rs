//! One module per group of commands; each runs its commands against the store and
//! writes the responses. The state machine (`crate::state`) decides which may run.

pub(crate) mod any_state;
pub(crate) mod append;
pub(crate) mod auth;
pub(crate) mod copy;
pub(crate) mod enable;
pub(crate) mod expunge;
pub(crate) mod fetch;
pub(crate) mod idle;
pub(crate) mod list;
pub(crate) mod mailbox;
pub(crate) mod quota;
pub(crate) mod search;
pub(crate) mod select;
pub(crate) mod sort;
pub(crate) mod store;
pub(crate) mod thread;
