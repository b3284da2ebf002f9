//! What the admin does with the messages a process leaves behind when it ends (see
//! `ledger_page` for who keeps a message when):
//!
//! - its queue ring: what it had taken and not settled goes back, the message being handled as
//!   a `Poison` marked possibly handled, the rest as dead letters;
//! - its slots: how far it took each of its connections, remembered for a while, for senders
//!   that end later without having seen it end;
//! - its out ring: what it had sent and no receiver had taken yet. What was never written goes
//!   back at once; what was written waits as an *orphan* until its receiver takes it (then
//!   nothing more is done) or ends (then it goes back too).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::Admin;
use crate::address::Address;
use crate::core::ledger::{Count, Tally};
use crate::message::{Message, Poison};
use crate::process::ledger_page::{LedgerPage, Outgoing, Progress, ring_bytes};

/// How long the admin remembers how far an ended process took its connections.
const REMEMBER_FINAL: Duration = Duration::from_secs(60);

/// How often orphans are checked against their receivers' pages.
pub(super) const ORPHAN_CHECK: Duration = Duration::from_millis(5);

/// A message whose sender ended after writing it and before its receiver took it.
pub(super) struct Orphan {
    from: Address,
    to: Address,
    conn: u64,
    seq: u64,
    msg: Message,
}

/// How far an ended process took each of its connections, by connection number.
pub(super) struct FinalProgress {
    at: Instant,
    taken: HashMap<u64, u64>,
}

/// Where a receiver stands with one connection.
enum Receiver {
    /// Running; its slot for the connection, if it has read the hello.
    Live(Option<Progress>),
    /// Ended; how far it took the connection, if known.
    Ended(Option<u64>),
}

impl Admin {
    /// The process at `address` has ended: settle what its rings hold. `handed_on` lists the
    /// out ring copies it had already handed on as dead letters itself.
    pub(super) fn settle_rings(&mut self, address: &Address, handed_on: &HashSet<(u64, u64)>) {
        let max = ring_bytes(self.cfg.max_frame);
        let page = match LedgerPage::open_whole(&address.ledger_path(), max) {
            Ok(page) => page,
            Err(e) => {
                log::error!("cannot read what {address} left behind: {e}");
                return;
            }
        };
        self.remember_final(address, &page);
        let mut queued = Vec::new();
        page.unsettled(|u| queued.push(u));
        let mut outgoing = Vec::new();
        page.outgoing(|o| outgoing.push(o));
        for u in queued {
            let from = std::str::from_utf8(&u.from)
                .ok()
                .and_then(|t| t.parse::<Address>().ok());
            let (Some(from), Ok(msg)) = (from, Message::decode_frame_body(&u.body)) else {
                log::error!("{address} left an unreadable message in its queue; it is dropped");
                self.ledger.count(Count::Dropped);
                continue;
            };
            self.return_taken(address, from, msg, u.running);
        }
        for o in outgoing {
            if !handed_on.contains(&(o.conn, o.seq)) {
                self.settle_outgoing(address, &page, o);
            }
        }
        // Orphans waiting on this process as their receiver can be settled now.
        self.check_orphans();
    }

    /// A message `address` had taken and not settled goes back: the one whose handler was
    /// running to its sender as a `Poison` marked possibly handled (sent by the admin; a sender
    /// that has ended too, the actor itself among them, gets it as a dead letter), the others
    /// as dead letters.
    fn return_taken(&mut self, address: &Address, from: Address, msg: Message, running: bool) {
        if !running {
            self.dead_letter(address.clone(), from, msg);
            return;
        }
        self.ledger.count(Count::PossiblyHandled);
        let poison = Poison {
            original: msg,
            details: format!("actor {address} died while handling it"),
            possibly_handled: true,
        };
        match Message::new(&poison) {
            // The admin has no handler: its own message comes back as a dead letter.
            Ok(poison) if from == self.me => self.dead_letter(address.clone(), from, poison),
            Ok(poison) => self.send(&from, poison),
            Err(e) => log::error!("could not encode a Poison: {e}"),
        }
    }

    /// Remember how far the ended process at `address` took each of its connections.
    fn remember_final(&mut self, address: &Address, page: &LedgerPage) {
        let now = Instant::now();
        self.finals
            .retain(|_, f| now.duration_since(f.at) < REMEMBER_FINAL);
        let taken = page.final_progress().into_iter().collect();
        self.finals
            .insert(address.clone(), FinalProgress { at: now, taken });
    }

    /// A message the ended process `from` had sent and its receiver had not taken (when it
    /// last looked): hand it on, or wait for its receiver.
    fn settle_outgoing(&mut self, from: &Address, page: &LedgerPage, o: Outgoing) {
        let peer = page.peer(o.peer).filter(|p| p.conn == o.conn);
        let to = peer.as_ref().and_then(|p| {
            std::str::from_utf8(&p.to)
                .ok()
                .and_then(|t| t.parse::<Address>().ok())
        });
        let (Some(peer), Some(to), Ok(msg)) = (peer, to, Message::decode_frame_body(&o.body))
        else {
            log::error!("{from} left an unreadable message in its out ring; it is dropped");
            self.ledger.count(Count::Dropped);
            return;
        };
        let orphan = Orphan {
            from: from.clone(),
            to,
            conn: o.conn,
            seq: o.seq,
            msg,
        };
        match self.receiver(&orphan.to, orphan.conn) {
            Receiver::Live(Some(p)) if p.taken >= orphan.seq => {}
            // Never written: it can never reach the receiver.
            Receiver::Live(_) if orphan.seq > peer.written => self.return_orphan(orphan),
            _ => {
                self.orphans.push(orphan);
                self.check_orphans();
            }
        }
    }

    /// See whether the receivers of orphans have taken them, or ended.
    pub(super) fn check_orphans(&mut self) {
        for orphan in std::mem::take(&mut self.orphans) {
            match self.receiver(&orphan.to, orphan.conn) {
                Receiver::Live(Some(p)) if p.taken >= orphan.seq => {}
                // The receiver has read the connection to its end (or refused it): what it
                // has not taken it never will.
                Receiver::Live(Some(p)) if p.closed || p.refused_after.is_some() => {
                    self.return_orphan(orphan)
                }
                Receiver::Live(_) => self.orphans.push(orphan),
                Receiver::Ended(taken) if taken.is_some_and(|t| t >= orphan.seq) => {}
                Receiver::Ended(_) => self.return_orphan(orphan),
            }
        }
    }

    fn return_orphan(&mut self, o: Orphan) {
        self.dead_letter(o.to, o.from, o.msg);
    }

    /// Where the receiver at `to` stands with connection `conn`.
    fn receiver(&mut self, to: &Address, conn: u64) -> Receiver {
        let progress = |page: &LedgerPage| page.find(conn).map(|s| page.progress(s));
        if to.system_dir() == self.dir {
            if let Some(rec) = self.actors.get(&to.id()) {
                return Receiver::Live(rec.page.as_ref().and_then(progress));
            }
            if let Some(client) = self
                .clients
                .values_mut()
                .find(|c| c.endpoint == Some(to.id()))
            {
                return Receiver::Live(client.page(&self.dir).and_then(progress));
            }
            return Receiver::Ended(
                self.finals
                    .get(to)
                    .map(|f| f.taken.get(&conn).copied().unwrap_or(0)),
            );
        }
        // A receiver of another system on this host: its page tells while it runs.
        match LedgerPage::open(&to.ledger_path()) {
            Ok(page) => Receiver::Live(progress(&page)),
            Err(_) => Receiver::Ended(None),
        }
    }
}
