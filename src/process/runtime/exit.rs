//! How an actor process ends: on request (what is queued behind the exit comes back as dead
//! letters), or failing to start (what reached it comes back as `Poison`).

use super::*;

impl Runtime {
    /// The handler asked to exit: no new senders get in, every message already sent here that
    /// the handler did not see goes to the dead-letter handler, what was sent is written out,
    /// and the admin hears why. Never returns.
    pub(super) fn exit(mut self, reason: ExitReason, code: i32) -> ! {
        self.close_door();
        self.leave(reason, code)
    }

    /// This actor cannot start: every message already here goes back to its sender as a
    /// `Poison`; messages that arrive later are dead-lettered by their senders. Never returns.
    pub(super) fn fail_start(mut self, error: String) -> ! {
        log::error!("{error}");
        self.close_door();
        while let Some(Queued { env, origin }) = self.queue.pop() {
            stage::refuse(&mut self, env, origin, origin != Origin::Timer, &error);
        }
        self.leave(ExitReason::FailedToStart { error }, 3)
    }

    /// Remove the socket (new senders find no actor and keep their messages) and close the
    /// listener (connections not accepted yet are refused: their senders keep their messages),
    /// then read everything already sent on the streams that were accepted.
    pub(super) fn close_door(&mut self) {
        let _ = std::fs::remove_file(self.cell.me.socket_path());
        self.listener = None;
        self.inbound.read_all(self.poll.registry(), &mut self.queue);
    }

    /// Return every message still queued as a dead letter, write out what was sent, tell the
    /// admin why this process ends, and exit.
    pub(super) fn leave(mut self, reason: ExitReason, code: i32) -> ! {
        self.return_queued();
        {
            let mut outbox = lock(&self.outbox);
            outbox.flush_all(Instant::now() + EXIT_FLUSH);
            // What could not be written, and what receivers that are gone already did not
            // take, comes back now, while this process can still hand it on (later, no one
            // would). What is written, its receivers take from their sockets after this process
            // has gone.
            outbox.abandon_unwritten();
            outbox.settle_ended();
        }
        // What came back meanwhile has no handler left.
        self.carry_out_returns();
        self.return_queued();
        let _ = self.control.post(&Request::Exiting { reason });
        std::process::exit(code)
    }

    /// Hand every queued message (timers aside) to the dead-letter handler: its target, this
    /// actor, will not handle it.
    pub(super) fn return_queued(&mut self) {
        let me = self.cell.me.clone();
        while let Some(Queued { env, origin }) = self.queue.pop() {
            if origin != Origin::Timer {
                // Named by its place in the ring: should this process die before letting it
                // go, the admin knows it was handed on already.
                let from = HandedFrom::QueueRing(origin.ring_at());
                self.control.dead_letter(&me, &env.from, env.msg, from);
                self.inbound.done(origin);
            }
        }
    }
}
