//! Shallow RLP shape checks: cheap enough to run on every decode, strict enough that the
//! typed decoders downstream only see well-framed input.

/// Checks that `bytes` is exactly one RLP list (header plus payload, nothing after).
pub(crate) fn check_list(bytes: &[u8]) -> Result<(), String> {
    let mut buf = bytes;
    let header = alloy_rlp::Header::decode(&mut buf).map_err(|e| e.to_string())?;
    if !header.list {
        return Err("expected an RLP list, found a string".into());
    }
    if buf.len() != header.payload_length {
        return Err(format!(
            "RLP list declares {} payload bytes but {} follow",
            header.payload_length,
            buf.len()
        ));
    }
    Ok(())
}

/// Checks that `bytes` is one EIP-2718 item: a legacy RLP list, or a type byte
/// `0x00..=0x7f` followed by one RLP list.
pub(crate) fn check_2718(bytes: &[u8]) -> Result<(), String> {
    match bytes.split_first() {
        None => Err("empty encoding".into()),
        Some((&first, _)) if first >= 0xc0 => check_list(bytes),
        Some((&first, rest)) if first <= 0x7f => check_list(rest),
        Some((&first, _)) => Err(format!(
            "first byte {first:#04x} is neither an EIP-2718 type nor an RLP list"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert!(check_list(&[0xc0]).is_ok());
        assert!(check_list(&[0xc1, 0x01]).is_ok());
        assert!(check_list(&[0xc1, 0x01, 0x02]).is_err(), "trailing byte");
        assert!(check_list(&[0xc2, 0x01]).is_err(), "short payload");
        assert!(check_list(&[0x80]).is_err(), "string, not list");
        assert!(check_list(&[]).is_err());
        assert!(check_2718(&[0x02, 0xc0]).is_ok());
        assert!(check_2718(&[0xc0]).is_ok());
        assert!(check_2718(&[0x02]).is_err());
        assert!(check_2718(&[0x90, 0xc0]).is_err());
        assert!(check_2718(&[]).is_err());
    }
}
