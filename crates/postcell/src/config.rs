//! `postcell.toml`: every key, its default, and the checks that refuse a wrong file at
//! start with the file, the key and what is wrong. `docs/config.md` documents each key.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::cell_config::{CellSection, DrainSection, ListenerTable, MaintenanceSection, Role};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub node: NodeSection,
    #[serde(default)]
    pub store: StoreSection,
    #[serde(default)]
    pub listen: BTreeMap<ListenerName, Endpoint>,
    #[serde(default)]
    pub tls: TlsSection,
    #[serde(default)]
    pub auth: AuthSection,
    #[serde(default)]
    pub directory: DirectorySection,
    #[serde(default)]
    pub smtp: SmtpSection,
    #[serde(default)]
    pub pop3: Pop3Section,
    #[serde(default)]
    pub imap: ImapSection,
    #[serde(default)]
    pub submission: SubmissionSection,
    #[serde(default)]
    pub mx: MxSection,
    #[serde(default)]
    pub dns: DnsSection,
    #[serde(default)]
    pub relay: RelaySection,
    #[serde(default)]
    pub srs: SrsSection,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub cell: CellSection,
    #[serde(default)]
    pub drain: DrainSection,
    #[serde(default)]
    pub maintenance: MaintenanceSection,
    #[serde(default)]
    pub search: SearchSection,
    /// The folder the file is in; relative paths in the file are relative to it.
    #[serde(skip)]
    pub base: PathBuf,
    #[serde(skip)]
    pub file: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Stable identity of this node in the cell. Default: the host name.
    pub id: Option<String>,
    /// The name this node gives itself in greetings and trace headers. Default: the
    /// host name.
    pub hostname: Option<String>,
    /// What this node does for the cell. Default: the roles of its listeners.
    pub roles: Option<Vec<Role>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    #[default]
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BlobKind {
    #[default]
    Folder,
    Database,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityKind {
    #[default]
    Full,
    Normal,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    pub backend: BackendKind,
    pub path: PathBuf,
    pub url: Option<String>,
    pub max_connections: u32,
    pub blobs: BlobKind,
    pub blob_dir: PathBuf,
    pub durability: DurabilityKind,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            backend: BackendKind::Sqlite,
            path: PathBuf::from("data/postcell.db"),
            url: None,
            max_connections: 20,
            blobs: BlobKind::Folder,
            blob_dir: PathBuf::from("data/blobs"),
            durability: DurabilityKind::Full,
        }
    }
}

/// The search index's background writer (postcell-store's indexing module).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchSection {
    /// Messages taken from the queue at a time when neither mail nor clients are at work.
    pub index_batch: usize,
    /// The share of time the indexer may take while mail arrives or clients are at work.
    pub index_busy_share: f64,
}

impl Default for SearchSection {
    fn default() -> Self {
        let defaults = postcell_store::IndexerSettings::default();
        SearchSection {
            index_batch: defaults.batch,
            index_busy_share: defaults.busy_share,
        }
    }
}

impl SearchSection {
    pub fn indexer(&self) -> postcell_store::IndexerSettings {
        postcell_store::IndexerSettings {
            batch: self.index_batch,
            busy_share: self.index_busy_share,
            ..postcell_store::IndexerSettings::default()
        }
    }
}

/// The listeners a node may open. A listener left out of `[listen]` is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerName {
    Smtp,
    Submission,
    Submissions,
    Imap,
    Imaps,
    Pop3,
    Pop3s,
    Http,
}

impl ListenerName {
    pub fn as_str(self) -> &'static str {
        match self {
            ListenerName::Smtp => "smtp",
            ListenerName::Submission => "submission",
            ListenerName::Submissions => "submissions",
            ListenerName::Imap => "imap",
            ListenerName::Imaps => "imaps",
            ListenerName::Pop3 => "pop3",
            ListenerName::Pop3s => "pop3s",
            ListenerName::Http => "http",
        }
    }

    /// Listeners this version serves.
    pub fn is_available(self) -> bool {
        matches!(
            self,
            ListenerName::Smtp
                | ListenerName::Submission
                | ListenerName::Submissions
                | ListenerName::Imap
                | ListenerName::Imaps
                | ListenerName::Pop3
                | ListenerName::Pop3s
                | ListenerName::Http
        )
    }

    pub fn implicit_tls(self) -> bool {
        matches!(
            self,
            ListenerName::Submissions | ListenerName::Imaps | ListenerName::Pop3s
        )
    }
}

impl fmt::Display for ListenerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A socket address such as `127.0.0.1:2525` or `[::]:25`, written as a string, or as
/// a table with more settings for the listener (the PROXY protocol):
/// `{ address = "0.0.0.0:25", proxy_protocol = true, trusted_proxies = ["10.0.1.5"] }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint(pub SocketAddr, pub Option<ListenerTable>);

fn parse_socket_address<E: serde::de::Error>(text: &str) -> Result<SocketAddr, E> {
    text.parse().map_err(|_| {
        E::custom(format!(
            "{text:?} is not a socket address (write it as \"IP:PORT\", e.g. \"0.0.0.0:25\" or \"[::]:25\")"
        ))
    })
}

impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.1 {
            None => s.serialize_str(&self.0.to_string()),
            Some(table) => table.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Address(String),
            Table(ListenerTable),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "expected \"IP:PORT\" or a table { address = \"IP:PORT\", proxy_protocol = true, trusted_proxies = [...] }",
            )
        })? {
            Raw::Address(text) => Ok(Endpoint(parse_socket_address(&text)?, None)),
            Raw::Table(table) => Ok(Endpoint(parse_socket_address(&table.address)?, Some(table))),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for TlsSection {
    fn default() -> Self {
        TlsSection {
            cert: PathBuf::from("tls/cert.pem"),
            key: PathBuf::from("tls/key.pem"),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// Accept passwords on connections that are neither TLS nor from loopback.
    pub allow_plaintext: bool,
    /// Failed logins from one address answered without delay.
    pub failures_before_delay: u32,
    /// Added to the answer per failure beyond that, up to `max_failure_delay`.
    pub failure_delay: Interval,
    pub max_failure_delay: Interval,
    /// Failed logins after which the address is refused for `lockout`.
    pub failures_before_lockout: u32,
    pub lockout: Interval,
    /// Failures older than this are forgotten.
    pub failure_window: Interval,
    /// How long a successful password check is remembered.
    pub verified_login_ttl: Interval,
    /// Successful checks remembered at most; 0 turns the memory off.
    pub verified_login_entries: usize,
}

impl Default for AuthSection {
    fn default() -> Self {
        let limits = postcell_directory::LoginLimits::default();
        let directory = postcell_directory::DirectoryConfig::default();
        AuthSection {
            allow_plaintext: false,
            failures_before_delay: limits.slow_after,
            failure_delay: Interval(limits.delay),
            max_failure_delay: Interval(limits.max_delay),
            failures_before_lockout: limits.lock_after,
            lockout: Interval(limits.lockout),
            failure_window: Interval(limits.window),
            verified_login_ttl: Interval(directory.verified_login_ttl),
            verified_login_entries: directory.verified_login_entries,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectorySection {
    /// Sub-address separator (`user+tag@`); empty turns sub-addressing off.
    pub recipient_delimiter: String,
}

impl Default for DirectorySection {
    fn default() -> Self {
        DirectorySection {
            recipient_delimiter: "+".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSection {
    pub max_message_size: Size,
    pub max_recipients: usize,
    pub max_line_length: usize,
    pub max_errors: usize,
    pub idle_timeout: Interval,
    pub max_connections: usize,
}

impl Default for SmtpSection {
    fn default() -> Self {
        SmtpSection {
            max_message_size: Size(25 * 1024 * 1024),
            max_recipients: 100,
            max_line_length: 2048,
            max_errors: 10,
            idle_timeout: Interval(Duration::from_secs(300)),
            max_connections: 1000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pop3Section {
    pub idle_timeout: Interval,
    pub lease_ttl: Interval,
    pub max_connections: usize,
}

impl Default for Pop3Section {
    fn default() -> Self {
        Pop3Section {
            idle_timeout: Interval(Duration::from_secs(600)),
            lease_ttl: Interval(Duration::from_secs(60)),
            max_connections: 1000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImapSection {
    /// RFC 9051 section 5.4: an autologout timer of at least 30 minutes.
    pub idle_timeout: Interval,
    pub max_connections: usize,
    /// The largest message APPEND accepts (APPENDLIMIT).
    pub max_message_size: Size,
    /// How often IDLE reads the mailbox's changes when no change-feed hint came.
    pub poll_interval: Interval,
}

impl Default for ImapSection {
    fn default() -> Self {
        ImapSection {
            idle_timeout: Interval(Duration::from_secs(30 * 60)),
            max_connections: 1000,
            max_message_size: Size(64 * 1024 * 1024),
            poll_interval: Interval(Duration::from_secs(5)),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubmissionSection {
    /// Accept AUTH without TLS from loopback peers.
    pub loopback_plaintext: bool,
    /// Concurrent sessions on `submission` and `submissions` each.
    pub max_connections: usize,
}

impl Default for SubmissionSection {
    fn default() -> Self {
        SubmissionSection {
            loopback_plaintext: true,
            max_connections: 1000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MxSection {
    /// Check SPF, DKIM and DMARC of incoming mail; write `Authentication-Results:`.
    pub verify: bool,
    /// Refuse mail that fails DMARC when the domain's policy is `p=reject`.
    pub reject_dmarc_failures: bool,
}

impl Default for MxSection {
    fn default() -> Self {
        MxSection {
            verify: true,
            reject_dmarc_failures: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ResolverKind {
    #[default]
    System,
    Static,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsSection {
    /// `system`: the system's resolver with `records` in front; `static`: `records`
    /// alone, nothing is sent.
    pub resolver: ResolverKind,
    /// `"NAME TYPE VALUE"` (TYPE: TXT, MX, A, AAAA).
    pub records: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StartTlsKind {
    #[default]
    Opportunistic,
    Required,
    Off,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelaySection {
    /// Run outbound queue workers on this node.
    pub enabled: bool,
    /// Send everything (without a static route) here instead of to the MX hosts.
    pub relayhost: Option<String>,
    /// Tried when the MX hosts or the relayhost cannot be reached.
    pub fallback_relay: Option<String>,
    /// Domain to `host:port` (one or a list), replacing DNS for that domain.
    pub routes: BTreeMap<String, RouteTargets>,
    pub retry_initial: Interval,
    pub retry_max: Interval,
    pub expiry: Interval,
    pub lease_ttl: Interval,
    pub poll_interval: Interval,
    pub batch: usize,
    pub max_connections: usize,
    pub per_destination: usize,
    pub connect_timeout: Interval,
    pub command_timeout: Interval,
    pub data_timeout: Interval,
    pub starttls: StartTlsKind,
    pub verify_certificates: bool,
}

/// One `host:port`, or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum RouteTargets {
    One(String),
    Many(Vec<String>),
}

impl RouteTargets {
    fn list(&self) -> Vec<&str> {
        match self {
            RouteTargets::One(one) => vec![one.as_str()],
            RouteTargets::Many(many) => many.iter().map(String::as_str).collect(),
        }
    }
}

impl Default for RelaySection {
    fn default() -> Self {
        RelaySection {
            enabled: true,
            relayhost: None,
            fallback_relay: None,
            routes: BTreeMap::new(),
            retry_initial: Interval(Duration::from_secs(5 * 60)),
            retry_max: Interval(Duration::from_secs(4 * 3600)),
            expiry: Interval(Duration::from_secs(5 * 86400)),
            lease_ttl: Interval(Duration::from_secs(60)),
            poll_interval: Interval(Duration::from_secs(2)),
            batch: 100,
            max_connections: 20,
            per_destination: 4,
            connect_timeout: Interval(Duration::from_secs(30)),
            command_timeout: Interval(Duration::from_secs(300)),
            data_timeout: Interval(Duration::from_secs(600)),
            starttls: StartTlsKind::Opportunistic,
            verify_certificates: false,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SrsSection {
    /// The HMAC key of rewritten senders; empty turns SRS off (forwards keep the
    /// original sender).
    pub secret: String,
    /// The domain rewritten senders are at. Default: the node's host name.
    pub domain: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// A tracing filter: `info`, `debug`, `postcell_smtp=debug,info`...
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// A size in bytes, written as a number or with a K/M/G suffix (powers of 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl Size {
    pub fn parse(text: &str) -> Result<Size, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let n: u64 = digits.parse().map_err(|_| {
            format!("{text:?} is not a size (write e.g. 1048576, \"500K\", \"25M\", \"2G\")")
        })?;
        let factor: u64 = match unit.trim().to_ascii_uppercase().as_str() {
            "" | "B" => 1,
            "K" | "KB" | "KIB" => 1 << 10,
            "M" | "MB" | "MIB" => 1 << 20,
            "G" | "GB" | "GIB" => 1 << 30,
            "T" | "TB" | "TIB" => 1 << 40,
            _ => return Err(format!("{text:?} has an unknown unit (use K, M, G or T)")),
        };
        n.checked_mul(factor)
            .map(Size)
            .ok_or_else(|| format!("{text:?} is too large"))
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a size: a number of bytes or a string like \"25M\"")
        })? {
            Raw::Number(n) => Ok(Size(n)),
            Raw::Text(t) => Size::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// A duration written as `"30s"`, `"5m"`, `"2h"` or `"1d"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval(pub Duration);

impl Interval {
    pub fn parse(text: &str) -> Result<Interval, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let error =
            || format!("{text:?} is not a duration (write e.g. \"30s\", \"5m\", \"2h\", \"1d\")");
        let n: u64 = digits.parse().map_err(|_| error())?;
        let seconds = match unit {
            "ms" => return Ok(Interval(Duration::from_millis(n))),
            "s" => n,
            "m" => n * 60,
            "h" => n * 3600,
            "d" => n * 86400,
            _ => return Err(error()),
        };
        if seconds == 0 {
            return Err(format!("{text:?} must be longer than zero"));
        }
        Ok(Interval(Duration::from_secs(seconds)))
    }
}

impl Serialize for Interval {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = self.0;
        if d.subsec_millis() != 0 {
            s.serialize_str(&format!("{}ms", d.as_millis()))
        } else {
            s.serialize_str(&format!("{}s", d.as_secs()))
        }
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a duration string like \"30s\" or \"5m\"")
        })?;
        Interval::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {file}: {cause}")]
    Read { file: String, cause: std::io::Error },
    #[error("config file {file}: {message}")]
    Invalid { file: String, message: String },
}

impl Config {
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|cause| ConfigError::Read {
            file: file.display().to_string(),
            cause,
        })?;
        Config::parse(&text, file)
    }

    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            file: file.display().to_string(),
            message,
        };
        let mut config: Config =
            toml::from_str(text).map_err(|e| invalid(e.to_string().trim_end().to_owned()))?;
        config.file = file.to_path_buf();
        config.base = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        config.validate().map_err(invalid)?;
        Ok(config)
    }

    /// Checks what the types cannot: values that must agree with each other.
    fn validate(&self) -> Result<(), String> {
        if self.store.backend == BackendKind::Postgres
            && self.store.url.as_deref().unwrap_or("").is_empty()
        {
            return Err("key store.url: backend \"postgres\" needs a url such as \"postgres://postcell@db.example.org/postcell\"".into());
        }
        if self.store.max_connections == 0 {
            return Err("key store.max_connections: must be at least 1".into());
        }
        for (name, endpoint) in &self.listen {
            if !name.is_available() {
                return Err(format!(
                    "key listen.{name}: this version of Postcell does not serve {name} yet; remove the line"
                ));
            }
            if let Some((other, _)) = self
                .listen
                .iter()
                .find(|(n, e)| *n < name && e.0 == endpoint.0)
            {
                return Err(format!(
                    "key listen.{name}: {} is already used by listen.{other}",
                    endpoint.0
                ));
            }
        }
        crate::cell_config::check_node_id(&self.node_id())?;
        for (name, endpoint) in &self.listen {
            if let Some(table) = &endpoint.1 {
                crate::cell_config::proxy_policy(*name, table)?;
            }
        }
        if let Some(roles) = &self.node.roles {
            if roles.contains(&Role::Relay) && !self.relay.enabled {
                return Err(
                    "key node.roles: lists relay, which relay.enabled = false turns off".into(),
                );
            }
            for role in roles {
                let listens = self.listen.keys().any(|l| Role::of_listener(*l) == *role);
                if !listens && *role != Role::Relay {
                    return Err(format!(
                        "key node.roles: role {role} has no listener in [listen]"
                    ));
                }
            }
            for name in self.listen.keys() {
                let role = Role::of_listener(*name);
                if !roles.contains(&role) {
                    return Err(format!(
                        "key listen.{name}: serves the {role} role, which node.roles leaves out"
                    ));
                }
            }
        }
        if !(1..=10_000).contains(&self.search.index_batch) {
            return Err("key search.index_batch: must be from 1 to 10000".into());
        }
        let share = self.search.index_busy_share;
        if !(share > 0.0 && share <= 1.0) {
            return Err("key search.index_busy_share: must be above 0 and at most 1".into());
        }
        if self.drain.timeout.0 < Duration::from_secs(1) {
            return Err("key drain.timeout: must be at least 1s".into());
        }
        if self.cell.job_lease.0 < Duration::from_secs(2) {
            return Err("key cell.job_lease: must be at least 2s".into());
        }
        // Jobs find their last run in the job record: it must outlive the intervals.
        let maintenance = &self.maintenance;
        if maintenance.job_runs_retention.0
            < maintenance
                .blob_gc_interval
                .0
                .max(maintenance.expiry_interval.0)
        {
            return Err("key maintenance.job_runs_retention: must be at least as long as blob_gc_interval and expiry_interval".into());
        }
        if self.directory.recipient_delimiter.chars().count() > 1 {
            return Err(
                "key directory.recipient_delimiter: must be one character, or empty for none"
                    .into(),
            );
        }
        if self.smtp.max_message_size.0 < 1024 {
            return Err("key smtp.max_message_size: must be at least 1K".into());
        }
        for (key, value, min) in [
            ("smtp.max_recipients", self.smtp.max_recipients, 1),
            ("smtp.max_line_length", self.smtp.max_line_length, 512),
            ("smtp.max_errors", self.smtp.max_errors, 1),
            ("smtp.max_connections", self.smtp.max_connections, 1),
            ("pop3.max_connections", self.pop3.max_connections, 1),
            ("imap.max_connections", self.imap.max_connections, 1),
            (
                "submission.max_connections",
                self.submission.max_connections,
                1,
            ),
            ("relay.batch", self.relay.batch, 1),
            ("relay.max_connections", self.relay.max_connections, 1),
            ("relay.per_destination", self.relay.per_destination, 1),
            (
                "auth.failures_before_lockout",
                self.auth.failures_before_lockout as usize,
                1,
            ),
        ] {
            if value < min {
                return Err(format!("key {key}: must be at least {min}"));
            }
        }
        if self.imap.max_message_size.0 < 1024 {
            return Err("key imap.max_message_size: must be at least 1K".into());
        }
        if self.imap.poll_interval.0 < Duration::from_secs(1) {
            return Err("key imap.poll_interval: must be at least 1s".into());
        }
        if self.pop3.lease_ttl.0 < Duration::from_secs(3) {
            return Err("key pop3.lease_ttl: must be at least 3s".into());
        }
        if self.relay.lease_ttl.0 < Duration::from_secs(2) {
            return Err("key relay.lease_ttl: must be at least 2s".into());
        }
        if self.relay.retry_max.0 < self.relay.retry_initial.0 {
            return Err("key relay.retry_max: must not be shorter than relay.retry_initial".into());
        }
        self.routing()?;
        postcell_smtp::dns::Dns::new(postcell_smtp::dns::ResolverMode::Static, &self.dns.records)
            .map_err(|e| format!("key dns.records: {e}"))?;
        tracing_subscriber::EnvFilter::try_new(&self.log.level).map_err(|e| {
            format!(
                "key log.level: {:?} is not a valid filter: {e}",
                self.log.level
            )
        })?;
        Ok(())
    }

    /// The configuration in effect, defaults included, as TOML (`postcell config show`).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        let mut effective = self.clone();
        effective.node.id = Some(self.node_id());
        effective.node.hostname = Some(self.hostname());
        effective.node.roles = Some(self.roles());
        toml::to_string(&effective)
    }

    /// A path from the file, made absolute against the file's folder.
    pub fn path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base.join(path)
        }
    }

    pub fn hostname(&self) -> String {
        self.node.hostname.clone().unwrap_or_else(system_hostname)
    }

    pub fn node_id(&self) -> String {
        self.node
            .id
            .clone()
            .unwrap_or_else(|| crate::cell_config::node_id_from_hostname(&system_hostname()))
    }

    /// The roles this node runs: as configured, or those of its listeners and, unless
    /// `relay.enabled = false`, the relay.
    pub fn roles(&self) -> Vec<Role> {
        let mut roles = match &self.node.roles {
            Some(roles) => roles.clone(),
            None => {
                let mut roles: Vec<Role> =
                    self.listen.keys().map(|l| Role::of_listener(*l)).collect();
                if self.relay.enabled {
                    roles.push(Role::Relay);
                }
                roles
            }
        };
        roles.sort();
        roles.dedup();
        roles
    }

    /// The PROXY protocol policy of a listener, if it takes one (checked at load).
    pub fn proxy_policy(&self, name: ListenerName) -> Option<postcell_net::ProxyProtocol> {
        let table = self.listen.get(&name)?.1.as_ref()?;
        crate::cell_config::proxy_policy(name, table).ok().flatten()
    }

    pub fn store_config(&self) -> postcell_store::StoreConfig {
        use postcell_store::{BackendConfig, BlobConfig, Durability};
        let backend = match self.store.backend {
            BackendKind::Sqlite => BackendConfig::Sqlite {
                path: self.path(&self.store.path),
                durability: match self.store.durability {
                    DurabilityKind::Full => Durability::Full,
                    DurabilityKind::Normal => Durability::Normal,
                },
            },
            BackendKind::Postgres => BackendConfig::Postgres {
                url: self.store.url.clone().unwrap_or_default(),
                max_connections: self.store.max_connections,
            },
        };
        let blobs = match self.store.blobs {
            BlobKind::Folder => BlobConfig::Folder(self.path(&self.store.blob_dir)),
            BlobKind::Database => BlobConfig::Database,
        };
        postcell_store::StoreConfig {
            backend,
            blobs,
            node_id: self.node_id(),
        }
    }

    pub fn directory_config(&self) -> postcell_directory::DirectoryConfig {
        postcell_directory::DirectoryConfig {
            recipient_delimiter: self.directory.recipient_delimiter.chars().next(),
            login_limits: postcell_directory::LoginLimits {
                slow_after: self.auth.failures_before_delay,
                delay: self.auth.failure_delay.0,
                max_delay: self.auth.max_failure_delay.0,
                lock_after: self.auth.failures_before_lockout,
                lockout: self.auth.lockout.0,
                window: self.auth.failure_window.0,
            },
            verified_login_ttl: self.auth.verified_login_ttl.0,
            verified_login_entries: self.auth.verified_login_entries,
        }
    }

    /// The relay's routes, relayhost and fallback relay, checked.
    pub fn routing(&self) -> Result<postcell_relay::route::Routing, String> {
        use postcell_relay::route::Endpoint;
        let parse =
            |key: &str, text: &str| Endpoint::parse(text).map_err(|e| format!("key {key}: {e}"));
        let mut routes = std::collections::HashMap::new();
        for (domain, targets) in &self.relay.routes {
            let key = format!("relay.routes.{domain:?}");
            let endpoints = targets
                .list()
                .into_iter()
                .map(|t| parse(&key, t))
                .collect::<Result<Vec<_>, _>>()?;
            if endpoints.is_empty() {
                return Err(format!("key {key}: needs at least one host:port"));
            }
            let domain = postcell_directory::normalise_domain(domain)
                .map_err(|e| format!("key {key}: {e}"))?;
            routes.insert(domain, endpoints);
        }
        Ok(postcell_relay::route::Routing {
            routes,
            relayhost: self
                .relay
                .relayhost
                .as_deref()
                .map(|t| parse("relay.relayhost", t))
                .transpose()?,
            fallback_relay: self
                .relay
                .fallback_relay
                .as_deref()
                .map(|t| parse("relay.fallback_relay", t))
                .transpose()?,
        })
    }
}

pub fn system_hostname() -> String {
    gethostname::gethostname()
        .into_string()
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("/etc/postcell/postcell.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config.store.backend, BackendKind::Sqlite);
        assert!(config.listen.is_empty());
        assert_eq!(config.smtp.max_message_size, Size(25 << 20));
        assert_eq!(
            config.path(Path::new("data/x")),
            PathBuf::from("/etc/postcell/data/x")
        );
    }

    #[test]
    fn listeners_and_sizes_parse() {
        let config = parse(
            "[listen]\nsmtp = \"127.0.0.1:2525\"\npop3s = \"[::1]:995\"\n[smtp]\nmax_message_size = \"10M\"\nidle_timeout = \"30s\"\n",
        )
        .unwrap();
        assert_eq!(
            config.listen[&ListenerName::Smtp].0,
            "127.0.0.1:2525".parse().unwrap()
        );
        assert_eq!(config.smtp.max_message_size, Size(10 << 20));
        assert_eq!(config.smtp.idle_timeout, Interval(Duration::from_secs(30)));
    }

    #[test]
    fn an_unknown_key_is_named_with_the_file() {
        let err = parse("[smtp]\nmax_recipient = 5\n").unwrap_err();
        assert!(err.contains("/etc/postcell/postcell.toml"), "{err}");
        assert!(err.contains("max_recipient"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn wrong_values_say_what_is_wrong() {
        let err = parse("[listen]\nsmtp = \"localhost\"\n").unwrap_err();
        assert!(err.contains("not a socket address"), "{err}");
        let err = parse("[smtp]\nmax_message_size = \"12X\"\n").unwrap_err();
        assert!(err.contains("unknown unit"), "{err}");
        let err = parse("[listen]\nbogus = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(err.contains("bogus"), "{err}");
        let err = parse("[store]\nbackend = \"postgres\"\n").unwrap_err();
        assert!(err.contains("store.url"), "{err}");
        let err = parse("[listen]\nsmtp = \"127.0.0.1:1\"\npop3 = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(err.contains("already used"), "{err}");
        let err = parse("[smtp]\nmax_recipients = 0\n").unwrap_err();
        assert!(err.contains("smtp.max_recipients"), "{err}");
        let err = parse("[relay]\nrelayhost = \"host:port\"\n").unwrap_err();
        assert!(err.contains("relay.relayhost"), "{err}");
        let err = parse("[dns]\nrecords = [\"example.net A nope\"]\n").unwrap_err();
        assert!(err.contains("dns.records") && err.contains("IPv4"), "{err}");
        let err = parse("[relay]\nretry_initial = \"1h\"\nretry_max = \"5m\"\n").unwrap_err();
        assert!(err.contains("relay.retry_max"), "{err}");
        let err = parse("[smtp\n").unwrap_err();
        assert!(err.contains("postcell.toml"), "{err}");
    }

    #[test]
    fn cell_keys_roles_and_proxy_listeners() {
        let config = parse(
            "[node]\nid = \"mail-a\"\nroles = [\"mx\", \"web\"]\n\
             [listen]\nsmtp = { address = \"0.0.0.0:25\", proxy_protocol = true, trusted_proxies = [\"10.0.1.0/24\", \"10.0.2.5\"], proxy_timeout = \"3s\" }\n\
             http = \"127.0.0.1:8080\"\n[drain]\nannounce = \"2s\"\n[cell]\nheartbeat = \"1s\"\n",
        )
        .unwrap();
        assert_eq!(
            config.listen[&ListenerName::Smtp].0,
            "0.0.0.0:25".parse().unwrap()
        );
        let policy = config.proxy_policy(ListenerName::Smtp).unwrap();
        assert!(policy.trusts("10.0.1.77".parse().unwrap()));
        assert!(policy.trusts("10.0.2.5".parse().unwrap()));
        assert!(!policy.trusts("10.0.2.6".parse().unwrap()));
        assert_eq!(policy.timeout, Duration::from_secs(3));
        assert_eq!(config.proxy_policy(ListenerName::Http), None);
        assert_eq!(config.roles(), vec![Role::Mx, Role::Web]);
        assert_eq!(config.drain.announce, Interval(Duration::from_secs(2)));
        // Shown back as it was written.
        let shown = config.to_toml().unwrap();
        assert!(shown.contains("proxy_protocol = true"), "{shown}");
        assert!(shown.contains("roles = [\"mx\", \"web\"]"), "{shown}");
        // Roles follow from the listeners when not given, with the relay unless it is off.
        let config =
            parse("[listen]\nimaps = \"127.0.0.1:993\"\npop3 = \"127.0.0.1:110\"\n").unwrap();
        assert_eq!(config.roles(), vec![Role::Imap, Role::Pop3, Role::Relay]);
        let config = parse(
            "[listen]\nimaps = \"127.0.0.1:993\"\npop3 = \"127.0.0.1:110\"\n[relay]\nenabled = false\n",
        )
        .unwrap();
        assert_eq!(config.roles(), vec![Role::Imap, Role::Pop3]);
    }

    #[test]
    fn wrong_cell_keys_say_what_is_wrong() {
        for (text, expected) in [
            ("[node]\nid = \"a b\"\n", "node.id"),
            ("[node]\nid = \"a:b\"\n", "node.id"),
            (
                "[node]\nroles = [\"relay\"]\n[relay]\nenabled = false\n",
                "relay.enabled = false",
            ),
            ("[node]\nroles = [\"imap\"]\n", "role imap has no listener"),
            (
                "[node]\nroles = [\"web\"]\n[listen]\nhttp = \"127.0.0.1:1\"\nsmtp = \"127.0.0.1:2\"\n",
                "leaves out",
            ),
            ("[node]\nroles = [\"chef\"]\n", "chef"),
            (
                "[listen]\nsmtp = { address = \"0.0.0.0:25\", proxy_protocol = true }\n",
                "needs trusted_proxies",
            ),
            (
                "[listen]\nsmtp = { address = \"0.0.0.0:25\", trusted_proxies = [\"10.0.0.1\"] }\n",
                "need proxy_protocol = true",
            ),
            (
                "[listen]\nsmtp = { address = \"0.0.0.0:25\", proxy_protocol = true, trusted_proxies = [\"ten\"] }\n",
                "\"ten\" is not an address",
            ),
            (
                "[listen]\nhttp = { address = \"0.0.0.0:80\", proxy_protocol = true, trusted_proxies = [\"10.0.0.1\"] }\n",
                "does not take the PROXY protocol",
            ),
            (
                "[listen]\nsmtp = { address = \"nowhere\" }\n",
                "not a socket address",
            ),
            ("[cell]\njob_lease = \"1s\"\n", "cell.job_lease"),
            (
                "[maintenance]\nblob_gc_interval = \"8d\"\n",
                "job_runs_retention",
            ),
            ("[search]\nindex_batch = 0\n", "search.index_batch"),
            (
                "[search]\nindex_busy_share = 0.0\n",
                "search.index_busy_share",
            ),
            (
                "[search]\nindex_busy_share = 1.5\n",
                "search.index_busy_share",
            ),
            ("[search]\nbatch = 5\n", "batch"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
        assert_eq!(
            crate::cell_config::node_id_from_hostname("mail/a b"),
            "mail-a-b"
        );
    }

    #[test]
    fn sizes_and_intervals() {
        assert_eq!(Size::parse("1024").unwrap(), Size(1024));
        assert_eq!(Size::parse("2G").unwrap(), Size(2 << 30));
        assert!(Size::parse("G").is_err());
        assert_eq!(
            Interval::parse("2h").unwrap(),
            Interval(Duration::from_secs(7200))
        );
        assert!(Interval::parse("0s").is_err());
        assert!(Interval::parse("5 minutes").is_err());
    }
}
