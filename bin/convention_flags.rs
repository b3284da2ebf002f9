//! The flags that make an admin a member of a convention, shared by `greenroom start` and
//! `greenroom-admin`.

use std::path::PathBuf;

use greenroom::admin::ConventionConfig;

/// Taking part in a convention: admins on this host or others that know of each other, linked
/// by TCP, authenticated with a shared secret and encrypted.
#[derive(clap::Args)]
pub struct ConventionFlags {
    /// Accept other admins of a convention on HOST:PORT (port 0 picks a free one; see
    /// `greenroom members` for the one bound). Needs the convention's secret.
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// The convention's leaders to join (comma-separated or repeated). Naming this member
    /// itself, or no one, makes it a leader; several leaders keep the convention going when one
    /// is lost.
    #[arg(long, value_name = "HOST:PORT[,HOST:PORT...]")]
    convention: Vec<String>,
    /// A capability of this member, for placing actors (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    capability: Vec<String>,
    /// The convention's shared secret, written by `greenroom secret new PATH` (else
    /// $GREENROOM_SECRET_FILE).
    #[arg(long, env = "GREENROOM_SECRET_FILE", value_name = "PATH")]
    secret_file: Option<PathBuf>,
    /// Whether this member runs binaries other members send it, by SHA-256, to create actors
    /// whose type it has no binary loaded for: `any` member of the authenticated convention
    /// (the default), or `none` (then load the binaries here).
    #[arg(long, value_name = "none|any", default_value = "any", value_parser = ["none", "any"])]
    accept_binaries: String,
}

impl ConventionFlags {
    /// The setting these flags describe (`None` without `--listen`), checked.
    pub fn config(&self) -> greenroom::Result<Option<ConventionConfig>> {
        let cfg = ConventionConfig::from_flags(
            self.listen.as_deref(),
            &self.convention,
            &self.capability,
            self.secret_file.as_deref(),
        )?;
        Ok(cfg.map(|c| ConventionConfig {
            refuse_binaries: self.accept_binaries == "none",
            ..c
        }))
    }
}
