//! Which members this admin dials: the leaders, and the members it shares no leader's link
//! with, so that every pair of members has one link.

use super::*;

impl Convention {
    /// Keep a link with every live member, for the messages between them: besides the links
    /// to leaders (which every member dials, and leaders dial the leaders before them), a member
    /// that is not a leader dials every live member before it in address order that is not a
    /// leader either. So every pair has one link, dialled by one side.
    pub(super) fn mesh(&mut self) {
        let me: SocketAddr = self.view.address().parse().expect("a bound address");
        let alive: Vec<SocketAddr> = self.view.alive().filter_map(|a| a.parse().ok()).collect();
        self.dials
            .retain(|d| !d.mesh || d.link.is_some() || alive.contains(&d.address));
        if self.leader {
            return;
        }
        for m in alive {
            if m < me && !self.leaders.contains(&m) && !self.dials.iter().any(|d| d.address == m) {
                self.dials.push(Dial {
                    address: m,
                    mesh: true,
                    link: None,
                    next_try: Instant::now(),
                    warned: false,
                });
            }
        }
    }

    pub(super) fn dial(&mut self, now: Instant) {
        for i in 0..self.dials.len() {
            let d = &self.dials[i];
            if d.link.is_some() || d.next_try > now {
                continue;
            }
            let (address, token) = (d.address, self.token());
            match Link::connect(address, token, &self.terms()) {
                Ok(link) => {
                    self.links.insert(token, link);
                    self.dials[i].link = Some(token);
                }
                Err(e) => self.dials[i].failed(&e.to_string()),
            }
        }
    }
}
