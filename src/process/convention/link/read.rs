//! Reading a link: Noise messages from the TCP stream, the handshake's steps, and frames from
//! the decrypted stream.

use super::*;

impl Link {
    /// Read what the peer sent (up to the budget), and take every whole message in it. If the
    /// budget ran out, [`unread`](Link::unread) says so: no event will come for what is left.
    pub(super) fn read(&mut self, frames: &mut Vec<LinkMsg>) -> Result<(), Broken> {
        let mut buf = [0u8; 64 * 1024];
        let mut budget = READ_BUDGET;
        self.unread = true;
        while budget > 0 {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.take(frames)?;
                    return Err("the peer closed the link".into());
                }
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    self.raw.extend_from_slice(&buf[..n]);
                    self.take(frames)?;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.unread = false;
                    break;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading: {e}")),
            }
        }
        Ok(())
    }

    /// Read on where the last turn's budget ran out.
    pub(crate) fn read_more(&mut self, registry: &Registry) -> Result<Vec<LinkMsg>, Broken> {
        let mut frames = Vec::new();
        self.read(&mut frames)?;
        self.flush(registry)?;
        Ok(frames)
    }

    /// Take whole Noise messages from `raw`: handshake steps, or plaintext for frames.
    pub(super) fn take(&mut self, frames: &mut Vec<LinkMsg>) -> Result<(), Broken> {
        let mut at = 0;
        while self.raw.len() - at >= 2 {
            let len = u16::from_be_bytes([self.raw[at], self.raw[at + 1]]) as usize;
            if self.raw.len() - at - 2 < len {
                break;
            }
            let (start, end) = (at + 2, at + 2 + len);
            at = end;
            if let State::Open(t) = &mut self.state {
                // Opened straight into the plaintext buffer.
                let base = self.plain.len();
                self.plain.resize(base + len, 0);
                let n = t
                    .read_message(&self.raw[start..end], &mut self.plain[base..])
                    .map_err(|_| "a message on the link does not decrypt".to_string())?;
                self.plain.truncate(base + n);
                self.frames(frames)?;
                continue;
            }
            let msg = self.raw[start..end].to_vec();
            let mut clear = vec![0u8; NOISE_MAX];
            match &mut self.state {
                State::Connecting => return Err("the peer spoke before the handshake".into()),
                State::Handshake(hs) => {
                    hs.read_message(&msg, &mut clear).map_err(|_| {
                        "the handshake failed: the peer does not hold this convention's secret, or is not a greenroom admin"
                            .to_string()
                    })?;
                    if !hs.is_initiator() {
                        let n = hs
                            .write_message(&[], &mut clear)
                            .map_err(|e| format!("noise: {e}"))?;
                        self.push_noise(&clear[..n]);
                    }
                    self.open()?;
                }
                State::Open(_) => unreachable!("taken above"),
            }
        }
        self.raw.drain(..at);
        Ok(())
    }

    /// The handshake is done: switch to transport mode and say hello.
    pub(super) fn open(&mut self) -> Result<(), Broken> {
        let State::Handshake(hs) = std::mem::replace(&mut self.state, State::Connecting) else {
            return Ok(());
        };
        if !hs.is_handshake_finished() {
            self.state = State::Handshake(hs);
            return Ok(());
        }
        let transport = hs
            .into_transport_mode()
            .map_err(|e| format!("noise: {e}"))?;
        self.state = State::Open(Box::new(transport));
        let hello = std::mem::take(&mut self.hello);
        self.encrypt(&hello)
    }

    /// Take whole frames from the plaintext.
    pub(super) fn frames(&mut self, frames: &mut Vec<LinkMsg>) -> Result<(), Broken> {
        let mut at = 0;
        while self.plain.len() - at >= 4 {
            let len = u32::from_be_bytes(self.plain[at..at + 4].try_into().unwrap()) as usize;
            if len > self.limit {
                return Err(format!(
                    "the peer sent a frame of {len} bytes (the limit is {})",
                    self.limit
                ));
            }
            if self.plain.len() - at - 4 < len {
                break;
            }
            let body = &self.plain[at + 4..at + 4 + len];
            let msg: LinkMsg = wire::strict::from_slice(body)
                .map_err(|e| format!("the peer sent a malformed frame: {}", e.message))?;
            frames.push(msg);
            at += 4 + len;
        }
        self.plain.drain(..at);
        Ok(())
    }
}
