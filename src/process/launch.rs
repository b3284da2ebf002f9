//! What a binary that registered its actor types does with its command line: run an actor the
//! admin started, run an embedded admin, or list its types (see [`actors!`](crate::actors)).

use crate::actor::Actor;
use crate::message::type_name_of;
use crate::process::runtime;
use crate::protocol::ActorArgs;
use crate::registry::{self, ActorType, LIST_TYPES_MAGIC, registered_types};

impl ActorType {
    /// The entry for actor type `A`.
    pub fn of<A: Actor + Default>() -> ActorType {
        ActorType {
            name: type_name_of::<A>().to_string(),
            make: || Box::new(A::default()),
            requires: A::requires(),
        }
    }
}

/// Record the table and act on the command line. Called by [`actors!`](crate::actors).
#[doc(hidden)]
pub fn dispatch(types: Vec<ActorType>) {
    let args: Vec<String> = std::env::args().collect();
    let types = registry::install(types);
    match args.get(1).map(String::as_str) {
        Some("--greenroom-actor") => {
            let Some(mut actor_args) = ActorArgs::parse(&args[2..]) else {
                eprintln!("greenroom: malformed --greenroom-actor command line: {args:?}");
                std::process::exit(2);
            };
            crate::logging::init_actor(&actor_args.me);
            let control = runtime::control_and_assignment(&mut actor_args);
            match types.iter().find(|t| t.name == actor_args.type_name) {
                Some(t) => runtime::run(actor_args, control, t.make),
                None => {
                    let error = format!(
                        "binary {} does not provide actor type '{}' (it provides: {})",
                        args[0],
                        actor_args.type_name,
                        registered_types().join(", ")
                    );
                    runtime::refuse(actor_args, control, error)
                }
            }
        }
        Some("--greenroom-admin") => {
            std::process::exit(crate::process::admin::main_from_args(&args[2..]))
        }
        Some("--greenroom-list-types") => {
            println!("{LIST_TYPES_MAGIC}");
            // One line per type: its name, then what it requires, tab-separated.
            for t in types {
                let mut line = t.name.clone();
                for (k, v) in t.requires {
                    line.push_str(&format!("\t{k}={v}"));
                }
                println!("{line}");
            }
            std::process::exit(0)
        }
        _ => {}
    }
}
