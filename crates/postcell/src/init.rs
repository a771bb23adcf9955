//! `postcell init`: a ready-to-run node folder in one command.

use std::path::Path;

use anyhow::{Context, Result, bail};
use postcell_store::Store;

use crate::cli::InitArgs;
use crate::config::{Config, system_hostname};

/// Ports above 1024 on loopback: a first run needs no privileges and exposes nothing.
/// Production nodes change `[listen]` to the standard ports (docs/config.md).
const LISTEN: &[(&str, &str)] = &[
    ("smtp", "127.0.0.1:2525"),
    ("pop3", "127.0.0.1:2110"),
    ("pop3s", "127.0.0.1:2995"),
    ("imap", "127.0.0.1:2143"),
    ("imaps", "127.0.0.1:2993"),
    ("submission", "127.0.0.1:2587"),
    ("submissions", "127.0.0.1:2465"),
    ("http", "127.0.0.1:8080"),
];

pub async fn run(args: &InitArgs) -> Result<()> {
    let domain = postcell_directory::normalise_domain(&args.domain)
        .map_err(|e| anyhow::anyhow!("--domain {:?}: {e}", args.domain))?;
    let hostname = args.hostname.clone().unwrap_or_else(system_hostname);
    let dir = &args.dir;
    let config_file = dir.join("postcell.toml");
    if config_file.exists() {
        bail!(
            "{} already exists; init makes new nodes only",
            config_file.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;

    let text = config_text(&hostname);
    // Check what we are about to write with the same parser `serve` uses.
    let config = Config::parse(&text, &config_file)?;
    std::fs::write(&config_file, &text)
        .with_context(|| format!("cannot write {}", config_file.display()))?;

    let (cert, key) = (config.path(&config.tls.cert), config.path(&config.tls.key));
    postcell_net::tls::generate_self_signed(&hostname, &cert, &key)?;

    let store = Store::open(&config.store_config())
        .await
        .context("cannot create the store")?;
    store.add_domain(&domain).await?;
    let password = crate::admin::random_password();
    let postmaster = format!("postmaster@{domain}");
    crate::admin::create_user(&store, &postmaster, &password, 0, true).await?;
    store.close().await;

    let shown = display(dir);
    println!("Created a Postcell node in {shown}:");
    println!("  {shown}/postcell.toml      configuration (embedded store, listeners on 127.0.0.1)");
    println!("  {shown}/data/              the store: SQLite database and message blobs");
    println!("  {shown}/tls/               self-signed certificate for {hostname}");
    println!("  domain {domain}, account {postmaster} (administrator), password: {password}");
    println!();
    println!("Next, start it:");
    println!("  postcell --config {shown}/postcell.toml serve");
    Ok(())
}

fn display(dir: &Path) -> String {
    dir.display().to_string().trim_end_matches('/').to_owned()
}

fn config_text(hostname: &str) -> String {
    let mut listen = String::new();
    for (name, addr) in LISTEN {
        listen.push_str(&format!("{name} = \"{addr}\"\n"));
    }
    format!(
        r#"# Postcell node configuration. Every key and its default: docs/config.md.

[node]
hostname = "{hostname}"

[store]
# The embedded store: SQLite and a blob folder, relative to this file.
backend = "sqlite"
path = "data/postcell.db"
blobs = "folder"
blob_dir = "data/blobs"

[listen]
# A listener left out is off. For a public node use the standard ports, e.g.
# smtp = "0.0.0.0:25", pop3 = "0.0.0.0:110", pop3s = "0.0.0.0:995",
# submission = "0.0.0.0:587", submissions = "0.0.0.0:465",
# imap = "0.0.0.0:143", imaps = "0.0.0.0:993".
{listen}
[tls]
cert = "tls/cert.pem"
key = "tls/key.pem"
"#
    )
}
