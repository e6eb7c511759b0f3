//! The IP address or network an agent may add to an account's allowlist.
//!
//! An allowlist entry opens an account to whoever sits behind it, so a grant
//! must name a narrow slice of the public internet: never a private, shared or
//! otherwise unroutable range (that would admit everyone on the attacker's own
//! LAN or carrier NAT), and never a network wider than a typical customer
//! office.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net};

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

/// Whether `addr` is reachable on the public internet and may therefore
/// identify a customer.
///
/// The documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
/// 2001:db8::/32) count as public on purpose: the project's examples and
/// tests use them as customer addresses.
pub fn is_public(addr: IpAddr) -> bool {
    match addr.to_canonical() {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(addr: Ipv4Addr) -> bool {
    if addr.is_documentation() {
        return true;
    }
    // The two globally reachable addresses of 192.0.0.0/24 (IETF protocol
    // assignments): PCP and TURN anycast.
    if matches!(addr.octets(), [192, 0, 0, 9] | [192, 0, 0, 10]) {
        return true;
    }
    let [a, b, c, _] = addr.octets();
    let this_network = a == 0;
    let ietf_protocol_assignment = a == 192 && b == 0 && c == 0;
    let shared_address_space = a == 100 && b & 0xc0 == 64; // 100.64.0.0/10, carrier NAT
    let benchmarking = a == 198 && b & 0xfe == 18; // 198.18.0.0/15
    let reserved = a & 0xf0 == 240; // 240.0.0.0/4, broadcast included
    // Multicast never names a single customer.
    !(this_network
        || addr.is_private()
        || ietf_protocol_assignment
        || shared_address_space
        || addr.is_loopback()
        || addr.is_link_local()
        || addr.is_multicast()
        || benchmarking
        || reserved)
}

fn is_public_v6(addr: Ipv6Addr) -> bool {
    let segments = addr.segments();
    // Only 2000::/3 is allocated as global unicast today. Everything else
    // (::/8 with its loopback, unspecified and IPv4-compatible addresses,
    // 64:ff9b::/96 NAT64, 100::/64 discard, fc00::/7, fe80::/10, ff00::/8
    // multicast, the unallocated rest) does not name a customer. This is
    // stricter than a global-scope test, which would pass global-scope
    // multicast and unallocated space.
    let in_global_unicast_space = segments[0] & 0xe000 == 0x2000;
    // 2001:db8::/32 (documentation) lies inside 2000::/3 and is deliberately
    // not refused below.
    in_global_unicast_space && !is_ietf_protocol_assignment(segments) && !is_6to4(segments)
}

/// 2001::/23 (IETF protocol assignments: Teredo, benchmarking, ...), minus
/// the sub-ranges IANA marks as globally reachable.
fn is_ietf_protocol_assignment(segments: [u16; 8]) -> bool {
    if segments[0] != 0x2001 || segments[1] >= 0x0200 {
        return false;
    }
    let is_anycast_service =
        segments[1] == 0x0001 && segments[2..7].iter().all(|&segment| segment == 0) && matches!(segments[7], 1 | 2); // PCP and TURN anycast
    let is_amt = segments[1] == 0x0003;
    let is_as112 = segments[1] == 0x0004 && segments[2] == 0x0112;
    let is_orchid_or_det = (0x0020..=0x003f).contains(&segments[1]);
    !(is_anycast_service || is_amt || is_as112 || is_orchid_or_det)
}

/// 2002::/16 (6to4): IANA does not list it as globally reachable, and the
/// embedded IPv4 address is the real client anyway.
fn is_6to4(segments: [u16; 8]) -> bool {
    segments[0] == 0x2002
}

/// Every address of the network must be public. Checking both ends suffices
/// because the refused ranges are themselves CIDR blocks: a grant either
/// lies inside one (both ends refused) or covers it whole (an end refused),
/// and no refused block is narrower than the widest grant except single
/// addresses that sit at the start of their enclosing block.
fn network_is_public(network: IpNet) -> bool {
    is_public(network.network()) && is_public(network.broadcast())
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn grant(input: &str) -> IpGrant {
        IpGrant::parse(input).unwrap_or_else(|error| panic!("{input} refused: {error}"))
    }

    fn refusal(input: &str) -> IpGrantError {
        match IpGrant::parse(input) {
            Ok(granted) => panic!("{input} accepted as {granted}"),
            Err(error) => error,
        }
    }

    fn addr(text: &str) -> IpAddr {
        text.parse().expect("test address literal")
    }

    #[test]
    fn single_public_addresses_are_granted_without_prefix() {
        assert_eq!(grant("203.0.113.7").as_str(), "203.0.113.7");
        assert_eq!(grant("8.8.8.8").as_str(), "8.8.8.8");
        assert_eq!(grant("2001:db8::7").as_str(), "2001:db8::7");
        assert_eq!(grant("2a00:1450:4001:82b::200e").as_str(), "2a00:1450:4001:82b::200e");
    }

    #[test]
    fn host_prefixes_are_written_as_bare_addresses() {
        assert_eq!(grant("203.0.113.7/32").as_str(), "203.0.113.7");
        assert_eq!(grant("2001:db8::7/128").as_str(), "2001:db8::7");
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        assert_eq!(grant("  198.51.100.0/24\n").as_str(), "198.51.100.0/24");
        assert_eq!(grant("\t2001:db8::1 ").as_str(), "2001:db8::1");
    }

    #[test]
    fn ipv6_is_written_compressed_and_lower_case() {
        assert_eq!(grant("2001:0DB8:0000:0000:0000:0000:0000:0001").as_str(), "2001:db8::1");
        assert_eq!(grant("2001:DB8:AB::/48").as_str(), "2001:db8:ab::/48");
    }

    #[test]
    fn host_bits_are_truncated_to_the_network_address() {
        assert_eq!(grant("198.51.100.7/24").as_str(), "198.51.100.0/24");
        assert_eq!(grant("203.0.113.77/28").as_str(), "203.0.113.64/28");
        assert_eq!(grant("2001:db8:1:2:3::9/48").as_str(), "2001:db8:1::/48");
    }

    #[test]
    fn display_and_from_str_agree_with_parse_and_as_str() {
        let parsed: IpGrant = "198.51.100.7/24".parse().expect("valid grant");
        assert_eq!(parsed.to_string(), "198.51.100.0/24");
        assert_eq!(parsed, grant("198.51.100.0/24"));
        assert_eq!("10.0.0.1".parse::<IpGrant>(), Err(refusal("10.0.0.1")));
    }

    #[test]
    fn ipv4_networks_up_to_a_slash_24_are_granted() {
        assert_eq!(grant("198.51.100.0/24").as_str(), "198.51.100.0/24");
        assert_eq!(grant("203.0.113.128/25").as_str(), "203.0.113.128/25");
        assert_eq!(grant("8.8.8.8/31").as_str(), "8.8.8.8/31");
    }

    #[test]
    fn ipv4_networks_wider_than_a_slash_24_are_too_wide() {
        for input in ["198.51.100.0/23", "8.8.0.0/16", "10.0.0.0/8", "0.0.0.0/0"] {
            let error = refusal(input);
            assert!(matches!(error, IpGrantError::TooWide(_)), "{input}: {error:?}");
            assert_eq!(error.code(), "invalid_ip");
        }
    }

    #[test]
    fn ipv6_networks_up_to_a_slash_48_are_granted() {
        assert_eq!(grant("2001:db8:ab::/48").as_str(), "2001:db8:ab::/48");
        assert_eq!(grant("2a00:1450:4001::/64").as_str(), "2a00:1450:4001::/64");
    }

    #[test]
    fn ipv6_networks_wider_than_a_slash_48_are_too_wide() {
        for input in ["2001:db8::/47", "2001:db8::/32", "2a00::/12", "::/0"] {
            let error = refusal(input);
            assert!(matches!(error, IpGrantError::TooWide(_)), "{input}: {error:?}");
            assert_eq!(error.code(), "invalid_ip");
        }
    }

    #[test]
    fn garbage_is_invalid() {
        for input in [
            "",
            "   ",
            "abc",
            "1.2.3",
            "1.2.3.4/33",
            "1.2.3.4/",
            "::1/200",
            "1.2.3.4/+24",
            "1.2.3.4/-1",
            "1.2.3.4/24/24",
            "256.1.1.1",
            "1.2.3.4 /24",
            "/24",
            "[2001:db8::1]",
            "fe80::1%eth0",
            "2001:db8::/129",
            "1.2.3.4/0024",
            "1.2.3.4/ 24",
        ] {
            let error = refusal(input);
            assert!(matches!(error, IpGrantError::Invalid(_)), "{input:?}: {error:?}");
            assert_eq!(error.code(), "invalid_ip");
        }
    }

    #[test]
    fn messages_name_the_input() {
        assert!(refusal("abc").to_string().contains("\"abc\""));
        assert!(refusal("10.0.0.0/8").to_string().contains("\"10.0.0.0/8\""));
        assert!(refusal(" 10.0.0.1 ").to_string().contains("\"10.0.0.1\""));
    }

    #[test]
    fn messages_quote_long_input_only_in_part() {
        let long_input = "x".repeat(10_000);
        assert!(refusal(&long_input).to_string().chars().count() < 200);
    }

    #[test]
    fn non_public_ipv4_is_refused_in_every_category() {
        for input in [
            "0.0.0.0",         // unspecified
            "0.1.2.3",         // "this network"
            "127.0.0.1",       // loopback
            "10.1.2.3",        // RFC 1918
            "172.16.0.1",      // RFC 1918
            "172.31.255.254",  // RFC 1918
            "192.168.1.10",    // RFC 1918
            "100.64.0.1",      // shared address space (carrier NAT)
            "100.127.255.254", // shared address space (carrier NAT)
            "169.254.1.1",     // link-local
            "224.0.0.1",       // multicast
            "239.255.255.250", // multicast
            "255.255.255.255", // broadcast
            "240.0.0.1",       // reserved
            "198.18.0.1",      // benchmarking
            "198.19.255.1",    // benchmarking
            "192.0.0.1",       // IETF protocol assignments
        ] {
            let error = refusal(input);
            assert!(matches!(error, IpGrantError::NotPublic(_)), "{input}: {error:?}");
            assert_eq!(error.code(), "ip_not_public");
        }
    }

    #[test]
    fn non_public_ipv6_is_refused_in_every_category() {
        for input in [
            "::",                // unspecified
            "::1",               // loopback
            "fc00::1",           // unique local
            "fd12:3456:789a::1", // unique local
            "fe80::1",           // link-local
            "fec0::1",           // site-local (deprecated)
            "ff02::1",           // multicast, link scope
            "ff0e::1",           // multicast, global scope
            "::ffff:10.0.0.1",   // IPv4-mapped private
            "::ffff:127.0.0.1",  // IPv4-mapped loopback
            "::ffff:100.64.0.1", // IPv4-mapped shared
            "64:ff9b::808:808",  // NAT64 translation
            "100::1",            // discard-only
            "2001::1",           // Teredo, inside IETF protocol assignments
            "2001:2::1",         // benchmarking
            "2002:c000:204::1",  // 6to4
            "::8.8.8.8",         // IPv4-compatible (deprecated)
            "4000::1",           // unallocated
        ] {
            let error = refusal(input);
            assert!(matches!(error, IpGrantError::NotPublic(_)), "{input}: {error:?}");
            assert_eq!(error.code(), "ip_not_public");
        }
    }

    #[test]
    fn documentation_ranges_count_as_public() {
        for input in [
            "192.0.2.1",
            "192.0.2.0/24",
            "198.51.100.200",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "203.0.113.255",
            "2001:db8::1",
            "2001:db8:ffff::/48",
        ] {
            assert_eq!(grant(input).as_str(), input);
        }
    }

    #[test]
    fn networks_must_be_public_throughout() {
        for input in [
            "100.64.0.0/24",
            "100.127.255.0/24",
            "192.168.0.0/24",
            "224.0.0.0/24",
            "192.0.0.8/31",
            "192.0.0.10/31",
            "fd00::/48",
            "ff0e::/64",
            "2001:1::/126",
        ] {
            let error = refusal(input);
            assert!(matches!(error, IpGrantError::NotPublic(_)), "{input}: {error:?}");
        }
    }

    #[test]
    fn globally_reachable_exceptions_inside_special_ranges_are_public() {
        assert!(is_public(addr("192.0.0.9")));
        assert!(is_public(addr("192.0.0.10")));
        assert!(is_public(addr("2001:1::1")));
        assert!(is_public(addr("2001:3::1")));
        assert!(is_public(addr("2001:4:112::1")));
        assert!(!is_public(addr("2001:1::3")));
    }

    #[test]
    fn checking_both_ends_agrees_with_checking_every_address() {
        // /24 blocks at and around the edges of the refused IPv4 ranges.
        for block in [
            [192, 0, 0],
            [192, 0, 2],
            [100, 63, 255],
            [100, 64, 0],
            [100, 127, 255],
            [100, 128, 0],
            [169, 254, 0],
            [198, 17, 255],
            [198, 18, 0],
            [223, 255, 255],
            [255, 255, 255],
        ] {
            let base = u32::from(Ipv4Addr::new(block[0], block[1], block[2], 0));
            for prefix in 24u8..=32 {
                let size = 1u32 << (32 - prefix);
                for first in (base..=base + 255).step_by(size as usize) {
                    let all_public =
                        (first..=first + (size - 1)).all(|host| is_public(IpAddr::V4(Ipv4Addr::from(host))));
                    let input = format!("{}/{prefix}", Ipv4Addr::from(first));
                    assert_eq!(IpGrant::parse(&input).is_ok(), all_public, "{input}");
                }
            }
        }
    }

    #[test]
    fn too_wide_is_reported_before_not_public() {
        assert!(matches!(refusal("10.0.0.0/8"), IpGrantError::TooWide(_)));
        assert!(matches!(refusal("fc00::/7"), IpGrantError::TooWide(_)));
    }

    #[test]
    fn ipv4_mapped_input_is_stored_as_ipv4() {
        assert_eq!(grant("::ffff:203.0.113.7").as_str(), "203.0.113.7");
        assert_eq!(grant("::ffff:198.51.100.9/120").as_str(), "198.51.100.0/24");
        assert!(matches!(refusal("::ffff:198.51.0.0/112"), IpGrantError::TooWide(_)));
    }

    #[test]
    fn is_public_accepts_ordinary_internet_addresses() {
        for text in [
            "8.8.8.8",
            "1.1.1.1",
            "151.101.1.69",
            "2a00:1450:4001:82b::200e",
            "2606:4700::1111",
        ] {
            assert!(is_public(addr(text)), "{text}");
        }
        assert!(is_public(addr("::ffff:8.8.8.8")));
    }

    #[test]
    fn contains_matches_addresses_inside_the_grant_only() {
        let network = grant("198.51.100.0/24");
        assert!(network.contains(addr("198.51.100.0")));
        assert!(network.contains(addr("198.51.100.255")));
        assert!(!network.contains(addr("198.51.101.0")));
        assert!(!network.contains(addr("2001:db8::1")));

        let single = grant("203.0.113.7");
        assert!(single.contains(addr("203.0.113.7")));
        assert!(!single.contains(addr("203.0.113.8")));

        let v6 = grant("2001:db8:ab::/48");
        assert!(v6.contains(addr("2001:db8:ab:ffff::1")));
        assert!(!v6.contains(addr("2001:db8:ac::1")));
        assert!(!v6.contains(addr("198.51.100.1")));
    }

    #[test]
    fn contains_sees_through_ipv4_mapped_clients() {
        let network = grant("198.51.100.0/24");
        assert!(network.contains(addr("::ffff:198.51.100.42")));
        assert!(!network.contains(addr("::ffff:198.51.101.42")));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn parse_never_panics(input in "\\PC{0,40}") {
            let _ = IpGrant::parse(&input);
        }

        #[test]
        fn canonical_text_parses_back_to_the_same_grant(octets in any::<[u8; 4]>(), prefix in 24u8..=32) {
            let input = format!("{}/{prefix}", Ipv4Addr::from(octets));
            if let Ok(granted) = IpGrant::parse(&input) {
                prop_assert_eq!(IpGrant::parse(granted.as_str()), Ok(granted.clone()));
                prop_assert!(granted.contains(IpAddr::V4(Ipv4Addr::from(octets))));
            }
        }

        #[test]
        fn ipv6_canonical_text_parses_back(segments in any::<[u16; 8]>(), prefix in 48u8..=128) {
            let input = format!("{}/{prefix}", Ipv6Addr::from(segments));
            if let Ok(granted) = IpGrant::parse(&input) {
                prop_assert_eq!(IpGrant::parse(granted.as_str()), Ok(granted.clone()));
                prop_assert!(granted.contains(IpAddr::V6(Ipv6Addr::from(segments))));
            }
        }

        #[test]
        fn every_address_of_a_granted_ipv4_network_is_public(octets in any::<[u8; 4]>(), prefix in 24u8..=32) {
            let input = format!("{}/{prefix}", Ipv4Addr::from(octets));
            if let Ok(granted) = IpGrant::parse(&input) {
                let IpNet::V4(v4) = granted.network else {
                    return Err(TestCaseError::fail("IPv4 input became IPv6"));
                };
                let first = u32::from(v4.network());
                let last = u32::from(v4.broadcast());
                for host in first..=last {
                    prop_assert!(is_public(IpAddr::V4(Ipv4Addr::from(host))), "{} in {}", Ipv4Addr::from(host), granted);
                }
            }
        }
    }
}
