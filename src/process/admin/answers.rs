//! Answers in order: a requester whose answer waits for another member gets its later answers
//! behind it.

use super::remote::Slot;
use super::{Admin, Source};
use crate::protocol::Response;

impl Admin {
    /// Answer `source`: now, or behind the answers it still awaits from other members.
    pub(super) fn answer(&mut self, source: Source, resp: Response) {
        match self.remote.lines.get_mut(&source) {
            Some(line) => line.push_back(Slot::Ready(Box::new(resp))),
            None => self.send_answer(source, &resp),
        }
    }

    fn send_answer(&mut self, source: Source, resp: &Response) {
        match source {
            Source::Client(token) => self.respond(token, resp),
            Source::Actor(id) => {
                if let Some((_, conn)) = self.actors.get_mut(&id).and_then(|a| a.control.as_mut())
                    && let Err(e) = conn.send(resp)
                {
                    log::debug!("actor {id} went away before its answer: {e}");
                }
            }
        }
    }

    /// A number for a request to another member.
    pub(super) fn next_request(&mut self) -> u64 {
        self.remote.next_request += 1;
        self.remote.next_request
    }

    /// Keep a place in `source`'s line of answers for the answer to `request`, which comes
    /// later: answers after it wait behind it.
    pub(super) fn wait_in_line(&mut self, source: Source, request: u64) {
        self.remote
            .lines
            .entry(source)
            .or_default()
            .push_back(Slot::Waiting(request));
    }

    /// The answer to `request` has come: send it, and what waited behind it.
    pub(super) fn fill_line(&mut self, source: Source, request: u64, resp: Response) {
        let Some(line) = self.remote.lines.get_mut(&source) else {
            return;
        };
        for slot in line.iter_mut() {
            if matches!(slot, Slot::Waiting(r) if *r == request) {
                *slot = Slot::Ready(Box::new(resp));
                break;
            }
        }
        let mut ready = Vec::new();
        while let Some(Slot::Ready(_)) = line.front() {
            if let Some(Slot::Ready(r)) = line.pop_front() {
                ready.push(r);
            }
        }
        if line.is_empty() {
            self.remote.lines.remove(&source);
        }
        for r in ready {
            self.send_answer(source, &r);
        }
    }

    /// A requester has gone: nothing more is sent to it.
    pub(super) fn requester_gone(&mut self, source: Source) {
        self.remote.lines.remove(&source);
    }
}
