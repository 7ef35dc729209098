//! Hostile FANN files: a regression corpus of every input that once panicked, aborted,
//! hung or was silently coerced (`tests/corpus/`), plus a mutation fuzzer over valid
//! files. The property for every input: the parser returns `Ok` or a
//! `TesseraError::Format` naming the line, never panics, allocates at most a small
//! multiple of the input's size, and finishes at once.
//!
//! `TESSERA_FUZZ_CASES` sets the number of mutated files per seed file (default 20000,
//! about a second). The allocation bound is measured by a counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use tessera_nn::fann::{FannSettings, format_data, format_net, parse_data, parse_net};
use tessera_nn::{Init, Network, TrainData};
use tessera_tensor::TesseraError;
use tessera_tensor::nn::Activation;

/// Counts the bytes this thread holds, and their peak, so one parse can be measured
/// while other tests run on other threads.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call forwards to the system allocator unchanged; the bookkeeping
// touches only const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        track(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak bytes allocated (beyond what was held before) while `f` runs on this thread.
fn peak_bytes<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, (peak - start).max(0) as usize)
}

/// Hang guard only (a parse of these inputs takes microseconds); speed lives in the
/// benchmarks.
const HANG: Duration = Duration::from_secs(5);

/// The property every input must satisfy, for both parsers.
fn check_hostile(name: &str, text: &str) {
    // Each parsed value costs at most 8 bytes for every 2 bytes of text, a network a
    // few copies of its weights: 24x the input, plus a fixed 64 KiB.
    let budget = 24 * text.len() + 64 * 1024;
    type Parse = fn(&str, &str) -> Result<(), TesseraError>;
    let parsers: [(&str, Parse); 3] = [
        ("parse_net", |t, f| parse_net(t, f).map(drop)),
        ("parse_cascade_net", |t, f| {
            tessera_nn::fann::parse_cascade_net(t, f).map(drop)
        }),
        ("parse_data", |t, f| parse_data(t, f).map(drop)),
    ];
    for (parser, parse) in parsers {
        let start = Instant::now();
        let (result, peak) = peak_bytes(|| parse(text, name));
        let took = start.elapsed();
        assert!(took < HANG, "{parser}({name}) took {took:?}");
        assert!(
            peak <= budget,
            "{parser}({name}) allocated {peak} bytes for {} bytes of input",
            text.len()
        );
        match result {
            Ok(()) => {}
            Err(TesseraError::Format {
                file,
                line,
                message,
            }) => {
                assert_eq!(file, name);
                assert!(
                    line >= 1 && line <= text.lines().count().max(1),
                    "{parser}({name}): line {line}: {message}"
                );
            }
            Err(other) => panic!("{parser}({name}) returned a non-format error: {other}"),
        }
    }
}

fn corpus() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    assert!(files.len() >= 30, "the corpus lost files");
    files
}

const PROBE: &str = include_str!("data/libfann-2.2-2-3-1.net");

#[test]
fn every_corpus_file_is_rejected_with_a_format_error() {
    for (name, text) in corpus() {
        check_hostile(&name, &text);
        let parse = if name.ends_with(".net") {
            parse_net(&text, &name).map(drop)
        } else {
            parse_data(&text, &name).map(drop)
        };
        match parse {
            Err(e @ TesseraError::Format { .. }) => {
                let shown = e.to_string();
                assert!(shown.starts_with(&format!("{name}:")), "{shown}");
            }
            other => panic!("{name}: expected a format error, got {other:?}"),
        }
    }
}

/// `layer_sizes` of 10^5 with as many neuron tuples once made a 2 MB file request
/// 40 GB of weights before the connections were counted.
#[test]
fn huge_layers_with_matching_neurons_allocate_nothing_large() {
    let width = 100_001;
    let neurons = "(0, 0, 0) ".repeat(width) + &"(100001, 5, 0.5) ".repeat(width - 1) + "(0, 5, 0)";
    let text = PROBE.replace("num_layers=3", "num_layers=2").replace(
        "layer_sizes=3 4 2 ",
        &format!("layer_sizes={width} {width} "),
    );
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("neurons") {
                format!("neurons (num_inputs, activation_function, activation_steepness)={neurons}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.len() > 1_000_000);
    check_hostile("huge-layers.net", &text);
    let e = parse_net(&text, "huge-layers.net").unwrap_err();
    assert!(e.to_string().contains("connections"), "{e}");
}

#[test]
fn the_issue_inputs_fail_for_the_reason_given() {
    let reason = |file: &str| -> String {
        let text = corpus().into_iter().find(|(n, _)| n == file).unwrap().1;
        let e = if file.ends_with(".net") {
            parse_net(&text, file).map(drop)
        } else {
            parse_data(&text, file).map(drop)
        };
        e.unwrap_err().to_string()
    };
    for (file, says) in [
        ("activation-id-negative.net", "activation id"),
        ("activation-id-fraction.net", "activation id"),
        (
            "connection-index-fraction.net",
            "connection to neuron `0.5`",
        ),
        ("connection-index-nan.net", "connection to neuron `NaN`"),
        ("training-algorithm-99.net", "training_algorithm"),
        ("weight-nan.net", "finite"),
        ("weight-inf.net", "finite"),
        ("weight-beyond-f32.net", "finite"),
        ("layer-size-u64-max.net", "layer size"),
        ("samples-beyond-memory.data", "header promises"),
        ("samples-u64-max-zero-width.data", "at least one input"),
        ("value-beyond-f32.data", "finite"),
    ] {
        let shown = reason(file);
        assert!(
            shown.contains(says),
            "{file}: `{shown}` should say `{says}`"
        );
    }
}

/// Valid files the fuzzer starts from.
fn seeds() -> Vec<String> {
    let mut net = Network::new(&[3, 5, 2], Activation::SigmoidSymmetric, Init::Xavier, 1).unwrap();
    net.set_output_activation(Activation::Linear, 1.0).unwrap();
    let data = TrainData::new(
        2,
        1,
        vec![0.5, -1.0, 2.0, 1e-3, -7.25, 3.0],
        vec![1.0, -1.0, 0.0],
    )
    .unwrap();
    // A shortcut net with a hidden layer of two neurons, then one of one.
    let mut cascade =
        tessera_nn::cascade::CascadeNetwork::new(2, 2, Activation::Linear, 1.0, 4).unwrap();
    for fan_in in [3, 3, 5] {
        cascade.hidden.push(tessera_nn::cascade::HiddenNeuron {
            activation: Activation::SigmoidSymmetric,
            steepness: 0.5,
            weights: (0..fan_in).map(|i| i as f32 * 0.25 - 0.3).collect(),
        });
        cascade.output.inputs += 1;
        cascade.output.weights.extend([0.5, -0.5]);
    }
    let params = tessera_nn::cascade::CascadeParams::default();
    vec![
        PROBE.to_owned(),
        format_net(&net, &FannSettings::default()).unwrap(),
        format_data(&data),
        tessera_nn::fann::format_cascade_net(&cascade, &FannSettings::default(), &params).unwrap(),
    ]
}

/// Tokens that once broke a parser, spliced in by the fuzzer.
const NASTY: &[&str] = &[
    "18446744073709551615",
    "18446744073709551616",
    "-1",
    "0.5",
    "3.7",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "1e39",
    "-1e39",
    "1e-46",
    "1000000000000",
    "100001",
    "0",
    "é",
    "ééé",
    "\u{1F600}",
    "(",
    ")",
    ",",
    "=",
    "\n",
    " ",
    "\r\n",
    "\t",
    "layer_sizes=",
    "neurons=",
    "connections=",
    "(0, 0)",
    "(0, 0, 0)",
    "FANN_FLO_2.1\n",
    "\0",
];

#[derive(Debug, Clone)]
enum Mutation {
    Splice { at: usize, len: usize, token: usize },
    Delete { at: usize, len: usize },
    Duplicate { at: usize, len: usize },
    Truncate { at: usize },
    Byte { at: usize, byte: u8 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 0..8usize, 0..NASTY.len())
            .prop_map(|(at, len, token)| Mutation::Splice { at, len, token }),
        2 => (any::<usize>(), 1..40usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        1 => (any::<usize>(), 1..200usize).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        1 => any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Byte { at, byte }),
    ]
}

/// Applies `m` to `text` at character boundaries (the parsers take `&str`; invalid
/// UTF-8 is rejected by `read_net`/`read_data` before parsing).
fn apply(text: &mut String, m: &Mutation) {
    let boundary = |text: &str, at: usize| {
        let mut at = at % (text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    match *m {
        Mutation::Splice { at, len, token } => {
            let start = boundary(text, at);
            let end = boundary(text, start.saturating_add(len).min(text.len()));
            text.replace_range(start..end.max(start), NASTY[token]);
        }
        Mutation::Delete { at, len } | Mutation::Duplicate { at, len } => {
            let start = boundary(text, at);
            let end = boundary(text, start.saturating_add(len).min(text.len())).max(start);
            if matches!(m, Mutation::Delete { .. }) {
                text.replace_range(start..end, "");
            } else {
                let copy = text[start..end].to_owned();
                text.insert_str(end, &copy);
            }
        }
        Mutation::Truncate { at } => {
            let at = boundary(text, at);
            text.truncate(at);
        }
        Mutation::Byte { at, byte } => {
            let start = boundary(text, at);
            let end = boundary(text, start + 1).max(start);
            let c = if byte.is_ascii() { byte as char } else { 'ÿ' };
            text.replace_range(start..end, c.encode_utf8(&mut [0; 4]));
        }
    }
}

fn cases() -> u32 {
    std::env::var("TESSERA_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

#[test]
fn mutated_files_never_hurt_the_parsers() {
    let seeds = seeds();
    for (i, seed) in seeds.iter().enumerate() {
        let config = ProptestConfig {
            cases: cases(),
            failure_persistence: None,
            ..ProptestConfig::default()
        };
        proptest!(config, |(mutations in proptest::collection::vec(mutation(), 1..6))| {
            let mut text = seed.clone();
            for m in &mutations {
                apply(&mut text, m);
            }
            check_hostile(&format!("seed-{i}"), &text);
        });
    }
}

#[test]
fn valid_seeds_parse() {
    let seeds = seeds();
    parse_net(&seeds[0], "probe").unwrap();
    parse_net(&seeds[1], "formatted").unwrap();
    parse_data(&seeds[2], "data").unwrap();
    let (net, ..) = tessera_nn::fann::parse_cascade_net(&seeds[3], "cascade").unwrap();
    assert_eq!(net.hidden.len(), 3);
}
