//! How a message type is named on the wire.

use super::*;

/// The name greenroom gives to messages of type `T`: its Rust type name without module paths
/// or references, with `str` written `String` (`&str` and `String` encode alike). greenroom's own
/// messages are named in a namespace of their own, `greenroom.` (`greenroom.ExitRequest`,
/// `greenroom.Poison`, ...), so that a type of yours named `Poison` is just another message.
///
/// Each type's name is worked out once per thread and then served from a cache, because this
/// runs for every message sent and every [`Message::is`] test.
pub fn type_name_of<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    let key = (full.as_ptr() as usize, full.len());
    NAMES.with(|names| {
        let mut names = names.borrow_mut();
        if let Some(&name) = names.by_type.get(&key) {
            return name;
        }
        let short = short_type_name(full);
        let name = if let Some(given) = given_name(full) {
            given.to_string()
        } else if full.starts_with("greenroom::") && RESERVED.contains(&short.as_str()) {
            format!("{SYSTEM_PREFIX}{short}")
        } else {
            short
        };
        let name: &'static str = Box::leak(name.into_boxed_str());
        names.by_type.insert(key, name);
        names.known.insert(name);
        name
    })
}

/// Names given to message types with [`message_names!`](crate::message_names), by the types'
/// full Rust names.
static GIVEN: std::sync::RwLock<Vec<(&str, &str)>> = std::sync::RwLock::new(Vec::new());

fn given_name(full: &str) -> Option<&'static str> {
    let given = GIVEN.read().unwrap_or_else(|e| e.into_inner());
    given.iter().find(|(t, _)| *t == full).map(|&(_, n)| n)
}

/// Give message types names of your choosing. Called by [`message_names!`](crate::message_names).
#[doc(hidden)]
pub fn name_messages(pairs: &[(&'static str, &'static str)]) {
    let mut given = GIVEN.write().unwrap_or_else(|e| e.into_inner());
    for &(full, name) in pairs {
        assert!(
            !name.is_empty()
                && !name.starts_with(SYSTEM_PREFIX)
                && !name.contains(char::is_whitespace),
            "greenroom::message_names!: {name:?} (for {full}) is not a message name: it must be non-empty, without spaces, and not start with {SYSTEM_PREFIX:?}"
        );
        if !given.iter().any(|(t, _)| *t == full) {
            given.push((full, name));
        }
    }
}

/// The namespace of greenroom's own message names.
pub(crate) const SYSTEM_PREFIX: &str = "greenroom.";

/// greenroom's own message types: their names take [`SYSTEM_PREFIX`].
const RESERVED: &[&str] = &[
    "ExitRequest",
    "ChildExited",
    "Poison",
    "Wakeup",
    "ConventionUpdate",
    "DeadEnvelope",
    "StatusRequest",
    "ActorStatus",
    "TroupeTask",
    "TroupeDone",
    "TransientTimeout",
];

/// Per thread: each Rust type's message name, and every such name (so that a decoded message
/// whose name is one of them can borrow it instead of allocating).
#[derive(Default)]
struct Names {
    by_type: HashMap<(usize, usize), &'static str, BuildHasherDefault<Fnv>>,
    known: HashSet<&'static str, BuildHasherDefault<Fnv>>,
}

thread_local! {
    static NAMES: RefCell<Names> = RefCell::new(Names::default());
}

/// A type name read off the wire: borrowed if this thread already knows it, else owned.
pub(crate) fn intern_type_name(name: &str) -> Cow<'static, str> {
    NAMES.with(|names| match names.borrow().known.get(name) {
        Some(&known) => Cow::Borrowed(known),
        None => Cow::Owned(name.to_string()),
    })
}

fn short_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut word = String::new();
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            word.clear();
        } else {
            out.push_str(if word == "str" { "String" } else { &word });
            word.clear();
            if c != '&' {
                out.push(c);
            }
        }
    }
    out.push_str(if word == "str" { "String" } else { &word });
    out.trim_start_matches("mut ").to_string()
}
