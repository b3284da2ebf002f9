//! Actor addresses.
//!
//! An [`Address`] names one actor (or one external endpoint) of one system on one host: the
//! system's directory and a numeric id that the admin never reuses. Its text form is
//! `ID@DIR`, for example `7@/run/user/1000/greenroom/default`; a system that takes part in a
//! convention puts its member's address between the two, `ID@IP:PORT/DIR`, for example
//! `7@192.0.2.7:7000/run/user/1000/greenroom/default`, so that the address works on every
//! member. [`Display`](std::fmt::Display) writes the text form and [`FromStr`] reads it back.
//! Addresses are `Eq + Hash + Ord`, so they work as map keys, and they serialize as their text
//! form, so they can travel inside messages.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// The address of an actor or external endpoint.
///
/// It keeps its text form, shared, so that cloning is a reference-count increment and putting
/// it on the wire is a plain string write.
#[derive(Clone)]
pub struct Address {
    text: Arc<str>,
    /// Byte offset of the member in `text` (just after the `@`); equal to `dir_at` when the
    /// address names no member.
    member_at: usize,
    /// Byte offset of the directory in `text`.
    dir_at: usize,
    id: u64,
}

impl PartialEq for Address {
    fn eq(&self, other: &Address) -> bool {
        self.text == other.text
    }
}

impl Eq for Address {}

impl Hash for Address {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state)
    }
}

impl Ord for Address {
    /// By member, then system directory, then id.
    fn cmp(&self, other: &Address) -> Ordering {
        (self.member(), self.dir(), self.id).cmp(&(other.member(), other.dir(), other.id))
    }
}

impl PartialOrd for Address {
    fn partial_cmp(&self, other: &Address) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The id the admin itself uses as a sender.
pub(crate) const ADMIN_ID: u64 = 0;

impl Address {
    /// The address of actor `id` of the system in `dir`, on no member.
    pub(crate) fn new(dir: &Path, id: u64) -> Address {
        Address::minted(None, dir, id)
    }

    /// The address of actor `id` of the system in `dir`, on convention member `member`
    /// (`IP:PORT`, as `SocketAddr` writes it) if it takes part in one.
    pub(crate) fn minted(member: Option<&str>, dir: &Path, id: u64) -> Address {
        let member = member.unwrap_or("");
        let text = format!("{id}@{member}{}", dir.to_string_lossy());
        let member_at = text.find('@').expect("just written") + 1;
        Address {
            dir_at: member_at + member.len(),
            member_at,
            text: text.into(),
            id,
        }
    }

    /// Another actor of the same system, on the same member.
    pub(crate) fn sibling(&self, id: u64) -> Address {
        Address::minted(self.member(), self.system_dir(), id)
    }

    fn dir(&self) -> &str {
        &self.text[self.dir_at..]
    }

    /// The convention member the actor runs on (`IP:PORT`), if its system takes part in one.
    pub fn member(&self) -> Option<&str> {
        (self.dir_at > self.member_at).then(|| &self.text[self.member_at..self.dir_at])
    }

    /// True if the actor runs on the same member as `home` (both on none included): its
    /// socket and ledger page are on this host, in its system directory.
    pub(crate) fn is_beside(&self, home: &Address) -> bool {
        self.member() == home.member()
    }

    /// The text form, as `Display` writes it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The numeric id of the actor within its system.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The directory of the system the actor belongs to.
    pub fn system_dir(&self) -> &Path {
        Path::new(self.dir())
    }

    /// The Unix socket on which the actor receives messages.
    pub(crate) fn socket_path(&self) -> PathBuf {
        self.system_dir().join(format!("{}.sock", self.id))
    }

    /// The ledger page in which the actor tells its senders how far it has got.
    pub(crate) fn ledger_path(&self) -> PathBuf {
        self.system_dir().join(format!("{}.ledger", self.id))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl FromStr for Address {
    type Err = Error;

    fn from_str(text: &str) -> Result<Address, Error> {
        let bad = |why: &str| Error::BadAddress {
            text: text.to_string(),
            why: why.to_string(),
        };
        let (id, rest) = text.split_once('@').ok_or_else(|| bad("no '@'"))?;
        let id = id
            .parse::<u64>()
            .map_err(|_| bad("the part before '@' must be a number"))?;
        let slash = rest.find('/').ok_or_else(|| {
            bad("the part after '@' must be an absolute directory, or a member's IP:PORT and one")
        })?;
        let (member, dir) = rest.split_at(slash);
        let member = match member {
            "" => None,
            m => Some(m.parse::<std::net::SocketAddr>().map_err(|_| {
                bad("the member before the directory must be IP:PORT, for example 192.0.2.7:7000")
            })?),
        };
        // `07@/d` and `7@/d` must be one address: keep the text only if it is already in the
        // form Display writes.
        let member_text = member.map(|m| m.to_string());
        if id_text_is_canonical(text.len() - rest.len() - 1, text)
            && member_text.as_deref().unwrap_or("") == &rest[..slash]
        {
            let member_at = text.len() - rest.len();
            return Ok(Address {
                text: text.into(),
                member_at,
                dir_at: member_at + slash,
                id,
            });
        }
        Ok(Address::minted(member_text.as_deref(), Path::new(dir), id))
    }
}

/// True if `text[..len]` is a decimal number as `u64`'s `Display` writes it.
fn id_text_is_canonical(len: usize, text: &str) -> bool {
    let digits = &text.as_bytes()[..len];
    !digits.is_empty() && (digits[0] != b'0' || digits.len() == 1)
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Address, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Address;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an address string like 7@/run/user/1000/greenroom/default")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Address, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        let a = Address::new(Path::new("/tmp/greenroom-0/default"), 7);
        assert_eq!(a.to_string(), "7@/tmp/greenroom-0/default");
        assert_eq!(a.to_string().parse::<Address>().unwrap(), a);
        assert_eq!(
            a.socket_path(),
            Path::new("/tmp/greenroom-0/default/7.sock")
        );
    }

    #[test]
    fn leading_zeros_give_the_same_address() {
        let a: Address = "007@/d".parse().unwrap();
        assert_eq!(a, "7@/d".parse().unwrap());
        assert_eq!(a.to_string(), "7@/d");
    }

    #[test]
    fn bad_text_is_refused_with_reason() {
        for bad in [
            "",
            "7",
            "x@/tmp",
            "7@relative",
            "@/tmp",
            "7@host:70/tmp",
            "7@1.2.3.4/tmp",
            "7@1.2.3.4:99999/tmp",
            "7@1.2.3.4:7",
        ] {
            let err = bad.parse::<Address>().unwrap_err().to_string();
            assert!(err.contains("is not a greenroom address"), "{bad}: {err}");
        }
    }

    #[test]
    fn an_address_on_a_member_names_it() {
        let a = Address::minted(Some("127.0.0.2:7000"), Path::new("/run/g/default"), 7);
        assert_eq!(a.to_string(), "7@127.0.0.2:7000/run/g/default");
        assert_eq!(a.member(), Some("127.0.0.2:7000"));
        assert_eq!(a.system_dir(), Path::new("/run/g/default"));
        let back: Address = a.to_string().parse().unwrap();
        assert_eq!(back, a);
        assert_eq!(back.member(), Some("127.0.0.2:7000"));
        assert_eq!(back.id(), 7);
        // The same directory on another member, or on none, is another system.
        let local = Address::new(Path::new("/run/g/default"), 7);
        assert_ne!(a, local);
        assert!(!a.is_beside(&local));
        assert!(a.is_beside(&a.sibling(0)));
        assert_eq!(local.member(), None);
        // Written as SocketAddr writes it: one text per address.
        let v6: Address = "07@[::1]:7000/d".parse().unwrap();
        assert_eq!(v6.to_string(), "7@[::1]:7000/d");
        let v6b: Address = "7@[0:0::1]:7000/d".parse().unwrap();
        assert_eq!(v6b, v6);
    }

    #[test]
    fn serializes_as_text_inside_messages() {
        let a = Address::new(Path::new("/d"), 3);
        let bytes = rmp_serde::to_vec_named(&vec![a.clone()]).unwrap();
        let back: Vec<Address> = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, vec![a]);
    }
}
