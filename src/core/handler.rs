//! Calling the user's code: a handler with its one retry and the `Poison` a second failure
//! earns, and the lifecycle hooks, with panics caught and turned into failures.

use crate::actor::{Actor, Context, ContextOps};
use crate::address::Address;
use crate::message::Message;

/// Which lifecycle hook of an [`Actor`] to run.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Hook {
    Started,
    Stopping,
}

/// Run a lifecycle hook as handlers run (a panic is caught). Returns why it failed, if it did;
/// a failed `stopping` is logged here.
pub(crate) fn run_hook(
    actor: &mut dyn Actor,
    ops: &mut dyn ContextOps,
    sender: &Address,
    hook: Hook,
) -> std::result::Result<(), String> {
    let mut ctx = Context {
        ops,
        sender: sender.clone(),
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match hook {
        Hook::Started => actor.started(&mut ctx),
        Hook::Stopping => actor.stopping(&mut ctx),
    }));
    let failure = match outcome {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => e.to_string(),
        Err(panic) => format!("panicked: {}", panic_text(&*panic)),
    };
    let failure = match hook {
        Hook::Started => format!("started() failed: {failure}"),
        Hook::Stopping => format!("stopping() failed: {failure}"),
    };
    if let Hook::Stopping = hook {
        log::warn!("{failure}");
    }
    Err(failure)
}

/// Call the handler for one message: a failure (panic or `Err`) is retried once, except for
/// `Poison` and `ExitRequest`. If it still fails, the failure is logged, and the `Poison` that the
/// sender must get back is returned (none for failures on `Poison` and `ExitRequest`).
pub(crate) fn invoke(
    actor: &mut dyn Actor,
    ops: &mut dyn ContextOps,
    sender: &Address,
    msg: &Message,
) -> Option<crate::Poison> {
    let retry_allowed = !(msg.is::<crate::ExitRequest>() || msg.is::<crate::Poison>());
    let mut failure = None;
    for _attempt in 0..2 {
        let mut ctx = Context {
            ops: &mut *ops,
            sender: sender.clone(),
        };
        msg.take_undecoded();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            actor.receive(msg, &mut ctx)
        }));
        failure = match outcome {
            // A `get` of the right type that could not decode the body is a failure too.
            Ok(Ok(())) => msg.take_undecoded(),
            Ok(Err(e)) => Some(e.to_string()),
            Err(panic) => Some(format!("handler panicked: {}", panic_text(&*panic))),
        };
        if failure.is_none() || !retry_allowed {
            break;
        }
    }
    let details = failure?;
    log::warn!(
        "handler failed on a {} message from {sender}: {details}",
        msg.type_name()
    );
    retry_allowed.then(|| crate::Poison {
        original: msg.clone(),
        details,
        possibly_handled: false,
    })
}

/// The text of a panic payload.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-text panic payload)".to_string()
    }
}
