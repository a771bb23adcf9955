//! Where mail for a domain goes, in the order to try: a static route from the
//! configuration, else the relayhost, else the domain's MX hosts (RFC 5321 5.1:
//! lowest preference first; no MX means the domain's own A/AAAA; a null MX, RFC 7505,
//! means the domain takes no mail). The fallback relay comes last in every case.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::{DnsError, Error as DnsLookupError};
use postcell_smtp::dns::Dns;

/// A host and port, as written in the configuration: `mx.example.net:25`,
/// `[192.0.2.1]:2525`, `127.0.0.1:2526`, or a bare host (port 25).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        let text = text.trim();
        let error = || format!("{text:?} is not HOST, HOST:PORT or [HOST]:PORT");
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(error)?;
            let port = match after.strip_prefix(':') {
                Some(port) => port.parse().map_err(|_| error())?,
                None if after.is_empty() => 25,
                None => return Err(error()),
            };
            (host.to_owned(), port)
        } else {
            match text.rsplit_once(':') {
                Some((host, port)) if !host.contains(':') => {
                    (host.to_owned(), port.parse().map_err(|_| error())?)
                }
                _ => (text.to_owned(), 25),
            }
        };
        if host.is_empty() {
            return Err(error());
        }
        Ok(Endpoint {
            host: host.trim_end_matches('.').to_ascii_lowercase(),
            port,
        })
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// One address to try, with the name it was found under (TLS SNI, logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub name: String,
    pub addr: SocketAddr,
}

impl std::fmt::Display for Hop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]:{}", self.name, self.addr.ip(), self.addr.port())
    }
}

/// Why no hop could be found; the text goes to the delivery log and the DSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// The domain cannot receive mail: bounce.
    Permanent(String),
    /// DNS failed for now: try again later.
    Temporary(String),
}

#[derive(Debug, Clone, Default)]
pub struct Routing {
    /// Domain (lower case) to endpoints, replacing DNS.
    pub routes: HashMap<String, Vec<Endpoint>>,
    /// Every domain without a static route goes here, not to its MX.
    pub relayhost: Option<Endpoint>,
    /// Tried after everything else has failed.
    pub fallback_relay: Option<Endpoint>,
}

impl Routing {
    /// The hops for `domain`, in order.
    pub async fn hops(&self, dns: &Dns, domain: &str) -> Result<Vec<Hop>, RouteError> {
        let mut hops = Vec::new();
        let primary = if let Some(endpoints) = self.routes.get(domain) {
            resolve_endpoints(dns, endpoints).await
        } else if let Some(relayhost) = &self.relayhost {
            resolve_endpoints(dns, std::slice::from_ref(relayhost)).await
        } else {
            mx_hops(dns, domain).await
        };
        let fallback = match &self.fallback_relay {
            Some(fallback) => resolve_endpoints(dns, std::slice::from_ref(fallback))
                .await
                .unwrap_or_default(),
            None => Vec::new(),
        };
        match primary {
            Ok(found) => hops.extend(found),
            // A domain that takes no mail is not helped by a fallback relay.
            Err(RouteError::Permanent(why)) => return Err(RouteError::Permanent(why)),
            Err(RouteError::Temporary(why)) if fallback.is_empty() => {
                return Err(RouteError::Temporary(why));
            }
            Err(RouteError::Temporary(why)) => {
                tracing::info!(domain, reason = %why, "no primary route; trying the fallback relay");
            }
        }
        for hop in fallback {
            if !hops.contains(&hop) {
                hops.push(hop);
            }
        }
        if hops.is_empty() {
            return Err(RouteError::Temporary(format!(
                "4.4.4 no address found for {domain}"
            )));
        }
        Ok(hops)
    }
}

async fn resolve_endpoints(dns: &Dns, endpoints: &[Endpoint]) -> Result<Vec<Hop>, RouteError> {
    let mut hops = Vec::new();
    let mut last_error = None;
    for endpoint in endpoints {
        match addresses(dns, &endpoint.host).await {
            Ok(ips) => hops.extend(ips.into_iter().map(|ip| Hop {
                name: endpoint.host.clone(),
                addr: SocketAddr::new(ip, endpoint.port),
            })),
            Err(e) => last_error = Some(e),
        }
    }
    match (hops.is_empty(), last_error) {
        (true, Some(e)) => Err(RouteError::Temporary(e)),
        _ => Ok(hops),
    }
}

/// An IP written as the host, or its A/AAAA records.
async fn addresses(dns: &Dns, host: &str) -> Result<Vec<IpAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    match dns.addresses(host).await {
        Ok(ips) if ips.is_empty() => Err(format!("4.4.4 {host} has no address")),
        Ok(ips) => Ok(ips),
        Err(e) => Err(format!("4.4.3 cannot resolve {host}: {e}")),
    }
}

fn is_nxdomain(e: &DnsLookupError) -> bool {
    matches!(e, DnsLookupError::Dns(DnsError::RecordNotFound(code)) if *code == ResponseCode::NXDomain)
}

fn is_no_records(e: &DnsLookupError) -> bool {
    matches!(e, DnsLookupError::Dns(DnsError::RecordNotFound(_)))
}

async fn mx_hops(dns: &Dns, domain: &str) -> Result<Vec<Hop>, RouteError> {
    let exchanges = match dns.mx(domain).await {
        Ok(exchanges) => exchanges,
        Err(e) if is_nxdomain(&e) => {
            return Err(RouteError::Permanent(format!(
                "5.1.2 Host or domain name not found: {domain}"
            )));
        }
        Err(e) if is_no_records(&e) => Vec::new(),
        Err(e) => {
            return Err(RouteError::Temporary(format!(
                "4.4.3 MX lookup for {domain} failed: {e}"
            )));
        }
    };
    // RFC 7505: a single MX of "." says the domain accepts no mail.
    if exchanges.len() == 1 && exchanges[0].1.trim_end_matches('.').is_empty() {
        return Err(RouteError::Permanent(format!(
            "5.1.10 {domain} does not accept mail (null MX)"
        )));
    }
    let names: Vec<String> = if exchanges.is_empty() {
        // RFC 5321 5.1: no MX, so the domain itself is the host.
        vec![domain.to_owned()]
    } else {
        exchanges
            .into_iter()
            .map(|(_, name)| name.trim_end_matches('.').to_owned())
            .filter(|name| !name.is_empty())
            .collect()
    };
    let mut hops = Vec::new();
    let mut temporary = None;
    for name in &names {
        match dns.addresses(name).await {
            Ok(ips) => hops.extend(ips.into_iter().map(|ip| Hop {
                name: name.clone(),
                addr: SocketAddr::new(ip, 25),
            })),
            Err(e) if is_no_records(&e) => {}
            Err(e) => temporary = Some(format!("4.4.3 cannot resolve {name}: {e}")),
        }
    }
    if hops.is_empty() {
        return Err(match temporary {
            Some(why) => RouteError::Temporary(why),
            None => RouteError::Permanent(format!(
                "5.1.2 Host or domain name not found: no address for {domain}"
            )),
        });
    }
    Ok(hops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use postcell_smtp::dns::ResolverMode;

    fn dns(records: &[&str]) -> Dns {
        let records: Vec<String> = records.iter().map(|r| r.to_string()).collect();
        Dns::new(ResolverMode::Static, &records).unwrap()
    }

    fn endpoint(text: &str) -> Endpoint {
        Endpoint::parse(text).unwrap()
    }

    #[test]
    fn endpoints_parse_like_postfix_writes_them() {
        assert_eq!(
            endpoint("mx.example.net"),
            Endpoint {
                host: "mx.example.net".into(),
                port: 25
            }
        );
        assert_eq!(
            endpoint("[192.0.2.1]:2525"),
            Endpoint {
                host: "192.0.2.1".into(),
                port: 2525
            }
        );
        assert_eq!(
            endpoint("[2001:db8::1]"),
            Endpoint {
                host: "2001:db8::1".into(),
                port: 25
            }
        );
        assert_eq!(endpoint("Relay.Example.org.:587").host, "relay.example.org");
        assert!(Endpoint::parse("host:port").is_err());
        assert!(Endpoint::parse("").is_err());
    }

    #[tokio::test]
    async fn mx_hosts_come_in_preference_order_with_their_addresses() {
        let dns = dns(&[
            "example.net MX 20 backup.example.net",
            "example.net MX 10 mx.example.net",
            "mx.example.net A 192.0.2.10",
            "mx.example.net AAAA 2001:db8::10",
            "backup.example.net A 192.0.2.20",
        ]);
        let hops = Routing::default().hops(&dns, "example.net").await.unwrap();
        let shown: Vec<String> = hops.iter().map(Hop::to_string).collect();
        assert_eq!(
            shown,
            [
                "mx.example.net[192.0.2.10]:25",
                "mx.example.net[2001:db8::10]:25",
                "backup.example.net[192.0.2.20]:25"
            ]
        );
    }

    #[tokio::test]
    async fn no_mx_falls_back_to_the_address_null_mx_and_nothing_bounce() {
        let dns = dns(&["a-only.example A 192.0.2.5", "null.example MX 0 ."]);
        let routing = Routing::default();
        let hops = routing.hops(&dns, "a-only.example").await.unwrap();
        assert_eq!(hops[0].to_string(), "a-only.example[192.0.2.5]:25");
        assert!(matches!(
            routing.hops(&dns, "null.example").await,
            Err(RouteError::Permanent(why)) if why.starts_with("5.1.10")
        ));
        assert!(matches!(
            routing.hops(&dns, "nowhere.example").await,
            Err(RouteError::Permanent(why)) if why.starts_with("5.1.2")
        ));
    }

    #[tokio::test]
    async fn static_routes_then_relayhost_then_fallback() {
        let dns = dns(&["relay.example.org A 192.0.2.30"]);
        let routing = Routing {
            routes: HashMap::from([("example.net".to_owned(), vec![endpoint("127.0.0.1:2526")])]),
            relayhost: Some(endpoint("relay.example.org:587")),
            fallback_relay: Some(endpoint("[127.0.0.2]:2527")),
        };
        let hops = routing.hops(&dns, "example.net").await.unwrap();
        assert_eq!(hops[0].addr, "127.0.0.1:2526".parse().unwrap());
        assert_eq!(hops[1].addr, "127.0.0.2:2527".parse().unwrap());
        let hops = routing.hops(&dns, "example.com").await.unwrap();
        let shown: Vec<String> = hops.iter().map(Hop::to_string).collect();
        assert_eq!(
            shown,
            [
                "relay.example.org[192.0.2.30]:587",
                "127.0.0.2[127.0.0.2]:2527"
            ]
        );
    }
}
