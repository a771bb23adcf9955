//! Inbound verdicts on the `mx` role: SPF (RFC 7208) for the HELO and MAIL FROM
//! identities, DKIM (RFC 6376) signatures, and the DMARC (RFC 7489) policy of the
//! `From:` domain, all with mail-auth, written as one `Authentication-Results:` header
//! (RFC 8601).
//!
//! ```text
//! Authentication-Results: mx.example.org;
//!     dkim=pass header.d=example.net header.s=sel header.b=AbCdEf;
//!     spf=pass (mx.example.org: domain of bob@example.net designates 192.0.2.1 as
//!         permitted sender) smtp.mailfrom=bob@example.net;
//!     dmarc=pass header.from=example.net policy.dmarc=reject
//! ```

use std::net::IpAddr;

use mail_auth::common::headers::HeaderWriter;
use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{AuthenticatedMessage, AuthenticationResults, DmarcResult};

use crate::dns::Dns;

/// What the checks found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The `Authentication-Results:` header, with CRLF.
    pub header: String,
    /// DMARC failed and the domain asks receivers to reject (`p=reject`).
    pub dmarc_reject: bool,
    /// `pass`, `fail`, `none`... for logs and metrics.
    pub dmarc: String,
}

/// The envelope the checks need.
#[derive(Debug, Clone, Copy)]
pub struct Peer<'a> {
    pub ip: IpAddr,
    pub helo: &'a str,
    /// The envelope sender; empty for the null sender.
    pub mail_from: &'a str,
}

/// Runs SPF, DKIM and DMARC over a received message.
pub async fn check(dns: &Dns, hostname: &str, peer: Peer<'_>, message: &[u8]) -> Verdict {
    let authenticator = dns.authenticator();
    let helo_domain = peer.helo.trim_start_matches('[').trim_end_matches(']');
    let spf_helo = authenticator
        .verify_spf(dns.parameters(SpfParameters::verify_ehlo(peer.ip, helo_domain, hostname)))
        .await;
    // RFC 7208 2.4: with the null sender, the MAIL FROM identity is postmaster@HELO.
    let mail_from = if peer.mail_from.is_empty() {
        format!("postmaster@{helo_domain}")
    } else {
        peer.mail_from.to_owned()
    };
    let spf_mail_from = authenticator
        .verify_spf(dns.parameters(SpfParameters::verify_mail_from(
            peer.ip,
            helo_domain,
            hostname,
            &mail_from,
        )))
        .await;
    let mut results = AuthenticationResults::new(hostname);
    let Some(parsed) = AuthenticatedMessage::parse(message) else {
        // Not even a header section: only SPF can be judged.
        let header = results
            .with_spf_ehlo_result(&spf_helo, peer.ip, helo_domain)
            .with_spf_mailfrom_result(&spf_mail_from, peer.ip, peer.mail_from, helo_domain)
            .to_header();
        return Verdict {
            header,
            dmarc_reject: false,
            dmarc: "none".into(),
        };
    };
    let dkim = authenticator.verify_dkim(dns.parameters(&parsed)).await;
    let mail_from_domain = mail_from
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or(helo_domain);
    let dmarc = authenticator
        .verify_dmarc(dns.parameters(DmarcParameters::new(
            &parsed,
            &dkim,
            mail_from_domain,
            &spf_mail_from,
        )))
        .await;
    let from_domain = parsed.from.first().map(String::as_str).unwrap_or("");
    results = results
        .with_dkim_results(&dkim, from_domain)
        .with_spf_ehlo_result(&spf_helo, peer.ip, helo_domain)
        .with_spf_mailfrom_result(&spf_mail_from, peer.ip, peer.mail_from, helo_domain);
    let dmarc_pass =
        dmarc.spf_result() == &DmarcResult::Pass || dmarc.dkim_result() == &DmarcResult::Pass;
    // mail-auth reports "no aligned pass" as None; with a policy record that is a DMARC
    // failure (RFC 7489 6.6.2). Errors looking things up are not.
    let judged = |r: &DmarcResult| matches!(r, DmarcResult::None | DmarcResult::Fail(_));
    let dmarc_failed = !dmarc_pass
        && dmarc.dmarc_record().is_some()
        && judged(dmarc.spf_result())
        && judged(dmarc.dkim_result());
    let dmarc_reject = dmarc_failed && dmarc.policy() == Policy::Reject;
    let mut header = if dmarc_failed {
        results.to_header()
    } else if !dmarc.domain().is_empty() {
        results.with_dmarc_result(&dmarc).to_header()
    } else {
        results.to_header()
    };
    if dmarc_failed {
        // Written here: mail-auth would write "none" for a failure without a result.
        let domain: String = dmarc
            .domain()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
            .collect();
        let end = header.trim_end_matches(['\r', '\n']).len();
        header.truncate(end);
        header.push_str(&format!(
            ";\r\n\tdmarc=fail header.from={domain} policy.dmarc={}\r\n",
            dmarc.policy()
        ));
    }
    let dmarc_text = if dmarc_pass {
        "pass"
    } else if dmarc_failed {
        "fail"
    } else {
        "none"
    };
    Verdict {
        header,
        dmarc_reject,
        dmarc: dmarc_text.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::ResolverMode;

    fn dns() -> Dns {
        let records: Vec<String> = [
            "pass.example TXT v=spf1 ip4:192.0.2.1 -all",
            "_dmarc.pass.example TXT v=DMARC1; p=reject",
            "fail.example TXT v=spf1 ip4:192.0.2.99 -all",
            "_dmarc.fail.example TXT v=DMARC1; p=reject",
        ]
        .iter()
        .map(|r| r.to_string())
        .collect();
        Dns::new(ResolverMode::Static, &records).unwrap()
    }

    fn peer(mail_from: &str) -> Peer<'_> {
        Peer {
            ip: "192.0.2.1".parse().unwrap(),
            helo: "client.example",
            mail_from,
        }
    }

    #[tokio::test]
    async fn spf_pass_aligns_and_dmarc_passes() {
        let verdict = check(
            &dns(),
            "mx.example.org",
            peer("bob@pass.example"),
            b"From: bob@pass.example\r\nSubject: x\r\n\r\nbody\r\n",
        )
        .await;
        assert!(
            verdict
                .header
                .starts_with("Authentication-Results: mx.example.org;"),
            "{}",
            verdict.header
        );
        assert!(verdict.header.contains("spf=pass"), "{}", verdict.header);
        assert!(verdict.header.contains("dmarc=pass"), "{}", verdict.header);
        assert_eq!(verdict.dmarc, "pass");
        assert!(!verdict.dmarc_reject);
    }

    #[tokio::test]
    async fn spf_fail_without_dkim_fails_dmarc_with_p_reject() {
        let verdict = check(
            &dns(),
            "mx.example.org",
            peer("eve@fail.example"),
            b"From: eve@fail.example\r\nSubject: x\r\n\r\nbody\r\n",
        )
        .await;
        assert!(verdict.header.contains("spf=fail"), "{}", verdict.header);
        assert!(verdict.header.contains("dmarc=fail"), "{}", verdict.header);
        assert_eq!(verdict.dmarc, "fail");
        assert!(verdict.dmarc_reject);
    }
}
