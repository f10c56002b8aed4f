//! Admission is execution: every generated module of `xxfunc_service::corpus` gets the
//! same verdict from the gateway's validation and from the runner's real engine (compile,
//! link, `_start: [] -> []`), and every admitted module runs.

use std::sync::Arc;

use bytes::Bytes;
use xxfunc_abi::EventKind;
use xxfunc_runner::{EventInput, Limits, ModuleCache, RunnerError, WasmEngine};
use xxfunc_service::{
    corpus::{self, Expect},
    validate_module,
};
use xxfunc_store::ModuleHash;

use crate::chain;

#[test]
fn validation_and_the_engine_agree_on_every_class() {
    // The runner's own engine configuration, as `Runner::open` builds it.
    let engine = Arc::new(WasmEngine::new(Limits::default(), 2).expect("engine"));
    let cache = ModuleCache::new(engine.clone(), None);
    let block = chain::blocks(None, 1, 1, 0).remove(0);
    let envelope = Bytes::from(xxfunc_abi::encode(EventKind::Commit, &block).expect("encode"));
    let cases = corpus::all();
    assert!(cases.iter().any(|c| c.expect == Expect::Accept));
    assert!(cases.iter().any(|c| c.expect != Expect::Accept));
    for case in cases {
        let verdict = validate_module(&case.bytes);
        let hash = ModuleHash::of(&case.bytes);
        let loaded = cache.load(&hash, || Ok(case.bytes.clone()));
        match (&verdict, &loaded, case.expect) {
            (Ok(_), Ok((module, _)), Expect::Accept) => {
                let outcome = engine.invoke(
                    module,
                    EventInput {
                        envelope: &envelope,
                        timestamp: block.timestamp,
                        block_hash: &block.hash.0,
                        state: None,
                    },
                );
                assert!(outcome.is_ok(), "{}: {:?}", case.name, outcome.status);
            }
            (Err(reason), Err(RunnerError::ModuleLoad { .. }), Expect::Reject(needle)) => {
                assert!(
                    reason.to_string().contains(needle),
                    "{}: {reason}",
                    case.name
                );
            }
            _ => panic!(
                "{}: expected {:?}; validation says {:?}, the engine says {:?}",
                case.name,
                case.expect,
                verdict.map(|_| ()).map_err(|e| e.to_string()),
                loaded.map(|_| ()).map_err(|e| format!("{e:#}")),
            ),
        }
    }
}
