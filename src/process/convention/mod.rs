//! Conventions: admins on many hosts (or many admins on one) that know of each other.
//!
//! An admin started with `--listen HOST:PORT` accepts links from other admins; `--convention`
//! names the leaders it links to (an admin that names itself, or names none, is a leader).
//! Every link is a TCP connection secured by the Noise protocol with the convention's shared
//! secret ([`link`]): a peer without the secret gets nothing done. Over its links each admin
//! says who it is, sends what it knows first-hand every second and whenever that changes, and
//! a heartbeat every 200 ms; [`view`] works out who is alive from that. A member whose admin
//! dies is gone as soon as the kernel closes its connections; one whose host falls silent,
//! after [`SILENCE`] (750 ms: nearly four heartbeats missed).

use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Interest, Registry, Token};

use crate::address::Address;
pub use crate::base::ConventionConfig;
use crate::error::{Error, Result};
use crate::message::ConventionUpdate;
use crate::protocol::{MemberInfo, MemberState};

mod gateway;
mod link;
mod remote;
mod secret;
mod view;
mod wire;

use link::Link;
pub(crate) use remote::{FromPeer, NameMsg, RemoteCreate, Wanted};
pub use secret::SECRET_ENV;
pub(crate) use secret::Secret;
use view::{Change, View};
pub(crate) use wire::CHUNK;
use wire::{Heard, LINK_VERSION, LinkMsg};

/// How often the admin looks after its links.
const TICK: Duration = Duration::from_millis(100);
/// How often a link carries a heartbeat.
const HEARTBEAT: Duration = Duration::from_millis(200);
/// How often a link carries the sender's whole first-hand view, changed or not.
const VIEW_EVERY: Duration = Duration::from_secs(1);
/// A link heard nothing from for this long is taken for lost (its host is cut off or stuck).
pub(crate) const SILENCE: Duration = Duration::from_millis(750);
/// How long a peer has to finish the handshake and say hello.
const HELLO_TIME: Duration = Duration::from_secs(2);
/// How long after a failed attempt a leader is dialled again.
const RETRY: Duration = Duration::from_millis(500);
/// Connections still in their handshake at once; more are closed unread.
const MAX_UNAUTHENTICATED: usize = 64;
/// Links' tokens start here, far above the admin's own.
const TOKENS: usize = 1 << 56;
/// The first line about refused peers, then one at most this often.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);
/// How long an admin keeps looking for the next message to carry after the last one, instead
/// of sleeping (see [`Convention::carrying`] and docs/DECISIONS.md, "An admin carrying
/// messages looks before it sleeps").
const CARRY_LOOK: Duration = Duration::from_micros(100);

/// Write a fresh convention secret to `path` (which must not exist), readable by its owner
/// only: what `greenroom secret new PATH` does. Give every member the same file.
pub fn new_secret(path: &std::path::Path) -> Result<()> {
    Secret::create(path)
}

/// A member this admin keeps a link with by dialling it: a leader, or (see
/// [`Convention::mesh`]) another member.
#[derive(Debug)]
struct Dial {
    address: SocketAddr,
    /// A member that is not a leader: dialled while it is alive.
    mesh: bool,
    link: Option<Token>,
    next_try: Instant,
    /// Its failures have been logged since it was last reached (one warning, not one a try).
    warned: bool,
}

impl Dial {
    /// A try to reach it failed for `why`.
    fn failed(&mut self, why: &str) {
        self.link = None;
        self.next_try = Instant::now() + RETRY;
        if !std::mem::replace(&mut self.warned, true) {
            log::warn!(
                "convention: cannot reach {} {}: {why} (trying again every {RETRY:?}; see `greenroom members`)",
                if self.mesh { "member" } else { "leader" },
                self.address
            );
        }
    }
}

/// An admin's part in a convention: its listener, its links, and its view of the members.
#[derive(Debug)]
pub(crate) struct Convention {
    listener: TcpListener,
    registry: Registry,
    secret: Secret,
    system: String,
    links: HashMap<Token, Link>,
    /// Links whose peer said hello: its address.
    peer_of: HashMap<Token, String>,
    /// The link of each peer that said hello.
    link_of: HashMap<String, Token>,
    dials: Vec<Dial>,
    view: View,
    epoch: Instant,
    next_token: usize,
    next_tick: Instant,
    last_heartbeat: Instant,
    last_view: Instant,
    /// The largest frame a peer may send.
    limit: usize,
    refusals: (Option<Instant>, u64),
    /// Every refusal since the admin started.
    refused_total: u64,
    /// The leaders this admin was given, and whether it is one.
    leaders: Vec<SocketAddr>,
    leader: bool,
    /// Where messages cross to and from other members (once the admin has opened it).
    gateway: Option<gateway::Gateway>,
    /// Links with frames queued this turn, to seal and write at its end.
    dirty_links: std::collections::HashSet<Token>,
    /// Links whose last read stopped at its budget with bytes left.
    unread_links: std::collections::HashSet<Token>,
    /// What peers asked of the admin or told it, waiting for the admin.
    from_peers: Vec<FromPeer>,
    /// Members lost, waiting for the admin to hear of it.
    lost: Vec<String>,
    /// Binaries from other members are refused.
    pub(crate) refuse_binaries: bool,
    /// The keeper of global names (see [`Convention::keeper`]).
    keeper: String,
    /// Actors and endpoints that receive `ConventionUpdate`s.
    watchers: std::collections::BTreeSet<Address>,
    /// When messages last crossed the gateway or a link (see [`Convention::carrying`]).
    carried: Option<Instant>,
    /// Updates for watchers, waiting for the admin to send them.
    updates: Vec<(Address, ConventionUpdate)>,
}

impl Convention {
    /// Take part in a convention as `cfg` says, for system `system`: read the secret, listen,
    /// and start dialling the leaders.
    pub(crate) fn open(
        cfg: &ConventionConfig,
        system: &str,
        registry: Registry,
        limit: usize,
    ) -> Result<Convention> {
        let secret = Secret::read(&cfg.secret_file)?;
        let (wanted, leaders) = cfg.check()?;
        let std_listener = std::net::TcpListener::bind(wanted)
            .map_err(|e| bad(format!("cannot listen on {wanted}: {e}")))?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| bad(format!("listening on {wanted}: {e}")))?;
        let bound = std_listener
            .local_addr()
            .map_err(|e| bad(format!("listening on {wanted}: {e}")))?;
        let mut listener = TcpListener::from_std(std_listener);
        registry
            .register(&mut listener, Token(TOKENS), Interest::READABLE)
            .map_err(|e| bad(format!("listening on {bound}: {e}")))?;
        let leader = leaders.is_empty() || leaders.contains(&bound);
        // Leaders link to the leaders before them in address order (one link per pair);
        // other members to every leader.
        let now = Instant::now();
        let dials = leaders
            .iter()
            .copied()
            .filter(|l| *l != bound && (!leader || *l < bound))
            .map(|address| Dial {
                address,
                mesh: false,
                link: None,
                next_try: now,
                warned: false,
            })
            .collect();
        let mut capabilities = crate::sys::own_capabilities();
        capabilities.extend(cfg.capabilities.clone());
        log::info!(
            "convention: listening on {bound} as a {}",
            if leader { "leader" } else { "member" }
        );
        let mut convention = Convention {
            listener,
            registry,
            secret,
            system: system.to_string(),
            links: HashMap::new(),
            peer_of: HashMap::new(),
            link_of: HashMap::new(),
            dials,
            view: View::new(Heard {
                address: bound.to_string(),
                system: system.to_string(),
                capabilities,
                ago_ms: 0,
            }),
            epoch: now,
            next_token: TOKENS,
            next_tick: now,
            last_heartbeat: now,
            last_view: now,
            limit,
            leaders,
            leader,
            gateway: None,
            dirty_links: Default::default(),
            unread_links: Default::default(),
            from_peers: Vec::new(),
            lost: Vec::new(),
            refuse_binaries: cfg.refuse_binaries,
            refusals: (None, 0),
            refused_total: 0,
            watchers: Default::default(),
            carried: None,
            updates: Vec::new(),
            keeper: String::new(),
        };
        convention.refresh_keeper();
        Ok(convention)
    }

    /// Connections refused since the admin started.
    pub(crate) fn refused_total(&self) -> u64 {
        self.refused_total
    }

    /// True while messages are crossing: for [`CARRY_LOOK`] after the last one did. The admin
    /// then looks for the next without sleeping, since a sleeping admin pays a wake-up for each
    /// message it carries, and a remote ask crosses two admins each way.
    pub(crate) fn carrying(&self) -> bool {
        self.carried.is_some_and(|t| t.elapsed() < CARRY_LOOK)
    }

    /// True if `token` is one of the convention's.
    pub(crate) fn owns(token: Token) -> bool {
        token.0 >= TOKENS
    }

    /// When [`tick`](Self::tick) is next due (now, if the gateway has work waiting).
    pub(crate) fn next_tick(&self) -> Instant {
        match &self.gateway {
            _ if !self.unread_links.is_empty() => Instant::now(),
            Some(g) if g.busy() => Instant::now(),
            Some(g) => g
                .next_due()
                .map_or(self.next_tick, |d| d.min(self.next_tick)),
            None => self.next_tick,
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// What this admin's links are made with.
    fn terms(&self) -> link::Terms<'_> {
        link::Terms {
            registry: &self.registry,
            secret: &self.secret,
            hello: self.hello(),
            limit: gateway::link_limit(self.limit),
        }
    }

    fn hello(&self) -> LinkMsg {
        LinkMsg::Hello {
            version: LINK_VERSION,
            system: self.system.clone(),
            address: self.view.address().to_string(),
            capabilities: self.view.capabilities().clone(),
        }
    }

    fn token(&mut self) -> Token {
        self.next_token += 1;
        Token(self.next_token)
    }

    /// Say, rate-limited, that a peer was refused.
    fn refused(&mut self, from: Option<SocketAddr>, why: &str) {
        self.refused_total += 1;
        let (last, suppressed) = &mut self.refusals;
        if last.is_some_and(|t| t.elapsed() < REFUSAL_LOG_EVERY) {
            *suppressed += 1;
            return;
        }
        let from = from.map_or("a peer".to_string(), |a| a.to_string());
        if *suppressed > 0 {
            log::warn!("convention: refused {from}: {why} ({suppressed} more refused before)");
        } else {
            log::warn!("convention: refused {from}: {why}");
        }
        *last = Some(Instant::now());
        *suppressed = 0;
    }
}

mod config;
mod dialing;

use config::{bad, writable};
mod driving;

#[cfg(test)]
mod tests;
