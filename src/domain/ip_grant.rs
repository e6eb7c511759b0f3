//! The IP address or network an agent may add to an account's allowlist.
//!
//! An allowlist entry opens an account to whoever sits behind it, so a grant
//! must name a narrow slice of the public internet: never a private, shared or
//! otherwise unroutable range (that would admit everyone on the attacker's own
//! LAN or carrier NAT), and never a network wider than a typical customer
//! office.

mod public;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net};
pub use public::is_public;
use public::network_is_public;

/// The widest IPv4 network an agent may grant: one /24, a typical office block.
const WIDEST_IPV4_PREFIX: u8 = 24;
/// The widest IPv6 network an agent may grant: one /48, a typical site allocation.
const WIDEST_IPV6_PREFIX: u8 = 48;
/// Error messages quote the input; a pasted wall of text must not flood them.
const MAX_QUOTED_INPUT_CHARS: usize = 64;
const IPV4_LENGTH: u8 = 32;
const IPV6_LENGTH: u8 = 128;

/// A single public IPv4/IPv6 address or a narrow public CIDR network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpGrant {
    network: IpNet,
    canonical: String,
}

/// Why a text cannot become an [`IpGrant`]; the message names the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpGrantError {
    Invalid(String),
    TooWide(String),
    NotPublic(String),
}

impl IpGrantError {
    /// Stable machine-readable code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) | Self::TooWide(_) => "invalid_ip",
            Self::NotPublic(_) => "ip_not_public",
        }
    }

    fn message(&self) -> &str {
        match self {
            Self::Invalid(message) | Self::TooWide(message) | Self::NotPublic(message) => message,
        }
    }
}

impl fmt::Display for IpGrantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for IpGrantError {}

impl IpGrant {
    /// Parses `203.0.113.7`, `198.51.100.0/24`, `2001:db8::/48` and the like,
    /// ignoring surrounding whitespace.
    pub fn parse(input: &str) -> Result<Self, IpGrantError> {
        let input = input.trim();
        let network = parse_network(input)
            .map(unwrap_ipv4_mapped)
            .ok_or_else(|| IpGrantError::Invalid(format!("{} is not an IP address or CIDR network", quoted(input))))?;

        let (prefix, widest) = match network {
            IpNet::V4(v4) => (v4.prefix_len(), WIDEST_IPV4_PREFIX),
            IpNet::V6(v6) => (v6.prefix_len(), WIDEST_IPV6_PREFIX),
        };
        if prefix < widest {
            return Err(IpGrantError::TooWide(format!(
                "{} is too wide: a grant may cover at most a /{WIDEST_IPV4_PREFIX} (IPv4) \
                 or a /{WIDEST_IPV6_PREFIX} (IPv6) network",
                quoted(input)
            )));
        }

        if !network_is_public(network) {
            return Err(IpGrantError::NotPublic(format!(
                "{} is not a public internet address; private, loopback, link-local, \
                 shared, multicast and reserved ranges cannot be granted",
                quoted(input)
            )));
        }

        Ok(Self {
            canonical: canonical_text(network),
            network,
        })
    }

    /// Canonical text: a bare address for a single host, `address/prefix`
    /// for a network, IPv6 compressed and lower-case.
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// Whether a connecting client's address falls inside this grant.
    pub fn contains(&self, addr: IpAddr) -> bool {
        // Dual-stack sockets report IPv4 clients as `::ffff:a.b.c.d`; grants
        // for IPv4 are stored unmapped, so compare like with like.
        self.network.contains(&addr.to_canonical())
    }
}

impl fmt::Display for IpGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

impl FromStr for IpGrant {
    type Err = IpGrantError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::parse(input)
    }
}

/// `None` for anything that is not `address` or `address/prefix`; host bits
/// below the prefix are cleared.
fn parse_network(text: &str) -> Option<IpNet> {
    let (address_text, prefix_text) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address: IpAddr = address_text.parse().ok()?;
    let host_prefix = match address {
        IpAddr::V4(_) => IPV4_LENGTH,
        IpAddr::V6(_) => IPV6_LENGTH,
    };
    let prefix = match prefix_text {
        None => host_prefix,
        Some(prefix_text) => parse_prefix(prefix_text).filter(|&prefix| prefix <= host_prefix)?,
    };
    IpNet::new(address, prefix).ok().map(|network| network.trunc())
}

/// Plain decimal digits only: `u8::from_str` would also take `+24`.
fn parse_prefix(text: &str) -> Option<u8> {
    let is_plain_decimal = !text.is_empty() && text.len() <= 3 && text.bytes().all(|byte| byte.is_ascii_digit());
    if is_plain_decimal { text.parse().ok() } else { None }
}

/// `::ffff:203.0.113.7` and `::ffff:203.0.113.0/120` are IPv4 in disguise;
/// storing them as IPv4 keeps one spelling per grant and lets the width and
/// publicity rules of IPv4 apply.
fn unwrap_ipv4_mapped(network: IpNet) -> IpNet {
    const MAPPED_PREFIX: u8 = IPV6_LENGTH - IPV4_LENGTH;
    if let IpNet::V6(v6) = network
        && v6.prefix_len() >= MAPPED_PREFIX
        && let Some(v4) = v6.network().to_ipv4_mapped()
        && let Ok(v4_network) = Ipv4Net::new(v4, v6.prefix_len() - MAPPED_PREFIX)
    {
        return IpNet::V4(v4_network);
    }
    network
}

fn canonical_text(network: IpNet) -> String {
    match network {
        IpNet::V4(v4) if v4.prefix_len() == IPV4_LENGTH => v4.network().to_string(),
        IpNet::V6(v6) if v6.prefix_len() == IPV6_LENGTH => v6.network().to_string(),
        IpNet::V4(v4) => format!("{}/{}", v4.network(), v4.prefix_len()),
        IpNet::V6(v6) => format!("{}/{}", v6.network(), v6.prefix_len()),
    }
}

fn quoted(input: &str) -> String {
    if input.chars().count() <= MAX_QUOTED_INPUT_CHARS {
        format!("{input:?}")
    } else {
        let head: String = input.chars().take(MAX_QUOTED_INPUT_CHARS).collect();
        format!("{head:?}…")
    }
}

#[cfg(test)]
mod tests;
