//! The receiving side's reports: how far each local receiver has settled its stream (`Took`),
//! sent when due, and the ends of streams (`End`).

use super::*;

impl super::super::Convention {
    /// Read the receivers' pages, at most every [`TOOK_EVERY`], and say how far each has taken
    /// its stream; end the streams whose receivers are done with them.
    pub(super) fn report_taken(&mut self) {
        let Some(g) = &mut self.gateway else {
            return;
        };
        let now = Instant::now();
        let pressing_due = now >= g.last_took + TOOK_EVERY;
        if pressing_due {
            g.last_took = now;
        }
        let mut said = Vec::new();
        for (key, inb) in g.ins.iter_mut() {
            if !inb.awaiting() {
                continue;
            }
            // Read the receiver's page if a report is due: its sender presses on its window,
            // something goes to its member this turn anyway, or it waited long enough.
            let going_anyway = self
                .link_of
                .get(&key.0)
                .is_some_and(|t| self.dirty_links.contains(t));
            let due =
                (inb.pressing() && pressing_due) || going_anyway || now >= inb.said_at + TOOK_LAZY;
            if !due {
                continue;
            }
            // Settled, not just taken: should this member be lost, what its receivers had
            // taken and not handled is still with the sender, to come back.
            let standing = inb.progress();
            let all = inb.closing && inb.buf.is_empty() && standing.settled >= inb.received;
            if standing.last || all {
                said.push((key.clone(), standing.taken, true));
            } else if standing.settled > inb.said {
                inb.said_to(standing.settled, now);
                said.push((key.clone(), standing.settled, false));
            } else {
                inb.said_at = now;
            }
        }
        for ((peer, stream), taken, end) in said {
            if end {
                let g = self.gateway.as_mut().expect("checked");
                if let Some(mut inb) = g.ins.remove(&(peer.clone(), stream)) {
                    g.in_by_token.remove(&inb.token);
                    if let Some(mut s) = inb.stream.take() {
                        let _ = self.registry.deregister(&mut s);
                    }
                }
                self.end_stream(&peer, stream, taken);
            } else {
                self.say_to(&peer, &LinkMsg::Took { stream, taken });
            }
        }
    }

    /// The admin is leaving: every stream to a local receiver ends where its receiver took it
    /// (what it took and did not handle, its admin returns as it ends), so that the senders
    /// return only what was never taken.
    pub(in super::super) fn end_all_ins(&mut self) {
        let Some(g) = &mut self.gateway else {
            return;
        };
        let keys: Vec<(String, u64)> = g.ins.keys().cloned().collect();
        for (peer, stream) in keys {
            self.receiver_gone(&peer, stream);
        }
    }

    /// The link to `peer` is gone: its streams to local receivers end here.
    pub(super) fn drop_ins_from(&mut self, peer: &str) {
        let Some(g) = &mut self.gateway else {
            return;
        };
        let keys: Vec<(String, u64)> = g.ins.keys().filter(|k| k.0 == peer).cloned().collect();
        for key in keys {
            if let Some(mut inb) = g.ins.remove(&key) {
                g.in_by_token.remove(&inb.token);
                if let Some(mut s) = inb.stream.take() {
                    let _ = self.registry.deregister(&mut s);
                }
            }
        }
    }
}
