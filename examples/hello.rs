//! Hello World, as in Thespian's overview: create an actor, ask it something, get
//! `Hello, World!` back, then tell it to exit.
//!
//! Run it with nothing started beforehand: `cargo run --example hello`.

use std::time::Duration;

use greenroom::{Actor, ActorSystem, Context, ExitRequest, Handled, Message};

#[derive(Default)]
struct Hello;

impl Actor for Hello {
    fn receive(&mut self, _msg: &Message, ctx: &mut Context<'_>) -> Handled {
        // Every message gets a greeting back, the ExitRequest included (as in Thespian).
        ctx.reply("Hello, World!")?;
        Ok(())
    }
}

fn main() -> Result<(), greenroom::Error> {
    greenroom::actors!(Hello);

    let mut system = ActorSystem::new()?;
    let hello = system.create_actor::<Hello>()?;
    let reply: String = system.ask_as(&hello, "hi", Duration::from_secs(1))?;
    println!("{reply}");
    system.tell(&hello, &ExitRequest::default())?;
    Ok(())
}
