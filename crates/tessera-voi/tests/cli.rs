//! The command line: results on worked files, hostile CSV as typed errors (a fuzz-style
//! property over mutations of valid files), the binary's exit status.

use clap::Parser;
use proptest::prelude::*;
use tessera::TesseraError;
use tessera_voi::{Cli, input, parse_grid, run};

fn temp(name: &str, contents: &str) -> String {
    let dir = std::env::temp_dir().join(format!("tessera-voi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_string_lossy().into_owned()
}

fn cli(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("tessera-voi").chain(args.iter().copied())).unwrap()
}

#[test]
fn evpi_of_the_worked_table() {
    let nb = temp("nb.csv", "a,b\n10,12\n11,9\n13,14\n");
    let out = run(&cli(&["--device", "cpu", "evpi", &nb])).unwrap();
    assert!(out.contains("0.6666666667"), "{out}");
    let json = run(&cli(&["--device", "cpu", "--json", "evpi", &nb])).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!((v["results"][0]["evpi"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(v["results"][0]["best"], "b");
}

#[test]
fn a_grid_from_costs_and_effects_and_evppi_of_named_groups() {
    let mut ce = String::from("cost_old,effect_old,cost_new,effect_new\n");
    let mut params = String::from("p,q\n");
    for i in 0..400 {
        let p = (i % 20) as f64 / 10.0;
        let q = ((i * 7) % 13) as f64 / 13.0;
        ce += &format!("1000,1,{},{}\n", 1500.0 + 100.0 * q, 1.0 + 0.05 * p);
        params += &format!("{p},{q}\n");
    }
    let ce = temp("ce.csv", &ce);
    let params = temp("params.csv", &params);
    let out = run(&cli(&[
        "--device",
        "cpu",
        "evpi",
        &ce,
        "--wtp",
        "0:20000:5000",
    ]))
    .unwrap();
    assert_eq!(out.lines().count(), 1 + 5, "{out}");
    let out = run(&cli(&[
        "--device",
        "cpu",
        "--json",
        "evppi",
        &ce,
        &params,
        "--group",
        "p",
        "--group",
        "p,q",
        "--wtp",
        "10000,20000",
    ]))
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[1]["group"], "p,q");
    // Both parameters determine the net benefit: EVPPI is the EVPI. One alone may
    // overshoot slightly (the other acts as noise the fit partly follows): a warning.
    assert_eq!(results[1]["within_bounds"], true, "{}", results[1]);
    for r in results {
        let (evppi, evpi) = (
            r["evppi"].as_array().unwrap(),
            r["evpi"].as_array().unwrap(),
        );
        assert_eq!(evppi.len(), 2);
        for (a, b) in evppi.iter().zip(evpi) {
            assert!(a.as_f64().unwrap() <= 1.01 * b.as_f64().unwrap(), "{r}");
        }
    }
    // The single-parameter estimators by name.
    for metamodel in ["strong-oakley", "sadatsafavi", "gp"] {
        let out = run(&cli(&[
            "--device",
            "cpu",
            "--json",
            "evppi",
            &ce,
            &params,
            "--group",
            "p",
            "--wtp",
            "10000",
            "--metamodel",
            metamodel,
        ]))
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let r = &v["results"][0];
        let (evppi, evpi) = (
            r["evppi"][0].as_f64().unwrap(),
            r["evpi"][0].as_f64().unwrap(),
        );
        assert!((0.0..=1.01 * evpi).contains(&evppi), "{metamodel}: {r}");
    }
    // A group naming a missing parameter.
    let err = run(&cli(&[
        "--device", "cpu", "evppi", &ce, &params, "--group", "p,zz", "--wtp", "1",
    ]))
    .unwrap_err();
    assert!(
        matches!(&err, TesseraError::Format { line: 1, message, .. } if message.contains("\"zz\"")),
        "{err}"
    );
    // Net-benefit columns with --wtp.
    let nb = temp("nb2.csv", "a,b\n1,2\n");
    assert!(matches!(
        run(&cli(&["--device", "cpu", "evpi", &nb, "--wtp", "1"])),
        Err(TesseraError::Format { .. })
    ));
}

#[test]
fn population_factors() {
    let out = run(&cli(&["population", "--rate", "0.035", "--horizon", "10"])).unwrap();
    assert!((out.trim().parse::<f64>().unwrap() - 8.316_605_322_577_937).abs() < 1e-12);
    let out = run(&cli(&[
        "population",
        "--rate",
        "0.035",
        "--horizon",
        "10",
        "--continuous",
    ]))
    .unwrap();
    assert!((out.trim().parse::<f64>().unwrap() - 8.437_483_150_893_9).abs() < 1e-12);
    assert!(run(&cli(&["population", "--rate=-0.1", "--horizon", "10"])).is_err());
}

#[test]
fn grids_are_checked() {
    assert_eq!(parse_grid("0:10:5").unwrap(), vec![0.0, 5.0, 10.0]);
    assert_eq!(parse_grid("20000, 30000").unwrap(), vec![20000.0, 30000.0]);
    for bad in [
        "", "a", "1,nan", "0:10:0", "10:0:1", "0:1e9:1", "1:2", "inf",
    ] {
        assert!(parse_grid(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn hostile_csv_is_a_format_error_naming_the_line() {
    for (text, line) in [
        ("", 1),
        ("a,b\n", 2),
        ("a,a\n1,2\n", 1),
        ("a,\n1,2\n", 1),
        ("a,b\n1,2\n3\n", 3),
        ("a,b\n1,NaN\n", 2),
        ("a,b\n1,inf\n", 2),
        ("a,b\n1,1e999\n", 2),
        ("a,b\n1,x\n", 2),
        ("a,b\n1,2\n1,\"é€😀 not a number\"\n", 3),
    ] {
        match input::parse("f.csv", text.as_bytes()) {
            Err(TesseraError::Format { line: got, .. }) => assert_eq!(got, line, "{text:?}"),
            other => panic!("{text:?}: {other:?}"),
        }
    }
    assert!(input::parse("f.csv", b"a,b\n1,2\n\xff\xfe,3\n").is_err());
    let ok = input::parse("f.csv", b"a, b\n# a comment\n 1 ,2\n3,4\n").unwrap();
    assert_eq!(ok.names, vec!["a", "b"]);
    assert_eq!(ok.values, vec![1.0, 2.0, 3.0, 4.0]);
}

fn mutate(seed: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for &(at, op, byte) in edits {
        if data.is_empty() {
            data.push(byte);
            continue;
        }
        let i = at % data.len();
        match op % 4 {
            0 => data[i] = byte,
            1 => {
                data.remove(i);
            }
            2 => data.insert(i, byte),
            _ => data.truncate(i),
        }
    }
    data
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every mutation of a valid file parses or is a format error within the file.
    #[test]
    fn mutated_files_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>(), prop_oneof![
        Just(b','), Just(b'\n'), Just(b'"'), Just(b'e'), Just(b'-'), Just(b'.'), Just(b'#'), Just(0xff), any::<u8>()
    ]), 0..12)) {
        let seed = b"cost_a,effect_a,cost_b,effect_b\n100,0.5,120,0.61\n-3e2,1e-3,4,5\n\"7\",8,9,10\n";
        let data = mutate(seed, &edits);
        match input::parse("m.csv", &data) {
            Ok(t) => {
                prop_assert_eq!(t.values.len(), t.rows * t.names.len());
                prop_assert!(t.values.iter().all(|v| v.is_finite()));
            }
            Err(TesseraError::Format { line, .. }) => {
                prop_assert!(line <= data.iter().filter(|&&b| b == b'\n').count() + 2);
            }
            Err(e) => prop_assert!(false, "not a format error: {e}"),
        }
    }
}

#[test]
fn the_binary_prints_results_and_fails_with_status_2() {
    let nb = temp("bin.csv", "a,b\n10,12\n11,9\n13,14\n");
    let bin = env!("CARGO_BIN_EXE_tessera-voi");
    let out = std::process::Command::new(bin)
        .args(["--device", "cpu", "evpi", &nb])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("0.6666666667"));
    let missing = std::process::Command::new(bin)
        .args(["evpi", "/nonexistent/file.csv"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/file.csv"));
}
