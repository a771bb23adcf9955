//! Command-line syntax. Each subcommand's work lives in its own module.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "postcell",
    version,
    about = "Postcell mail server: SMTP, POP3 and IMAP for one node or a cell of nodes"
)]
pub struct Cli {
    /// The node's configuration file.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "POSTCELL_CONFIG",
        default_value = "postcell.toml"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make a ready-to-run node folder: configuration, embedded store, self-signed
    /// certificate, the domain and its postmaster account.
    Init(InitArgs),
    /// Run the node until Ctrl-C or SIGTERM.
    Serve,
    /// Mail domains this cell receives for.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// User accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Extra addresses that deliver to an account.
    #[command(subcommand)]
    Address(AddressCommand),
    /// Aliases: addresses that deliver to one or more other addresses.
    #[command(subcommand)]
    Alias(AliasCommand),
    /// The delivery log.
    #[command(subcommand)]
    Log(LogCommand),
    /// The outbound queue.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// DKIM signing keys.
    #[command(subcommand)]
    Dkim(DkimCommand),
    /// The configuration in effect, defaults included.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The store, the nodes of the cell and what they hold.
    Status,
    /// Take a node out of rotation: /readyz fails, its listeners close, its sessions
    /// finish, it exits. Works from any node of the cell (through the store).
    Drain(DrainArgs),
}

#[derive(Debug, Args)]
pub struct DrainArgs {
    /// The node to drain. Default: the node of this configuration file.
    pub node: Option<String>,
    /// Wait until the node has stopped.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits, e.g. "2m".
    #[arg(long, default_value = "5m")]
    pub timeout: String,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The folder to create (it may exist but must not hold a postcell.toml).
    #[arg(long)]
    pub dir: PathBuf,
    /// The first mail domain.
    #[arg(long)]
    pub domain: String,
    /// The host name for greetings and the certificate. Default: this host's name.
    #[arg(long)]
    pub hostname: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    Add {
        name: String,
    },
    List,
    /// Delete a domain that has no accounts or addresses left.
    Del {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account; without --password-stdin a random password is made and printed.
    Add {
        address: String,
        #[arg(long)]
        password_stdin: bool,
        /// Mailbox quota such as 500M or 2G; 0 means no limit.
        #[arg(long, default_value = "0")]
        quota: String,
        /// Give the account administrator rights (admin console).
        #[arg(long)]
        admin: bool,
    },
    List {
        #[arg(long)]
        domain: Option<String>,
    },
    Show {
        address: String,
    },
    /// Set a new password; without --password-stdin a random one is made and printed.
    Passwd {
        address: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change the quota (0 means no limit).
    Quota {
        address: String,
        size: String,
    },
    Disable {
        address: String,
    },
    Enable {
        address: String,
    },
    /// Delete an account with all its mail.
    Del {
        address: String,
    },
    /// Change the account's settings.
    Set {
        address: String,
        /// Rewrite From: and the envelope sender of submitted mail to the canonical address.
        #[arg(long, value_name = "on|off", value_parser = parse_switch)]
        rewrite_from: Option<bool>,
        /// With forward targets: keep a copy in the INBOX too.
        #[arg(long, value_name = "on|off", value_parser = parse_switch)]
        forward_keep_copy: Option<bool>,
    },
    /// Where the account's mail is forwarded to.
    #[command(subcommand)]
    Forward(ForwardCommand),
}

#[derive(Debug, Subcommand)]
pub enum ForwardCommand {
    /// Forward the account's mail to each TARGET (local or external addresses).
    Add {
        address: String,
        #[arg(required = true)]
        targets: Vec<String>,
    },
    List {
        address: String,
    },
    /// Remove one target, or all of them when no target is given.
    Del {
        address: String,
        target: Option<String>,
    },
}

fn parse_switch(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "on" | "yes" | "true" => Ok(true),
        "off" | "no" | "false" => Ok(false),
        _ => Err(format!("{text:?}: write on or off")),
    }
}

#[derive(Debug, Subcommand)]
pub enum AddressCommand {
    /// Make ADDRESS deliver to the account USER.
    Add {
        address: String,
        user: String,
    },
    List {
        user: String,
    },
    Del {
        address: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Make ADDRESS deliver to each TARGET (local or external addresses).
    Add {
        address: String,
        #[arg(required = true)]
        targets: Vec<String>,
    },
    List,
    /// Remove one target, or the whole alias when no target is given.
    Del {
        address: String,
        target: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Newest first.
    Search {
        /// Sender or recipient.
        #[arg(long)]
        address: Option<String>,
        /// A duration back from now ("2h", "3d") or a date (2026-11-01 or RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// delivered, queued, deferred, bounced or rejected.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Entries waiting for delivery, oldest first.
    List,
    /// One entry with its attempts from the delivery log.
    Show { id: i64 },
    /// Try one entry (or every entry) now instead of at its next retry.
    Retry { id: Option<i64> },
    /// Remove an entry without delivering it or telling the sender.
    Delete { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum DkimCommand {
    /// Make an RSA-2048 key for DOMAIN, store it, and print the DNS record to publish.
    Generate {
        domain: String,
        #[arg(long, default_value = "postcell")]
        selector: String,
    },
    /// Every key, with its DNS record.
    List,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    Show,
}

pub async fn run(cli: Cli) -> Result<()> {
    let command = match cli.command {
        Command::Init(args) => return crate::init::run(&args).await,
        command => command,
    };
    let config = Config::load(&cli.config)?;
    if !matches!(command, Command::Serve) {
        // Command-line tools end quietly when their reader goes away (`| head`); the
        // server keeps Rust's default of ignoring SIGPIPE and handling EPIPE.
        // SAFETY: restoring the default disposition of a signal; no handler involved.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match command {
        Command::Serve => crate::serve::run(config).await,
        Command::Config(ConfigCommand::Show) => {
            print!("{}", config.to_toml()?);
            Ok(())
        }
        command => crate::admin::run(&config, command).await,
    }
}
