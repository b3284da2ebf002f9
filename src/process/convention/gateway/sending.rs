//! The sending side: local senders' streams read, passed on over the link to the receiver's
//! member, and their slots moved on as that member says the receiver took them.

use super::*;
use crate::protocol::SenderHello;

impl super::super::Convention {
    /// Read what a local sender wrote, and pass it on, as far as its link and window allow.
    pub(super) fn read_out(&mut self, token: Token) {
        let Some(g) = &mut self.gateway else {
            return;
        };
        let Some(out) = g.outs.get_mut(&token) else {
            return;
        };
        if out.finished {
            return;
        }
        let link = self
            .link_of
            .get(&out.member)
            .and_then(|t| self.links.get(t));
        let link_full = link.is_some_and(|l| l.backlog() > LINK_HIGH);
        if link_full || out.unacknowledged() > STREAM_WINDOW || (out.hello.is_some() && !out.opened)
        {
            // Read once the link drains, the receiver takes some, or the link is made.
            if !g.blocked.contains(&token) {
                g.blocked.push(token);
            }
            return;
        }
        let mut hello: Option<SenderHello> = None;
        let had_hello = out.hello.is_some();
        let status = out.conn.read(|frame| {
            if !had_hello && hello.is_none() {
                hello = Some(read_sender_hello(frame)?);
                return Ok(());
            }
            out.batch
                .extend_from_slice(&(frame.len() as u32).to_be_bytes());
            out.batch.extend_from_slice(frame);
            out.read += 1;
            Ok(())
        });
        let more = match status {
            Ok(ReadStatus::Drained) => false,
            Ok(ReadStatus::More) => true,
            Ok(ReadStatus::Eof) => {
                out.finished = true;
                false
            }
            Err(e) => {
                crate::logging::bad_input(format_args!(
                    "gateway: closing a connection from a misbehaving sender: {e}"
                ));
                if let Some((_, _, slot)) = out.hello {
                    g.page.refused(slot, out.read);
                }
                out.finished = true;
                false
            }
        };
        if more && !g.waiting.contains(&token) {
            g.waiting.push(token);
        }
        if out.finished && out.hello.is_none() && hello.is_none() {
            // Ended, or refused, before its hello: nothing to account for.
            g.end_out(token, &self.registry, None);
            return;
        }
        if let Some(hello) = hello
            && let Err(why) = self.opened_by(token, hello)
        {
            crate::logging::bad_input(format_args!("gateway: refusing a sender: {why}"));
            let g = self.gateway.as_mut().expect("checked");
            g.end_out(token, &self.registry, Some(0));
            return;
        }
        self.pass_on(token);
    }

    /// A local sender said hello: check it, give its stream a slot, and open it on the link if
    /// the receiver's member is alive (else the stream is refused: its messages come back).
    fn opened_by(&mut self, token: Token, hello: SenderHello) -> std::result::Result<(), String> {
        let g = self.gateway.as_mut().expect("checked");
        let home = g.home.clone();
        let Some(to) = hello.to else {
            return Err("its hello names no receiver (a stream to the gateway must)".into());
        };
        let member = match to.member() {
            Some(m) if !to.is_beside(&home) => m.to_string(),
            _ => return Err(format!("{to} is not on another member")),
        };
        if !hello.from.is_beside(&home) {
            return Err(format!("{} is not on this member", hello.from));
        }
        let Some(slot) = g.take_slot() else {
            return Err(format!("{SLOTS} streams are open already"));
        };
        g.page.open_slot(slot, hello.conn);
        let out = g.outs.get_mut(&token).expect("reading it");
        out.member = member.clone();
        out.hello = Some((hello.from, to, slot));
        if !self.view.is_alive(&member) {
            log::debug!("gateway: a stream to {member}, which is not a live member, is refused");
            let g = self.gateway.as_mut().expect("checked");
            g.page.refused(slot, 0);
            g.end_out(token, &self.registry, Some(0));
            return Ok(());
        }
        self.open_on_link(token);
        let g = self.gateway.as_mut().expect("checked");
        if g.outs.get(&token).is_some_and(|o| !o.opened) {
            // No link with that member yet: opened once there is one (see `gateway_turn`).
            g.unopened.push(token);
        }
        Ok(())
    }

    /// Say `Open` on the link to the stream's member, if there is one now.
    fn open_on_link(&mut self, token: Token) {
        let g = self.gateway.as_mut().expect("checked");
        let Some(out) = g.outs.get_mut(&token) else {
            return;
        };
        let Some((from, to, _)) = &out.hello else {
            return;
        };
        let Some(link_token) = self.link_of.get(&out.member).copied() else {
            return;
        };
        let Some(link) = self.links.get_mut(&link_token) else {
            return;
        };
        let open = LinkMsg::Open {
            stream: out.id,
            from: from.clone(),
            to: to.clone(),
        };
        match link.queue(&open) {
            Ok(()) => {
                out.opened = true;
                self.dirty_links.insert(link_token);
            }
            Err(why) => self.drop_link(link_token, &why),
        }
    }

    /// Pass on what was read from a sender's stream, and say `Close` once it has finished.
    pub(super) fn pass_on(&mut self, token: Token) {
        let g = self.gateway.as_mut().expect("checked");
        let Some(out) = g.outs.get_mut(&token) else {
            return;
        };
        if !out.opened {
            return;
        }
        let Some(link_token) = self.link_of.get(&out.member).copied() else {
            return;
        };
        let Some(link) = self.links.get_mut(&link_token) else {
            return;
        };
        let mut result = Ok(());
        if !out.batch.is_empty() {
            let frames = std::mem::take(&mut out.batch);
            out.passed += frames.len();
            out.in_flight.push_back((out.read, out.passed));
            result = link.queue(&LinkMsg::Data {
                stream: out.id,
                frames,
            });
        }
        if out.finished && result.is_ok() {
            result = link.queue(&LinkMsg::Close { stream: out.id });
            // Its slot stays until the receiver's member says how far it was taken.
            let _ = self.registry.deregister(&mut out.conn.stream);
        }
        self.dirty_links.insert(link_token);
        if let Err(why) = result {
            self.drop_link(link_token, &why);
        }
    }

    /// The receiver of stream `stream` has taken it up to `taken` (`end`: and that is final).
    pub(in crate::process::convention) fn took(
        &mut self,
        peer: &str,
        stream: u64,
        taken: u64,
        end: bool,
    ) -> bool {
        let g = self.gateway.as_mut().expect("checked");
        let Some(token) = g.out_by_stream.get(&stream).copied() else {
            // A stream that ended here already (its link broke, then a new one came).
            return true;
        };
        let out = g.outs.get_mut(&token).expect("indexed");
        if out.member != peer || taken > out.read {
            return false;
        }
        let Some((_, _, slot)) = out.hello else {
            return false;
        };
        g.page.set_taken(slot, taken);
        while let Some(&(seq, bytes)) = out.in_flight.front() {
            if seq > taken {
                break;
            }
            out.taken_bytes = bytes;
            out.in_flight.pop_front();
        }
        if end {
            g.end_out(token, &self.registry, None);
        }
        true
    }

    /// The link to `member` is gone: every stream to it ends where its receiver had taken it
    /// (what followed comes back to its sender), and every stream from it ends here.
    pub(in crate::process::convention) fn gateway_link_lost(&mut self, member: &str) {
        let Some(g) = &mut self.gateway else {
            return;
        };
        let lost: Vec<Token> = g
            .outs
            .iter()
            .filter(|(_, o)| o.member == member)
            .map(|(t, _)| *t)
            .collect();
        for token in lost {
            g.end_out(token, &self.registry, None);
        }
        self.drop_ins_from(member);
    }

    /// Open on the link the streams that waited for it, refuse those that waited too long, and
    /// read the streams whose turn it is.
    pub(in crate::process::convention) fn gateway_turn(&mut self) {
        self.read_unread_links();
        let Some(g) = &mut self.gateway else {
            return;
        };
        let now = Instant::now();
        for token in std::mem::take(&mut g.unopened) {
            let g = self.gateway.as_mut().expect("checked");
            let Some(out) = g.outs.get(&token) else {
                continue;
            };
            let (member, late) = (
                out.member.clone(),
                now.duration_since(out.accepted) > LINK_WAIT,
            );
            if self.link_of.contains_key(&member) {
                self.open_on_link(token);
                // What was read while it waited goes now, and the rest is read.
                self.pass_on(token);
                let g = self.gateway.as_mut().expect("checked");
                g.waiting.push(token);
            } else if late || !self.view.is_alive(&member) {
                log::debug!("gateway: no link to {member}; a stream to it is refused");
                let g = self.gateway.as_mut().expect("checked");
                g.end_out(token, &self.registry, Some(0));
            } else {
                g.unopened.push(token);
            }
        }
        let g = self.gateway.as_mut().expect("checked");
        let mut turn = std::mem::take(&mut g.waiting);
        turn.append(&mut g.blocked);
        for token in turn {
            self.read_out(token);
        }
        self.report_taken();
        self.seal_links();
    }

    /// Seal and write what the gateway queued on links this turn.
    fn seal_links(&mut self) {
        for token in std::mem::take(&mut self.dirty_links) {
            let Some(link) = self.links.get_mut(&token) else {
                continue;
            };
            if let Err(why) = link.seal().and_then(|()| link.flush(&self.registry)) {
                self.drop_link(token, &why);
            }
        }
    }
}
