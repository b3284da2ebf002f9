//! Directories of greenroom's own, opened and checked without following links, and the files
//! in them.

use super::*;

/// A directory of greenroom's own, opened without following links and checked: it is a real
/// directory, owned by this user, with mode 0700; its parent cannot be swapped by another user.
#[derive(Debug)]
pub(crate) struct PrivateDir {
    path: PathBuf,
    fd: OwnedFd,
    parent: OwnedFd,
}

fn unsafe_dir(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::UnsafeDirectory {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

fn os(path: &Path, what: &str, e: Errno) -> Error {
    Error::Io {
        context: format!("{what} {}", path.display()),
        source: e.into(),
    }
}

/// Open `name` in `parent` as a directory, creating it with mode 0700 if it is missing, never
/// following a symbolic link.
fn open_child_dir(parent: &OwnedFd, name: &OsStr, path: &Path) -> Result<OwnedFd> {
    match mkdirat(parent, name, Mode::S_IRWXU) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(os(path, "creating", e)),
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match openat(parent, name, flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        // With O_DIRECTORY, Linux reports a link as "not a directory": say which it is.
        Err(Errno::ELOOP | Errno::ENOTDIR) => {
            let link = fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK);
            Err(unsafe_dir(
                path,
                if link {
                    "it is a symbolic link, where greenroom expects its own directory"
                } else {
                    "it is not a directory"
                },
            ))
        }
        Err(e) => Err(os(path, "opening", e)),
    }
}

impl PrivateDir {
    /// Open (creating if needed) `path` and its parent as greenroom's own directories.
    ///
    /// The parent (for example `/tmp/greenroom-0`) must be a real directory owned by this user
    /// or by root, and not writable by others unless sticky (as `/tmp` is). `path` itself must be
    /// a real directory owned by this user; if its mode lets others in, it is made 0700 through
    /// its descriptor. Anything else is refused with [`Error::UnsafeDirectory`].
    pub(crate) fn open(path: &Path) -> Result<PrivateDir> {
        let (grand, parent_name, parent_path) = split(path)
            .and_then(|(parent, _)| split(parent).map(|(g, n)| (g, n, parent)))
            .ok_or_else(|| unsafe_dir(path, "it needs an absolute path with two parents"))?;
        let name = path.file_name().expect("checked by split");
        let grand = nix::fcntl::open(
            grand,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| os(grand, "opening", e))?;
        let parent = open_child_dir(&grand, parent_name, parent_path)?;
        let me = nix::unistd::getuid().as_raw();
        let st = fstat(&parent).map_err(|e| os(parent_path, "checking", e))?;
        if st.st_uid != me && st.st_uid != 0 {
            return Err(unsafe_dir(
                parent_path,
                format_args!("it belongs to user {}, not to you", st.st_uid),
            ));
        }
        if st.st_mode & 0o022 != 0 && st.st_mode & 0o1000 == 0 {
            return Err(unsafe_dir(
                parent_path,
                "others may write to it (and it is not sticky), so they could replace what is inside",
            ));
        }
        let fd = open_child_dir(&parent, name, path)?;
        let st = fstat(&fd).map_err(|e| os(path, "checking", e))?;
        if st.st_uid != me {
            return Err(unsafe_dir(
                path,
                format_args!("it belongs to user {}, not to you", st.st_uid),
            ));
        }
        if st.st_mode & 0o077 != 0 {
            fchmod(&fd, Mode::S_IRWXU).map_err(|e| os(path, "making private", e))?;
        }
        Ok(PrivateDir {
            path: path.to_path_buf(),
            fd,
            parent,
        })
    }

    /// The directory's path.
    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Open file `name` inside the directory, never following a link: `create` makes it if
    /// missing (mode 0600), `append` writes at the end, `truncate` empties it.
    pub(crate) fn file(&self, name: &str, how: FileHow) -> Result<File> {
        let mut flags = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_CREAT;
        flags |= match how {
            FileHow::Append => OFlag::O_WRONLY | OFlag::O_APPEND,
            FileHow::Truncate => OFlag::O_WRONLY | OFlag::O_TRUNC,
            FileHow::ReadWrite => OFlag::O_RDWR,
        };
        let path = self.path.join(name);
        openat(&self.fd, name, flags, Mode::S_IRUSR | Mode::S_IWUSR)
            .map(File::from)
            .map_err(|e| os(&path, "opening", e))
    }

    /// Rename file `from` to `to`, both inside the directory (replacing `to`).
    pub(crate) fn rename(&self, from: &str, to: &str) -> Result<()> {
        nix::fcntl::renameat(&self.fd, from, &self.fd, to)
            .map_err(|e| os(&self.path.join(from), "renaming", e))
    }

    /// Open (creating, mode 0600) file `name` beside the directory, in its parent, for reading
    /// and writing, never following a link; refuse a file another user owns.
    pub(crate) fn sibling_file(&self, name: &str) -> Result<File> {
        let path = self.path.with_file_name(name);
        let flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(&self.parent, name, flags, Mode::S_IRUSR | Mode::S_IWUSR)
            .map_err(|e| os(&path, "opening", e))?;
        let st = fstat(&fd).map_err(|e| os(&path, "checking", e))?;
        if st.st_uid != nix::unistd::getuid().as_raw() || st.st_mode & 0o022 != 0 {
            return Err(unsafe_dir(&path, "it is not a private file of yours"));
        }
        Ok(File::from(fd))
    }

    /// Remove the files in the directory whose names `stale` picks (not directories, and not
    /// anything outside it).
    pub(crate) fn remove_files(&self, stale: impl Fn(&str) -> bool) {
        for name in self.names() {
            if stale(&name) {
                let _ = unlinkat(&self.fd, name.as_str(), UnlinkatFlags::NoRemoveDir);
            }
        }
    }

    /// The names in the directory.
    fn names(&self) -> Vec<String> {
        let Ok(fd) = self.fd.try_clone() else {
            return Vec::new();
        };
        let Ok(mut dir) = nix::dir::Dir::from_fd(fd) else {
            return Vec::new();
        };
        dir.iter()
            .flatten()
            .filter_map(|e| e.file_name().to_str().ok().map(str::to_string))
            .filter(|n| n != "." && n != "..")
            .collect()
    }

    /// Remove every file in the directory, then the directory itself.
    pub(crate) fn remove(self) {
        self.remove_files(|_| true);
        if let Some(name) = self.path.file_name() {
            let _ = unlinkat(&self.parent, name, UnlinkatFlags::RemoveDir);
        }
    }
}

/// How [`PrivateDir::file`] opens a file.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FileHow {
    Append,
    Truncate,
    ReadWrite,
}

/// Open an existing file for reading only, never following a link.
pub(crate) fn open_read_only(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Open a file for appending, creating it (mode 0600) if needed, never following a link.
pub(crate) fn open_append(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Create a new file (it must not exist) for reading and writing, mode 0600, never following a
/// link.
pub(crate) fn create_new(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}
