//! Shutting a system down: every actor is asked to exit, then SIGTERM, then SIGKILL after
//! deadlines, then the system directory is removed and whoever asked is answered.

use std::time::{Duration, Instant};

use crate::sys::spawn::Signal;
use mio::Token;

use super::Admin;
use crate::message::{ExitRequest, Message};
use crate::protocol::Response;
use crate::sys::spawn;

#[derive(PartialEq, Eq, Clone, Copy, Debug)]
enum Phase {
    Asked,
    Terminated,
    Killed,
}

/// A shutdown under way.
pub(super) struct Shutdown {
    phase: Phase,
    pub(super) deadline: Instant,
    waiters: Vec<Token>,
}

impl Admin {
    pub(super) fn begin_shutdown(&mut self, waiter: Option<Token>) {
        if let Some(s) = self.shutdown.as_mut() {
            s.waiters.extend(waiter);
            return;
        }
        log::info!("shutting down {} actors", self.actors.len());
        // Spares exit when their control socket closes; actors get an ExitRequest.
        for id in std::mem::take(&mut self.spares).into_values() {
            self.close_actor_control(id);
        }
        let ids: Vec<u64> = self
            .actors
            .iter()
            .filter(|(_, a)| !a.spare)
            .map(|(&id, _)| id)
            .collect();
        let exit = Message::new(&ExitRequest::default()).expect("ExitRequest encodes");
        for id in ids {
            let to = self.me.sibling(id);
            self.send(&to, exit.clone());
        }
        self.shutdown = Some(Shutdown {
            phase: Phase::Asked,
            deadline: Instant::now() + self.cfg.exit_grace,
            waiters: waiter.into_iter().collect(),
        });
    }

    /// Move shutdown along. Returns true when the admin may exit.
    pub(super) fn shutdown_progress(&mut self) -> bool {
        let Some(s) = self.shutdown.as_mut() else {
            return false;
        };
        if self.actors.is_empty() {
            return true;
        }
        if Instant::now() < s.deadline {
            return false;
        }
        let (signal, next, wait) = match s.phase {
            Phase::Asked => (Signal::SIGTERM, Phase::Terminated, Duration::from_secs(1)),
            Phase::Terminated => (Signal::SIGKILL, Phase::Killed, Duration::from_secs(5)),
            Phase::Killed => {
                log::error!(
                    "{} actor processes did not die after SIGKILL",
                    self.actors.len()
                );
                return true;
            }
        };
        log::warn!(
            "{} actors still running after the deadline; sending {signal}",
            self.actors.len()
        );
        for rec in self.actors.values() {
            spawn::signal(rec.pid, signal);
        }
        s.phase = next;
        s.deadline = Instant::now() + wait;
        false
    }

    /// Remove the system directory and answer whoever asked for the shutdown.
    pub(super) fn finish(&mut self) {
        let waiters = self.shutdown.take().map(|s| s.waiters).unwrap_or_default();
        if let Some(mut c) = self.convention.take() {
            c.leave();
        }
        if let Some(private) = self.private.take() {
            private.remove();
        }
        for token in waiters {
            if let Some(client) = self.clients.get_mut(&token) {
                let _ = client.conn.send(&Response::Ok);
                let _ = client
                    .conn
                    .flush_until(Instant::now() + Duration::from_secs(1));
            }
        }
        log::info!("admin stopped");
    }
}
