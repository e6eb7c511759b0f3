//! Which addresses lie on the public internet: only those may identify a customer, so only
//! they may be granted.

use super::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
pub(super) fn network_is_public(network: IpNet) -> bool {
    is_public(network.network()) && is_public(network.broadcast())
}
