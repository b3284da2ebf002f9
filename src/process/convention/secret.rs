//! The secret a convention shares: 32 random bytes, kept as 64 hex digits in a file only its
//! owner can read. It is the Noise pre-shared key of every admin-to-admin link.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// The environment variable naming the secret file when `--secret-file` is not given.
pub const SECRET_ENV: &str = "GREENROOM_SECRET_FILE";

/// A convention's shared secret.
#[derive(Clone)]
pub(crate) struct Secret([u8; 32]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

fn bad(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::Convention {
        why: format!("secret file {}: {why}", path.display()),
    }
}

impl Secret {
    /// The key bytes.
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Write a fresh secret to `path`, which must not exist yet (mode 0600; a link there is not
    /// followed).
    pub(crate) fn create(path: &Path) -> Result<()> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| bad(path, format!("no random bytes: {e}")))?;
        let mut file = crate::sys::create_new(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => bad(
                path,
                "it already exists; remove it first, or choose another path (every member must use the same secret)",
            ),
            _ => bad(path, e),
        })?;
        let text: String = key.iter().map(|b| format!("{b:02x}")).collect();
        file.write_all(format!("{text}\n").as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| bad(path, e))
    }

    /// Read the secret at `path`: a regular file of this user's that no one else may read
    /// (never a link), holding 64 hex digits.
    pub(crate) fn read(path: &Path) -> Result<Secret> {
        let mut file = crate::sys::open_read_only(path).map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                // O_NOFOLLOW met a link.
                bad(
                    path,
                    "it is a symbolic link; give the path of the file itself",
                )
            } else {
                bad(
                    path,
                    format!("{e}; create one with `greenroom secret new PATH`"),
                )
            }
        })?;
        let meta = file.metadata().map_err(|e| bad(path, e))?;
        if !meta.is_file() {
            return Err(bad(path, "it is not a regular file"));
        }
        if meta.uid() != crate::sys::uid() {
            return Err(bad(path, "it belongs to another user"));
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(bad(
                path,
                format!(
                    "others may read it (mode {mode:04o}); run `chmod 600 {}`",
                    path.display()
                ),
            ));
        }
        let mut text = String::new();
        Read::by_ref(&mut file)
            .take(1024)
            .read_to_string(&mut text)
            .map_err(|e| bad(path, e))?;
        Secret::parse(text.trim()).ok_or_else(|| {
            bad(
                path,
                "it does not hold a greenroom secret (64 hex digits); create one with `greenroom secret new PATH`",
            )
        })
    }

    fn parse(text: &str) -> Option<Secret> {
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Secret(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_secret_is_private_random_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        Secret::create(&a).unwrap();
        Secret::create(&b).unwrap();
        let mode = std::fs::metadata(&a).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (ka, kb) = (Secret::read(&a).unwrap(), Secret::read(&b).unwrap());
        assert_ne!(ka.bytes(), kb.bytes());
        let again = Secret::create(&a).unwrap_err().to_string();
        assert!(again.contains("already exists"), "{again}");
    }

    #[test]
    fn a_secret_others_can_read_or_reach_through_a_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        Secret::create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Secret::read(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let e = Secret::read(&link).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        std::fs::write(&path, "not hex at all").unwrap();
        let e = Secret::read(&path).unwrap_err().to_string();
        assert!(e.contains("greenroom secret new"), "{e}");
        let e = Secret::read(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("greenroom secret new"), "{e}");
    }
}
