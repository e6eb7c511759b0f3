//! The grant's parsing and the publicness rules, case by case and by property.

use super::*;
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

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
                let all_public = (first..=first + (size - 1)).all(|host| is_public(IpAddr::V4(Ipv4Addr::from(host))));
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
