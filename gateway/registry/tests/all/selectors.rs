use xxfunc_api::{FunctionId, ModuleHash, Selector, StartFrom};
use xxfunc_registry::RegistryError;

use crate::{hash, name, named, open};

fn sel(s: &str) -> Selector {
    s.parse().unwrap()
}

/// Two valid-looking modules whose hashes share their first 8 hex digits,
/// found by a birthday search (about 2^16 hashes for a 32-bit collision).
fn colliding_pair() -> (ModuleHash, ModuleHash) {
    let mut seen = std::collections::HashMap::new();
    for i in 0u64.. {
        let h = ModuleHash::of(&i.to_le_bytes());
        if let Some(j) = seen.insert(h.short(8), i) {
            return (ModuleHash::of(&u64::to_le_bytes(j)), h);
        }
    }
    unreachable!("the search always ends")
}

#[test]
fn names_win_then_hashes_then_prefixes() {
    let (_dir, reg) = open();
    let h = hash("m");
    // A name spelled like a hex prefix.
    let hexname = h.short(8);
    reg.bind(&name(&hexname), hash("other")).unwrap();
    assert_eq!(reg.resolve(&sel(&hexname), &[]).unwrap(), named(&hexname));
    assert!(!reg.needs_store_modules(&sel(&hexname)).unwrap());
    // With the tag it is a hash prefix, found among store modules.
    let tagged = sel(&format!("blake3:{hexname}"));
    assert!(reg.needs_store_modules(&tagged).unwrap());
    assert_eq!(reg.resolve(&tagged, &[h]).unwrap(), FunctionId::Hash(h));
    // Plain names resolve without any lookup; existence is checked by the operation.
    assert_eq!(reg.resolve(&sel("nobody"), &[]).unwrap(), named("nobody"));
    // A full hash needs no candidates.
    assert_eq!(
        reg.resolve(&sel(&h.to_string()), &[]).unwrap(),
        FunctionId::Hash(h)
    );
    // Registry-known hashes count as candidates too.
    let known = hash("other");
    assert_eq!(
        reg.resolve(&sel(&known.short(10)), &[]).unwrap(),
        FunctionId::Hash(known)
    );
    let unknown = hash("nowhere").short(12);
    assert!(matches!(
        reg.resolve(&sel(&unknown), &[]),
        Err(RegistryError::PrefixNotFound { .. })
    ));
}

#[test]
fn ambiguous_prefixes_list_candidates() {
    let (_dir, reg) = open();
    let (a, b) = colliding_pair();
    assert_eq!(a.short(8), b.short(8));
    reg.start(&FunctionId::Hash(a), StartFrom::Head).unwrap();
    let prefix = sel(&format!("blake3:{}", a.short(8)));
    match reg.resolve(&prefix, &[b]) {
        Err(RegistryError::Ambiguous { candidates, .. }) => {
            let mut want = vec![a, b];
            want.sort();
            assert_eq!(candidates, want);
        }
        other => panic!("expected ambiguity, got {other:?}"),
    }
    // One more digit (where they differ) picks one, unless they agree further.
    let longer = a
        .to_hex()
        .chars()
        .zip(b.to_hex().chars())
        .take_while(|(x, y)| x == y)
        .count()
        + 1;
    let picked = reg
        .resolve(&sel(&format!("blake3:{}", a.short(longer))), &[b])
        .unwrap();
    assert_eq!(picked, FunctionId::Hash(a));
}
