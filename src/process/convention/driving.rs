//! The convention at work: links accepted, dialled, heard from and lost, and the view kept
//! current and sent.

use super::*;

/// The update that says how `m` stands.
fn update_of(m: &MemberInfo) -> ConventionUpdate {
    ConventionUpdate {
        member: m.address.clone(),
        system: m.system.clone(),
        capabilities: m.capabilities.clone(),
        added: m.state == MemberState::Alive,
    }
}

impl Convention {
    /// Carry out an event on the listener or a link.
    pub(crate) fn on_event(&mut self, event: &mio::event::Event) {
        let token = event.token();
        if token == Token(TOKENS) {
            self.accept();
            return;
        }
        if gateway::Gateway::owns(token) {
            self.carried = Some(Instant::now());
            return self.on_gateway_event(event);
        }
        let Some(link) = self.links.get_mut(&token) else {
            return;
        };
        let frames = link.on_event(event, &self.registry);
        self.take_frames(token, frames);
    }

    /// What a link read: handle each frame, and remember a link with bytes left to read.
    fn take_frames(&mut self, token: Token, frames: std::result::Result<Vec<LinkMsg>, String>) {
        match frames {
            Ok(frames) => {
                if frames.iter().any(|m| {
                    !matches!(
                        m,
                        LinkMsg::Heartbeat | LinkMsg::View { .. } | LinkMsg::Took { .. }
                    )
                }) {
                    self.carried = Some(Instant::now());
                }
                for msg in frames {
                    if !self.links.contains_key(&token) {
                        break;
                    }
                    self.handle(token, msg);
                }
                if self.links.get(&token).is_some_and(|l| l.unread) {
                    self.unread_links.insert(token);
                }
            }
            Err(why) => self.drop_link(token, &why),
        }
    }

    /// Read on the links whose last read stopped at its budget.
    pub(super) fn read_unread_links(&mut self) {
        for token in std::mem::take(&mut self.unread_links) {
            if let Some(link) = self.links.get_mut(&token) {
                let frames = link.read_more(&self.registry);
                self.take_frames(token, frames);
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, from)) => {
                    let unauthenticated = self.links.len() - self.peer_of.len();
                    if unauthenticated >= MAX_UNAUTHENTICATED {
                        self.refused(
                            Some(from),
                            "too many connections are still in their handshake",
                        );
                        continue;
                    }
                    let token = self.token();
                    match Link::accept(stream, token, &self.terms()) {
                        Ok(link) => {
                            self.links.insert(token, link);
                        }
                        Err(why) => self.refused(Some(from), &why),
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::warn!("convention: accepting a link: {e}");
                    return;
                }
            }
        }
    }

    /// What a link's peer said.
    fn handle(&mut self, token: Token, msg: LinkMsg) {
        if let Err(why) = wire::check(&msg, self.limit) {
            self.drop_link(token, &format!("the peer sent {why}"));
            return;
        }
        let now = self.now_ms();
        let Some(peer) = self.peer_of.get(&token).cloned() else {
            return self.hello_from(token, msg, now);
        };
        let fair = match msg {
            LinkMsg::Hello { .. } => return self.drop_link(token, "the peer said hello twice"),
            LinkMsg::View { members } => {
                if self.view.viewed(&peer, members, now) {
                    // A peer's capabilities are first-hand news: pass them on at once.
                    self.send_view();
                }
                return self.refreshed();
            }
            LinkMsg::Heartbeat => true,
            LinkMsg::Leaving => return self.drop_link(token, "it is shutting down"),
            LinkMsg::Open { stream, from, to } => self.stream_opened(&peer, stream, from, to),
            LinkMsg::Data { stream, frames } => self.stream_data(&peer, stream, frames),
            LinkMsg::Took { stream, taken } => self.took(&peer, stream, taken, false),
            LinkMsg::End { stream, taken } => self.took(&peer, stream, taken, true),
            LinkMsg::Close { stream } => {
                self.stream_closed(&peer, stream);
                true
            }
            msg @ (LinkMsg::Create { .. }
            | LinkMsg::Created { .. }
            | LinkMsg::ChildGone { .. }
            | LinkMsg::Fetch { .. }
            | LinkMsg::Chunk { .. }
            | LinkMsg::NoBinary { .. }
            | LinkMsg::Claim { .. }
            | LinkMsg::Name { .. }
            | LinkMsg::Bind { .. }
            | LinkMsg::Unbind { .. }) => self.take_from_peer(&peer, msg),
        };
        if fair {
            self.view.heard(&peer, now);
        } else {
            self.drop_link(token, "the peer broke the rules of a message stream");
        }
    }

    /// The first frame of a link: who the peer is.
    fn hello_from(&mut self, token: Token, msg: LinkMsg, now: u64) {
        let LinkMsg::Hello {
            version,
            system,
            address,
            capabilities,
        } = msg
        else {
            return self.drop_link(token, "the peer did not say hello first");
        };
        if version != LINK_VERSION {
            return self.drop_link(
                token,
                &format!("the peer speaks link version {version}, not {LINK_VERSION}; run the same greenroom version on every member"),
            );
        }
        let address = match address.parse::<SocketAddr>() {
            Ok(a) => a.to_string(),
            Err(_) => return self.drop_link(token, "the peer's address is not IP:PORT"),
        };
        if address == self.view.address() {
            return self.drop_link(token, "the peer claims this admin's own address");
        }
        // A member that restarted may link again before its old link is found lost.
        if let Some(old) = self.link_of.get(&address).copied() {
            self.drop_link(old, "it linked again");
        }
        self.peer_of.insert(token, address.clone());
        self.link_of.insert(address.clone(), token);
        for d in &mut self.dials {
            if d.link == Some(token) {
                d.warned = false;
                if d.address.to_string() != address {
                    log::warn!(
                        "convention: {} answers as {address}; list the address it listens on in --convention",
                        d.address
                    );
                }
            }
        }
        self.view.linked(&address, system, capabilities, now);
        let members = self.view.first_hand(now);
        if let Some(link) = self.links.get_mut(&token)
            && let Err(why) = link.send(&LinkMsg::View { members }, &self.registry)
        {
            return self.drop_link(token, &why);
        }
        self.first_hand_changed();
    }

    /// End a link, and if its peer had said hello, take it out of the view.
    pub(super) fn drop_link(&mut self, token: Token, why: &str) {
        let Some(link) = self.links.remove(&token) else {
            return;
        };
        let remote = link.remote;
        link.close(&self.registry);
        for d in &mut self.dials {
            if d.link == Some(token) {
                d.failed(why);
            }
        }
        match self.peer_of.remove(&token) {
            Some(address) => {
                log::info!("convention: link to {address} lost: {why}");
                if self.link_of.get(&address) == Some(&token) {
                    self.link_of.remove(&address);
                    self.gateway_link_lost(&address);
                    self.view.unlinked(&address);
                    self.first_hand_changed();
                }
            }
            // A leader this admin dials that could not be reached: said by `Dial::failed`.
            None if self.dials.iter().any(|d| Some(d.address) == remote) => {}
            None => self.refused(remote, why),
        }
    }

    /// What this admin knows first-hand changed: tell every peer, and see who is alive now.
    fn first_hand_changed(&mut self) {
        self.send_view();
        self.refreshed();
    }

    fn send_view(&mut self) {
        let members = self.view.first_hand(self.now_ms());
        self.last_view = Instant::now();
        self.tell_every_peer(&LinkMsg::View { members });
    }

    fn tell_every_peer(&mut self, msg: &LinkMsg) {
        let mut broken = Vec::new();
        for token in self.peer_of.keys() {
            if let Some(link) = self.links.get_mut(token)
                && let Err(why) = link.send(msg, &self.registry)
            {
                broken.push((*token, why));
            }
        }
        for (token, why) in broken {
            self.drop_link(token, &why);
        }
    }

    /// Work out who is alive, say who joined and who left, and tell the watchers.
    fn refreshed(&mut self) {
        let changes = self.view.refresh();
        if changes.is_empty() {
            return;
        }
        self.refresh_keeper();
        self.mesh();
        let members = self.members();
        for change in changes {
            let address = match &change {
                Change::Joined(a) => {
                    log::info!("convention: member {a} joined");
                    a
                }
                Change::Left(a) => {
                    log::warn!("convention: member {a} is gone");
                    self.lost.push(a.clone());
                    a
                }
                Change::Capabilities(a) => {
                    log::info!("convention: member {a} changed its capabilities");
                    a
                }
            };
            if let Some(m) = members.iter().find(|m| &m.address == address) {
                let update = update_of(m);
                for w in &self.watchers {
                    self.updates.push((w.clone(), update.clone()));
                }
            }
        }
    }

    /// Send `watcher` a `ConventionUpdate` for every other member now and whenever the members
    /// change (`on`), or stop.
    pub(crate) fn watch(&mut self, watcher: Address, on: bool) {
        if !on {
            self.watchers.remove(&watcher);
            return;
        }
        if !self.watchers.insert(watcher.clone()) {
            return;
        }
        for m in self.members() {
            if m.address != self.view.address() && m.state == MemberState::Alive {
                self.updates.push((watcher.clone(), update_of(&m)));
            }
        }
    }

    /// Updates waiting to be sent, and their watchers.
    pub(crate) fn take_updates(&mut self) -> Vec<(Address, ConventionUpdate)> {
        std::mem::take(&mut self.updates)
    }

    /// Look after the links: end those that took too long to say hello or fell silent, dial
    /// leaders without a link, and send heartbeats and the view when due.
    pub(crate) fn tick(&mut self) {
        self.gateway_turn();
        let now = Instant::now();
        if now < self.next_tick {
            return;
        }
        self.next_tick = now + TICK;
        let late: Vec<Token> = self
            .links
            .iter()
            .filter(|(t, l)| {
                !self.peer_of.contains_key(t) && now.duration_since(l.made) > HELLO_TIME
            })
            .map(|(t, _)| *t)
            .collect();
        for token in late {
            self.drop_link(token, "it did not finish the handshake in time");
        }
        let before = self.now_ms().saturating_sub(SILENCE.as_millis() as u64);
        for address in self.view.silent_since(before) {
            if let Some(token) = self.link_of.get(&address).copied() {
                self.drop_link(token, &format!("nothing heard for {SILENCE:?}"));
            }
        }
        self.dial(now);
        if now.duration_since(self.last_view) >= VIEW_EVERY {
            self.send_view();
        } else if now.duration_since(self.last_heartbeat) >= HEARTBEAT {
            self.last_heartbeat = now;
            self.tell_every_peer(&LinkMsg::Heartbeat);
        }
    }

    /// This member's capabilities.
    pub(crate) fn capabilities(&self) -> &BTreeMap<String, String> {
        self.view.capabilities()
    }

    /// This admin's address in the convention.
    pub(crate) fn address(&self) -> &str {
        self.view.address()
    }

    /// Every member ever seen, this admin included.
    pub(crate) fn members(&self) -> Vec<MemberInfo> {
        self.view.members(self.now_ms())
    }

    /// Set or remove one of this member's capabilities, and tell the others.
    pub(crate) fn set_capability(&mut self, key: &str, value: Option<String>) -> Result<()> {
        writable(key)?;
        let mut caps = self.view.capabilities().clone();
        match value {
            Some(v) => caps.insert(key.to_string(), v),
            None => caps.remove(key),
        };
        wire::check_capabilities(&caps).map_err(bad)?;
        self.view.set_capabilities(caps);
        self.send_view();
        Ok(())
    }

    /// The admin is shutting down: tell every peer, give the words a moment to leave, and close.
    pub(crate) fn leave(&mut self) {
        self.end_all_ins();
        self.tell_every_peer(&LinkMsg::Leaving);
        let until = Instant::now() + Duration::from_millis(200);
        for (_, mut link) in self.links.drain() {
            link.flush_until(&self.registry, until);
            link.close(&self.registry);
        }
        let _ = self.registry.deregister(&mut self.listener);
    }
}
