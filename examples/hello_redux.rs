//! Hello World Redux, as in Thespian's overview: three actors pass a greeting along, and the
//! greeting carries the addresses it must visit.
//!
//! `cargo run --example hello_redux` prints `Hello, World!` twice; the third ask goes to an actor
//! that has exited and prints nothing.

use std::time::Duration;

use greenroom::{Actor, ActorSystem, Address, Context, ExitRequest, Handled, Message};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Greeting {
    message: String,
    send_to: Vec<Address>,
}

impl Greeting {
    /// Append `suffix` and pass the greeting to the next address on its list.
    fn forward(mut self, suffix: &str, ctx: &mut Context<'_>) -> Handled {
        self.message.push_str(suffix);
        if !self.send_to.is_empty() {
            let next = self.send_to.remove(0);
            ctx.send(&next, &self)?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Hello;

impl Actor for Hello {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        if msg.get::<String>().as_deref() == Some("hi") {
            let world = ctx.create_actor::<World>()?;
            let punct = ctx.create_actor::<Punctuate>()?;
            let greeting = Greeting {
                message: "Hello".into(),
                send_to: vec![punct, ctx.sender()],
            };
            ctx.send(&world, &greeting)?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct World;

impl Actor for World {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        match msg.get::<Greeting>() {
            Some(greeting) => greeting.forward(", World", ctx),
            None => Ok(()),
        }
    }
}

#[derive(Default)]
struct Punctuate;

impl Actor for Punctuate {
    fn receive(&mut self, msg: &Message, ctx: &mut Context<'_>) -> Handled {
        match msg.get::<Greeting>() {
            Some(greeting) => greeting.forward("!", ctx),
            None => Ok(()),
        }
    }
}

fn main() -> Result<(), greenroom::Error> {
    greenroom::actors!(Hello, World, Punctuate);

    let mut system = ActorSystem::new()?;
    let hello = system.create_actor::<Hello>()?;
    // Each answer comes from Punctuate, not from Hello: everything sent while handling a
    // request is part of it, so the ask matches it all the same.
    for _ in 0..2 {
        let reply: Greeting = system.ask_as(&hello, "hi", Duration::from_millis(200))?;
        println!("{}", reply.message);
    }
    system.tell(&hello, &ExitRequest::default())?;
    // Hello has exited (or is exiting): this ask is answered by nobody, or refused outright.
    // (In Thespian it would return the greeting Hello sent back for the ExitRequest; here an
    // ask returns only its own answer, and that greeting waits for `listen`.)
    if let Ok(reply) = system.ask_as::<Greeting, _>(&hello, "hi", Duration::from_millis(200)) {
        println!("{}", reply.message);
    }
    Ok(())
}
