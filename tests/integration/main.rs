//! greenroom's integration tests: each drives the real binaries against its own system in its
//! own temp directory, and checks on the way out that nothing is left behind.

mod bad_input;
mod chaos;
mod cli;
mod convention;
mod custody;
mod flow;
mod fuzz;
mod layout;
mod lifecycle;
mod messaging;
mod regressions;
mod remote;
mod scenarios;
mod seeds;
mod support;
