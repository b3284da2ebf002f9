//! Actor and endpoint ids, never reused in a system directory.

use std::fs::File;
use std::io::Read;

use crate::address::ADMIN_ID;
use crate::error::IoContext;
use crate::sysdir::PrivateDir;

/// Actor and endpoint ids, never reused in a system directory: not while the admin runs, and
/// not by the next admin after a restart either (a `kill -9` included), so an address from
/// before the restart gets `DeadActor` instead of reaching a newcomer.
///
/// Ids are reserved in blocks: the first id not yet handed out by any admin of the directory is
/// kept in `.NAME.next-id` beside the system directory (which is removed at shutdown; this file
/// is not). If that file cannot be used, ids start from the clock in microseconds instead.
pub(super) struct Ids {
    next: u64,
    ceiling: u64,
    file: Option<File>,
}

impl Ids {
    const BLOCK: u64 = 4096;

    pub(super) fn reserve(private: &PrivateDir, dir: &std::path::Path) -> Ids {
        let name = format!(
            ".{}.next-id",
            dir.file_name().unwrap_or_default().to_string_lossy()
        );
        let opened = private.sibling_file(&name).and_then(|mut f| {
            let mut text = String::new();
            f.read_to_string(&mut text)
                .ctx(|| format!("reading {name}"))?;
            Ok((f, text.trim().parse::<u64>().unwrap_or(0)))
        });
        let (file, first) = match opened {
            Ok((f, n)) => (Some(f), n.max(ADMIN_ID + 1)),
            Err(e) => {
                log::warn!("ids will start from the clock: {e}");
                let micros = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_micros() as u64);
                (None, micros)
            }
        };
        let mut ids = Ids {
            next: first,
            ceiling: first,
            file,
        };
        ids.extend();
        ids
    }

    /// Record that every id below the new ceiling may be in use.
    fn extend(&mut self) {
        self.ceiling = self.next + Self::BLOCK;
        if let Some(f) = &mut self.file {
            use std::io::{Seek, Write};
            let written = f
                .seek(std::io::SeekFrom::Start(0))
                .and_then(|_| f.set_len(0))
                .and_then(|()| writeln!(f, "{}", self.ceiling));
            if let Err(e) = written {
                log::warn!("could not reserve ids: {e}");
            }
        }
    }

    /// A new id.
    pub(super) fn take(&mut self) -> u64 {
        if self.next == self.ceiling {
            self.extend();
        }
        self.next += 1;
        self.next - 1
    }
}
