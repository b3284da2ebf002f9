//! The thread that writes what a long handler's sends batched, while the handler runs.

use super::*;

/// A thread that writes batched sends while a handler runs. Started on the first batched send.
pub(super) struct Flusher {
    armed: Mutex<bool>,
    wake: Condvar,
}

impl Flusher {
    pub(super) fn start(outbox: Arc<Mutex<Outbox>>) -> Arc<Flusher> {
        let flusher = Arc::new(Flusher {
            armed: Mutex::new(false),
            wake: Condvar::new(),
        });
        let f = flusher.clone();
        std::thread::Builder::new()
            .name("greenroom-flusher".into())
            .spawn(move || {
                loop {
                    let mut armed = lock(&f.armed);
                    while !*armed {
                        armed = f.wake.wait(armed).unwrap_or_else(|e| e.into_inner());
                    }
                    drop(armed);
                    loop {
                        std::thread::sleep(FLUSH_INTERVAL);
                        lock(&outbox).flush_dirty();
                        if !*lock(&f.armed) {
                            break;
                        }
                    }
                }
            })
            .expect("spawning the flusher thread");
        flusher
    }

    pub(super) fn set(&self, on: bool) {
        *lock(&self.armed) = on;
        if on {
            self.wake.notify_one();
        }
    }
}
