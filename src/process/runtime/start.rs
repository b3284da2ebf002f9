//! How an actor process starts: its control socket, its assignment if it is a spare, its actor
//! built and set up, or refused.

use super::*;

/// Take the control socket the admin handed over, say hello on it, and if this is a spare,
/// wait until the admin assigns it a type (exit quietly if the admin closes the socket first).
pub(crate) fn control_and_assignment(args: &mut ActorArgs) -> ControlClient {
    let control = match sys::adopt(args.control_fd, Handed::Stream) {
        Ok(fd) => StdUnixStream::from(fd),
        Err(e) => {
            eprintln!("greenroom: the control socket the admin handed over is unusable: {e}");
            std::process::exit(2)
        }
    };
    let mut control = ControlClient::new(control, args.max_frame + wire::WRAP_SLACK);
    let hello = Request::Hello {
        version: PROTOCOL_VERSION,
        role: Role::Actor {
            pid: std::process::id(),
        },
    };
    if control.post(&hello).is_err() {
        std::process::exit(0);
    }
    if args.type_name == SPARE {
        match control.read_response(None) {
            Ok(Response::Assign {
                type_name,
                parent,
                args: start_args,
            }) => {
                args.type_name = type_name;
                args.parent = parent;
                args.start_args = start_args.map(serde_bytes::ByteBuf::into_vec);
            }
            _ => std::process::exit(0),
        }
    }
    control
}

/// Run the actor `make` builds in this process, as the admin asked. Never returns.
pub(crate) fn run(args: ActorArgs, control: ControlClient, make: fn() -> Box<dyn Actor>) -> ! {
    let mut rt = Runtime::start(&args, control);
    let mut actor = match stage::start(&mut rt, make) {
        Ok(actor) => actor,
        Err(error) => rt.fail_start(error),
    };
    // A spare's command line says `?`: where ps shows the process name, show its type.
    sys::set_process_name(&args.type_name);
    log::debug!("actor {} of type {} started", rt.cell.me, args.type_name);
    match rt.serve(&mut *actor) {
        Some(reason) => rt.exit(reason, 0),
        None => std::process::exit(1),
    }
}

/// This binary cannot run the actor the admin asked for: refuse it as a failed start.
pub(crate) fn refuse(args: ActorArgs, control: ControlClient, error: String) -> ! {
    Runtime::start(&args, control).fail_start(error)
}
