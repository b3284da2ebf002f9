//! A convention setting, from the command line's flags, checked before anything starts.

use super::*;

impl ConventionConfig {
    /// The setting the command-line flags describe (`--listen`, `--convention` (each a
    /// comma-separated list), `--capability KEY=VALUE`, `--secret-file`, else
    /// [`SECRET_ENV`]): `None` without `--listen`. Checks what can be checked without
    /// starting: the flags fit together, and the secret file is usable.
    pub fn from_flags(
        listen: Option<&str>,
        convention: &[String],
        capabilities: &[String],
        secret_file: Option<&std::path::Path>,
    ) -> Result<Option<ConventionConfig>> {
        let Some(listen) = listen else {
            if !convention.is_empty() || !capabilities.is_empty() {
                return Err(bad(
                    "--convention and --capability need --listen HOST:PORT (where this member listens for the others)",
                ));
            }
            return Ok(None);
        };
        let secret_file = match secret_file {
            Some(p) => p.to_path_buf(),
            None => match std::env::var_os(SECRET_ENV) {
                Some(p) if !p.is_empty() => PathBuf::from(p),
                _ => {
                    return Err(bad(format!(
                        "--listen needs the convention's secret: give --secret-file PATH or set {SECRET_ENV} (create one with `greenroom secret new PATH` and copy it to every member)"
                    )));
                }
            },
        };
        Secret::read(&secret_file)?;
        let mut caps = BTreeMap::new();
        for c in capabilities {
            let Some((k, v)) = c.split_once('=') else {
                return Err(bad(format!("--capability '{c}' is not KEY=VALUE")));
            };
            caps.insert(k.trim().to_string(), v.trim().to_string());
        }
        let cfg = ConventionConfig {
            refuse_binaries: false,
            listen: listen.to_string(),
            leaders: convention
                .iter()
                .flat_map(|l| l.split(','))
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect(),
            capabilities: caps,
            secret_file,
        };
        cfg.check()?;
        Ok(Some(cfg))
    }

    /// The admin's command-line flags that say the same (`--listen`, `--secret-file`,
    /// `--convention`, `--capability`, `--accept-binaries`).
    pub fn admin_args(&self) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = vec![
            "--listen".into(),
            self.listen.clone().into(),
            "--secret-file".into(),
            self.secret_file.clone().into(),
        ];
        for l in &self.leaders {
            args.extend(["--convention".into(), l.into()]);
        }
        for (k, v) in &self.capabilities {
            args.extend(["--capability".into(), format!("{k}={v}").into()]);
        }
        if self.refuse_binaries {
            args.extend(["--accept-binaries".into(), "none".into()]);
        }
        args
    }

    /// Check the addresses and capabilities; returns the address to listen on and the leaders.
    pub(super) fn check(&self) -> Result<(SocketAddr, Vec<SocketAddr>)> {
        let listen = resolve("--listen", &self.listen)?;
        if listen.ip().is_unspecified() {
            return Err(bad(format!(
                "--listen {} names no address other members can reach; give this host's address, for example --listen 192.0.2.7:{}",
                self.listen,
                listen.port()
            )));
        }
        let mut leaders = Vec::new();
        for l in &self.leaders {
            leaders.push(resolve("--convention", l)?);
        }
        for k in self.capabilities.keys() {
            writable(k)?;
        }
        let mut all = crate::sys::own_capabilities();
        all.extend(self.capabilities.clone());
        wire::check_capabilities(&all).map_err(|why| bad(format!("--capability: {why}")))?;
        Ok((listen, leaders))
    }
}

/// A capability a member may set: not one of greenroom's own.
pub(super) fn writable(key: &str) -> Result<()> {
    if key.starts_with("greenroom.") {
        return Err(bad(format!(
            "capability '{key}' is greenroom's own and read-only; choose a name that does not start with 'greenroom.'"
        )));
    }
    Ok(())
}

pub(super) fn bad(why: impl Into<String>) -> Error {
    Error::Convention { why: why.into() }
}

/// Resolve `HOST:PORT` to one socket address.
pub(super) fn resolve(what: &str, text: &str) -> Result<SocketAddr> {
    text.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            bad(format!(
                "{what} '{text}' is not HOST:PORT (for example 192.0.2.7:7000)"
            ))
        })
}
