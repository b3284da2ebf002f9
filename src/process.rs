//! The process base: an admin process per system, one OS process per actor, Unix sockets
//! between them. `runtime` is the actor process, `admin` the supervisor, `endpoint` a program
//! attached from outside, `launcher` what a program starts for itself; `conn` and `control`
//! carry frames; `spawn` starts processes.

pub(crate) mod admin;
pub(crate) mod conn;
pub(crate) mod control;
pub(crate) mod convention;
pub(crate) mod endpoint;
pub(crate) mod inbound;
pub(crate) mod launch;
pub(crate) mod launcher;
pub(crate) mod ledger_page;
pub(crate) mod outbox;
pub(crate) mod runtime;
