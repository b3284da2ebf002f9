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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use super::Admin;
use crate::address::Address;
use crate::core::ledger::{Count, Tally};
use crate::message::{Message, Poison};
use crate::process::ledger_page::{LedgerPage, Outgoing, Progress, ring_bytes};

/// What a process handed to the admin itself, as dead letters, from its rings: so that the
/// admin never returns it a second time when the process ends before letting it go there.
#[derive(Debug, Default)]
pub(super) struct HandedOn {
    /// Out ring copies, by `(conn, seq)`.
    pub(super) copies: HashSet<(u64, u64)>,
    /// Queue ring entries, by position.
    pub(super) queued: HashSet<u64>,
}

/// How long the admin remembers how far an ended process took its connections.
const REMEMBER_FINAL: Duration = Duration::from_secs(60);

/// How often orphans are checked against their receivers' pages.
pub(super) const ORPHAN_CHECK: Duration = Duration::from_millis(5);

/// A message whose sender ended after writing it and before its receiver took it.
struct Orphan {
    from: Address,
    seq: u64,
    msg: Message,
}

/// Orphans by receiver and connection: each receiver's page is read once per connection, not
/// once per message (a sender can leave hundreds of thousands).
#[derive(Default)]
pub(super) struct Orphans(HashMap<(Address, u64), Vec<Orphan>>);

impl Orphans {
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
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
    /// The process at `address` has ended: settle what its rings hold. `handed_on` lists what
    /// it had already handed on as dead letters itself.
    pub(super) fn settle_rings(&mut self, address: &Address, handed_on: &HandedOn) {
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
        page.unsettled(|u| {
            if !handed_on.queued.contains(&u.at) {
                queued.push(u)
            }
        });
        // By connection, in ring order within each.
        let mut outgoing: BTreeMap<(u32, u64), Vec<Outgoing>> = BTreeMap::new();
        page.outgoing(|o| {
            if !handed_on.copies.contains(&(o.conn, o.seq)) {
                outgoing.entry((o.peer, o.conn)).or_default().push(o);
            }
        });
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
        for ((peer, conn), sent) in outgoing {
            self.settle_outgoing(address, &page, peer, conn, sent);
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
        let ask = msg.ask;
        let poison = Poison {
            original: msg,
            details: format!("actor {address} died while handling it"),
            possibly_handled: true,
        };
        // It answers the ask its message was part of.
        match Message::new(&poison).map(|mut p| {
            p.ask = ask;
            p
        }) {
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

    /// What the ended process `from` had sent on one connection and its receiver had not
    /// taken (when it last looked): hand each on, or let it wait for its receiver.
    fn settle_outgoing(
        &mut self,
        from: &Address,
        page: &LedgerPage,
        peer: u32,
        conn: u64,
        sent: Vec<Outgoing>,
    ) {
        let peer = page.peer(peer).filter(|p| p.conn == conn);
        let to = peer.as_ref().and_then(|p| {
            std::str::from_utf8(&p.to)
                .ok()
                .and_then(|t| t.parse::<Address>().ok())
        });
        let (Some(peer), Some(to)) = (peer, to) else {
            log::error!(
                "{from} left {} messages to an unreadable receiver in its out ring; they are dropped",
                sent.len()
            );
            for _ in &sent {
                self.ledger.count(Count::Dropped);
            }
            return;
        };
        let receiver = self.receiver(&to, conn);
        let mut waiting = Vec::new();
        for o in sent {
            let Ok(msg) = Message::decode_frame_body(&o.body) else {
                log::error!("{from} left an unreadable message in its out ring; it is dropped");
                self.ledger.count(Count::Dropped);
                continue;
            };
            match receiver {
                Receiver::Live(Some(p)) if p.taken >= o.seq => {}
                // Never written: it can never reach the receiver.
                Receiver::Live(_) if o.seq > peer.written => {
                    self.dead_letter(to.clone(), from.clone(), msg)
                }
                _ => waiting.push(Orphan {
                    from: from.clone(),
                    seq: o.seq,
                    msg,
                }),
            }
        }
        if !waiting.is_empty() {
            self.orphans
                .0
                .entry((to, conn))
                .or_default()
                .extend(waiting);
        }
    }

    /// See whether the receivers of orphans have taken them, or ended.
    pub(super) fn check_orphans(&mut self) {
        for ((to, conn), mut waiting) in std::mem::take(&mut self.orphans.0) {
            let (taken, gone) = match self.receiver(&to, conn) {
                // Having read the connection to its end (or refused it), what the receiver
                // has not taken it never will.
                Receiver::Live(Some(p)) => (p.taken, p.closed || p.refused_after.is_some()),
                Receiver::Live(None) => (0, false),
                Receiver::Ended(taken) => (taken.unwrap_or(0), true),
            };
            waiting.retain(|o| o.seq > taken);
            if gone {
                for o in waiting {
                    self.dead_letter(to.clone(), o.from, o.msg);
                }
            } else if !waiting.is_empty() {
                self.orphans.0.insert((to, conn), waiting);
            }
        }
    }

    /// Where the receiver at `to` stands with connection `conn`.
    fn receiver(&mut self, to: &Address, conn: u64) -> Receiver {
        let progress = |page: &LedgerPage| page.find(conn).map(|s| page.progress(s));
        if !to.is_beside(&self.me) {
            // On another member: the gateway's slot for the stream says how far its receiver
            // took it (not found: the gateway has not read the stream's hello yet).
            return Receiver::Live(
                self.convention
                    .as_ref()
                    .and_then(|c| c.gateway_progress(conn)),
            );
        }
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
