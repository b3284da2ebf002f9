//! Binaries travel by hash: a member asked to create an actor whose type it has no binary for
//! fetches the asker's binary by its SHA-256, checks it, keeps it in its system directory as
//! `binary-SHA256`, and runs it. A member started with `--accept-binaries none` refuses, and
//! one of another OS or architecture than the asker says so.

use std::collections::HashMap;
use std::io::{Read, Write};

use sha2::{Digest, Sha256};

use super::Admin;
use crate::process::convention::Wanted;
use crate::sysdir::FileHow;

/// Binaries sent to one member at once, at most (more asks are answered `NoBinary`).
const UPLOADS_PER_MEMBER: usize = 4;
/// Bytes of a binary sent per turn at most, and only while its link has less than this waiting.
const SEND_WINDOW: usize = 1 << 20;

/// A binary being sent to a member.
struct Upload {
    peer: String,
    sha256: String,
    file: std::fs::File,
    offset: u64,
    size: u64,
}

/// A binary being fetched from a member, and the creates that wait for it.
struct Download {
    peer: String,
    file: std::fs::File,
    hasher: Sha256,
    received: u64,
    waiting: Vec<Wanted>,
}

/// What the admin keeps about binaries that travel.
#[derive(Default)]
pub(super) struct Binaries {
    /// SHA-256 of each binary hashed so far, by path, and the way back.
    hashes: HashMap<String, String>,
    by_hash: HashMap<String, String>,
    uploads: Vec<Upload>,
    downloads: HashMap<String, Download>,
}

/// Where a fetched binary is kept, in the system directory.
fn kept_name(sha256: &str) -> String {
    format!("binary-{sha256}")
}

/// The SHA-256 of a file, in hex.
fn sha256_of(path: &str) -> std::io::Result<String> {
    let mut file = crate::sys::open_read_only(std::path::Path::new(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Admin {
    /// The SHA-256 of the binary at `path` (hashed once, then remembered).
    pub(super) fn binary_hash(&mut self, path: &str) -> Option<String> {
        if let Some(h) = self.binaries_sent.hashes.get(path) {
            return Some(h.clone());
        }
        match sha256_of(path) {
            Ok(h) => {
                self.binaries_sent
                    .hashes
                    .insert(path.to_string(), h.clone());
                self.binaries_sent
                    .by_hash
                    .insert(h.clone(), path.to_string());
                Some(h)
            }
            Err(e) => {
                log::warn!("cannot read {path} to send it to other members: {e}");
                None
            }
        }
    }

    /// Create what `w` asks for from the binary `sha256` of its asker: kept here already,
    /// being fetched, or to fetch now; unless this member refuses binaries, or runs another OS
    /// or architecture.
    pub(super) fn create_from_fetched(&mut self, w: Wanted, sha256: String) {
        let Some(c) = &self.convention else {
            return;
        };
        if c.refuse_binaries {
            let why = format!(
                "this member runs no binaries from other members (--accept-binaries none); load the binary that provides {} here",
                w.type_name
            );
            return self.answer_wanted(&w, Err(why));
        }
        let here = (
            std::env::consts::OS.to_string(),
            std::env::consts::ARCH.to_string(),
        );
        if let Some(there) = c.platform_of(&w.peer)
            && there != here
        {
            let why = format!(
                "the binary for {} is built for {}/{} (member {}), and this member runs {}/{}; load a binary built for it here",
                w.type_name, there.0, there.1, w.peer, here.0, here.1
            );
            return self.answer_wanted(&w, Err(why));
        }
        let path = self.dir.join(kept_name(&sha256));
        if path.exists() {
            return self.create_wanted(w, Some(path.to_string_lossy().into_owned()));
        }
        if let Some(d) = self.binaries_sent.downloads.get_mut(&sha256) {
            d.waiting.push(w);
            return;
        }
        let part = format!("{}.part", kept_name(&sha256));
        let file = match self
            .private
            .as_ref()
            .map(|p| p.file(&part, FileHow::Truncate))
        {
            Some(Ok(f)) => f,
            Some(Err(e)) => return self.answer_wanted(&w, Err(e.to_string())),
            None => return self.answer_wanted(&w, Err("shutting down".into())),
        };
        let asked = self
            .convention
            .as_mut()
            .is_some_and(|c| c.fetch(&w.peer, &sha256));
        if !asked {
            return self.answer_wanted(&w, Err("the link to the asker is gone".into()));
        }
        log::info!(
            "fetching binary {sha256} from {} for {}",
            w.peer,
            w.type_name
        );
        self.binaries_sent.downloads.insert(
            sha256,
            Download {
                peer: w.peer.clone(),
                file,
                hasher: Sha256::new(),
                received: 0,
                waiting: vec![w],
            },
        );
    }

    /// `peer` asks for the binary `sha256`: send it, a piece at a time (or say it is not here).
    pub(super) fn upload(&mut self, peer: String, sha256: String) {
        let sending = self.binaries_sent.uploads.iter().filter(|u| u.peer == peer);
        let file = if sending.count() >= UPLOADS_PER_MEMBER {
            log::warn!("{peer} asks for more binaries at once than {UPLOADS_PER_MEMBER}; refusing");
            None
        } else {
            self.lookup_binary(&sha256)
        };
        self.start_upload(peer, sha256, file);
    }

    /// The binary `sha256`, if this admin named it to another member, opened for reading.
    fn lookup_binary(&self, sha256: &str) -> Option<std::fs::File> {
        self.binaries_sent
            .by_hash
            .get(sha256)
            .and_then(|p| crate::sys::open_read_only(std::path::Path::new(p)).ok())
    }

    /// Send the binary `sha256` from `file` to `peer` (no file: say it is not here).
    fn start_upload(&mut self, peer: String, sha256: String, file: Option<std::fs::File>) {
        let size = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| m.len());
        match (file, size) {
            (Some(file), Some(size)) => self.binaries_sent.uploads.push(Upload {
                peer,
                sha256,
                file,
                offset: 0,
                size,
            }),
            _ => {
                if let Some(c) = &mut self.convention {
                    c.send_chunk(&peer, &sha256, None);
                }
            }
        }
    }

    /// Send the next pieces of the binaries being sent, while their links have room.
    pub(super) fn pump_uploads(&mut self) {
        let Some(c) = &mut self.convention else {
            return;
        };
        let mut done = Vec::new();
        for (i, u) in self.binaries_sent.uploads.iter_mut().enumerate() {
            loop {
                match c.link_backlog(&u.peer) {
                    Some(waiting) if waiting < SEND_WINDOW => {}
                    Some(_) => break,
                    None => {
                        done.push(i);
                        break;
                    }
                }
                let mut buf = vec![0u8; crate::process::convention::CHUNK];
                let n = match u.file.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) => {
                        log::warn!("reading a binary to send: {e}");
                        c.send_chunk(&u.peer, &u.sha256, None);
                        done.push(i);
                        break;
                    }
                };
                buf.truncate(n);
                let last = n == 0 || u.offset + n as u64 >= u.size;
                c.send_chunk(&u.peer, &u.sha256, Some((u.offset, u.size, buf)));
                u.offset += n as u64;
                if last {
                    done.push(i);
                    break;
                }
            }
        }
        for i in done.into_iter().rev() {
            self.binaries_sent.uploads.remove(i);
        }
    }

    /// A piece of a binary being fetched: write it; once whole and checked, keep it and carry
    /// out the creates that waited for it.
    pub(super) fn chunk(&mut self, peer: &str, sha256: &str, offset: u64, size: u64, bytes: &[u8]) {
        let Some(d) = self.binaries_sent.downloads.get_mut(sha256) else {
            return;
        };
        if d.peer != peer || offset != d.received {
            return self.download_failed(sha256, "its pieces came out of order");
        }
        if let Err(e) = d.file.write_all(bytes) {
            return self.download_failed(sha256, &format!("writing it: {e}"));
        }
        d.hasher.update(bytes);
        d.received += bytes.len() as u64;
        if d.received < size && !bytes.is_empty() {
            return;
        }
        let Some(mut d) = self.binaries_sent.downloads.remove(sha256) else {
            return;
        };
        let got = hex(&d.hasher.finalize_reset());
        if got != sha256 || d.received != size {
            self.binaries_sent.downloads.insert(sha256.to_string(), d);
            return self.download_failed(sha256, &format!("it does not hash to {sha256}"));
        }
        use std::os::unix::fs::PermissionsExt;
        let part = format!("{}.part", kept_name(sha256));
        let kept = d
            .file
            .set_permissions(std::fs::Permissions::from_mode(0o700))
            .map_err(|e| e.to_string())
            .and_then(|()| {
                drop(d.file);
                match &self.private {
                    Some(p) => p
                        .rename(&part, &kept_name(sha256))
                        .map_err(|e| e.to_string()),
                    None => Err("shutting down".into()),
                }
            });
        let path = self
            .dir
            .join(kept_name(sha256))
            .to_string_lossy()
            .into_owned();
        log::info!("fetched binary {sha256} ({size} bytes) from {peer}");
        for w in d.waiting {
            match &kept {
                Ok(()) => self.create_wanted(w, Some(path.clone())),
                Err(e) => self.answer_wanted(&w, Err(format!("keeping the fetched binary: {e}"))),
            }
        }
    }

    /// `peer` says it has no binary `sha256`: if it is the one this admin fetches it from, the
    /// fetch fails.
    pub(super) fn no_binary(&mut self, peer: &str, sha256: &str) {
        if self
            .binaries_sent
            .downloads
            .get(sha256)
            .is_some_and(|d| d.peer == peer)
        {
            self.download_failed(sha256, &format!("member {peer} no longer has it"));
        }
    }

    /// Fetching the binary `sha256` failed: the creates that waited for it fail too.
    pub(super) fn download_failed(&mut self, sha256: &str, why: &str) {
        let Some(d) = self.binaries_sent.downloads.remove(sha256) else {
            return;
        };
        drop(d.file);
        let _ = std::fs::remove_file(self.dir.join(format!("{}.part", kept_name(sha256))));
        log::warn!("fetching binary {sha256} from {} failed: {why}", d.peer);
        for w in d.waiting {
            let why = format!(
                "fetching the binary for {} from {} failed: {why}",
                w.type_name, d.peer
            );
            self.answer_wanted(&w, Err(why));
        }
    }

    /// `member` is lost: what was being fetched from it fails, and what was being sent stops.
    pub(super) fn transfers_lost(&mut self, member: &str) {
        self.binaries_sent.uploads.retain(|u| u.peer != member);
        let from: Vec<String> = self
            .binaries_sent
            .downloads
            .iter()
            .filter(|(_, d)| d.peer == member)
            .map(|(h, _)| h.clone())
            .collect();
        for h in from {
            self.download_failed(&h, "the member was lost");
        }
    }
}
