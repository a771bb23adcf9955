//! The operator's commands: domains, users, addresses, aliases, the log, the queue and
//! status. They work on the store directly, so they run on any node, with the server
//! running or not.

use std::io::BufRead;

use anyhow::{Context, Result, bail};
use postcell_directory::{Address, password_secrets};
use postcell_store::{Account, DeliveryStatus, LogQuery, NewAccount, Store};

use crate::cli::{
    AddressCommand, AliasCommand, Command, DkimCommand, DomainCommand, DrainArgs, ForwardCommand,
    LogCommand, QueueCommand, UserCommand,
};
use crate::config::{Config, Interval, Size};

pub async fn run(config: &Config, command: Command) -> Result<()> {
    let store = Store::open(&config.store_config())
        .await
        .context("cannot open the store")?;
    let result = match command {
        Command::Domain(c) => domain(&store, c).await,
        Command::User(c) => user(&store, c).await,
        Command::Address(c) => address(&store, c).await,
        Command::Alias(c) => alias(&store, c).await,
        Command::Log(c) => log(&store, c).await,
        Command::Queue(c) => queue(&store, c).await,
        Command::Dkim(c) => dkim(&store, c).await,
        Command::Status => status(config, &store).await,
        Command::Drain(args) => drain(config, &store, args).await,
        Command::Init(_) | Command::Serve | Command::Config(_) => {
            bail!("not an administrative command")
        }
    };
    store.close().await;
    result
}

fn parse_address(text: &str) -> Result<Address> {
    Address::parse(text).with_context(|| format!("{text:?} is not a valid address"))
}

fn parse_domain(text: &str) -> Result<String> {
    postcell_directory::normalise_domain(text).map_err(|e| anyhow::anyhow!("{text:?}: {e}"))
}

async fn account(store: &Store, text: &str) -> Result<Account> {
    let address = parse_address(text)?;
    store
        .account_by_address(&address.key())
        .await?
        .with_context(|| format!("no account has the address {text}"))
}

/// One line from standard input, or a new random password that is printed.
fn password(from_stdin: bool) -> Result<(String, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        let password = line.trim_end_matches(['\r', '\n']).to_owned();
        if password.is_empty() {
            bail!("the password read from standard input is empty");
        }
        Ok((password, false))
    } else {
        Ok((random_password(), true))
    }
}

pub fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn quota(text: &str) -> Result<i64> {
    let size = Size::parse(text).map_err(anyhow::Error::msg)?;
    i64::try_from(size.0).context("quota too large")
}

async fn domain(store: &Store, command: DomainCommand) -> Result<()> {
    match command {
        DomainCommand::Add { name } => {
            let name = parse_domain(&name)?;
            store.add_domain(&name).await?;
            println!("added domain {name}");
        }
        DomainCommand::List => {
            for d in store.list_domains().await? {
                println!(
                    "{}\taccounts={}\taddresses={}",
                    d.name, d.accounts, d.addresses
                );
            }
        }
        DomainCommand::Del { name } => {
            let name = parse_domain(&name)?;
            store.delete_domain(&name).await?;
            println!("deleted domain {name}");
        }
    }
    Ok(())
}

pub async fn create_user(
    store: &Store,
    address: &str,
    password: &str,
    quota_bytes: i64,
    is_admin: bool,
) -> Result<Account> {
    let address = parse_address(address)?;
    if address.is_address_literal() {
        bail!("an account needs a domain name, not an address literal");
    }
    let (hash, scram) = password_secrets(password).await?;
    let account = store
        .create_account(&NewAccount {
            name: address.key(),
            password_hash: hash.clone(),
            quota_bytes,
            is_admin,
        })
        .await?;
    // Until this second write the account has no SCRAM secrets: it can log in with
    // every mechanism but SCRAM, never with a stale password.
    store
        .set_password_secrets(account.id, &hash, scram.as_ref())
        .await?;
    Ok(account)
}

async fn user(store: &Store, command: UserCommand) -> Result<()> {
    match command {
        UserCommand::Add {
            address,
            password_stdin,
            quota: q,
            admin,
        } => {
            let (password, generated) = password(password_stdin)?;
            let account = create_user(store, &address, &password, quota(&q)?, admin).await?;
            println!("added user {}", account.name);
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::List { domain } => {
            let domain = domain.as_deref().map(parse_domain).transpose()?;
            for a in store.list_accounts(domain.as_deref()).await? {
                println!(
                    "{}\tused={}\tquota={}\t{}{}",
                    a.name,
                    a.used_bytes,
                    if a.quota_bytes == 0 {
                        "none".to_owned()
                    } else {
                        a.quota_bytes.to_string()
                    },
                    if a.enabled { "enabled" } else { "disabled" },
                    if a.is_admin { "\tadmin" } else { "" }
                );
            }
        }
        UserCommand::Show { address } => {
            let a = account(store, &address).await?;
            println!("account:   {}", a.name);
            println!("enabled:   {}", a.enabled);
            println!("admin:     {}", a.is_admin);
            println!(
                "quota:     {}",
                if a.quota_bytes == 0 {
                    "none".to_owned()
                } else {
                    format!("{} bytes", a.quota_bytes)
                }
            );
            println!("used:      {} bytes", a.used_bytes);
            println!(
                "addresses: {}",
                store.addresses_of_account(a.id).await?.join(", ")
            );
            let settings = store.account_settings(a.id).await?;
            println!(
                "rewrite from: {}",
                if settings.rewrite_from { "on" } else { "off" }
            );
            let forwards = store.forwards(a.id).await?;
            if !forwards.is_empty() {
                println!(
                    "forward:   {}{}",
                    forwards.join(", "),
                    if settings.forward_keep_copy {
                        " (and a copy kept)"
                    } else {
                        " (no copy kept)"
                    }
                );
            }
            for mailbox in store.mailboxes(a.id).await? {
                let (count, bytes) = store.mailbox_totals(mailbox.id).await?;
                println!(
                    "mailbox:   {} ({count} messages, {bytes} bytes)",
                    mailbox.name
                );
            }
        }
        UserCommand::Passwd {
            address,
            password_stdin,
        } => {
            let a = account(store, &address).await?;
            let (password, generated) = password(password_stdin)?;
            let (hash, scram) = password_secrets(&password).await?;
            store
                .set_password_secrets(a.id, &hash, scram.as_ref())
                .await?;
            println!("password changed for {}", a.name);
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::Quota { address, size } => {
            let a = account(store, &address).await?;
            store.set_quota(a.id, quota(&size)?).await?;
            println!("quota of {} set to {size}", a.name);
        }
        UserCommand::Disable { address } => {
            let a = account(store, &address).await?;
            store.set_enabled(a.id, false).await?;
            println!("disabled {}", a.name);
        }
        UserCommand::Enable { address } => {
            let a = account(store, &address).await?;
            store.set_enabled(a.id, true).await?;
            println!("enabled {}", a.name);
        }
        UserCommand::Del { address } => {
            let a = account(store, &address).await?;
            store.delete_account(a.id).await?;
            println!("deleted {} and its mail", a.name);
        }
        UserCommand::Set {
            address,
            rewrite_from,
            forward_keep_copy,
        } => {
            let a = account(store, &address).await?;
            if rewrite_from.is_none() && forward_keep_copy.is_none() {
                bail!("nothing to set: give --rewrite-from or --forward-keep-copy");
            }
            let mut settings = store.account_settings(a.id).await?;
            if let Some(on) = rewrite_from {
                settings.rewrite_from = on;
            }
            if let Some(on) = forward_keep_copy {
                settings.forward_keep_copy = on;
            }
            store.set_account_settings(a.id, &settings).await?;
            let switch = |on: bool| if on { "on" } else { "off" };
            println!(
                "{}: rewrite-from {}, forward-keep-copy {}",
                a.name,
                switch(settings.rewrite_from),
                switch(settings.forward_keep_copy)
            );
        }
        UserCommand::Forward(command) => forward(store, command).await?,
    }
    Ok(())
}

async fn forward(store: &Store, command: ForwardCommand) -> Result<()> {
    match command {
        ForwardCommand::Add { address, targets } => {
            let a = account(store, &address).await?;
            let targets = targets
                .iter()
                .map(|t| parse_address(t).map(|a| a.key()))
                .collect::<Result<Vec<_>>>()?;
            if targets.contains(&a.name) {
                bail!("an account cannot forward to itself; use --forward-keep-copy on instead");
            }
            for target in &targets {
                store.add_forward(a.id, target).await?;
            }
            println!(
                "{} forwards to {}",
                a.name,
                store.forwards(a.id).await?.join(", ")
            );
        }
        ForwardCommand::List { address } => {
            let a = account(store, &address).await?;
            for target in store.forwards(a.id).await? {
                println!("{target}");
            }
        }
        ForwardCommand::Del { address, target } => {
            let a = account(store, &address).await?;
            let target = target
                .as_deref()
                .map(parse_address)
                .transpose()?
                .map(|t| t.key());
            let removed = store.delete_forward(a.id, target.as_deref()).await?;
            if removed == 0 {
                bail!("{} has no such forward target", a.name);
            }
            println!("removed {removed} forward target(s) of {}", a.name);
        }
    }
    Ok(())
}

async fn dkim(store: &Store, command: DkimCommand) -> Result<()> {
    match command {
        DkimCommand::Generate { domain, selector } => {
            let domain = parse_domain(&domain)?;
            let selector_ok = !selector.is_empty()
                && selector.split('.').all(|label| {
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !selector_ok {
                bail!("--selector {selector:?}: use letters, digits, '-' and '.'");
            }
            if !store.domain_exists(&domain).await? {
                bail!("{domain} is not a local domain (add it with `postcell domain add`)");
            }
            let (private_key, public_key) = postcell_smtp::dkim::generate_key()?;
            store
                .put_dkim_key(
                    &domain,
                    &selector,
                    postcell_smtp::dkim::ALGORITHM,
                    &private_key,
                    &public_key,
                )
                .await?;
            let key = store
                .dkim_key(&domain)
                .await?
                .context("the key just stored is missing")?;
            println!("generated an RSA-2048 key for {domain} (selector {selector}); publish:");
            print_dkim_record(&key);
        }
        DkimCommand::List => {
            for key in store.dkim_keys().await? {
                print_dkim_record(&key);
            }
        }
    }
    Ok(())
}

/// The record as a zone-file line; long values split into 255-octet strings.
fn print_dkim_record(key: &postcell_store::DkimKey) {
    let (name, value) = postcell_smtp::dkim::dns_record(key);
    let chunks: Vec<String> = value
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    println!("{name}. IN TXT ( {} )", chunks.join(" "));
}

async fn address(store: &Store, command: AddressCommand) -> Result<()> {
    match command {
        AddressCommand::Add { address, user } => {
            let a = account(store, &user).await?;
            let address = parse_address(&address)?;
            store.add_account_address(&address.key(), a.id).await?;
            println!("{} now delivers to {}", address.key(), a.name);
        }
        AddressCommand::List { user } => {
            let a = account(store, &user).await?;
            for address in store.addresses_of_account(a.id).await? {
                println!("{address}");
            }
        }
        AddressCommand::Del { address } => {
            let address = parse_address(&address)?;
            store.delete_account_address(&address.key()).await?;
            println!("deleted address {}", address.key());
        }
    }
    Ok(())
}

async fn alias(store: &Store, command: AliasCommand) -> Result<()> {
    match command {
        AliasCommand::Add { address, targets } => {
            let address = parse_address(&address)?;
            let targets = targets
                .iter()
                .map(|t| parse_address(t).map(|a| a.key()))
                .collect::<Result<Vec<_>>>()?;
            store.add_alias(&address.key(), &targets).await?;
            println!("{} -> {}", address.key(), targets.join(", "));
        }
        AliasCommand::List => {
            for (address, targets) in store.list_aliases().await? {
                println!("{address}\t{}", targets.join(", "));
            }
        }
        AliasCommand::Del { address, target } => {
            let address = parse_address(&address)?;
            let target = target
                .as_deref()
                .map(parse_address)
                .transpose()?
                .map(|t| t.key());
            store
                .delete_alias(&address.key(), target.as_deref())
                .await?;
            println!("deleted");
        }
    }
    Ok(())
}

/// `--since` as a duration back from now or a date.
fn parse_since(text: &str) -> Result<i64> {
    if let Ok(interval) = Interval::parse(text) {
        return Ok(postcell_store::now() - interval.0.as_secs() as i64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc().timestamp());
    }
    bail!("--since {text:?}: write a duration (\"2h\", \"3d\") or a date (2026-11-01 or RFC 3339)")
}

fn format_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| t.to_string())
}

async fn log(store: &Store, command: LogCommand) -> Result<()> {
    let LogCommand::Search {
        address,
        since,
        status,
        limit,
    } = command;
    let query = LogQuery {
        address: address
            .as_deref()
            .map(parse_address)
            .transpose()?
            .map(|a| a.key()),
        since: since.as_deref().map(parse_since).transpose()?,
        status: status
            .as_deref()
            .map(|s| {
                DeliveryStatus::parse(s).with_context(|| {
                    format!("--status {s:?}: use delivered, queued, deferred, bounced or rejected")
                })
            })
            .transpose()?,
        limit,
    };
    for r in store.search_log(&query).await? {
        println!(
            "{}\t{}\t{}\t{}\tfrom=<{}>\tto=<{}>\tmessage-id={}\tremote={}\treply={}",
            format_time(r.at),
            r.node,
            r.direction,
            r.status,
            r.sender,
            r.recipient,
            r.message_id.as_deref().unwrap_or("-"),
            r.remote.as_deref().unwrap_or("-"),
            r.reply.as_deref().unwrap_or("-"),
        );
    }
    Ok(())
}

async fn queue(store: &Store, command: QueueCommand) -> Result<()> {
    match command {
        QueueCommand::List => {
            for e in store.queued(1000).await? {
                println!(
                    "{}\t{}\tfrom=<{}>\tto=<{}>\tsize={}\tattempts={}\tnext={}\t{}",
                    e.id,
                    format_time(e.created_at),
                    e.sender,
                    e.recipient,
                    e.size,
                    e.attempts,
                    format_time(e.next_attempt_at),
                    e.last_reply.as_deref().unwrap_or("")
                );
            }
        }
        QueueCommand::Show { id } => {
            let e = store
                .queue_entry(id)
                .await?
                .with_context(|| format!("no queue entry {id}"))?;
            println!("id:          {}", e.id);
            println!("queued:      {}", format_time(e.created_at));
            println!("from:        <{}>", e.sender);
            println!("to:          <{}>", e.recipient);
            println!("message-id:  {}", e.message_id.as_deref().unwrap_or("-"));
            println!("size:        {}", e.size);
            println!("attempts:    {}", e.attempts);
            println!("next:        {}", format_time(e.next_attempt_at));
            println!("expires:     {}", format_time(e.expires_at));
            if let Some(at) = e.last_attempt_at {
                println!(
                    "last:        {} {} {}",
                    format_time(at),
                    e.last_remote.as_deref().unwrap_or("-"),
                    e.last_reply.as_deref().unwrap_or("")
                );
            }
            match (&e.lease_owner, e.lease_expires_at) {
                (Some(owner), Some(until)) if until > postcell_store::now() => {
                    println!(
                        "being sent:  by {owner} (lease until {})",
                        format_time(until)
                    )
                }
                _ => {}
            }
            for r in store.queue_log(id).await? {
                println!(
                    "log:         {}\t{}\t{}\tremote={}\treply={}",
                    format_time(r.at),
                    r.node,
                    r.status,
                    r.remote.as_deref().unwrap_or("-"),
                    r.reply.as_deref().unwrap_or("-")
                );
            }
        }
        QueueCommand::Retry { id } => {
            let changed = store.retry_queue(id).await?;
            if id.is_some() && changed == 0 {
                bail!("no queue entry {}", id.unwrap_or_default());
            }
            println!(
                "{changed} entr{} due now",
                if changed == 1 { "y" } else { "ies" }
            );
        }
        QueueCommand::Delete { id } => {
            if !store.delete_queue_entry(id).await? {
                bail!("no queue entry {id}");
            }
            println!("deleted queue entry {id}");
        }
    }
    Ok(())
}

async fn status(config: &Config, store: &Store) -> Result<()> {
    println!("config:   {}", config.file.display());
    println!("node:     {}", config.node_id());
    println!("store:    {}", store.backend());
    match store.blob_storage() {
        postcell_store::BlobStorage::Folder(dir) => println!("blobs:    folder {}", dir.display()),
        postcell_store::BlobStorage::Database => println!("blobs:    in the database"),
    }
    for (label, n) in store.counts().await? {
        println!("{label:<9} {n}");
    }
    let now = postcell_store::now();
    for node in store.nodes().await? {
        let state = node.state(now);
        println!(
            "node {}\t{}\troles={}\tversion={}\taddress={}\tlast heartbeat {}s ago\tstarted {}",
            node.id,
            state.as_str(),
            node.roles,
            node.version,
            node.address,
            now - node.heartbeat_at,
            format_time(node.started_at),
        );
    }
    let mut shown = std::collections::HashSet::new();
    for run in store.job_runs(200).await? {
        if !shown.insert(run.job.clone()) {
            continue;
        }
        println!(
            "job {}\tlast run on {}\t{}s ago\t{}\t{}",
            run.job,
            run.node,
            (postcell_store::now_ms() - run.started_ms) / 1000,
            run.outcome.as_deref().unwrap_or("running"),
            run.detail.as_deref().unwrap_or(""),
        );
    }
    Ok(())
}

async fn drain(config: &Config, store: &Store, args: DrainArgs) -> Result<()> {
    let node = args.node.unwrap_or_else(|| config.node_id());
    let wait = Interval::parse(&args.timeout)
        .map_err(|e| anyhow::anyhow!("--timeout: {e}"))?
        .0;
    let Some(before) = store.node(&node).await? else {
        bail!("no node {node:?} in this cell (see postcell status)");
    };
    if before.state(postcell_store::now()) == postcell_store::NodeState::Stopped {
        bail!("node {node} is already stopped");
    }
    store.request_drain(&node).await?;
    println!(
        "asked node {node} to drain; it notices within {}s",
        before.heartbeat_interval
    );
    if !args.wait {
        return Ok(());
    }
    let deadline = std::time::Instant::now() + wait;
    loop {
        let row = store.node(&node).await?;
        match row.map(|r| r.state(postcell_store::now())) {
            Some(postcell_store::NodeState::Stopped) => {
                println!("node {node} has stopped");
                return Ok(());
            }
            Some(postcell_store::NodeState::Down) => {
                bail!("node {node} went silent without a clean stop (see postcell status)")
            }
            _ => {}
        }
        if std::time::Instant::now() >= deadline {
            bail!("node {node} has not stopped after {}", args.timeout);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
