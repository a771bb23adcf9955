//! DNS for the verdicts (SPF, DKIM, DMARC) and the relay (MX, A, AAAA), through
//! mail-auth's resolver (hickory) with a table of records in front of it.
//!
//! mail-auth asks its caches before it asks the network; [`Dns`] hands it caches that
//! answer from a table of records written in the configuration. With the `system`
//! resolver the table overrides DNS for the names it holds; with the `static`
//! resolver the table is all there is: a name it lacks does not exist, and no query
//! ever leaves the node (tests, and air-gapped cells).
//!
//! ```text
//! records = ["example.net TXT v=spf1 ip4:192.0.2.1 -all",
//!            "example.net MX 10 mx.example.net",
//!            "mx.example.net A 192.0.2.25"]
//! ```

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::resolver::ToFqdn;
use mail_auth::dkim::DomainKeyReport;
use mail_auth::dmarc::Dmarc;
use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::spf::Spf;
use mail_auth::{
    DnsError, DnssecStatus, Error as AuthError, MX, MessageAuthenticator, Parameters, RecordSet,
    ResolverCache, Txt,
};
use thiserror::Error;

/// Where answers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResolverMode {
    /// The system's resolver (`/etc/resolv.conf`), with the table in front.
    #[default]
    System,
    /// The table alone; nothing is sent anywhere.
    Static,
}

#[derive(Debug, Error)]
pub enum DnsConfigError {
    #[error("DNS record {0:?}: write it as \"NAME TYPE VALUE\" (TYPE is TXT, MX, A or AAAA)")]
    Syntax(String),
    #[error("DNS record {record:?}: {reason}")]
    Value { record: String, reason: String },
    #[error("cannot start the DNS resolver: {0}")]
    Resolver(String),
}

/// The records of the configuration, by type, each answering mail-auth's cache
/// lookups. In static mode a name the table lacks is answered "no such record".
#[derive(Default)]
pub struct Tables {
    static_only: bool,
    txt: TxtTable,
    mx: MxTable,
    a: ATable,
    aaaa: AaaaTable,
    ptr: PtrTable,
}

#[derive(Default)]
pub struct TxtTable {
    static_only: bool,
    records: HashMap<Box<str>, Txt>,
}

#[derive(Default)]
pub struct MxTable {
    static_only: bool,
    records: HashMap<Box<str>, RecordSet<MX>>,
}

#[derive(Default)]
pub struct ATable {
    static_only: bool,
    records: HashMap<Box<str>, RecordSet<Ipv4Addr>>,
}

#[derive(Default)]
pub struct AaaaTable {
    static_only: bool,
    records: HashMap<Box<str>, RecordSet<Ipv6Addr>>,
}

/// Reverse lookups are never configured; in static mode they find nothing.
#[derive(Default)]
pub struct PtrTable {
    static_only: bool,
}

fn record_set<T>(items: Vec<T>) -> RecordSet<T> {
    RecordSet {
        rrset: Arc::from(items.into_boxed_slice()),
        dnssec_status: DnssecStatus::Indeterminate,
    }
}

/// The resolver of one node; cheap to clone.
#[derive(Clone)]
pub struct Dns {
    authenticator: MessageAuthenticator,
    tables: Arc<Tables>,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns")
            .field("static_only", &self.tables.static_only)
            .finish()
    }
}

impl Default for Dns {
    /// A resolver that knows no names and asks nobody.
    fn default() -> Self {
        Dns {
            authenticator: offline_authenticator(),
            tables: Arc::new(Tables::new(true)),
        }
    }
}

/// A resolver with no name servers: building it does no I/O and it sends nothing.
fn offline_authenticator() -> MessageAuthenticator {
    let config = ResolverConfig::from_parts(None, vec![], vec![]);
    match MessageAuthenticator::new(config, ResolverOpts::default()) {
        Ok(resolver) => resolver,
        Err(e) => panic!("a resolver without name servers cannot fail to build: {e}"),
    }
}

impl Dns {
    /// A resolver in `mode` with `records` (`"NAME TYPE VALUE"` lines) in front.
    pub fn new(mode: ResolverMode, records: &[String]) -> Result<Dns, DnsConfigError> {
        let static_only = mode == ResolverMode::Static;
        let mut tables = Tables::new(static_only);
        for record in records {
            tables.add(record)?;
        }
        let authenticator = if static_only {
            offline_authenticator()
        } else {
            MessageAuthenticator::new_system_conf()
                .map_err(|e| DnsConfigError::Resolver(e.to_string()))?
        };
        Ok(Dns {
            authenticator,
            tables: Arc::new(tables),
        })
    }

    pub fn is_static(&self) -> bool {
        self.tables.static_only
    }

    pub fn authenticator(&self) -> &MessageAuthenticator {
        &self.authenticator
    }

    /// mail-auth parameters whose caches answer from the table first.
    #[allow(clippy::type_complexity)]
    pub fn parameters<P>(
        &self,
        params: P,
    ) -> Parameters<'_, P, TxtTable, MxTable, ATable, AaaaTable, PtrTable> {
        Parameters::new(params)
            .with_txt_cache(&self.tables.txt)
            .with_mx_cache(&self.tables.mx)
            .with_ipv4_cache(&self.tables.a)
            .with_ipv6_cache(&self.tables.aaaa)
            .with_ptr_cache(&self.tables.ptr)
    }

    /// MX records of `domain`, in preference order.
    pub async fn mx(&self, domain: &str) -> Result<Vec<(u16, String)>, AuthError> {
        let set = self
            .authenticator
            .mx_lookup(domain, Some(&self.tables.mx))
            .await?;
        let mut hosts = Vec::new();
        for mx in set.rrset.iter() {
            for exchange in mx.exchanges.iter() {
                hosts.push((mx.preference, exchange.to_string()));
            }
        }
        hosts.sort_by_key(|(preference, _)| *preference);
        Ok(hosts)
    }

    /// IPv4 then IPv6 addresses of `host`.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, AuthError> {
        let mut addresses: Vec<IpAddr> = Vec::new();
        let v4 = self
            .authenticator
            .ipv4_lookup(host, Some(&self.tables.a))
            .await;
        let v6 = self
            .authenticator
            .ipv6_lookup(host, Some(&self.tables.aaaa))
            .await;
        let mut first_error = None;
        match v4 {
            Ok(set) => addresses.extend(set.rrset.iter().copied().map(IpAddr::from)),
            Err(e) => first_error = Some(e),
        }
        match v6 {
            Ok(set) => addresses.extend(set.rrset.iter().copied().map(IpAddr::from)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
        match (addresses.is_empty(), first_error) {
            (true, Some(e)) => Err(e),
            _ => Ok(addresses),
        }
    }
}

impl Tables {
    fn new(static_only: bool) -> Tables {
        Tables {
            static_only,
            txt: TxtTable {
                static_only,
                ..TxtTable::default()
            },
            mx: MxTable {
                static_only,
                ..MxTable::default()
            },
            a: ATable {
                static_only,
                ..ATable::default()
            },
            aaaa: AaaaTable {
                static_only,
                ..AaaaTable::default()
            },
            ptr: PtrTable { static_only },
        }
    }

    fn add(&mut self, record: &str) -> Result<(), DnsConfigError> {
        let syntax = || DnsConfigError::Syntax(record.to_owned());
        let mut parts = record.trim().splitn(3, char::is_whitespace);
        let name = parts.next().filter(|n| !n.is_empty()).ok_or_else(syntax)?;
        let kind = parts.next().ok_or_else(syntax)?;
        let value = parts.next().map(str::trim).ok_or_else(syntax)?;
        let name = name.to_fqdn();
        let bad = |reason: String| DnsConfigError::Value {
            record: record.to_owned(),
            reason,
        };
        match kind.to_ascii_uppercase().as_str() {
            "TXT" => {
                let txt = parse_txt(&name, value).map_err(|e| bad(e.to_string()))?;
                self.txt.records.insert(name, txt);
            }
            "MX" => {
                let (preference, exchange) =
                    value.split_once(char::is_whitespace).ok_or_else(syntax)?;
                let preference: u16 = preference
                    .parse()
                    .map_err(|_| bad(format!("{preference:?} is not an MX preference")))?;
                let exchange = exchange.trim().to_fqdn();
                let set = self
                    .mx
                    .records
                    .entry(name)
                    .or_insert_with(|| record_set(Vec::new()));
                let mut records: Vec<MX> = set.rrset.to_vec();
                records.push(MX {
                    exchanges: vec![exchange].into_boxed_slice(),
                    preference,
                });
                records.sort_by_key(|mx| mx.preference);
                *set = record_set(records);
            }
            "A" => {
                let ip: Ipv4Addr = value
                    .parse()
                    .map_err(|_| bad(format!("{value:?} is not an IPv4 address")))?;
                let set = self
                    .a
                    .records
                    .entry(name)
                    .or_insert_with(|| record_set(Vec::new()));
                let mut ips = set.rrset.to_vec();
                ips.push(ip);
                *set = record_set(ips);
            }
            "AAAA" => {
                let ip: Ipv6Addr = value
                    .parse()
                    .map_err(|_| bad(format!("{value:?} is not an IPv6 address")))?;
                let set = self
                    .aaaa
                    .records
                    .entry(name)
                    .or_insert_with(|| record_set(Vec::new()));
                let mut ips = set.rrset.to_vec();
                ips.push(ip);
                *set = record_set(ips);
            }
            _ => return Err(syntax()),
        }
        Ok(())
    }
}

/// A TXT record parsed as what its name and content say it is: an SPF policy, a
/// DMARC policy or a DKIM key.
fn parse_txt(name: &str, value: &str) -> Result<Txt, AuthError> {
    let value = value.trim_matches('"').as_bytes();
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("_dmarc.") {
        Ok(Txt::from(Dmarc::parse(value)?))
    } else if lower.contains("._domainkey.") {
        if lower.starts_with("_report.") {
            return Ok(Txt::from(DomainKeyReport::parse(value)?));
        }
        Ok(Txt::from(mail_auth::common::verify::DomainKey::parse(
            value,
        )?))
    } else {
        Ok(Txt::from(Spf::parse(value)?))
    }
}

fn not_found() -> AuthError {
    AuthError::Dns(DnsError::RecordNotFound(ResponseCode::NXDomain))
}

/// `get` for one table: the configured answer, else "nothing" in static mode (an
/// empty set or an NXDOMAIN error), else `None` (ask DNS).
macro_rules! table_cache {
    ($table:ty, $key:ty, $value:ty, $empty:expr) => {
        impl ResolverCache<$key, $value> for $table {
            fn get<Q>(&self, name: &Q) -> Option<$value>
            where
                $key: Borrow<Q>,
                Q: Hash + Eq + ?Sized,
            {
                match self.records.get(name) {
                    Some(value) => Some(value.clone()),
                    None if self.static_only => Some($empty),
                    None => None,
                }
            }

            fn remove<Q>(&self, _name: &Q) -> Option<$value>
            where
                $key: Borrow<Q>,
                Q: Hash + Eq + ?Sized,
            {
                None
            }

            // Answers from DNS are not kept here: hickory caches them itself.
            fn insert(&self, _key: $key, _value: $value, _valid_until: std::time::Instant) {}
        }
    };
}

table_cache!(TxtTable, Box<str>, Txt, Txt::Error(not_found()));
table_cache!(MxTable, Box<str>, RecordSet<MX>, record_set(Vec::new()));
table_cache!(
    ATable,
    Box<str>,
    RecordSet<Ipv4Addr>,
    record_set(Vec::new())
);
table_cache!(
    AaaaTable,
    Box<str>,
    RecordSet<Ipv6Addr>,
    record_set(Vec::new())
);

impl ResolverCache<IpAddr, RecordSet<Box<str>>> for PtrTable {
    fn get<Q>(&self, _name: &Q) -> Option<RecordSet<Box<str>>>
    where
        IpAddr: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.static_only.then(|| record_set(Vec::new()))
    }

    fn remove<Q>(&self, _name: &Q) -> Option<RecordSet<Box<str>>>
    where
        IpAddr: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        None
    }

    fn insert(&self, _key: IpAddr, _value: RecordSet<Box<str>>, _valid_until: std::time::Instant) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn static_records_answer_and_unknown_names_do_not_exist() {
        let dns = Dns::new(
            ResolverMode::Static,
            &[
                "example.net MX 20 mx2.example.net".into(),
                "example.net MX 10 mx1.example.net".into(),
                "mx1.example.net A 192.0.2.1".into(),
                "mx1.example.net AAAA 2001:db8::1".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            dns.mx("example.net").await.unwrap(),
            vec![
                (10, "mx1.example.net.".to_owned()),
                (20, "mx2.example.net.".to_owned())
            ]
        );
        assert_eq!(
            dns.addresses("mx1.example.net").await.unwrap(),
            vec![
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
        assert!(dns.mx("nowhere.example").await.unwrap().is_empty());
        assert!(dns.addresses("nowhere.example").await.unwrap().is_empty());
    }

    #[test]
    fn bad_records_are_named() {
        let err = Dns::new(ResolverMode::Static, &["example.net".into()]).unwrap_err();
        assert!(err.to_string().contains("NAME TYPE VALUE"), "{err}");
        let err = Dns::new(ResolverMode::Static, &["x.example A 999.1.1.1".into()]).unwrap_err();
        assert!(err.to_string().contains("not an IPv4 address"), "{err}");
        let err = Dns::new(ResolverMode::Static, &["x.example MX ten mx".into()]).unwrap_err();
        assert!(err.to_string().contains("not an MX preference"), "{err}");
    }
}
